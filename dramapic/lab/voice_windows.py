"""The voice window table: every voice clip embedded once, window by window, for all of stage 2's trainers.

The gender model (:mod:`~dramapic.lab.gender_fit`), the speaker projection (:mod:`~dramapic.lab.train_speakers`) and
the cross-corpus protocol (:mod:`~dramapic.lab.crosscorpus`) all learn from the same thing: resemblyzer embeddings
of the 1.5 s windows stage 2 embeds at run time, with the pitch features of the same samples. Embedding is the whole
cost of training them (the fits take seconds), so it is done once here and the table is shared (and, with
``cache``, kept on disk for the next run).

Which clips: every ``voice`` row of ``manifest.csv`` and, when it lies next to it, ``manifest_extra.csv`` (1,420
more speakers in 60 languages) that has a gender or a speaker id; ``splits`` chooses train and/or dev (trainers fit
``train`` rows only and measure on ``dev`` rows).

What each clip gives: its clean windows and the windows of one augmented copy (:func:`~dramapic.lab.data.augment_clip`:
a crop, a music or noise bed of the clip's own split at 0-20 dB SNR, a telephone band, a gain; then with p 0.25 a
synthetic room), seeded per clip so a clip's copy does not depend on which other clips are in the run. Sung music
(``vocal_pop``, ``a_cappella``, ``sung_vocals``) is never a bed: a singer under a speaker is not background.

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
import hashlib
import json
import logging
import os
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Sequence

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
P_ROOM = 0.25
BEDS_PER_SPLIT = 300         # a seeded subset of the beds, decoded once (seeking per clip is what is slow)
BED_SUBTYPES_EXCLUDED = frozenset({"vocal_pop", "a_cappella", "sung_vocals"})
CLIPS_PER_BATCH = 16
FLAGS_FILE = Path("extra") / "gender_f0_flags.tsv"
PER_WINDOW = ("emb", "pitch", "clip", "condition", "t0", "t1")
COPIED = ("speaker", "source", "gender", "split", "language", "subtype")
#: every array of a table (:func:`_assemble`): a kept file lacking one is not a table to reuse
TABLE_KEYS = frozenset(PER_WINDOW + COPIED + tuple(f"clip_{k}" for k in COPIED)
                       + ("clip_path", "clip_duration", "clip_aug", "clip_f0_flag"))


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
            copies: int) -> str:
    h = hashlib.sha256(json.dumps({"format": TABLE_FORMAT, "seed": seed, "splits": sorted(splits), "copies": copies,
                                   "max_clips": max_clips, "window": [WINDOW_S, HOP_S]}).encode())
    for m in manifests:
        h.update(Path(m).read_bytes())
    return h.hexdigest()[:16]


def build_window_table(*, manifest_csv: Path, seed: int = 0, splits: Sequence[str] = ("train", "dev"),
                       max_clips: int | None = None, copies: int = 1, cache: Path | None = None,
                       workers: int | None = None, progress: ProgressHook = silent_hook) -> dict[str, np.ndarray]:
    """Embed every voice clip (clean and one augmented copy) into the window table (module docstring).

    Parameters
    ----------
    manifest_csv : Path
        ``manifest.csv`` of the data; ``manifest_extra.csv`` and ``manifest_extra_music.csv`` beside it are used
        when present.
    seed : int
        The training seed; augmentation is seeded with ``[TABLE_SEED + seed, clip index]``.
    splits : sequence of str
        Which splits to embed.
    max_clips : int, optional
        Smoke runs: at most this many clips per split, chosen round-robin over speakers.
    copies : int
        Augmented copies per clip (condition ``aug``); 0: clean windows only.
    workers : int, optional
        Processes that embed (default: 2 when the machine has them and there are more than 8 batches, else 1).
    cache : Path, optional
        A folder: the table is read from ``window-table-<digest>.npz`` there when the same manifests, seed and
        settings made it, else built and written there (atomically). A kept file that cannot be read back as a
        table (truncated, not a zip, arrays missing) is removed with a warning and the table built again.
    progress : ProgressHook
        Called as ``progress("embed", clips_done, clips_total)``.

    Returns
    -------
    dict of str to np.ndarray
        The table; n (windows) rows per window array, m (clips) rows per ``clip_*`` array.

    Raises
    ------
    InputError
        A missing manifest, or one without a column of :data:`~dramapic.lab.data.DATA_COLUMNS`, no voice clip with a
        gender or speaker, or a clip or bed to read that is not there (all checked before the embedding pass).
    OutputError
        ``cache`` cannot be made a folder (checked before the embedding pass) or the table cannot be written there.
    """
    manifest_csv = Path(manifest_csv)
    manifests = voice_manifests(manifest_csv)
    rows = clip_rows(manifests)
    if not rows:
        raise InputError(f"{manifest_csv}: no voice clip with a gender or a speaker id")
    cached = None
    if cache is not None:
        digest = _digest(manifests, seed=seed, splits=splits, max_clips=max_clips, copies=copies)
        cached = Path(cache) / f"window-table-{digest}.npz"
        try:  # a cache folder that cannot be made fails here, not after the embedding pass
            make_output_dir(cached.parent)
        except OutputError as err:
            raise OutputError(f"cannot use {cache} as the window table's cache folder: {err}") from None
        if cached.is_file():
            kept = _read_cached(cached)
            if kept is not None:
                log.info("window table: reusing %s", cached)
                return kept
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
    settings = (str(manifest_csv), seed, max_clips, copies, sorted(set(rows[i]["split"] for i in chosen)))
    parts: dict[str, list[np.ndarray]] = {k: [] for k in PER_WINDOW}
    described: dict[int, str] = {}
    done = 0

    def collect(result) -> None:
        nonlocal done
        batch_parts, batch_described, n_clips = result
        for k, v in batch_parts.items():
            parts[k].append(v)
        described.update(batch_described)
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
    table = _assemble(parts, rows, described, _flags(root))
    if cached is not None:
        _save_atomic(cached, table)
    return table


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
    """Embeds batches of clips of the clip table (clean and augmented), with the beds of their splits decoded once."""

    def __init__(self, manifest_csv: str, seed: int, max_clips: int | None, copies: int,
                 splits: Sequence[str]) -> None:
        from ..analysis.embeddings import SpeakerEncoder

        self.manifest_csv = Path(manifest_csv)
        self.root = self.manifest_csv.parent
        self.rows = clip_rows(voice_manifests(self.manifest_csv))
        self.seed, self.copies = seed, copies
        self.beds: dict[str, list[np.ndarray]] = {}
        for split in splits:
            paths = bed_rows(self.manifest_csv, split)
            bed_rng = np.random.default_rng([TABLE_SEED + seed, 7])  # per split: never depends on another split
            n_beds = BEDS_PER_SPLIT if max_clips is None else max(4, min(BEDS_PER_SPLIT, max_clips))  # smoke: few
            pick = sorted(bed_rng.choice(len(paths), size=min(n_beds, len(paths)), replace=False)) if paths else []
            self.beds[split] = [load_audio(paths[k]) for k in pick]
        self.encoder = SpeakerEncoder()

    def batch(self, ids: Sequence[int]) -> tuple[dict[str, np.ndarray], dict[int, str], int]:
        """The windows of clips ``ids``: per-window arrays, what each augmented copy got, and len(ids)."""
        from ..analysis.pitch import window_pitch_features

        rows = self.rows
        clean = [load_audio(self.root / rows[i]["path"]) for i in ids]
        conditions = [("clean", clean, list(ids))]
        described: dict[int, str] = {}
        if self.copies:
            augmented, owners = [], []
            for i, x in zip(ids, clean):
                rng = np.random.default_rng([TABLE_SEED + self.seed, i])  # per clip: independent of the others
                what_all = []
                for _ in range(self.copies):
                    y, what = augment_clip(x, self.beds.get(rows[i]["split"], []), rng)
                    if rng.random() < P_ROOM:
                        y, what = apply_room(y, room_impulse(rng)), what + "+room"
                    augmented.append(y)
                    owners.append(i)
                    what_all.append(what)
                described[i] = ",".join(what_all)
            conditions.append(("aug", augmented, owners))
        out: dict[str, list[np.ndarray]] = {k: [] for k in PER_WINDOW}
        for condition, audios, owners in conditions:
            bounds = np.concatenate([[0], np.cumsum([len(a) for a in audios])])
            regions = [(bounds[k] / SAMPLE_RATE, bounds[k + 1] / SAMPLE_RATE) for k in range(len(audios))]
            whole = np.concatenate(audios).astype(np.float32)
            times, emb, region = self.encoder.embed_regions(whole, sample_rate=SAMPLE_RATE, regions=regions,
                                                            window_s=WINDOW_S, hop_s=HOP_S)
            offset = bounds[region] / SAMPLE_RATE
            out["emb"].append(np.asarray(emb, np.float32))
            out["pitch"].append(window_pitch_features(whole, times=times, sample_rate=SAMPLE_RATE))
            out["clip"].append(np.asarray(owners, np.int64)[region])
            out["condition"].append(np.full(len(region), condition))
            out["t0"].append(times[:, 0] - offset)
            out["t1"].append(times[:, 1] - offset)
        return {k: np.concatenate(v) for k, v in out.items()}, described, len(ids)


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
