"""A second reference for labelled timelines: utterance time where the clean clip holds no speech is not voice.

The timelines (:mod:`dramapic.lab.timelines`) and the dev mixes share one recipe: the ground truth says ``voice``
"wherever an utterance lies", and an utterance is a clip cut by an energy rule (``timeline_mixer.speech_span``) or a run
of LibriSpeech phrases joined across their pauses. So the reference calls voice what no listener would: a Common
Voice clip's leading mouse click and half second of room noise (crowd-sourced clips often start so), a
LibriSpeech reader's 2.5 s breath between two sentences. Under a music bed the product calls those stretches song,
under a noise bed noise, in the clear silence -- and each frame counts as a stage-1 miss, as a gender error and as
missed speech. Measured on the shipped models (``models/README.md``, "What the reference calls voice"), 5 % of
Common Voice's reference voice and 2 % of the dev mixes' is such time.

:func:`speech_reference` writes a copy of a folder of timelines whose ``labels.csv`` and ``rttm`` keep ``voice``
only where silero-vad, run on each utterance's *clean* audio (rebuilt from the recipe: no bed, no other voice, the
easy case for a VAD), hears speech: on at 0.5, off below 0.35, runs padded by 0.1 s, pauses under 0.5 s bridged
(shorter than the product's shortest song or noise), specks under 0.1 s dropped. The rest of an utterance takes
what lies under it: ``song`` under a music bed, ``noise`` under a noise bed, otherwise ``silence``. The audio and
the recipes are linked, not copied, so the same audio is scored against either reference.

It is the second reference, not a replacement: silero is also one of stage 1's detectors, so a reference cut by it
leans towards the product; what it measures is how much of a figure is the recipe's clip edges and pauses.
``dramapic eval --reference speech`` scores on it.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis.smoothing import runs_of
from ..errors import InputError
from ..progress import ProgressHook, silent_hook
from ..result import SAMPLE_RATE

#: bumped whenever a rule below changes, so cached copies are rebuilt
FORMAT = 1
MARKER = "speech-reference.json"
#: silero-vad hysteresis on the clean utterance, and the run clean-up (seconds)
SPEECH_ON, SPEECH_OFF = 0.5, 0.35
PAD_S, BRIDGE_S, MIN_SPEECH_S = 0.1, 0.5, 0.1
#: what an utterance's non-speech becomes, by the recipe item under it
BED_LABELS = {"bed_music": "song", "bed_noise": "noise"}
FRAME_S = 0.01


def clean_speech_frames(audio: np.ndarray, *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Frames (10 ms) of one clean utterance that hold speech by silero-vad (see the module docstring).

    Parameters
    ----------
    audio : np.ndarray, shape (n_samples,)
        One utterance alone, 16 kHz mono float32.
    sample_rate : int
        Must be 16000 (silero's and the label grid's rate).

    Returns
    -------
    np.ndarray, shape (n_samples // 160,), bool
    """
    from ..analysis.detectors import silero_speech_prob

    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"sample_rate must be {SAMPLE_RATE}, got {sample_rate}")
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono with shape (n_samples,), got {audio.shape}")
    hop = round(FRAME_S * SAMPLE_RATE)
    n = audio.shape[0] // hop
    p = silero_speech_prob(audio)[:n] if n else np.zeros(0, np.float32)
    p = np.pad(p, (0, n - p.shape[0]))
    on = np.zeros(n, dtype=bool)
    state = False
    for i, value in enumerate(p):  # hysteresis: a word's soft end does not flicker
        state = bool(value >= (SPEECH_OFF if state else SPEECH_ON))
        on[i] = state
    runs = [(a, b) for a, b in _runs(on) if b - a >= round(MIN_SPEECH_S / FRAME_S)]
    pad, bridge = round(PAD_S / FRAME_S), round(BRIDGE_S / FRAME_S)
    merged: list[list[int]] = []
    for a, b in runs:
        a, b = max(0, a - pad), min(n, b + pad)
        if merged and a - merged[-1][1] < bridge:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    out = np.zeros(n, dtype=bool)
    for a, b in merged:
        out[a:b] = True
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) runs of True (the smoothing's run splitter on the 0/1 path)."""
    return [(run.start, run.end) for run in runs_of(mask.astype(np.int8)) if run.label]


def utterance_audio(item: Mapping[str, Any], *, data: Path, clips: dict[str, np.ndarray] | None = None
                    ) -> np.ndarray:
    """One recipe utterance's clean audio as the builder cut it.

    ``clips`` entries are ``PATH@START-END`` (a LibriSpeech phrase run, seconds) or ``PATH@START`` (a short clip
    cut by ``timeline_mixer.speech_span``, whose start the recipe records and which must reproduce); two clips in one
    utterance had a pause of zeros between them, of the length the utterance's duration leaves.

    Raises
    ------
    InputError
        A clip is missing or its cut does not reproduce (the data changed since the timeline was built).
    """
    from .timeline_mixer import read_clip, speech_span

    sr = SAMPLE_RATE
    cache = clips if clips is not None else {}
    parts = []
    for spec in item["clips"]:
        rel, _, where = str(spec).partition("@")
        if rel not in cache:
            cache[rel] = read_clip(Path(data) / rel)
        x = cache[rel]
        if "-" in where:
            start, end = (round(float(t) * sr) for t in where.split("-"))
        else:
            start, end = speech_span(x)
            if abs(start / sr - float(where or 0)) > 0.006:
                raise InputError(f"{spec}: the clip's cut starts at {start / sr:.2f} s, not where the recipe says; "
                                 "the data changed since the timeline was built")
        parts.append(x[start:end])
    total = round(float(item["dur_s"]) * sr)
    if len(parts) > 1:
        gap = max(0, (total - sum(len(p) for p in parts)) // (len(parts) - 1))
        joined = [parts[0]]
        for p in parts[1:]:
            joined += [np.zeros(gap, np.float32), p]
        parts = joined
    x = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    return x[:total] if x.shape[0] >= total else np.pad(x, (0, total - x.shape[0]))


def trimmed_labels(labels_csv: Path, *, data: Path, clips: dict[str, np.ndarray] | None = None
                   ) -> tuple[list[tuple[float, float, str, str, str]], list[tuple[float, float, str]]]:
    """The speech-trimmed reference of one timeline: its label rows and its RTTM turns.

    Returns
    -------
    rows : list of (start, end, label, gender, speaker)
        A partition of the file, as ``NAME.labels.csv`` (overlaps joined by ``+``).
    turns : list of (start, duration, speaker)
        One per run of clean speech of each utterance, as ``NAME.rttm``.
    """
    from .timelines import timeline_stem

    name = timeline_stem(labels_csv)
    try:
        recipe = json.loads(labels_csv.with_name(f"{name}.json").read_text(encoding="utf-8"))
        with open(labels_csv, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read timeline {name} for its speech reference: {err}") from None
    if not rows or not isinstance(recipe, dict) or "items" not in recipe:
        raise InputError(f"timeline {name}: no labels or no recipe items")
    try:
        return _trimmed(recipe, rows, data=data, clips=clips)
    except (KeyError, ValueError, TypeError, AttributeError) as err:  # a hand-edited or foreign recipe
        raise InputError(f"timeline {name}: its labels or recipe cannot be read as the timelines' ({err!r})") from None


def _trimmed(recipe: Mapping[str, Any], rows: Sequence[Mapping[str, str]], *, data: Path,
             clips: dict[str, np.ndarray] | None) -> tuple[list, list]:
    """:func:`trimmed_labels` on a recipe and label rows already read."""
    n = round(float(rows[-1]["end"]) / FRAME_S)
    label = np.empty(n, dtype=object)
    for r in rows:
        label[round(float(r["start"]) / FRAME_S):round(float(r["end"]) / FRAME_S)] = r["label"]
    under = np.full(n, "silence", dtype=object)
    for item in recipe["items"]:
        if item.get("role") in BED_LABELS:
            a = round(float(item["start_s"]) / FRAME_S)
            under[a:a + round(float(item["dur_s"]) / FRAME_S)] = BED_LABELS[item["role"]]
    talk: list[set[tuple[str, str]]] = [set() for _ in range(n)]
    turns = []
    for item in recipe["items"]:
        if item.get("role") != "utterance":
            continue
        speech = clean_speech_frames(utterance_audio(item, data=data, clips=clips))
        a0 = round(float(item["start_s"]) / FRAME_S)
        for a, b in _runs(speech):
            a, b = a0 + a, min(n, a0 + b)
            if b <= a:
                continue
            turns.append((a * FRAME_S, (b - a) * FRAME_S, item["speaker"]))
            for k in range(a, b):
                talk[k].add((item["speaker"], item.get("gender") or ""))
    frames = []
    for k in range(n):
        if talk[k]:
            who = sorted(talk[k])
            frames.append(("voice", "+".join(g for _, g in who), "+".join(s for s, _ in who)))
        else:
            frames.append((under[k] if label[k] == "voice" else label[k], "", ""))
    out, start = [], 0
    for k in range(1, n + 1):
        if k == n or frames[k] != frames[start]:
            out.append((start * FRAME_S, k * FRAME_S, *frames[start]))
            start = k
    return out, sorted(turns)


def speech_reference(folder: Path, *, data: Path, out: Path, progress: ProgressHook = silent_hook) -> Path:
    """Write (or reuse) the speech-trimmed copy of one folder of timelines and return it.

    Parameters
    ----------
    folder : Path
        ``NAME.labels.csv`` + ``NAME.json`` (recipe) + ``NAME.opus`` per timeline: a folder of the timeline tree
        or the dev mixes.
    data : Path
        The shared data folder the recipes' clips are relative to.
    out : Path
        The copy: ``NAME.labels.csv`` and ``NAME.rttm`` rewritten, ``NAME.opus`` and ``NAME.json`` linked to the
        originals, a marker. Written whole into a staging folder and renamed into place; reused while the marker
        says it was made by this format from the same labels and recipes and its files are unchanged.
    progress : ProgressHook

    Raises
    ------
    InputError
        No timeline in ``folder``, a recipe or clip missing, or a cut that does not reproduce.
    OutputError
        ``out`` cannot be written.
    """
    from .kept_copies import kept_copy, staged_copy
    from .timelines import timeline_digests, timeline_labels, timeline_stem

    folder, out = Path(folder), Path(out)
    labels = timeline_labels(folder)
    key = {"generator": __name__, "format": FORMAT, "source": str(folder.resolve()),
           "files": timeline_digests(labels, extensions=(".labels.csv", ".json"))}
    if kept_copy(out, marker=MARKER, key=key):
        return out
    clips: dict[str, np.ndarray] = {}
    with staged_copy(out, marker=MARKER, key=key, what="the speech reference") as staging:
        for i, labels_csv in enumerate(labels):
            progress("speech reference", i, len(labels))
            name = timeline_stem(labels_csv)
            rows, turns = trimmed_labels(labels_csv, data=data, clips=clips)
            with open(staging / f"{name}.labels.csv", "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["start", "end", "label", "gender", "speaker"])
                writer.writerows([f"{s:.3f}", f"{e:.3f}", lab, g, spk] for s, e, lab, g, spk in rows)
            (staging / f"{name}.rttm").write_text("".join(
                f"SPEAKER {name} 1 {s:.3f} {d:.3f} <NA> <NA> {spk} <NA> <NA>\n" for s, d, spk in turns),
                encoding="utf-8")
            for ext in (".opus", ".json"):
                _link(labels_csv.with_name(f"{name}{ext}").resolve(), staging / f"{name}{ext}")
        progress("speech reference", len(labels), len(labels))
    return out


def speech_reference_tree(root: Path, *, data: Path, out: Path, folders: Sequence[str] | None = None,
                          progress: ProgressHook = silent_hook) -> Path:
    """:func:`speech_reference` for every timeline folder of a tree (``folders``: only these); returns ``out``."""
    from .crosscorpus import timeline_folders

    for name in (list(folders) if folders is not None else timeline_folders(Path(root))):
        speech_reference(Path(root) / name, data=data, out=Path(out) / name, progress=progress)
    return Path(out)


def _link(target: Path, link: Path) -> None:
    """A symbolic link where the file system allows one, else a copy."""
    if not target.is_file():
        raise InputError(f"timeline file missing: {target}")
    try:
        link.symlink_to(target)
    except OSError:
        shutil.copyfile(target, link)
