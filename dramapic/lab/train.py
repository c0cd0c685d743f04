"""``dramapic train``: every model file dramapic ships, from the train split of a data manifest.

One module per training target: :mod:`~dramapic.lab.train_stage1` (the Pic-ensemble, on mixes from
:mod:`~dramapic.lab.mixes`), :mod:`~dramapic.lab.train_gender`, :mod:`~dramapic.lab.train_speakers`; the data they
read and augment is :mod:`~dramapic.lab.data`. Only ``split == "train"`` clips are fitted; ``split == "dev"`` clips
and the dev mixes are used only for measuring.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Sequence

from ..errors import OutputError
from ..lifecycle import signals_held
from ..models import MANIFEST_NAME, load_manifest
from ..progress import ProgressHook, silent_hook
from .data import DATA_COLUMNS, DATA_MANIFESTS, check_listed_clips, manifests_beside, read_manifest
from .kept_copies import STAGING, clear_stale_staging, stale_staging
from .train_gender import train_gender
from .train_speakers import train_speaker_projection
from .train_stage1 import shipped_recipe, train_stage1
from .voice_windows import GENDER_ROOMS, SHIPPED_COPIES, SPEAKER_ROOMS, build_window_tables

log = logging.getLogger(__name__)

TRAIN_STAGES = ("stage1", "gender", "speakers", "song-safe")
#: what plain ``dramapic train`` trains; ``song-safe`` (the opt-in stage 1 of pipelines/song-safe.yaml) only on request
DEFAULT_STAGES = ("stage1", "gender", "speakers")


def train_all(manifest_csv: Path, *, out_dir: Path, seed: int = 0, max_clips: int | None = None,
              stages: Sequence[str] = DEFAULT_STAGES, seconds_per_fold: float | None = None, augment: bool = True,
              copies: int | None = None, cache: Path | None = None,
              progress: ProgressHook = silent_hook) -> dict[str, Any]:
    """Train every model file dramapic ships (what ``dramapic train`` runs).

    Parameters
    ----------
    manifest_csv : Path
        The data manifest; only ``split == "train"`` rows are fitted (``dev`` rows only measure the gender model).
    out_dir : Path
        Models directory. Every stage trains into a hidden staging folder inside it; when all of them are done the
        new model files and ``manifest.json`` are moved in together (:func:`staged_models`), so a training that
        fails or is interrupted leaves ``out_dir`` as it was.
    seed : int
        Seeds everything; the same seed and data give the same files.
    max_clips : int, optional
        Smoke run: few clips (stage 1: this many voice clips per fold and 20 s of mixes per clip; gender: this many
        train and dev clips; song-safe: this many voice clips per voice group and fold) and tiny members
        (:data:`~dramapic.lab.train_stage1.SMOKE_OVERRIDES`).
    stages : sequence of str
        Which of :data:`TRAIN_STAGES` to train (default :data:`DEFAULT_STAGES`).
    seconds_per_fold : float, optional
        Stage-1 mix audio per fold (default 3,600 s; smoke runs ``20 * max_clips``).
    augment : bool
        Gender: fit on the augmented windows too (false: clean windows only).
    copies : int, optional
        Gender and speakers: augmented copies per voice clip in the window table (default
        :data:`~dramapic.lab.voice_windows.SHIPPED_COPIES`).
    cache : Path, optional
        Folder where the voice window tables (:mod:`~dramapic.lab.voice_windows`: the gender model's far rooms and
        the projection's near ones, one embedding pass) are kept between runs.
    progress : ProgressHook

    Returns
    -------
    dict
        ``{"stage1": [entries], "gender": entry, "speakers": entry, "song-safe": [entries], "seconds": {stage:
        wall seconds}}``; ``seconds["embed"]`` is the one embedding pass that builds the voice window tables of
        gender and speakers.

    Raises
    ------
    InputError
        The manifest is missing or unreadable, or it or an extra manifest beside it lacks a column of
        :data:`~dramapic.lab.data.DATA_COLUMNS`, or a clip of the splits the ``stages`` read is missing (all found
        before any training).
    OutputError
        ``out_dir`` is an existing file, cannot be created or written, or a folder stands where a model file goes.
    ModelError
        ``out_dir`` holds a ``manifest.json`` that is not a readable model manifest (found before any training).
    """
    unknown = set(stages) - set(TRAIN_STAGES)
    if unknown:
        raise ValueError(f"unknown training stage(s) {sorted(unknown)}; known: {list(TRAIN_STAGES)}")
    # a missing or unreadable manifest, or one without the columns the stages read (here or beside it: the extra
    # manifests), is an InputError before anything is written
    rows = {("manifest.csv" if i == 0 else manifest.name):
            read_manifest(manifest, columns=DATA_COLUMNS, empty_ok=manifest != Path(manifest_csv))
            for i, manifest in enumerate(manifests_beside(manifest_csv, DATA_MANIFESTS[1:]))}
    _check_clips_present(Path(manifest_csv), rows, stages=stages)
    from ..writers import make_output_dir, remove_made_dirs

    # an --out that is a file (or lies under one) is one OutputError before any training; a failed training
    # leaves no folder behind that it made
    created = make_output_dir(Path(out_dir))
    if (Path(out_dir) / MANIFEST_NAME).exists():
        load_manifest(out_dir)  # the manifest the models are registered in is unusable: say so before training
    cache_created: list[Path] = []
    if cache is not None and ("gender" in stages or "speakers" in stages):
        # the window table is built after stage 1 (most of an hour): a --cache that cannot be a folder is refused
        # now, in the words the table's builder uses, not then
        try:
            cache_created = make_output_dir(Path(cache))
        except OutputError as err:
            remove_made_dirs(created)
            raise OutputError(f"cannot use {cache} as the window table's cache folder: {err}") from None
    try:
        with staged_models(Path(out_dir)) as staging:
            return _train_stages(manifest_csv, out_dir=staging, seed=seed, max_clips=max_clips, stages=stages,
                                 seconds_per_fold=seconds_per_fold, augment=augment, copies=copies, cache=cache,
                                 progress=progress)
    except BaseException:
        remove_made_dirs(cache_created)  # while empty: a window table written there is kept for the next run
        remove_made_dirs(created)  # only the empty ones: nothing was published into them
        raise


#: the data manifests each stage reads (``manifest.csv``: the one given as --data) and the splits of them it reads
_STAGE_READS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "stage1": (("manifest.csv", "manifest_extra_music.csv"), ("train",)),
    "song-safe": (DATA_MANIFESTS, ("train",)),
    # the window table embeds the voices of both splits (dev measures) over beds of both splits
    "gender": (DATA_MANIFESTS, ("train", "dev")),
    "speakers": (DATA_MANIFESTS, ("train", "dev")),
}


def _check_clips_present(manifest_csv: Path, rows: dict[str, list[dict[str, str]]], *,
                         stages: Sequence[str]) -> None:
    """Every clip the ``stages`` may read is in the data folder: checked before any training (a stat per clip, a
    fraction of a second for the shared data). A missing one was found only when its turn came: a voice clip
    after stage 1 and part of the embedding pass (most of an hour), a music clip of the reels after the stage-1
    mixes were built and measured.

    Raises
    ------
    InputError
        Naming the first missing clip and how many are missing.
    """
    wanted = {(name, split) for stage in stages if stage in _STAGE_READS
              for name in _STAGE_READS[stage][0] for split in _STAGE_READS[stage][1]}
    check_listed_clips(manifest_csv.parent / r["path"] for name, listed in rows.items() for r in listed
                       if (name, r["split"]) in wanted)


@contextlib.contextmanager
def staged_models(out_dir: Path) -> Iterator[Path]:
    """A staging folder inside ``out_dir`` that starts with a copy of its ``manifest.json``: train into it, and at
    the end of the block its model files and then the manifest are moved into ``out_dir``.

    Why: the stages register one file after another (a stage-1 member, its manifest entry, the next member, ...,
    the stacker). Written straight into ``out_dir`` (the bundled ``models/`` by default), a training stopped
    half-way - Ctrl-C, SIGTERM, a full disk, a stage that fails - left new members beside an old stacker, or a file
    whose sha256 the manifest did not list yet: a models folder that no longer loads, or loads a mixture. Now the
    files are published together, with Ctrl-C and the terminating signals held while they are moved (renames
    within one folder: no copying, nothing half-written; a rename that fails half-way is undone); when the block
    raises, ``out_dir`` is left as it was and the staging folder is removed. A staging folder of a training killed
    with SIGKILL is removed by the next training into the same folder, which first undoes its publish if it was
    killed half-way through one (:func:`_restore_interrupted_publish`).

    Raises
    ------
    OutputError
        ``out_dir`` cannot be written, or a folder stands where a model file or the manifest goes.
    """
    staging = None
    try:
        _restore_interrupted_publish(out_dir)
        # the kept work folders' staging name and clean-up: a killed training's folder is found by its pid and
        # removed by the next training, as a killed timeline build's is
        clear_stale_staging(out_dir)
        staging = Path(tempfile.mkdtemp(prefix=f"{STAGING}{os.getpid()}-", dir=out_dir))
        if (out_dir / MANIFEST_NAME).is_file():  # the entries of the models this training does not replace
            shutil.copyfile(out_dir / MANIFEST_NAME, staging / MANIFEST_NAME)
    except OSError as err:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise OutputError(f"cannot write in the models folder {out_dir}: {err.strerror or err}") from None
    try:
        started_with = _manifest_models(staging)
        yield staging
        _publish(staging, out_dir, started_with=started_with)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _restore_interrupted_publish(out_dir: Path) -> None:
    """Undo the publish of a training killed outright (SIGKILL, a power cut) between two of its renames: its
    staging folder still holds ``manifest.json`` (moved last) and, under ``.replaced``, the files it had replaced
    so far. Each goes back, so the models folder matches its manifest again before the stale folder is removed,
    if the file now in its place is still the one that training published: moved in (no longer staged) and with
    the sha256 its staged manifest lists (not a copy cut short by the kill, nor a later training's file). A file
    the publish added, listed by no manifest, is left: nothing loads it. A finished publish (its manifest moved
    in) or one never begun (no ``.replaced``) has nothing to undo."""
    from ..models import file_sha256

    for staging in stale_staging(out_dir):
        kept = staging / ".replaced"
        if not kept.is_dir() or not (staging / MANIFEST_NAME).is_file():
            continue
        try:
            published = {f["path"]: f["sha256"] for m in _manifest_models(staging) for f in m.get("files", [])}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # its manifest unreadable: nothing can be told apart safely
        for copy in kept.iterdir():
            here = out_dir / copy.name
            if (staging / copy.name).exists() or not here.is_file() or file_sha256(here) != published.get(copy.name):
                continue
            os.replace(copy, here)
            log.warning("put back %s: a training killed while publishing had replaced it", here)


def _manifest_models(folder: Path) -> list[dict[str, Any]]:
    path = folder / MANIFEST_NAME
    return json.loads(path.read_text(encoding="utf-8"))["models"] if path.is_file() else []


def _publish(staging: Path, out_dir: Path, *, started_with: list[dict[str, Any]] | None = None) -> None:
    """Move the staged model files into ``out_dir``, ``manifest.json`` last (a reader never finds an entry whose
    file is not there yet).

    The manifest moved in is ``out_dir``'s as it is *now* with the entries this training registered put in: an
    entry another training registered there meanwhile (``--only gender`` beside ``--only stage1``) is kept, not
    replaced by the copy this one started from (``started_with``)."""
    from ..writers import write_json_atomic

    if (staging / MANIFEST_NAME).is_file():
        mine = [m for m in _manifest_models(staging) if m not in (started_with or [])]
        try:
            live = _manifest_models(out_dir)
        except (OSError, ValueError, KeyError, TypeError):
            live = []  # unreadable now (it was checked before training): this training's manifest replaces it
        names = {m["name"] for m in mine}
        merged = sorted([m for m in live if m.get("name") not in names] + mine, key=lambda m: m["name"])
        write_json_atomic({"models": merged}, staging / MANIFEST_NAME, indent=2, ensure_ascii=False)
    names = sorted(p.name for p in staging.iterdir() if p.name != MANIFEST_NAME)
    if (staging / MANIFEST_NAME).is_file():
        names.append(MANIFEST_NAME)
    in_the_way = [str(out_dir / name) for name in names if (out_dir / name).is_dir()]
    if in_the_way:  # refused before the first file is moved: a rename would fail half-way through
        raise OutputError(f"a folder is where a model file goes: {', '.join(in_the_way)}")
    # each file it replaces is kept (a hard link in the staging folder, a copy where links are not allowed) until
    # the manifest is in: a rename that fails half-way (an I/O error, a file locked on a network share) puts the
    # replaced files back and takes the new ones out, so the folder is never new members beside an old stacker
    kept = staging / ".replaced"
    moved: list[str] = []
    with signals_held():
        try:
            kept.mkdir()
            for name in names:
                if (out_dir / name).exists():
                    _keep_copy(out_dir / name, kept / name)
                os.replace(staging / name, out_dir / name)
                moved.append(name)
        except OSError as err:
            left = _put_back(moved, out_dir=out_dir, kept=kept)
            undone = (f"; could not put back {', '.join(left)}: retrain into this folder" if left
                      else "; the folder is as it was")
            raise OutputError(f"cannot publish the trained models in {out_dir}: {err.strerror or err}{undone}"
                              ) from None


def _keep_copy(path: Path, copy: Path) -> None:
    """``copy`` holds what ``path`` holds now: a hard link (no bytes copied), or a copy on a filesystem without."""
    try:
        os.link(path, copy)
    except OSError:
        shutil.copy2(path, copy)


def _put_back(moved: Sequence[str], *, out_dir: Path, kept: Path) -> list[str]:
    """Undo a publish that failed after ``moved``: each replaced file back from ``kept``, each added one removed.
    Returns the names that could not be restored (empty when the folder is as it was)."""
    left = []
    for name in reversed(moved):
        try:
            if (kept / name).exists():
                os.replace(kept / name, out_dir / name)
            else:
                (out_dir / name).unlink()
        except OSError:
            left.append(name)
    return left


def _train_stages(manifest_csv: Path, *, out_dir: Path, seed: int, max_clips: int | None, stages: Sequence[str],
                  seconds_per_fold: float | None, augment: bool, copies: int | None, cache: Path | None,
                  progress: ProgressHook) -> dict[str, Any]:
    """The stages of :func:`train_all`, in order, into ``out_dir`` (which exists)."""
    out: dict[str, Any] = {"seconds": {}}
    if "stage1" in stages:
        clock = time.perf_counter()
        out["stage1"] = train_stage1(manifest_csv, out_dir=out_dir, seed=seed, progress=progress,
                                     **shipped_recipe(max_clips=max_clips, seconds_per_fold=seconds_per_fold))
        out["seconds"]["stage1"] = round(time.perf_counter() - clock, 1)
    tables: dict[str, Any] = {}
    copies = SHIPPED_COPIES if copies is None else copies
    # the gender model learns on near and distant rooms, the projection on near ones (voice_windows.GENDER_ROOMS):
    # one embedding pass builds both tables, the clean windows embedded once
    rooms = {stage: recipe for stage, recipe in (("gender", GENDER_ROOMS), ("speakers", SPEAKER_ROOMS))
             if stage in stages}
    if rooms:
        clock = time.perf_counter()
        built = build_window_tables(manifest_csv=manifest_csv, seed=seed, max_clips=max_clips, copies=copies,
                                    rooms=tuple(rooms.values()), cache=cache, progress=progress)
        tables = dict(zip(rooms, built))
        out["seconds"]["embed"] = round(time.perf_counter() - clock, 1)
    if "gender" in stages:
        clock = time.perf_counter()
        out["gender"] = train_gender(manifest_csv, out_dir=out_dir, seed=seed, max_clips=max_clips,
                                     augment=augment, copies=copies, table=tables["gender"], progress=progress)
        out["seconds"]["gender"] = round(time.perf_counter() - clock, 1)
    if "speakers" in stages:
        clock = time.perf_counter()
        out["speakers"] = train_speaker_projection(manifest_csv, out_dir=out_dir, seed=seed, max_clips=max_clips,
                                                   copies=copies, table=tables["speakers"], progress=progress)
        out["seconds"]["speakers"] = round(time.perf_counter() - clock, 1)
    if "song-safe" in stages:  # issue 13: source-tagged mixes of all three manifests (lab/train_song_safe.py)
        from .train_song_safe import train_song_safe

        clock = time.perf_counter()
        smoke = max_clips is not None
        sec = seconds_per_fold if seconds_per_fold is not None else (20.0 * max_clips if smoke else 3600.0)
        out["song-safe"] = train_song_safe(manifest_csv, out_dir=out_dir, seed=seed, seconds_per_fold=sec,
                                           max_voice_clips=max_clips if smoke else 700,
                                           mix_s=(20.0, 40.0) if smoke else (45.0, 120.0), progress=progress)
        out["seconds"]["song-safe"] = round(time.perf_counter() - clock, 1)
    return out
