"""Variants of the pipeline scored on the dev mixes (``dramapic eval --variants``): each stage-1 member alone, the
ensemble and the hand rule; gender in the cascade against gender on every window, and with a perfect stage 1 (the
model card's tables). Scoring itself is :mod:`dramapic.lab.evaluate`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..result import FRAME_S, SAMPLE_RATE, SCHEMA, STAGE1_LABELS
from .evaluate import MIXES_PATTERN, FileScores, Report, _fmt, _nan_to_none, aggregate, read_mixes, score_result
from .reference import GENDER_FEMALE, GENDER_MALE, GENDER_NONE, SILENCE, VOICE

GENDER_VARIANTS = ("sequential", "sequential_windows", "independent", "sequential_windows_oracle_stage1")


@dataclass(frozen=True)
class VariantsReport:
    """Stage-1 members versus the ensemble, and the gender cascade versus independent gender, on the same files.

    Attributes
    ----------
    stage1 : dict of str to Report
        One report per stage-1 variant (``rule``, each member alone, ``ensemble``, ``ensemble-unguarded``, and
        ``ensemble-stacker-alone`` when the pipeline mixes in the members' mean); their segments carry no gender.
    gender : dict of str to Report
        One report per gender variant (:data:`GENDER_VARIANTS`).
    seconds : dict of str to float
        Processing seconds per variant or member, summed over files.
    duration : float
        Audio seconds scored.
    """

    stage1: dict[str, Report]
    gender: dict[str, Report]
    seconds: dict[str, float]
    duration: float

    def to_dict(self) -> dict[str, Any]:
        def short(report: Report) -> dict[str, Any]:
            return {"accuracy": report.accuracy, "classes": report.class_metrics,
                    "confusion": report.confusion_matrix.tolist(), "gender_error": report.gender_error,
                    "female_share_error": report.female_share_error, "composition_error": report.composition_error,
                    "der": report.der, "speaker_count_error": report.speaker_count_error,
                    "files": {f.name: {"accuracy": f.accuracy, "gender_error": f.gender_error,
                                       "female_share_error": f.female_share_error} for f in report.files}}

        return _nan_to_none({
            "duration": round(self.duration, 3),
            "stage1": {k: short(v) for k, v in self.stage1.items()},
            "gender": {k: short(v) for k, v in self.gender.items()},
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "real_time_factor": {k: v / self.duration if self.duration else None for k, v in self.seconds.items()},
        })

    def format_table(self) -> str:
        """Two plain-text tables: stage-1 variants, then gender variants."""
        out = ["stage 1 (frames outside a 0.25 s collar; accuracy over non-silent reference frames)",
               f"{'variant':<26}{'acc':>7}{'F1 voi':>8}{'F1 song':>8}{'F1 noi':>8}{'F1 sil':>8}{'comp pp':>9}"
               f"{'RTF':>9}"]
        for name, rep in self.stage1.items():
            c = rep.class_metrics
            rtf = self.seconds.get(name, float("nan")) / self.duration if self.duration else float("nan")
            out.append(f"{name:<26}{_fmt(rep.accuracy):>7}" + "".join(f"{_fmt(c[k]['f1']):>8}" for k in STAGE1_LABELS)
                       + f"{_fmt(rep.composition_error, '.1f'):>9}{_fmt(rtf, '.4f'):>9}")
        out += ["", "gender (gender error over single-gender voice frames; female share error in points)",
                f"{'variant':<34}{'gend err':>9}{'fem pp':>8}{'DER':>7}"]
        for name, rep in self.gender.items():
            # only the full pipeline assigns speakers; the window-level variants have no DER
            der = _fmt(rep.der) if name == "sequential" else "-"
            out.append(f"{name:<34}{_fmt(rep.gender_error):>9}{_fmt(rep.female_share_error, '.1f'):>8}{der:>7}")
        return "\n".join(out)


def _segments_from_frames(labels: np.ndarray, genders: np.ndarray | None, duration: float,
                          frame_s: float = FRAME_S) -> list[dict[str, Any]]:
    """Segment dicts from a frame label path and an optional per-frame gender code (voice frames only): the
    product's :func:`~dramapic.analysis.analyze.segments_from_frames` over (label, gender) pairs."""
    from ..analysis.analyze import segments_from_frames

    if frame_s != FRAME_S:
        raise ValueError(f"segments are cut on the {FRAME_S} s frame grid, not {frame_s}")
    key = labels.astype(np.int64) * 4 + (genders.astype(np.int64) if genders is not None else 0)
    names = [f"{label}/{code}" for label in STAGE1_LABELS for code in range(4)]
    out = []
    for segment in segments_from_frames(key, None, duration=duration, label_names=names):
        label, code = segment.label.split("/")
        gender = None
        if label == "voice" and genders is not None and int(code) in (GENDER_FEMALE, GENDER_MALE):
            gender = "female" if int(code) == GENDER_FEMALE else "male"
        out.append({"start": segment.start, "end": segment.end, "label": label, "gender": gender, "speaker": None})
    return out


def _frame_female(times: np.ndarray, p_female: np.ndarray, n_frames: int, frame_s: float = FRAME_S) -> np.ndarray:
    """Mean female probability of the windows covering each frame, shape (n_frames,); frames no window covers take
    the value of the nearest covered frame (0.5 when nothing is covered)."""
    total = np.zeros(n_frames + 1)
    count = np.zeros(n_frames + 1)
    for (t0, t1), p in zip(times, p_female):
        a, b = int(round(t0 / frame_s)), min(int(round(t1 / frame_s)), n_frames)
        if b > a:
            total[a] += p
            total[b] -= p
            count[a] += 1
            count[b] -= 1
    total, count = np.cumsum(total)[:n_frames], np.cumsum(count)[:n_frames]
    covered = count > 0
    if not covered.any():
        return np.full(n_frames, 0.5)
    frames = np.arange(n_frames)
    value = np.zeros(n_frames)
    value[covered] = total[covered] / count[covered]
    idx = np.flatnonzero(covered)
    nearest = idx[np.clip(np.searchsorted(idx, frames), 0, len(idx) - 1)]
    left = idx[np.clip(np.searchsorted(idx, frames) - 1, 0, len(idx) - 1)]
    nearest = np.where(np.abs(left - frames) < np.abs(nearest - frames), left, nearest)
    return np.where(covered, value, value[nearest])


def evaluate_variants(mixes_dir: Path, pipeline=None, *, manifest=None, limit: int | None = None,
                      gender: bool = True, progress: Callable[[str, float, float], None] | None = None,
                      pattern: str = MIXES_PATTERN) -> VariantsReport:
    """Score every stage-1 member alone, the ensemble and the hand rule, and the gender variants, on labelled mixes.

    Stage-1 variants share the detectors' scores of each file and the pipeline's smoothing (Viterbi switching
    penalty and minimum durations): ``rule`` (:class:`dramapic.analysis.stage1.DetectorCombiner`), each member of
    ``pipeline.stage1.members`` alone, ``ensemble`` (members + stacker) and ``ensemble-unguarded`` (the same without
    the pipeline's song guard). ``rule`` and ``ensemble`` pass the song guard as in ``analyze`` when the pipeline
    switches it on (:func:`dramapic.analysis.stage1.stage1_frame_labels`).

    Gender variants (the pipeline's gender model and speaker windows, on the ensemble's stage-1 labels):

    * ``sequential`` - the product itself, :func:`dramapic.analysis.analyze.analyze` with ``pipeline``: stage 2 only
      inside stage-1 voice segments, with speaker clustering and speaker-level gender decisions;
    * ``sequential_windows`` - gender only on windows inside stage-1 voice segments; each frame takes the mean
      female probability of the windows covering it (no speaker aggregation);
    * ``independent`` - gender on every window of the whole file, whatever stage 1 says (windows every
      ``hop_s`` over the entire recording, as the seed project's independent classifier); each frame takes the
      mean female probability of its covering windows, and frames that stage 1 labels voice take that gender;
    * ``sequential_windows_oracle_stage1`` - as ``sequential_windows`` on the reference voice rows and labels
      (what is left when stage 1 is perfect).

    Returns
    -------
    VariantsReport

    Raises
    ------
    InputError
        No label file matches, a mix lacks its audio, or its labels or RTTM cannot be read (found before any mix is
        scored).
    """
    import time

    from ..analysis import detectors
    from .. import media
    from ..analysis.analyze import segments_from_frames
    from ..config import load_pipeline
    from ..analysis.stage1 import DetectorCombiner, Stage1Ensemble, stage1_frame_labels
    from ..models import load_manifest

    mixes = read_mixes(mixes_dir, pattern=pattern, limit=limit)  # all found before the models load
    pipeline = pipeline or load_pipeline(None)
    manifest = manifest or load_manifest()
    cfg = pipeline.stage1
    ensemble = Stage1Ensemble.from_manifest(manifest, members=cfg.members, stacker=cfg.stacker,
                                        members_mean_share=cfg.members_mean_share)
    rule = DetectorCombiner(cfg)
    # each member alone and the ensemble without the guard: the same decision routine, guard off
    unguarded = replace(cfg, song_guard=False)
    if gender:
        from ..analysis.analyze import analyze
        from ..analysis.embeddings import SpeakerEncoder
        from ..analysis.gender import GenderClassifier
        from ..analysis.pitch import window_pitch_features

        encoder = SpeakerEncoder()
        gender_model = GenderClassifier.from_manifest(manifest, pipeline.stage2.gender_model)
        sp = pipeline.speakers
    stage1: dict[str, list[FileScores]] = {}
    genders: dict[str, list[FileScores]] = {}
    seconds: dict[str, float] = {}
    duration_total = 0.0

    def tick(name: str, clock: float) -> float:
        now = time.perf_counter()
        seconds[name] = seconds.get(name, 0.0) + now - clock
        return now

    for i, (reference, audio_path) in enumerate(mixes):
        if progress is not None:
            progress("variants", i, len(mixes))
        audio = media.decode_audio(media.probe(audio_path))
        duration = audio.shape[0] / SAMPLE_RATE
        duration_total += duration
        clock = time.perf_counter()
        scores = detectors.run_detectors(audio)
        clock = tick("detectors", clock)
        probs = {"rule": rule.frame_probabilities(audio, scores)}
        clock = tick("rule", clock)
        members = {}
        for member in ensemble.members:
            members[member.name] = member.frame_probabilities(audio, scores)
            clock = tick(member.name, clock)
        probs.update(members)
        # the members' probabilities above are combined, not computed again (members with their own stacker
        # columns, song-safe's, are asked for those instead)
        probs["ensemble"] = ensemble.frame_probabilities(audio, scores, member_probabilities=members)
        if ensemble.members_mean_share > 0:  # what the members' mean adds (stage1.members_mean_share)
            probs["ensemble-stacker-alone"] = replace(ensemble, members_mean_share=0.0).frame_probabilities(
                audio, scores, member_probabilities=members)
        clock = tick("stacker", clock)
        paths = {}
        # the pipeline's models (rule, ensemble) are decided as analyze() decides them, song guard included
        probs["ensemble-unguarded"] = probs["ensemble"]
        for name, p in probs.items():
            probs[name], paths[name] = stage1_frame_labels(
                p, scores, settings=cfg if name in ("rule", "ensemble", "ensemble-stacker-alone") else unguarded)
            result = {"schema": SCHEMA, "source": {"duration": duration},
                      "segments": _segments_from_frames(paths[name], None, duration)}
            # stage-1 segments carry no gender and no speaker: not scored as 100 % unknown voice and 100 % DER
            stage1.setdefault(name, []).append(score_result(result, reference, gender_scored=False,
                                                            speakers_scored=False))
        clock = time.perf_counter()
        if not gender:
            continue
        labels = paths["ensemble"]
        n = labels.shape[0]
        # sequential: the product itself (analyze() with this pipeline: stage 1, then stage 2 inside voice only)
        genders.setdefault("sequential", []).append(score_result(analyze(audio_path, pipeline), reference))
        clock = tick("analyze_full_pipeline", clock)
        # window-level variants: the gender model on windows, no speaker aggregation
        ref_voice = [(r.start, r.end) for r in reference.rows if r.label == "voice"]
        ref_labels = np.full(n, SILENCE, dtype=np.int64)
        ref_labels[: min(n, len(reference.labels))] = reference.labels[:n]
        segs = segments_from_frames(labels, probs["ensemble"], duration=duration)
        voice = [(s.start, s.end) for s in segs if s.label == "voice"]
        for name, regions, path in (("sequential_windows", voice, labels),
                                    ("independent", [(0.0, duration)], labels),
                                    ("sequential_windows_oracle_stage1", ref_voice, ref_labels)):
            times, emb = encoder.embed_windows(audio, sample_rate=SAMPLE_RATE, regions=regions,
                                               window_s=sp.window_s, hop_s=sp.hop_s)
            valid = np.linalg.norm(emb, axis=1) > 0
            # the window's pitch features from the same audio and times, as in label_voice_segments
            pitch = (window_pitch_features(audio, times=times[valid], sample_rate=SAMPLE_RATE)
                     if gender_model.n_pitch and valid.any() else None)
            p_female = gender_model.predict_proba(emb[valid], pitch)[:, 0] if valid.any() else np.zeros(0)
            frame_p = _frame_female(times[valid], p_female, n)
            codes = np.where(path == VOICE, np.where(frame_p >= 0.5, GENDER_FEMALE, GENDER_MALE), GENDER_NONE)
            result = {"schema": SCHEMA, "source": {"duration": duration},
                      "segments": _segments_from_frames(path, codes, duration)}
            # window-level gender: no speakers told apart (not a 100 % DER)
            genders.setdefault(name, []).append(score_result(result, reference, speakers_scored=False))
            clock = tick(f"gender_{name}", clock)
    if progress is not None:
        progress("variants", len(mixes), len(mixes))
    return VariantsReport(stage1={k: aggregate(v) for k, v in stage1.items()},
                          gender={k: aggregate(v) for k, v in genders.items()}, seconds=seconds,
                          duration=duration_total)
