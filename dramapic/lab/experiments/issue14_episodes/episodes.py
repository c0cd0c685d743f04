"""A drama episode, not a scene: the speaker count when a cast of more than a few comes back scene after scene.

Every cross-corpus timeline is one scene of 1-4 voices, about 100 s. A drama episode is 40-50 minutes of scenes in
which the same cast returns, with bit parts that speak a few lines. Two product settings never met that on the
judge: the bound ``speakers.max_speakers`` (8: above it the least-talking clusters are folded into a neighbour) and
the small-cluster fold (a cluster under ``max(min_speaker_s, min(min_speaker_share x the largest's talk,
max_small_speaker_s))`` is folded: 30 s in a long recording until 2026-12-07, 60 s since). This script builds
episodes by putting held-out
timelines end to end (their audio decoded as the product decodes it, labels and RTTM shifted), runs the product's
``analyze()`` on each with a few speaker settings, and scores them with the product's scorer (DER with the 0.5 s
collar, gender error, female share), plus the count against the cast with at least 30 s and at least 6 s of talk.

    python episodes.py TIMELINES WORK OUT.json [VARIANT;VARIANT...] [PROGRAMME,PROGRAMME...]

``TIMELINES`` is ``--work``'s ``timelines`` folder of ``dramapic eval --cross-corpus``; ``VARIANTS`` and
``EPISODES`` / ``NARRATORS`` name the settings and programmes (all by default). The models are the shipped ones, not
refits: every voice is a held-out ``dev`` speaker, but the gender model and the speaker space were fitted on other
(train) speakers of all five corpora, and stage 1 on LibriSpeech and Emo-DB train speakers.
"""
from __future__ import annotations

import csv
import json
import logging
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf
from dramapic import media
from dramapic.analysis.analyze import analyze
from dramapic.config import load_pipeline
from dramapic.lab.evaluate import score_result
from dramapic.lab.reference import load_reference

FOLDERS = {"cv": "cv", "emodb": "emodb", "libri": "librispeech-train-clean-100", "mixed": "mixed", "nemo": "nemo",
           "ravdess": "ravdess"}
#: scenes interleaved so that every voice of the main cast comes back after other scenes
EPISODES = {
    # 4 main voices (2 Emo-DB, 2 nEMO, 180-267 s each): the bound is far
    "cast4": ["emodb_01", "nemo_01", "emodb_02", "nemo_02", "emodb_03", "nemo_03", "emodb_04", "nemo_04"],
    # 6 main voices (2 nEMO, 4 RAVDESS)
    "cast6": ["nemo_01", "ravdess_01", "nemo_02", "ravdess_02", "nemo_03", "ravdess_03", "nemo_04", "ravdess_04",
              "ravdess_05"],
    # 8 main voices (2 Emo-DB, 2 nEMO, 4 RAVDESS: 112-267 s each) and 5 bit parts of the mixed casts (9-19 s)
    "cast8": ["emodb_01", "nemo_01", "ravdess_01", "mixed_01", "emodb_02", "nemo_02", "ravdess_02", "mixed_02",
              "emodb_03", "nemo_03", "ravdess_03", "mixed_03", "emodb_04", "nemo_04", "ravdess_04", "mixed_04",
              "ravdess_05"],
    # the same and two Common Voice scenes: 10 voices of at least 56 s (cv_02 and cv_03 hold the two Common Voice
    # men of 68 and 56 s; their other voices have 9-32 s)
    "cast10": ["emodb_01", "nemo_01", "ravdess_01", "cv_02", "mixed_01", "emodb_02", "nemo_02", "ravdess_02",
               "mixed_02", "emodb_03", "nemo_03", "cv_03", "ravdess_03", "mixed_03", "emodb_04", "nemo_04",
               "ravdess_04", "mixed_04", "ravdess_05"],
}
#: one voice alone, as in a documentary with one narrator: the voice's own stretches of every scene it speaks in
#: (other voices' rows cut out, music, noise and silence kept), 5-9 minutes; the count must be 1
NARRATORS = {
    "narrator_nemo_EB0": ("nemo_EB0", ["nemo_01", "nemo_03", "mixed_03", "nemo_04"]),
    "narrator_nemo_KS0": ("nemo_KS0", ["nemo_02", "nemo_03", "mixed_04", "nemo_04"]),
    "narrator_emodb_12": ("emodb_12", ["emodb_02", "emodb_03", "mixed_02", "emodb_04"]),
    "narrator_emodb_09": ("emodb_09", ["emodb_01", "emodb_03", "mixed_04", "emodb_04"]),
    "narrator_ravdess_02": ("ravdess_02", ["ravdess_01", "ravdess_04", "mixed_03", "ravdess_05"]),
    "narrator_ravdess_17": ("ravdess_17", ["ravdess_02", "ravdess_04", "mixed_04", "ravdess_05"]),
    "narrator_ravdess_22": ("ravdess_22", ["ravdess_03", "ravdess_04", "ravdess_05"]),
    "narrator_ravdess_23": ("ravdess_23", ["ravdess_03", "mixed_01", "ravdess_05"]),
}
VARIANTS = {
    "shipped": {},
    "max_speakers=16": {"max_speakers": 16},
    # the small-cluster floor's cap doubled: the 30-60 s clusters of a long episode are folded too (bit parts and
    # one voice's second cluster alike)
    "max_speakers=16,max_small_speaker_s=60": {"max_speakers": 16, "max_small_speaker_s": 60.0},
    "max_small_speaker_s=60": {"max_small_speaker_s": 60.0},
}


class _Warnings(logging.Handler):
    """The warnings the product logs while a file is analysed (what ``dramapic run`` would say)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def build_episode(timelines: Path, scenes: list[str], out: Path, *, only: str | None = None) -> Path:
    """Write ``out/NAME.flac``, ``NAME.labels.csv`` and ``NAME.rttm``; return the labels path. ``only``: keep the
    voice rows of this speaker alone (a row another voice speaks in, overlaps included, is cut out)."""
    name = out.name
    out.parent.mkdir(parents=True, exist_ok=True)
    labels = out.with_suffix(".labels.csv")
    if labels.exists():
        return labels
    parts, rows, rttm, offset = [], [], [], 0.0
    for scene in scenes:
        folder = timelines / FOLDERS[scene.split("_")[0]]
        audio = media.decode_audio(media.probe(folder / f"{scene}.opus"))
        n = int(audio.shape[0])
        if only is None:  # the whole scene, its own RTTM (utterances, overlaps kept)
            dur = n / 16000
            with open(folder / f"{scene}.labels.csv", newline="", encoding="utf-8") as handle:
                for r in csv.DictReader(handle):
                    end = min(float(r["end"]), dur)
                    if float(r["start"]) < end:
                        rows.append([f"{float(r['start']) + offset:.3f}", f"{end + offset:.3f}", r["label"],
                                     r["gender"], r["speaker"]])
            rows[-1][1] = f"{offset + dur:.3f}"
            for line in (folder / f"{scene}.rttm").read_text().splitlines():
                f = line.split()
                if f:
                    f[1] = name
                    f[3] = f"{float(f[3]) + offset:.3f}"
                    rttm.append(" ".join(f))
            parts.append(audio)
            offset += dur
            continue
        with open(folder / f"{scene}.labels.csv", newline="", encoding="utf-8") as handle:
            kept = [r for r in csv.DictReader(handle) if r["label"] != "voice" or r["speaker"] == only]
        for r in kept:  # the voice's rows and everything not voice, in order; RTTM from the rows
            a, b = round(float(r["start"]) * 16000), min(round(float(r["end"]) * 16000), n)
            if a >= b:
                continue
            piece = audio[a:b]
            rows.append([f"{offset:.3f}", f"{offset + piece.shape[0] / 16000:.3f}", r["label"], r["gender"],
                         r["speaker"]])
            if r["label"] == "voice":
                for who in r["speaker"].split("+"):
                    rttm.append(f"SPEAKER {name} 1 {offset:.3f} {piece.shape[0] / 16000:.3f} <NA> <NA> {who} <NA> "
                                f"<NA>")
            parts.append(piece)
            offset += piece.shape[0] / 16000
    # adjacent rows of one label (a cut-out voice between two silences) are one row: a sorted, gap-free partition
    merged: list[list[str]] = []
    for r in rows:
        if merged and merged[-1][2:] == r[2:]:
            merged[-1][1] = r[1]
        else:
            merged.append(r)
    rows = merged
    sf.write(out.with_suffix(".flac"), np.concatenate(parts), 16000, subtype="PCM_16")
    out.with_suffix(".rttm").write_text("\n".join(rttm) + "\n")
    with open(labels, "w", newline="", encoding="utf-8") as handle:
        w = csv.writer(handle)
        w.writerow(["start", "end", "label", "gender", "speaker"])
        w.writerows(rows)
    return labels


def who_is_who(result, reference) -> dict:
    """Per predicted speaker, the reference voices its turns cover (seconds, largest first, >= 2 s); overlaps of
    the reference are left out."""
    ref = [(r.start, r.end, r.speakers[0]) for r in reference.rows if r.label == "voice" and len(r.speakers) == 1]
    out: dict = {}
    for seg in result.segments:
        if not seg.speaker:
            continue
        for a, b, who in ref:
            o = min(b, seg.end) - max(a, seg.start)
            if o > 0:
                out.setdefault(seg.speaker, Counter())[who] += o
    return {sp: {k: round(v, 1) for k, v in c.most_common() if v >= 2} for sp, c in out.items()}


def main(argv: list[str]) -> None:
    timelines, work, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    only = argv[3].split(";") if len(argv) > 3 else list(VARIANTS)  # ";": a variant name holds commas
    base = load_pipeline(None)
    results = json.loads(out.read_text()) if out.exists() else {}
    programmes = {**{k: (None, v) for k, v in EPISODES.items()}, **NARRATORS}
    if len(argv) > 4:
        programmes = {k: v for k, v in programmes.items() if k in argv[4].split(",")}
    for episode, (voice, scenes) in programmes.items():
        labels = build_episode(timelines, scenes, work / episode, only=voice)
        reference = load_reference(labels)
        talk = Counter(dict(reference.annotation.chart()))  # each voice's talk in the RTTM
        cast30 = sum(v >= 30 for v in talk.values())
        cast6 = sum(v >= 6 for v in talk.values())
        for variant in only:
            pipeline = replace(base, speakers=replace(base.speakers, **VARIANTS[variant]))
            clock = time.perf_counter()
            said = _Warnings()
            logging.getLogger("dramapic").addHandler(said)
            try:
                result = analyze(labels.with_suffix("").with_suffix(".flac"), pipeline)
            finally:
                logging.getLogger("dramapic").removeHandler(said)
            seconds = time.perf_counter() - clock
            s = score_result(result, reference)
            pred_talk = Counter()
            for seg in result.segments:
                if seg.speaker:
                    pred_talk[seg.speaker] += seg.end - seg.start
            row = {"warnings": said.lines, "who": who_is_who(result, reference), "duration_s": result.source.duration, "seconds": seconds, "der": s.der,
                   "der_components": s.der_components, "gender_error": s.gender_error,
                   "female_share_error": s.female_share_error, "abstention": s.abstention,
                   "speakers_pred": s.speakers_pred, "speakers_ref": s.speakers_ref, "cast_30s": cast30,
                   "cast_6s": cast6, "ref_talk": dict(sorted(talk.items(), key=lambda kv: -kv[1])),
                   "pred_talk": dict(sorted(pred_talk.items(), key=lambda kv: -kv[1]))}
            results.setdefault(episode, {})[variant] = row
            out.write_text(json.dumps(results, indent=1, default=float))
            print(f"{episode:7s} {variant:16s} {result.source.duration / 60:5.1f} min DER {s.der:.3f} "
                  f"gender {s.gender_error:.3f} fs {s.female_share_error:.1f} speakers {s.speakers_pred} "
                  f"(ref {s.speakers_ref}, >=30 s {cast30}, >=6 s {cast6}) in {seconds:.0f} s", flush=True)
            for line in said.lines:
                print("   warning:", line, flush=True)
            for sp, talk_s in row["pred_talk"].items():
                print(f"   {sp} {talk_s:.0f} s:", row["who"].get(sp), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
