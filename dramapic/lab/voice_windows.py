"""The voice window table: every voice clip embedded once, window by window, for all of stage 2's trainers.

The gender model (:mod:`~dramapic.lab.gender_fit`), the speaker projection (:mod:`~dramapic.lab.train_speakers`) and
the cross-corpus protocol (:mod:`~dramapic.lab.crosscorpus`) all learn from the same thing: resemblyzer embeddings
of the 1.5 s windows stage 2 embeds at run time, with the pitch features of the same samples. Embedding is the whole
cost of training them (the fits take seconds), so it is done once here and the table is shared (and, with
``cache``, kept on disk for the next run).

Which clips: every ``voice`` row of ``manifest.csv`` and, when it lies next to it, ``manifest_extra.csv`` (1,420
more speakers in 60 languages) that has a gender or a speaker id; ``splits`` chooses train and/or dev (trainers fit
``train`` rows only and measure on ``dev`` rows).

What each clip gives: its clean windows and the windows of ``copies`` augmented copies
(:func:`~dramapic.lab.data.augment_clip`: a crop, a music or noise bed of the clip's own split at 0-20 dB SNR, a
telephone band, a gain; then, by the table's :class:`RoomRecipe`, a synthetic room), seeded per clip so a clip's
copy does not depend on which other clips are in the run. Sung music (``vocal_pop``, ``a_cappella``,
``sung_vocals``) is never a bed: a singer under a speaker is not background.

Two room recipes, two tables (:func:`build_window_tables` embeds the clean windows once for both): the speaker
projection is fitted on near microphones (:data:`SPEAKER_ROOMS`), the gender model on near and distant ones
(:data:`GENDER_ROOMS`). Distant rooms taught the gender model to hold a voice's gender when the room is as loud as
the voice, at no cost across corpora; fitted on them, the projection pulled voices together on near-field speech
(``dramapic/lab/experiments/issue14_far_field/RESULTS.md``).

The table (a dict of arrays; the format of ``dramapic/lab/experiments/issue14_gender/CACHE_README.md``):

* per window, n rows: ``emb`` (n, 256) float32 raw embeddings, ``pitch`` (n, 6) float32
  (:func:`~dramapic.analysis.pitch.window_pitch_features`), ``clip`` (n,) int32 index into the clip table,
  ``condition`` (n,) ``clean`` / ``aug``, ``t0`` / ``t1`` (n,) float32 window start / end inside the clip's audio,
  and the clip's ``speaker``, ``source``, ``gender``, ``split``, ``language``, ``subtype`` (n,) str;
* per clip, m rows: ``clip_path``, ``clip_speaker``, ``clip_source``, ``clip_gender``, ``clip_split``,
  ``clip_language``, ``clip_subtype``, ``clip_aug`` (what the copy got), ``clip_f0_flag`` (``strong``, ``flag`` or
  '' from ``extra/gender_f0_flags.tsv``: speakers whose stated gender disagrees with their pitch), ``clip_duration``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import os
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputError, OutputError
from ..progress import ProgressHook, silent_hook
from ..result import SAMPLE_RATE
from ..writers import make_output_dir
from .data import apply_room, augment_clip, load_audio, manifests_beside, read_manifest, room_impulse

log = logging.getLogger(__name__)

TABLE_FORMAT = 1
WINDOW_S, HOP_S = 1.5, 0.75  # stage 2's windows (SpeakersConfig defaults): identical at train and predict time
#: augmented copies per clip in the table the shipped gender and speaker models are fitted on (``dramapic train``,
#: ``dramapic eval --cross-corpus``): two, with the clean windows counted twice in the speaker projection, lowered
#: DER across corpora and on the dev mixes on three seeds (model card, "Two augmented copies")
SHIPPED_COPIES = 2
TABLE_SEED = 14              # + the training seed; 14 reproduces the table the shipped v2 models were fitted on
BEDS_PER_SPLIT = 300         # a seeded subset of the beds, decoded once (seeking per clip is what is slow)
BED_SUBTYPES_EXCLUDED = frozenset({"vocal_pop", "a_cappella", "sung_vocals"})
CLIPS_PER_BATCH = 16
FLAGS_FILE = Path("extra") / "gender_f0_flags.tsv"
PER_WINDOW = ("emb", "pitch", "clip", "condition", "t0", "t1")
COPIED = ("speaker", "source", "gender", "split", "language", "subtype")
#: every array of a table (:func:`_assemble`): a kept file lacking one is not a table to reuse
TABLE_KEYS = frozenset(PER_WINDOW + COPIED + tuple(f"clip_{k}" for k in COPIED)
                       + ("clip_path", "clip_duration", "clip_aug", "clip_f0_flag"))


@dataclasses.dataclass(frozen=True)
class RoomRecipe:
    """Which augmented copies get a synthetic room (:func:`~dramapic.lab.data.room_impulse`, RT60 0.2-0.9 s) and how
    loud its reverberant tail is against the voice's direct sound.

    Attributes
    ----------
    p : float
        The probability that a copy gets a room.
    tail_db : tuple of float
        The range (dB) the tail's energy against the direct sound is drawn from; above 0 the microphone is far
        from the speaker (the room louder than the voice).
    """

    p: float
    tail_db: tuple[float, float]

    def describe(self) -> str:
        """The recipe in words, for the manifests of the models fitted on it."""
        low, high = self.tail_db
        where = "near and distant microphones" if high > 0 else "near microphones"
        return (f"p {self.p:g} room (RT60 0.2-0.9 s, reverberant tail {low:+g} to {high:+g} dB against the direct "
                f"sound: {where})")

    def to_dict(self) -> dict[str, Any]:
        return {"p": self.p, "tail_db": list(self.tail_db)}


#: near microphones, the tail 4-14 dB under the direct sound: the table the speaker projection is fitted on (and,
#: before 2026-12-07, the gender model), and the key of a table kept under ``cache`` is unchanged for it
NEAR_ROOMS = RoomRecipe(p=0.25, tail_db=(-14.0, -4.0))
#: near and distant microphones, the tail up to 6 dB above the direct sound (a meeting table, a stage, a camera
#: across the room), on more copies
FAR_ROOMS = RoomRecipe(p=0.4, tail_db=(-14.0, 6.0))
#: the gender model's rooms: in a room louder than the voice, the shipped near-room model called a Common Voice man
#: a third female; far rooms kept the cross-corpus figures (gender error 2.9 %, DER 0.102, 23 of 28) and cut the
#: far-room probe's female-share error from 12.6 to 7.0 points (``experiments/issue14_far_field/RESULTS.md``)
GENDER_ROOMS = FAR_ROOMS
#: the speaker projection's rooms: fitted on far rooms it merged near-field voices (DER across corpora 0.103 ->
#: 0.116, dev mixes 0.128 -> 0.160)
SPEAKER_ROOMS = NEAR_ROOMS


def voice_manifests(manifest_csv: Path) -> list[Path]:
    """``manifest_csv`` and, when it lies next to it, ``manifest_extra.csv`` (same columns, same data root)."""
    return manifests_beside(manifest_csv, ["manifest_extra.csv"])


def clip_rows(manifests: Sequence[Path]) -> list[dict[str, str]]:
    """Voice rows with a gender or a speaker id of every manifest, sorted by path (the table's clip index)."""
    rows = [dict(r) for m in manifests for r in read_manifest(m)
            if r.get("label") == "voice" and (r.get("gender") or r.get("speaker"))]
    for r in rows:
        for key in ("speaker", "source", "gender", "split", "language", "subtype", "duration_s"):
            r.setdefault(key, "")
    return sorted(rows, key=lambda r: r["path"])


def bed_rows(manifest_csv: Path, split: str) -> list[Path]:
    """Music and noise clips of ``split`` usable as beds: from ``manifest_csv`` and ``manifest_extra_music.csv``
    beside it, sung music left out; sorted."""
    root = Path(manifest_csv).parent
    names = [Path(manifest_csv), root / "manifest_extra_music.csv"]
    out = []
    for name in names:
        if not name.is_file():
            continue
        out += [root / r["path"] for r in read_manifest(name)
                if r.get("split") == split and r.get("label") in ("song", "noise")
                and r.get("subtype", "") not in BED_SUBTYPES_EXCLUDED]
    return sorted(out)


def speaker_round_robin(rows: Sequence[dict[str, str]], *, seed: int) -> list[int]:
    """Clip indices, round k holding the k-th clip (seeded order) of every speaker: the first clips of a smoke run
    cover as many speakers as there are clips."""
    rng = np.random.default_rng([seed, 99])
    by_speaker: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_speaker.setdefault(r["speaker"] or f"_nospk_{i}", []).append(i)
    speakers = sorted(by_speaker)
    speakers = [speakers[k] for k in rng.permutation(len(speakers))]
    lists = {s: [by_speaker[s][k] for k in rng.permutation(len(by_speaker[s]))] for s in speakers}
    out: list[int] = []
    k = 0
    while len(out) < len(rows):
        out += [lists[s][k] for s in speakers if k < len(lists[s])]
        k += 1
    return out


def _flags(root: Path) -> dict[str, str]:
    path = root / FLAGS_FILE
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8", newline="") as handle:
        return {r["speaker"]: "strong" if r.get("strong") == "yes" else "flag"
                for r in csv.DictReader(handle, delimiter="\t")}


def _digest(manifests: Sequence[Path], *, seed: int, splits: Sequence[str], max_clips: int | None,
            copies: int, rooms: RoomRecipe = NEAR_ROOMS) -> str:
    settings: dict[str, Any] = {"format": TABLE_FORMAT, "seed": seed, "splits": sorted(splits), "copies": copies,
                                "max_clips": max_clips, "window": [WINDOW_S, HOP_S]}
    if rooms != NEAR_ROOMS:  # the near-room key is the one tables were kept under before recipes had a name
        settings["rooms"] = rooms.to_dict()
    h = hashlib.sha256(json.dumps(settings).encode())
    for m in manifests:
        h.update(Path(m).read_bytes())
    return h.hexdigest()[:16]


def build_window_table(*, manifest_csv: Path, seed: int = 0, splits: Sequence[str] = ("train", "dev"),
                       max_clips: int | None = None, copies: int = 1, rooms: RoomRecipe = NEAR_ROOMS,
                       cache: Path | None = None, workers: int | None = None,
                       progress: ProgressHook = silent_hook) -> dict[str, np.ndarray]:
    """The window table of one room recipe: :func:`build_window_tables` with ``rooms=(rooms,)``."""
    return build_window_tables(manifest_csv=manifest_csv, seed=seed, splits=splits, max_clips=max_clips,
                               copies=copies, rooms=(rooms,), cache=cache, workers=workers, progress=progress)[0]


def build_window_tables(*, manifest_csv: Path, rooms: Sequence[RoomRecipe], seed: int = 0,
                        splits: Sequence[str] = ("train", "dev"), max_clips: int | None = None, copies: int = 1,
                        cache: Path | None = None, workers: int | None = None,
                        progress: ProgressHook = silent_hook) -> tuple[dict[str, np.ndarray], ...]:
    """Embed every voice clip, clean and ``copies`` augmented copies, into one window table per room recipe
    (module docstring). The clean windows are embedded once for all the tables (a third of the work with two
    copies); each recipe's copies are drawn from the clip's own seed, so a table does not depend on which other
    recipes were built beside it.

    Parameters
    ----------
    manifest_csv : Path
        ``manifest.csv`` of the data; ``manifest_extra.csv`` and ``manifest_extra_music.csv`` beside it are used
        when present.
    rooms : sequence of RoomRecipe
        One table per recipe, in this order (a recipe named twice gives the same table twice; without copies the
        recipes make no difference and all are one table).
    seed : int
        The training seed; augmentation is seeded with ``[TABLE_SEED + seed, clip index]``.
    splits : sequence of str
        Which splits to embed.
    max_clips : int, optional
        Smoke runs: at most this many clips per split, chosen round-robin over speakers.
    copies : int
        Augmented copies per clip (condition ``aug``); 0: clean windows only.
    cache : Path, optional
        A folder: each table is read from ``window-table-<digest>.npz`` there when the same manifests, seed and
        settings made it, else built and written there (atomically). A kept file that cannot be read back as a
        table (truncated, not a zip, arrays missing) is removed with a warning and the table built again.
    workers : int, optional
        Processes that embed (default: 2 when the machine has them and there are more than 8 batches, else 1).
    progress : ProgressHook
        Called as ``progress("embed", clips_done, clips_total)``.

    Returns
    -------
    tuple of dict of str to np.ndarray
        The tables, one per recipe of ``rooms``; n (windows) rows per window array, m (clips) rows per ``clip_*``
        array.

    Raises
    ------
    InputError
        A missing manifest, or one without a column of :data:`~dramapic.lab.data.DATA_COLUMNS`, no voice clip with a
        gender or speaker, or a clip or bed to read that is not there (all checked before the embedding pass).
    OutputError
        ``cache`` cannot be made a folder (checked before the embedding pass) or a table cannot be written there.
    """
    manifest_csv = Path(manifest_csv)
    manifests = voice_manifests(manifest_csv)
    rows = clip_rows(manifests)
    if not rows:
        raise InputError(f"{manifest_csv}: no voice clip with a gender or a speaker id")
    if not rooms:
        raise ValueError("build_window_tables needs at least one room recipe")
    wanted = [recipe if copies else NEAR_ROOMS for recipe in rooms]
    distinct = list(dict.fromkeys(wanted))
    tables: dict[RoomRecipe, dict[str, np.ndarray]] = {}
    kept_at: dict[RoomRecipe, Path] = {}
    if cache is not None:
        try:  # a cache folder that cannot be made fails here, not after the embedding pass
            make_output_dir(Path(cache))
        except OutputError as err:
            raise OutputError(f"cannot use {cache} as the window table's cache folder: {err}") from None
        for recipe in distinct:
            digest = _digest(manifests, seed=seed, splits=splits, max_clips=max_clips, copies=copies, rooms=recipe)
            kept_at[recipe] = Path(cache) / f"window-table-{digest}.npz"
            kept = _read_cached(kept_at[recipe]) if kept_at[recipe].is_file() else None
            if kept is not None:
                log.info("window table: reusing %s", kept_at[recipe])
                tables[recipe] = kept
    missing = [recipe for recipe in distinct if recipe not in tables]
    if missing:
        built = _embed_tables(manifest_csv, rows, rooms=missing, seed=seed, splits=splits, max_clips=max_clips,
                              copies=copies, workers=workers, progress=progress)
        for recipe, table in zip(missing, built):
            if recipe in kept_at:
                _save_atomic(kept_at[recipe], table)
            tables[recipe] = table
    return tuple(tables[recipe] for recipe in wanted)


def _embed_tables(manifest_csv: Path, rows: Sequence[dict[str, str]], *, rooms: Sequence[RoomRecipe], seed: int,
                  splits: Sequence[str], max_clips: int | None, copies: int, workers: int | None,
                  progress: ProgressHook) -> list[dict[str, np.ndarray]]:
    """The embedding pass of :func:`build_window_tables`: one table per recipe of ``rooms``."""
    root = manifest_csv.parent
    order = speaker_round_robin(rows, seed=TABLE_SEED + seed)
    chosen: list[int] = []
    for split in splits:
        in_split = [i for i in order if rows[i]["split"] == split]
        chosen += in_split if max_clips is None else in_split[:max_clips]
    _check_material(manifest_csv, clips=[root / rows[i]["path"] for i in chosen], splits=splits)
    batches = [chosen[b0:b0 + CLIPS_PER_BATCH] for b0 in range(0, len(chosen), CLIPS_PER_BATCH)]
    if workers is None:
        workers = min(2, os.cpu_count() or 1) if len(batches) > 8 else 1
    settings = (str(manifest_csv), seed, max_clips, copies, sorted(set(rows[i]["split"] for i in chosen)),
                tuple(rooms))
    parts: list[dict[str, list[np.ndarray]]] = [{k: [] for k in PER_WINDOW} for _ in rooms]
    described: list[dict[int, str]] = [{} for _ in rooms]
    done = 0

    def collect(result) -> None:
        nonlocal done
        batch_parts, batch_described, n_clips = result
        for r in range(len(rooms)):
            for k, v in batch_parts[r].items():
                parts[r][k].append(v)
            described[r].update(batch_described[r])
        done += n_clips
        progress("embed", done, len(chosen))

    if workers <= 1:
        embedder = _Embedder(*settings)
        for ids in batches:
            collect(embedder.batch(ids))
    else:
        import multiprocessing

        # spawned (not forked: torch's thread pools may already be running) workers, one thread each: the LSTM on
        # 1.5 s windows scales better across processes than across torch threads (2 workers 1.24x faster than one
        # process on 2 cores); every clip's copy is seeded by its own index, so the split of the batches among
        # workers does not change the table
        with multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker,
                                                       initargs=settings) as pool:
            for result in pool.imap(_worker_batch, batches):
                collect(result)
    flags = _flags(root)
    return [_assemble(parts[r], rows, described[r], flags) for r in range(len(rooms))]


def _check_material(manifest_csv: Path, *, clips: Sequence[Path], splits: Sequence[str]) -> None:
    """Before the embedding pass (minutes; most of an hour for the shared data): the manifests it reads have the
    lab's columns, and every clip it embeds and every bed it may mix in is there. A manifest without ``gender`` was
    embedded whole and then refused as "train windows ... do not hold both genders"; a missing clip was found only
    when its batch came.

    Raises
    ------
    InputError
        A manifest lacks a column of :data:`~dramapic.lab.data.DATA_COLUMNS`, or a clip is missing.
    """
    from .data import DATA_COLUMNS, check_listed_clips

    for manifest in manifests_beside(manifest_csv, ["manifest_extra.csv", "manifest_extra_music.csv"]):
        read_manifest(manifest, columns=DATA_COLUMNS, empty_ok=manifest != manifest_csv)
    check_listed_clips([*clips, *(bed for split in splits for bed in bed_rows(manifest_csv, split))])


class _Embedder:
    """Embeds batches of clips of the clip table (clean, and augmented by each room recipe), with the beds of their
    splits decoded once."""

    def __init__(self, manifest_csv: str, seed: int, max_clips: int | None, copies: int,
                 splits: Sequence[str], rooms: Sequence[RoomRecipe] = (NEAR_ROOMS,)) -> None:
        from ..analysis.embeddings import SpeakerEncoder

        self.manifest_csv = Path(manifest_csv)
        self.root = self.manifest_csv.parent
        self.rows = clip_rows(voice_manifests(self.manifest_csv))
        self.seed, self.copies, self.rooms = seed, copies, tuple(rooms)
        self.beds: dict[str, list[np.ndarray]] = {}
        for split in splits:
            paths = bed_rows(self.manifest_csv, split)
            bed_rng = np.random.default_rng([TABLE_SEED + seed, 7])  # per split: never depends on another split
            n_beds = BEDS_PER_SPLIT if max_clips is None else max(4, min(BEDS_PER_SPLIT, max_clips))  # smoke: few
            pick = sorted(bed_rng.choice(len(paths), size=min(n_beds, len(paths)), replace=False)) if paths else []
            self.beds[split] = [load_audio(paths[k]) for k in pick]
        self.encoder = SpeakerEncoder()

    def batch(self, ids: Sequence[int]) -> tuple[list[dict[str, np.ndarray]], list[dict[int, str]], int]:
        """The windows of clips ``ids``: per recipe of ``rooms``, the per-window arrays (the clean windows, shared,
        and that recipe's copies) and what each augmented copy got; and len(ids)."""
        rows = self.rows
        clean = [load_audio(self.root / rows[i]["path"]) for i in ids]
        clean_windows = self._windows("clean", clean, list(ids))
        out: list[dict[str, np.ndarray]] = []
        described: list[dict[int, str]] = []
        for recipe in self.rooms:
            said: dict[int, str] = {}
            if not self.copies:
                out.append(clean_windows)
                described.append(said)
                continue
            augmented, owners = [], []
            for i, x in zip(ids, clean):
                rng = np.random.default_rng([TABLE_SEED + self.seed, i])  # per clip: independent of the others
                what_all = []
                for _ in range(self.copies):
                    y, what = augment_clip(x, self.beds.get(rows[i]["split"], []), rng)
                    if rng.random() < recipe.p:
                        y, what = apply_room(y, room_impulse(rng, tail_db=recipe.tail_db)), what + "+room"
                    augmented.append(y)
                    owners.append(i)
                    what_all.append(what)
                said[i] = ",".join(what_all)
            copies = self._windows("aug", augmented, owners)
            out.append({k: np.concatenate([clean_windows[k], copies[k]]) for k in PER_WINDOW})
            described.append(said)
        return out, described, len(ids)

    def _windows(self, condition: str, audios: Sequence[np.ndarray], owners: Sequence[int]) -> dict[str, np.ndarray]:
        """The per-window arrays of ``audios`` (clip ``owners[k]``'s audio each), embedded in one call."""
        from ..analysis.pitch import window_pitch_features

        bounds = np.concatenate([[0], np.cumsum([len(a) for a in audios])])
        regions = [(bounds[k] / SAMPLE_RATE, bounds[k + 1] / SAMPLE_RATE) for k in range(len(audios))]
        whole = np.concatenate(audios).astype(np.float32)
        times, emb, region = self.encoder.embed_regions(whole, sample_rate=SAMPLE_RATE, regions=regions,
                                                        window_s=WINDOW_S, hop_s=HOP_S)
        offset = bounds[region] / SAMPLE_RATE
        return {"emb": np.asarray(emb, np.float32),
                "pitch": window_pitch_features(whole, times=times, sample_rate=SAMPLE_RATE),
                "clip": np.asarray(owners, np.int64)[region],
                "condition": np.full(len(region), condition),
                "t0": times[:, 0] - offset, "t1": times[:, 1] - offset}


_WORKER: _Embedder | None = None


def _init_worker(*settings) -> None:
    global _WORKER
    import torch

    torch.set_num_threads(1)
    _WORKER = _Embedder(*settings)


def _worker_batch(ids: Sequence[int]):
    assert _WORKER is not None
    return _WORKER.batch(ids)


def _assemble(parts, rows, described, flags) -> dict[str, np.ndarray]:
    cat = {k: np.concatenate(v) if v else np.zeros((0, 256) if k == "emb" else (0, 6) if k == "pitch" else 0)
           for k, v in parts.items()}
    order = np.lexsort((cat["t0"], cat["condition"] == "aug", cat["clip"]))  # clip, clean before aug, time
    cat = {k: v[order] for k, v in cat.items()}
    col = lambda key: np.asarray([r[key] for r in rows])  # noqa: E731
    c = cat["clip"].astype(np.int64)
    table = {"emb": cat["emb"].astype(np.float32), "pitch": cat["pitch"].astype(np.float32),
             "clip": c.astype(np.int32), "condition": cat["condition"].astype(str),
             "t0": cat["t0"].astype(np.float32), "t1": cat["t1"].astype(np.float32)}
    for key in COPIED:
        table[key] = col(key)[c] if len(c) else np.zeros(0, str)
        table[f"clip_{key}"] = col(key)
    table["clip_path"] = col("path")
    table["clip_duration"] = np.asarray([float(r["duration_s"] or 0) for r in rows], np.float32)
    table["clip_aug"] = np.asarray([described.get(i, "") for i in range(len(rows))])
    table["clip_f0_flag"] = np.asarray([flags.get(r["speaker"], "") for r in rows])
    return table


def _read_cached(path: Path) -> dict[str, np.ndarray] | None:
    """The table kept in ``path``, or None when it cannot be read back as one (then it is removed, with a warning).

    The file is only ever written whole (:func:`_save_atomic`), but a disk that filled up, a copy cut short or a
    hand edit can still leave a damaged one; it is a cache, so it is rebuilt rather than ending the run (it was a
    ``BadZipFile`` or ``ValueError`` traceback, and the next run met the same file)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            table = {k: data[k] for k in data.files}
        missing = sorted(TABLE_KEYS - set(table))
        if missing:
            raise ValueError(f"no {', '.join(missing)}")
        if len({len(table[k]) for k in PER_WINDOW + COPIED}) != 1:
            raise ValueError("its per-window arrays differ in length")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        log.warning("window table %s is unreadable (%s): removing it and building the table again", path, err)
        try:
            path.unlink()
        except OSError:     # a file that cannot be removed is overwritten by the rebuilt table, or that fails alone
            pass
        return None
    return table


def _save_atomic(path: Path, table: dict[str, np.ndarray]) -> None:
    """Write the table to ``path`` under a temporary name renamed when complete; :class:`OutputError` when it cannot
    be written (nothing is left then)."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".window-table-", suffix=".npz")
        os.close(fd)
        np.savez(tmp, **table)
        os.replace(tmp, path)
    except OSError as err:
        raise OutputError(f"cannot write the window table {path}: {err.strerror or err}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def train_rows(table: dict[str, np.ndarray], *, excluded: frozenset[str] = frozenset()) -> np.ndarray:
    """Window indices of ``train`` clips with a speaker id, non-zero embedding, outside ``excluded`` sources."""
    ok = ((table["split"] == "train") & (table["speaker"] != "") & ~np.isin(table["source"], sorted(excluded))
          & (np.linalg.norm(table["emb"], axis=1) > 0))
    return np.flatnonzero(ok)
