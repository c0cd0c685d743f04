"""The cross-corpus timelines: drama-like labelled timelines built only from the ``dev`` speakers of one voice source.

:mod:`dramapic.lab.crosscorpus` scores a model fitted *without* a voice source on timelines made only of that
source's voices. This module builds those timelines from ``../shared/data`` (``manifest.csv``,
``manifest_extra.csv``, ``manifest_extra_music.csv``): one folder per voice source
(``librispeech-train-clean-100``, ``emodb``, ``cv``, ``ravdess``, ``nemo``) and a ``mixed`` folder whose casts draw
one member per source. It is the generator of ``dramapic/lab/experiments/issue14_gender/make_timelines.py`` (itself
``make_dev_mixes.py`` adapted per voice source), ported with the same random draws in the same order: with the
default seed and the same data it gives the same labels, RTTM, recipes and indexes as the timelines behind the
issue-14 figures (checked file by file), and, with the same ffmpeg/libopus build, the same Opus bytes (those were
encoded by imageio-ffmpeg's static 9.0.2 build; Debian's 5.1 encodes the same samples to other bytes).

What a timeline is (the dev mixes' recipe):

* a sequence of blocks on a 10 ms grid: dialogue blocks (turns of the cast's real ``dev`` utterances, gaps of
  0.15-1.2 s, now and then a 0.2-0.9 s overlap at a change of speaker, sometimes over a music or noise bed 0-15 dB
  below the speech), song stretches, noise stretches and silences, over a very quiet looped room tone;
* read speech (LibriSpeech) is cut into phrases of 2.5-7 s; short-clip corpora (Emo-DB, RAVDESS, nEMO, Common
  Voice) are trimmed and spoken one or two clips per turn (Common Voice: one);
* music comes from ``dev`` instrumental tracks (sung ``vocal_pop`` / a cappella left out), noise from ``dev`` noise
  clips of at least 1.5 s, room tone from ``dev`` silence clips;
* the ground truth comes from the components, not the plan: ``voice`` wherever an utterance lies, else ``song``
  where the music is at or above -50 dBFS (50 ms RMS), else ``noise`` likewise, else ``silence``; non-voice runs
  under 0.25 s between non-voice runs merge into their left neighbour.

Outputs per timeline ``NAME`` (``cv_03``, ``libri_01``, ``mixed_02``): ``NAME.opus`` (16 kHz mono Ogg Opus),
``NAME.labels.csv`` (``start,end,label,gender,speaker``, a partition of the file; overlapping speech is one row with
speakers and genders joined by ``+``), ``NAME.rttm`` (one line per utterance, overlaps kept) and ``NAME.json`` (the
recipe; ``speakers[*].source`` is what :func:`dramapic.lab.crosscorpus.recipe_sources` reads). Per folder an
``index.csv`` and the completion marker ``build.json``; at the top ``timelines.json``, the index of the tree. Both
name the ffmpeg that encoded a folder's audio (``encoder``: ``"ffmpeg 5.1.9-0+deb12u1"``; :func:`recorded_encoders`
reads it): another build encodes the same samples to other Opus bytes, and a model's figures on them move by tenths
of a point.

Building is atomic per folder: a folder is written under ``OUT/.staging-*`` and renamed into place only when all its
files and its marker are written, so an interrupted build never leaves a half folder where
:func:`~dramapic.lab.crosscorpus.find_timelines` would find (and score) it. A folder whose marker matches (same seed,
bitrate, casts, manifest sha256s, files unchanged) is reused, not rebuilt, whichever ffmpeg encoded it: the encoder
is recorded, not matched, so that a tree built elsewhere is scored as it is (its figures stay comparable to the
ones it gave), and a tree from before the encoder was recorded is reused too ("encoder not recorded").

Only ``split == "dev"`` rows are ever read; nothing is copied from the data folder except into the timelines.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .. import media
from ..errors import ConfigError, InputError, OutputError
from ..progress import ProgressHook, silent_hook
from .crosscorpus import MIXED, timeline_folders
from .data import DATA_MANIFESTS
from .kept_copies import STAGING, atomic_text, clear_stale_staging, files_unchanged, read_marker, sha256_of
from .timeline_mixer import (
    FLOOR_DB,
    GENDER_WORDS,
    SR,
    STEM,
    VOICE_SOURCES,
    Cast,
    CastMember,
    Material,
    Mix,
    plan_timeline,
    reference_rows,
    render_mix,
)

log = logging.getLogger(__name__)

#: the seed of the timelines behind the issue-14 figures (``make_dev_mixes.py``'s 20251121 + 14)
DEFAULT_SEED = 20_251_135
DEFAULT_BITRATE = "32k"
#: bump when a change alters what a seed builds: folders built by another format are rebuilt, never reused
FORMAT = 1
MARKER = "build.json"
INDEX = "timelines.json"

def _casts(folder: str, *letters: str) -> tuple[Cast, ...]:
    return tuple(tuple((g, folder) for g in c) for c in letters)


_L, _E, _C, _R, _N = VOICE_SOURCES
#: the casts of the 28 timelines, per folder, in build order (the order matters: speakers, tracks and clips are
#: drawn least-used-first across the whole build). Emo-DB and nEMO have one dev speaker of each gender, RAVDESS
#: two: their casts cannot be larger.
DEFAULT_CASTS: Mapping[str, tuple[Cast, ...]] = MappingProxyType({
    _L: _casts(_L, "F", "M", "FM", "FFM", "FMMM"),
    _E: _casts(_E, "F", "M", "FM", "MF"),
    _C: _casts(_C, "F", "M", "FM", "FFM", "FMM", "FFMM"),
    _R: _casts(_R, "F", "M", "FM", "FFM", "FFMM"),
    _N: _casts(_N, "F", "M", "FM", "MF"),
    MIXED: ((("F", _L), ("M", _R)), (("F", _C), ("M", _E), ("M", _C)), (("F", _N), ("F", _R), ("M", _L)),
            (("F", _E), ("M", _N), ("F", _C), ("M", _R))),
})


# ------------------------------------------------------------------------------------------------ public entry

def build_timelines(*, data: Path, out: Path, seed: int = DEFAULT_SEED, folders: Iterable[str] | None = None,
                    casts: Mapping[str, Sequence[Sequence[CastMember]]] | None = None,
                    bitrate: str = DEFAULT_BITRATE, progress: ProgressHook = silent_hook) -> list[Path]:
    """Build (or reuse) the cross-corpus timeline folders under ``out``.

    Parameters
    ----------
    data : Path
        The data folder: ``manifest.csv``, ``manifest_extra.csv``, ``manifest_extra_music.csv`` and the clips
        their ``path`` columns name. Only ``dev`` rows are read.
    out : Path
        The timeline tree; one sub-folder per entry of ``casts``. Created if missing.
    seed : int
        Seeds every draw. The default is the seed of the timelines behind the issue-14 figures.
    folders : iterable of str, optional
        The folders to write (default: every folder of ``casts``). Writing only some gives the same files as a full
        build: the folders before them in ``casts`` are planned (not written) so that the least-used-first draws
        see the same history.
    casts : mapping of str to sequence of casts, optional
        ``{folder: [cast, ...]}`` in build order, a cast being a sequence of ``(gender letter, voice source)``;
        default :data:`DEFAULT_CASTS` (28 timelines). Folder ``f`` holds ``STEM.get(f, f)_NN`` timelines.
    bitrate : str
        Opus bitrate of the audio (ffmpeg notation).
    progress : ProgressHook
        Called as ``progress("timelines", written, to_write)`` after each timeline written.

    Returns
    -------
    list of Path
        The folders asked for, in the order asked (``casts`` order by default), each complete (built now or
        reused). ``out/timelines.json`` lists every complete folder of the tree.

    Notes
    -----
    One build per tree at a time: two concurrent builds into the same ``out`` each stay whole, but the last
    rename wins. A folder built from other settings (seed, casts, manifests) is rebuilt and swapped in; one encoded
    by another ffmpeg is reused as it is (each marker and the index name the encoder, :func:`recorded_encoders`).

    Raises
    ------
    InputError
        A manifest or a clip is missing or unreadable, or the data lack the speakers, music or noise a cast needs.
    ConfigError
        An unknown folder, gender letter or voice source.
    OutputError
        ``out`` cannot be written, or one of its folders exists and was not built by this function (it is never
        overwritten).
    MediaError
        ffmpeg failed to decode a clip or to encode a timeline.
    """
    data, out = Path(data), Path(out)
    plan = _check_casts(DEFAULT_CASTS if casts is None else casts)
    wanted = list(plan) if folders is None else list(dict.fromkeys(folders))
    unknown = [f for f in wanted if f not in plan]
    if unknown:
        raise ConfigError(f"unknown timeline folder(s) {', '.join(unknown)}; known: {', '.join(plan)}")
    manifests = {name: sha256_of(data / name, what="data manifest") for name in DATA_MANIFESTS}
    order = list(plan)
    keys = {f: _folder_key(folder=f, seed=seed, bitrate=bitrate, manifests=manifests,
                           casts={g: plan[g] for g in order[: order.index(f) + 1]}) for f in order}
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create the timeline folder {out}: {err}") from None
    clear_stale_staging(out)
    todo = [f for f in wanted if not _is_complete(out / f, keys[f])]
    foreign = [f for f in todo if (out / f).exists() and not (out / f / MARKER).is_file()]
    if foreign:
        raise OutputError(f"{', '.join(str(out / f) for f in foreign)} exist(s) but was not built by "
                          f"build_timelines (no {MARKER}); remove it or choose another output folder")
    for f in wanted:
        if f not in todo:
            log.info("timelines %s: complete for seed %d, reused (%s)", f, seed,
                     _encoder_words(_recorded_encoder(out / f)))
    if todo:
        # asked once, of the ffmpeg encode_opus runs; a tree wholly reused asks nothing
        encoder = media.opus_encoder()
        _build(data=data, out=out, plan=plan, todo=todo, keys=keys, seed=seed, bitrate=bitrate, encoder=encoder,
               progress=progress)
    _write_index(out, keys=keys)
    return [out / f for f in wanted]


def recorded_encoders(root: Path) -> dict[str, str | None]:
    """The ffmpeg that encoded each timeline folder of the tree ``root`` (the ``encoder`` of its marker, as
    :func:`dramapic.media.opus_encoder` worded it), in folder order; None for a folder whose marker does not say (built
    before markers recorded it, or not by :func:`build_timelines`). A missing or damaged marker is not an error here:
    the folder's timelines are scored all the same."""
    return {f: _recorded_encoder(Path(root) / f) for f in timeline_folders(root)}


def _recorded_encoder(folder: Path) -> str | None:
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    encoder = marker.get("encoder") if isinstance(marker, dict) else None
    return encoder if isinstance(encoder, str) and encoder else None


def _encoder_words(encoder: str | None) -> str:
    return f"encoded by {encoder}" if encoder else "encoder not recorded"


def timeline_name(folder: str, index: int) -> str:
    """File stem of the ``index``-th (from 1) timeline of ``folder``: ``libri_01``, ``cv_03``, ``mixed_02``."""
    return f"{STEM.get(folder, folder)}_{index:02d}"


# ------------------------------------------------------------------------------------------------ the tree

def _check_casts(casts: Mapping[str, Sequence[Sequence[CastMember]]]) -> dict[str, tuple[Cast, ...]]:
    plan: dict[str, tuple[Cast, ...]] = {}
    for folder, folder_casts in casts.items():
        if not re.fullmatch(r"[A-Za-z0-9][\w.-]*", folder):
            raise ConfigError(f"timeline folder name {folder!r} is not a plain folder name")
        checked = []
        for cast in folder_casts:
            members = tuple((str(g), str(s)) for g, s in cast)
            if not members:
                raise ConfigError(f"an empty cast in timeline folder {folder}")
            for g, s in members:
                if g not in GENDER_WORDS:
                    raise ConfigError(f"cast member gender {g!r} in {folder}: expected 'F' or 'M'")
                if s not in VOICE_SOURCES:
                    raise ConfigError(f"cast member source {s!r} in {folder}: expected one of "
                                      f"{', '.join(VOICE_SOURCES)}")
            checked.append(members)
        plan[folder] = tuple(checked)
    if not plan:
        raise ConfigError("no timeline folders to build")
    return plan


#: the files of one timeline ``NAME`` in a timelines folder: reference labels and RTTM, recipe, audio
TIMELINE_FILES = (".labels.csv", ".rttm", ".json", ".opus")


def timeline_stem(labels_csv: Path) -> str:
    """``NAME`` of the timeline whose reference is ``NAME.labels.csv``."""
    return labels_csv.name[: -len(".labels.csv")]


def timeline_labels(folder: Path) -> list[Path]:
    """The ``NAME.labels.csv`` of every timeline in ``folder``, sorted; :class:`InputError` when it holds none (what
    every copy of a timelines folder - far rooms, scenes, the speech reference - starts from)."""
    labels = sorted(Path(folder).glob("*.labels.csv"))
    if not labels:
        raise InputError(f"no *.labels.csv timelines in {folder}")
    return labels


def timeline_digests(labels: Sequence[Path], *, extensions: Sequence[str] = TIMELINE_FILES) -> dict[str, str]:
    """File name -> sha256 of each timeline's files with ``extensions``, next to its ``labels``: what a copy's cache
    key records, so that a copy is made again when a file it was made from changed. :class:`InputError` names a
    missing or unreadable one."""
    return {f"{timeline_stem(path)}{ext}": sha256_of(path.with_name(f"{timeline_stem(path)}{ext}"), what="timeline file")
            for path in labels for ext in extensions}


def _folder_key(*, folder: str, seed: int, bitrate: str, manifests: Mapping[str, str],
                casts: Mapping[str, tuple[Cast, ...]]) -> dict[str, Any]:
    """What a folder's content depends on: the seed, the data and the casts of every folder built before it."""
    return {"generator": __name__, "format": FORMAT, "folder": folder, "seed": int(seed), "bitrate": bitrate,
            "manifests": dict(manifests), "casts": [[f, [[list(m) for m in c] for c in cs]] for f, cs in casts.items()]}


def _is_complete(folder: Path, key: Mapping[str, Any]) -> bool:
    """The folder was built from ``key`` and every file its marker lists is there, unchanged."""
    marker = read_marker(folder, MARKER)
    if marker is None or any(marker.get(k) != v for k, v in key.items()):
        return False
    files = marker.get("files") or {}
    if not isinstance(files, dict):
        return False
    return bool(files) and files_unchanged(folder, files, again="rebuilding the folder")


def _write_index(out: Path, *, keys: Mapping[str, Mapping[str, Any]]) -> None:
    """``timelines.json``: every complete folder of the tree (whichever call built it), what it was built from, and
    whether it is what this call asked for (``current``)."""
    entries = []
    for folder in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")):
        marker = read_marker(folder, MARKER)
        if marker is None or marker.get("generator") != __name__:
            continue
        cast_sources = [cs for f, cs in marker.get("casts", []) if f == folder.name]
        entries.append({"folder": folder.name, "timelines": marker.get("timelines", []), "seed": marker.get("seed"),
                        "format": marker.get("format"), "bitrate": marker.get("bitrate"),
                        "manifests": marker.get("manifests"), "encoder": _recorded_encoder(folder),
                        "voice_sources": sorted({m[1] for cs in cast_sources for c in cs for m in c}),
                        "current": folder.name in keys and all(marker.get(k) == v
                                                               for k, v in keys[folder.name].items())})
    atomic_text(out / INDEX, json.dumps({"generator": __name__, "format": FORMAT, "folders": entries}, indent=1)
                 + "\n")


# ------------------------------------------------------------------------------------------------ the build

def _build(*, data: Path, out: Path, plan: Mapping[str, tuple[Cast, ...]], todo: Sequence[str],
           keys: Mapping[str, Mapping[str, Any]], seed: int, bitrate: str, encoder: str,
           progress: ProgressHook) -> None:
    """Plan every folder up to the last one to write (the draws depend on what came before); write ``todo``, its
    markers naming ``encoder``."""
    material = Material(data, seed=seed)
    order = list(plan)
    last = max(order.index(f) for f in todo)
    total = sum(len(plan[f]) for f in todo)
    written = 0
    try:
        staging = Path(tempfile.mkdtemp(prefix=f"{STAGING}{os.getpid()}-", dir=out))
    except OSError as err:
        raise OutputError(f"cannot write under {out}: {err}") from None
    try:
        for f_i, folder in enumerate(order[: last + 1]):
            write = folder in todo
            where = staging / folder
            if write:
                where.mkdir()
            index: list[dict[str, str]] = []
            for i, cast in enumerate(plan[folder], start=1):
                name = timeline_name(folder, i)
                rng = np.random.default_rng([seed, f_i, i])
                mix, members, blocks, total_n = plan_timeline(cast, rng, material)
                for member, (_, source) in zip(members, cast):
                    member["source"] = source
                comp, scale = render_mix(mix, total_n, rng, material)
                if not write:
                    continue
                row = _write_timeline(where, name=name, folder=folder, seed=seed, bitrate=bitrate, mix=mix,
                                      cast=members, blocks=blocks, total=total_n, comp=comp, scale=scale)
                index.append(row)
                written += 1
                log.info("timelines %s: %s %s s, %s (%s), voice %s s", folder, name, row["duration_s"],
                         row["genders"], row["language"], row["voice_s"])
                progress("timelines", written, total)
            if write:
                _finish_folder(where, out / folder, index=index, key=keys[folder], encoder=encoder,
                               names=[timeline_name(folder, i) for i in range(1, len(plan[folder]) + 1)])
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _finish_folder(where: Path, final: Path, *, index: list[dict[str, str]], key: Mapping[str, Any], encoder: str,
                   names: list[str]) -> None:
    """index.csv and the marker (sha256 of every file, the encoder) into the staged folder, then rename it into
    place."""
    with open(where / "index.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(index[0]))
        w.writeheader()
        w.writerows(index)
    files = {p.name: sha256_of(p, what="timeline file") for p in sorted(where.iterdir())}
    # the encoder beside the key, not in it: _is_complete matches the key alone
    marker = {**key, "encoder": encoder, "timelines": names, "files": files}
    (where / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
    try:
        if final.exists():     # an outdated build of ours: swapped out, removed with the staging folder
            final.rename(where.with_name(where.name + ".old"))
        where.rename(final)
    except OSError as err:
        raise OutputError(f"cannot move the built timelines into {final}: {err}") from None


def _write_timeline(where: Path, *, name: str, folder: str, seed: int, bitrate: str, mix: Mix,
                    cast: list[dict[str, Any]], blocks: list[dict[str, Any]], total: int,
                    comp: dict[str, np.ndarray], scale: float) -> dict[str, str]:
    """The four files of one timeline; returns its ``index.csv`` row."""
    segs = reference_rows(mix, comp, total)
    media.encode_opus(sum(comp.values()), where / f"{name}.opus", sample_rate=SR, bitrate=bitrate)
    with open(where / f"{name}.labels.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["start", "end", "label", "gender", "speaker"])
        for a, b, lab, g, s in segs:
            w.writerow([f"{a:.3f}", f"{b:.3f}", lab, g, s])
    with open(where / f"{name}.rttm", "w", encoding="utf-8") as fh:
        for s, x, spk, _ in sorted(mix.voice, key=lambda it: (it[0], it[2])):
            fh.write(f"SPEAKER {name} 1 {s / SR:.3f} {len(x) / SR:.3f} <NA> <NA> {spk} <NA> <NA>\n")
    tot: dict[str, float] = defaultdict(float)
    for a, b, lab, _, s in segs:
        tot[lab] += b - a
        if "+" in s:
            tot["overlap"] += b - a
    # the data sources of every clip used ("extra/clips/cv/..." -> "clips"; kept as the experiment wrote it)
    sources = sorted({(c.split("@")[0].split("/") + ["", ""])[1] or c.split("@")[0]
                      for it in mix.recipe for c in it.get("clips", [])})
    recipe = dict(name=name, folder=folder, seed=seed, duration_s=round(total / SR, 3), sample_rate=SR,
                  energy_floor_dbfs=FLOOR_DB, output_scale=round(scale, 4),
                  speakers=cast, blocks=blocks, items=mix.recipe, sources=sources,
                  label_seconds={k: round(v, 2) for k, v in tot.items()})
    with open(where / f"{name}.json", "w", encoding="utf-8") as fh:
        json.dump(recipe, fh, indent=1)
    return dict(name=name, duration_s=f"{total / SR:.2f}", n_speakers=str(len(cast)),
                genders="+".join(c["gender"] for c in cast), speakers="+".join(c["id"] for c in cast),
                voice_sources="+".join(c["source"] for c in cast), language="+".join(c["language"] for c in cast),
                voice_s=f"{tot['voice']:.2f}", song_s=f"{tot['song']:.2f}", noise_s=f"{tot['noise']:.2f}",
                silence_s=f"{tot['silence']:.2f}", overlap_s=f"{tot['overlap']:.2f}",
                beds="+".join(sorted({b['bed'] for b in blocks if b['kind'] == 'dialogue'})))
