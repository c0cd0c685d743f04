"""Measure dramapic against labelled timelines such as the dev mixes (``../shared/data/dev_mixes``).

A labelled timeline is ``NAME.labels.csv`` (``start,end,label,gender,speaker``: a flat partition of the whole
file on a 10 ms grid; overlapping speech is one row with speakers and genders joined by ``+``) with
``NAME.rttm`` next to it (one line per utterance, overlaps kept) and the audio ``NAME.opus``.

Metrics (all frame metrics on a grid of ``frame_s`` = 10 ms; segment boundaries are snapped to the nearest frame
edge, so a segment ``[start, end)`` covers frames ``round(start/frame_s)`` to ``round(end/frame_s) - 1``):

* **collar** - frames whose centre lies less than ``collar_s`` (0.25 s) from a *reference boundary* are left
  out of every frame metric. Reference boundaries are the interior boundaries between consecutive rows of
  ``labels.csv`` (where the label, the gender or the speaker changes); the file's start and end are not
  boundaries. Frames not covered by any predicted segment count as predicted ``silence``.
* **stage-1 accuracy** - over scored frames whose reference label is not ``silence``: the share of frames whose
  predicted label equals the reference label (a predicted ``silence`` there is an error).
* **per-class precision / recall / F1** - over all scored frames, one-vs-rest for each of voice, song, noise,
  silence, from the 4x4 confusion matrix (rows = reference, columns = prediction, counts in frames).
* **gender error** - over scored frames whose reference label is ``voice`` with a single known gender (every
  speaker ``female`` or every speaker ``male``; ``female+male`` overlaps and unknown gender are left out),
  *not counting frames predicted as voice whose gender the model left unknown* (null: abstained): the share of
  frames that are not predicted as ``voice`` with that same gender. Stage-1 misses (reference voice predicted as
  another label) still count as errors.
* **abstention** - predicted ``voice`` frames with gender null / predicted ``voice`` frames (whole file, no
  collar): how much voice time the gender model declined to decide.
* **female share error** - ``|predicted female share - reference female share|`` in percentage points over the
  whole file (no collar). Predicted female share = (sum over predicted ``voice`` frames with a known gender of
  the fraction of the frame's genders that are ``female``) / (number of those frames): the share the product
  reports in ``summary.gender_shares``, unknown voice left out. Reference female share = the same over all
  reference ``voice`` frames (a gender-less reference frame counts 0, a ``female+male`` overlap 0.5). A share is
  0 when there is no such voice.
* A run with gender switched off (``--no-gender``: its ``summary.gender_shares`` is null) has none of these three:
  they are NaN (printed ``-``, null in JSON) rather than the 100 % that scoring its unknown voice would give, and
  pooled figures are taken over the files whose run decided gender.
* **composition share error** - the mean over voice, song, noise, silence of
  ``|predicted share - reference share|`` of the whole file's frames, in percentage points (no collar).
* **DER** - ``pyannote.metrics.diarization.DiarizationErrorRate(collar=0.5, skip_overlap=False)`` between the
  reference RTTM and a hypothesis made of the predicted ``voice`` segments that carry a speaker id (a speaker
  ``"S1+S2"`` adds one track per id), scored on the UEM ``[0, duration]``; speaker labels are mapped optimally.
  DER = (false alarm + missed detection + confusion) / total reference speech.
* **speaker-count error** - ``|#distinct predicted speaker ids - #distinct reference speakers|``.
* A run with speaker ids switched off (``--no-speakers``: its ``summary.speakers`` is null) has neither DER nor
  speaker-count error: NaN (``-``, null), not the 100 % DER and "0 speakers" its speaker-less turns would give;
  pooled figures are taken over the files whose run told speakers apart.
* **calibration** - whether a stated confidence means what it says (:func:`calibration`). *Gender*: every
  predicted ``voice`` segment with one decided gender states ``scores[gender]`` (the probability shown on its
  cue); it is right on the share of its scored single-gender reference voice frames whose gender is that one
  (reference voice of the other gender is wrong, other reference labels are not gender frames and do not
  count). *Stage-1 label*: every segment states ``confidence``; it is right on the share of its scored frames
  whose reference label is its label. Records are ``(confidence, seconds, seconds right)``; the expected
  calibration error (ECE) is the seconds-weighted mean over 10 equal confidence bins of
  ``|mean confidence - share right|``.

``aggregate`` pools files: confusion matrices are summed (so accuracy, precision/recall/F1 and gender error are
pooled over frames), DER is pooled from the summed components, calibration records are pooled, and the female
share, composition share and speaker-count errors are means of the per-file values.

Run ``dramapic eval --mixes DIR [--json OUT] [--limit N]``; add ``--variants`` for every stage-1
member alone versus the ensemble and the hand rule, and the gender cascade versus independent gender
(:func:`evaluate_variants`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from pyannote.core import Annotation, Segment, Timeline

from ..errors import InputError
from ..result import FRAME_S, SCHEMA, STAGE1_LABELS, AnalysisResult
from .reference import (DER_COMPONENTS, GENDER_CODES, GENDER_FEMALE, GENDER_MALE, GENDER_MIXED, GENDER_NONE,
                        LABEL_INDEX, SILENCE, VOICE, Reference, _frame_span, _n_frames, _rasterize_rows, _split,
                        load_reference)

COLLAR_S = 0.25
DER_COLLAR_S = 0.5
#: the label files of a folder of dev mixes (``dramapic eval --mixes``)
MIXES_PATTERN = "devmix_*.labels.csv"


# ------------------------------------------------------------------------------------------------ scores
def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    return value


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


def _class_metrics(confusion: np.ndarray) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for i, label in enumerate(STAGE1_LABELS):
        tp = float(confusion[i, i])
        predicted = float(confusion[:, i].sum())
        actual = float(confusion[i, :].sum())
        precision, recall = _ratio(tp, predicted), _ratio(tp, actual)
        if math.isnan(precision) or math.isnan(recall):
            f1 = float("nan")
        else:
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        out[label] = {"precision": precision, "recall": recall, "f1": f1, "support": actual}
    return out


def _der(components: Mapping[str, float]) -> float:
    error = components["false alarm"] + components["missed detection"] + components["confusion"]
    return _ratio(error, components["total"]) if components["total"] else (0.0 if error == 0 else float("inf"))


def _fmt(value: float | None, spec: str = ".3f") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


#: One calibration record: (stated confidence, seconds it was stated for, seconds it was right).
ReliabilityRecord = tuple[float, float, float]


@dataclass(frozen=True)
class Calibration:
    """A reliability table: stated confidence against how often it was right, seconds-weighted.

    Attributes
    ----------
    bins : tuple of (low, high, seconds, mean_confidence, share_right)
        Equal-width confidence bins from ``low`` to 1 (the last bin includes 1); ``mean_confidence`` and
        ``share_right`` are NaN in an empty bin.
    """

    bins: tuple[tuple[float, float, float, float, float], ...]

    @property
    def seconds(self) -> float:
        """Seconds of all records."""
        return float(sum(b[2] for b in self.bins))

    @property
    def ece(self) -> float:
        """Expected calibration error: sum over bins of (bin seconds / all seconds) x |confidence - share right|
        (NaN without records)."""
        total = self.seconds
        if not total:
            return float("nan")
        return float(sum(b[2] / total * abs(b[3] - b[4]) for b in self.bins if b[2] > 0))

    def to_dict(self) -> dict[str, Any]:
        return _nan_to_none({"ece": self.ece, "seconds": self.seconds, "bins": [
            {"low": lo, "high": hi, "seconds": sec, "confidence": conf, "share_right": right}
            for lo, hi, sec, conf, right in self.bins]})

    def format_table(self) -> str:
        """One line per bin: range, seconds, mean confidence, share right; then the ECE."""
        lines = [f"{'confidence':<12}{'seconds':>10}{'stated':>9}{'right':>9}"]
        for lo, hi, sec, conf, right in self.bins:
            lines.append(f"{lo:.2f}-{hi:.2f}   {sec:10.1f}{_fmt(conf):>9}{_fmt(right):>9}")
        lines.append(f"ECE {_fmt(self.ece)} over {self.seconds:.1f} s")
        return "\n".join(lines)


def calibration(records: Sequence[ReliabilityRecord], *, n_bins: int = 10, low: float = 0.5) -> Calibration:
    """Reliability table of confidence records.

    Parameters
    ----------
    records : sequence of (confidence, seconds, seconds_right)
        What was stated, for how long, and for how much of it rightly (``0 <= seconds_right <= seconds``).
        Records of zero seconds carry no weight.
    n_bins : int
        Equal-width bins between ``low`` and 1.
    low : float
        The lowest confidence that can be stated (0.5 for a two-way decision such as gender, 0 in general);
        a confidence below it goes into the first bin.

    Returns
    -------
    Calibration

    Raises
    ------
    ValueError
        If ``n_bins`` < 1, ``low`` is not in [0, 1), or a record has a confidence outside [0, 1] or seconds right
        outside [0, seconds].
    """
    if n_bins < 1 or not 0.0 <= low < 1.0:
        raise ValueError(f"need n_bins >= 1 and 0 <= low < 1, got {n_bins}, {low}")
    edges = np.linspace(low, 1.0, n_bins + 1)
    seconds, stated, right = np.zeros(n_bins), np.zeros(n_bins), np.zeros(n_bins)
    for confidence, sec, ok in records:
        if not (0.0 <= confidence <= 1.0) or not (0.0 <= ok <= sec + 1e-9):
            raise ValueError(f"bad calibration record {(confidence, sec, ok)}")
        b = min(max(int(np.searchsorted(edges, confidence, side="right")) - 1, 0), n_bins - 1)
        seconds[b] += sec
        stated[b] += confidence * sec
        right[b] += ok
    return Calibration(bins=tuple(
        (float(edges[b]), float(edges[b + 1]), float(seconds[b]), _ratio(stated[b], seconds[b]),
         _ratio(right[b], seconds[b])) for b in range(n_bins)))


@dataclass(frozen=True)
class FileScores:
    """The scores of one file (see the module docstring for the exact definitions).

    Attributes
    ----------
    name : str
        The file's stem.
    duration : float
        Reference duration in seconds.
    frame_s, collar_s : float
        The frame grid and the collar used.
    n_frames, scored_frames : int
        Frames in the file, and frames outside the collar.
    uncovered_s : float
        Seconds of the reference time line that no predicted segment covers (scored as silence).
    confusion : tuple of tuple of int
        4x4 counts in scored frames, rows = reference, columns = prediction, order ``STAGE1_LABELS``.
    gender_errors, gender_frames : int
        Numerator and denominator of the gender error (abstained frames left out).
    gender_abstained, voice_frames_pred : int
        Predicted voice frames with gender unknown, and all predicted voice frames (the abstention rate).
    female_share_pred, female_share_ref : float
        Female share of voice time, 0..1.
    shares_pred, shares_ref : dict
        Share of the whole file per stage-1 label, 0..1.
    der_components : dict
        pyannote DER components in seconds (total, correct, false alarm, missed detection, confusion).
    speakers_pred, speakers_ref : int
        Distinct predicted speaker ids and distinct RTTM speakers.
    predicted_duration : float
        ``source.duration`` of the result (a large difference to ``duration`` means misaligned time lines).
    gender_reliability, label_reliability : tuple of (confidence, seconds, seconds_right)
        One record per predicted voice segment with a decided gender / per predicted segment (see the module
        docstring, "calibration").
    gender_scored : bool
        Whether the analysis decided gender at all. False for a run with gender switched off (``--no-gender``):
        its gender error, abstention and female-share error are then NaN ("-", null), not the 100 % that
        scoring every voice frame as "unknown" would give.
    speakers_scored : bool
        Whether the run names its speakers. False for a run with speaker ids switched off
        (``--no-speakers``): its DER and speaker-count error are then NaN ("-", null), not the 100 % DER and
        "0 predicted speakers" that scoring turns without a speaker would give.
    """

    name: str
    duration: float
    frame_s: float
    collar_s: float
    n_frames: int
    scored_frames: int
    uncovered_s: float
    confusion: tuple[tuple[int, ...], ...]
    gender_errors: int
    gender_frames: int
    female_share_pred: float
    female_share_ref: float
    shares_pred: dict[str, float]
    shares_ref: dict[str, float]
    der_components: dict[str, float]
    speakers_pred: int
    speakers_ref: int
    predicted_duration: float = float("nan")
    gender_abstained: int = 0
    voice_frames_pred: int = 0
    gender_reliability: tuple[ReliabilityRecord, ...] = ()
    label_reliability: tuple[ReliabilityRecord, ...] = ()
    gender_scored: bool = True
    speakers_scored: bool = True

    @property
    def gender_calibration(self) -> Calibration:
        """Reliability of the gender probabilities shown on voice cues (bins from 0.5)."""
        return calibration(self.gender_reliability, low=0.5)

    @property
    def label_calibration(self) -> Calibration:
        """Reliability of the segments' stage-1 confidences (bins from 0)."""
        return calibration(self.label_reliability, low=0.0)

    @property
    def abstention(self) -> float:
        """Share of predicted voice frames whose gender is unknown (NaN without predicted voice or gender)."""
        return _ratio(self.gender_abstained, self.voice_frames_pred) if self.gender_scored else float("nan")

    @property
    def confusion_matrix(self) -> np.ndarray:
        """The confusion matrix as a 4x4 integer array."""
        return np.asarray(self.confusion, dtype=np.int64)

    @property
    def accuracy(self) -> float:
        """Stage-1 accuracy over scored frames whose reference label is not silence (NaN when none)."""
        return _stage1_accuracy(self.confusion_matrix)

    @property
    def class_metrics(self) -> dict[str, dict[str, float]]:
        """Per-label precision, recall, F1 (NaN where undefined) and support (frames)."""
        return _class_metrics(self.confusion_matrix)

    @property
    def gender_error(self) -> float:
        """Share of single-gender reference voice frames not predicted as voice of that gender (NaN without gender)."""
        return _ratio(self.gender_errors, self.gender_frames) if self.gender_scored else float("nan")

    @property
    def female_share_error(self) -> float:
        """``|predicted - reference|`` female share of voice time, in percentage points (NaN without gender)."""
        if not self.gender_scored:
            return float("nan")
        return 100.0 * abs(self.female_share_pred - self.female_share_ref)

    @property
    def composition_error(self) -> float:
        """Mean absolute error of the four label shares, in percentage points."""
        return 100.0 * float(np.mean([abs(self.shares_pred[k] - self.shares_ref[k]) for k in STAGE1_LABELS]))

    @property
    def der(self) -> float:
        """Diarization error rate (0..; may exceed 1; NaN without speakers)."""
        return _der(self.der_components) if self.speakers_scored else float("nan")

    @property
    def speaker_count_error(self) -> int | float:
        """``|#predicted speakers - #reference speakers|`` (NaN without speakers)."""
        return abs(self.speakers_pred - self.speakers_ref) if self.speakers_scored else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (NaN becomes null)."""
        return _nan_to_none({
            "name": self.name, "duration": round(self.duration, 3), "frame_s": self.frame_s,
            "collar_s": self.collar_s, "n_frames": self.n_frames, "scored_frames": self.scored_frames,
            "predicted_duration": round(self.predicted_duration, 3), "uncovered_s": round(self.uncovered_s, 3),
            "accuracy": self.accuracy, "classes": self.class_metrics,
            "labels": list(STAGE1_LABELS), "confusion": [list(r) for r in self.confusion],
            "gender_scored": self.gender_scored, "speakers_scored": self.speakers_scored,
            "gender_error": self.gender_error, "gender_errors": self.gender_errors,
            "gender_frames": self.gender_frames, "abstention": self.abstention,
            "gender_abstained": self.gender_abstained, "voice_frames_pred": self.voice_frames_pred,
            "female_share_pred": self.female_share_pred, "female_share_ref": self.female_share_ref,
            "female_share_error": self.female_share_error,
            "shares_pred": dict(self.shares_pred), "shares_ref": dict(self.shares_ref),
            "composition_error": self.composition_error,
            # an unscored file's components (all speech "missed") would read as a measured 100 % when pooled
            "der": self.der, "der_components": dict(self.der_components) if self.speakers_scored else None,
            "speakers_pred": self.speakers_pred, "speakers_ref": self.speakers_ref,
            "speaker_count_error": self.speaker_count_error,
            "gender_ece": self.gender_calibration.ece, "label_ece": self.label_calibration.ece,
        })


def _stage1_accuracy(confusion: np.ndarray) -> float:
    rows = [i for i in range(len(STAGE1_LABELS)) if i != SILENCE]
    return _ratio(sum(confusion[i, i] for i in rows), confusion[rows, :].sum())


def _result_parts(result: AnalysisResult | Mapping[str, Any]) -> tuple[float, list[Mapping[str, Any]]]:
    """The duration and the segment dicts of an AnalysisResult or of its dict form."""
    if isinstance(result, AnalysisResult):
        return float(result.duration), [
            {"start": s.start, "end": s.end, "label": s.label, "gender": s.gender, "speaker": s.speaker,
             "confidence": s.confidence, "scores": dict(s.scores)}
            for s in result.segments]
    schema = result.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise ValueError(f"unsupported result schema {schema!r} (expected {SCHEMA!r})")
    duration = result.get("source", {}).get("duration")
    segments = list(result["segments"])
    if duration is None:
        duration = max((float(s["end"]) for s in segments), default=0.0)
    return float(duration), segments


def _collar_mask(boundaries: Sequence[float], *, n_frames: int, frame_s: float, collar_s: float) -> np.ndarray:
    """True for frames whose centre is at least ``collar_s`` away from every boundary."""
    keep = np.ones(n_frames, dtype=bool)
    if collar_s <= 0 or not boundaries or n_frames == 0:
        return keep
    centres = (np.arange(n_frames) + 0.5) * frame_s
    bounds = np.sort(np.asarray(boundaries, dtype=np.float64))
    idx = np.searchsorted(bounds, centres)
    left = np.abs(centres - bounds[np.clip(idx - 1, 0, len(bounds) - 1)])
    right = np.abs(bounds[np.clip(idx, 0, len(bounds) - 1)] - centres)
    keep &= np.minimum(left, right) >= collar_s - 1e-9
    return keep


def score_result(result: AnalysisResult | Mapping[str, Any], reference: Reference, *,
                 frame_s: float = FRAME_S, collar_s: float = COLLAR_S, gender_scored: bool | None = None,
                 speakers_scored: bool | None = None) -> FileScores:
    """Score one analysis result against its reference.

    Parameters
    ----------
    result : AnalysisResult or dict
        The analysis (the ``dramapic/1`` dict form is accepted; only ``segments`` and ``source.duration``
        are read).
    reference : Reference
        From :func:`load_reference`.
    frame_s : float, optional
        Frame length of the frame metrics (10 ms).
    collar_s : float, optional
        Frames whose centre lies closer than this to a reference row boundary are not scored (0.25 s).
    gender_scored : bool, optional
        Whether the analysis decided gender (:attr:`FileScores.gender_scored`); None reads it off the result: a
        ``summary`` whose ``gender_shares`` is null is a run with gender switched off, no summary counts as on.
    speakers_scored : bool, optional
        Whether the analysis told speakers apart (:attr:`FileScores.speakers_scored`); None reads it off the
        result: a ``summary`` whose ``speakers`` is null is a run with speaker ids switched off, no summary counts
        as on.

    Returns
    -------
    FileScores

    Raises
    ------
    ValueError
        On an unknown predicted label or schema.
    """
    from pyannote.metrics.diarization import DiarizationErrorRate

    predicted_duration, segments = _result_parts(result)
    n = _n_frames(reference.duration, frame_s)
    if frame_s == reference.frame_s and len(reference.labels) == n:
        ref_labels, ref_genders = reference.labels, reference.genders
        _, _, ref_female = _rasterize_rows(reference.rows, n_frames=n, frame_s=frame_s)
    else:
        ref_labels, ref_genders, ref_female = _rasterize_rows(reference.rows, n_frames=n, frame_s=frame_s)

    pred_labels = np.full(n, SILENCE, dtype=np.int8)
    pred_genders = np.full(n, GENDER_NONE, dtype=np.int8)
    covered = np.zeros(n, dtype=bool)
    pred_female = np.zeros(n, dtype=np.float64)
    hypothesis = Annotation(uri=reference.name)
    speakers: set[str] = set()
    spans: list[tuple[int, int, Mapping[str, Any]]] = []
    for k, seg in enumerate(segments):
        label = seg["label"]
        if label not in LABEL_INDEX:
            raise ValueError(f"segment {k}: unknown label {label!r}")
        start, end = float(seg["start"]), float(seg["end"])
        a, b = _frame_span(start, end, n_frames=n, frame_s=frame_s)
        spans.append((a, b, seg))
        pred_labels[a:b] = LABEL_INDEX[label]
        covered[a:b] = True
        if label != "voice":
            pred_genders[a:b] = GENDER_NONE
            pred_female[a:b] = 0.0
            continue
        parts = _split(seg.get("gender"))
        pred_female[a:b] = sum(g == "female" for g in parts) / len(parts) if parts else 0.0
        genders = set(parts)
        pred_genders[a:b] = (GENDER_CODES[genders.pop()] if len(genders) == 1 and genders <= {"female", "male"}
                             else GENDER_MIXED if len(genders) > 1 else GENDER_NONE)
        for j, speaker in enumerate(_split(seg.get("speaker"))):
            speakers.add(speaker)
            if end > start:
                hypothesis[Segment(start, end), f"s{k}_{j}"] = speaker

    keep = _collar_mask(reference.boundaries, n_frames=n, frame_s=frame_s, collar_s=collar_s)
    size = len(STAGE1_LABELS)
    confusion = np.bincount(ref_labels[keep].astype(np.int64) * size + pred_labels[keep],
                            minlength=size * size).reshape(size, size)

    ref_voice = ref_labels == VOICE
    pred_voice = pred_labels == VOICE
    # "unknown" is an answer, not an error: abstained frames leave the gender error and are counted apart
    abstained = pred_voice & (pred_genders == GENDER_NONE)
    single = keep & (ref_labels == VOICE) & np.isin(ref_genders, (GENDER_FEMALE, GENDER_MALE)) & ~abstained
    gender_ok = pred_voice & (pred_genders == ref_genders)
    gender_frames = int(single.sum())
    gender_errors = int((single & ~gender_ok).sum())

    known = pred_voice & ~abstained
    female_ref = float(ref_female[ref_voice].sum() / ref_voice.sum()) if ref_voice.any() else 0.0
    female_pred = float(pred_female[known].sum() / known.sum()) if known.any() else 0.0
    shares_ref = {k: float((ref_labels == i).mean()) if n else 0.0 for k, i in LABEL_INDEX.items()}
    shares_pred = {k: float((pred_labels == i).mean()) if n else 0.0 for k, i in LABEL_INDEX.items()}

    gender_records, label_records = _reliability(spans, keep=keep, ref_labels=ref_labels, ref_genders=ref_genders,
                                                 frame_s=frame_s)

    metric = DiarizationErrorRate(collar=DER_COLLAR_S, skip_overlap=False)
    uem = Timeline([Segment(0.0, reference.duration)], uri=reference.name)
    components = metric.compute_components(reference.annotation, hypothesis, uem=uem)
    der_components = {k: float(components[k]) for k in DER_COMPONENTS}

    return FileScores(
        name=reference.name, duration=reference.duration, frame_s=frame_s, collar_s=collar_s, n_frames=n,
        scored_frames=int(keep.sum()), uncovered_s=float((~covered).sum() * frame_s),
        confusion=tuple(tuple(int(v) for v in row) for row in confusion),
        gender_errors=gender_errors, gender_frames=gender_frames,
        female_share_pred=female_pred, female_share_ref=female_ref,
        shares_pred=shares_pred, shares_ref=shares_ref, der_components=der_components,
        speakers_pred=len(speakers), speakers_ref=len(reference.speakers), predicted_duration=predicted_duration,
        gender_abstained=int(abstained.sum()), voice_frames_pred=int(pred_voice.sum()),
        gender_reliability=gender_records, label_reliability=label_records,
        gender_scored=_decided(result, "gender_shares") if gender_scored is None else bool(gender_scored),
        speakers_scored=_decided(result, "speakers") if speakers_scored is None else bool(speakers_scored),
    )


def _decided(result: AnalysisResult | Mapping[str, Any], field: str) -> bool:
    """False for a result of a run with that part of stage 2 switched off: its summary's ``field``
    (``gender_shares`` for gender, ``speakers`` for diarization) is null."""
    if isinstance(result, AnalysisResult):
        return getattr(result.summary, field) is not None
    summary = result.get("summary")
    return not isinstance(summary, Mapping) or summary.get(field, True) is not None


def _reliability(spans: Sequence[tuple[int, int, Mapping[str, Any]]], *, keep: np.ndarray, ref_labels: np.ndarray,
                 ref_genders: np.ndarray, frame_s: float
                 ) -> tuple[tuple[ReliabilityRecord, ...], tuple[ReliabilityRecord, ...]]:
    """The calibration records of the predicted segments (frames ``a:b`` each; see the module docstring)."""
    gender_records, label_records = [], []
    for a, b, seg in spans:
        if b <= a:
            continue
        scored = keep[a:b]
        confidence = seg.get("confidence")
        if confidence is not None and scored.any():
            right = scored & (ref_labels[a:b] == LABEL_INDEX[seg["label"]])
            label_records.append((float(confidence), float(scored.sum()) * frame_s, float(right.sum()) * frame_s))
        parts = set(_split(seg.get("gender")))
        if seg["label"] != "voice" or len(parts) != 1 or not parts <= {"female", "male"}:
            continue  # no decided gender: nothing was claimed
        gender = parts.pop()
        stated = (seg.get("scores") or {}).get(gender)
        if stated is None:
            continue
        single = scored & (ref_labels[a:b] == VOICE) & np.isin(ref_genders[a:b], (GENDER_FEMALE, GENDER_MALE))
        if single.any():
            right = single & (ref_genders[a:b] == GENDER_CODES[gender])
            gender_records.append((float(stated), float(single.sum()) * frame_s, float(right.sum()) * frame_s))
    return tuple(gender_records), tuple(label_records)


# ------------------------------------------------------------------------------------------------ report
@dataclass(frozen=True)
class Report:
    """Scores pooled over files (see the module docstring).

    Attributes
    ----------
    files : tuple of FileScores
        The per-file scores, in order.
    """

    files: tuple[FileScores, ...]

    @property
    def confusion_matrix(self) -> np.ndarray:
        """Sum of the files' confusion matrices (frames)."""
        total = np.zeros((len(STAGE1_LABELS),) * 2, dtype=np.int64)
        for f in self.files:
            total += f.confusion_matrix
        return total

    @property
    def accuracy(self) -> float:
        """Stage-1 accuracy pooled over frames."""
        return _stage1_accuracy(self.confusion_matrix)

    @property
    def class_metrics(self) -> dict[str, dict[str, float]]:
        """Per-label precision/recall/F1 from the pooled confusion matrix."""
        return _class_metrics(self.confusion_matrix)

    @property
    def gender_error(self) -> float:
        """Gender error pooled over frames of the files whose analysis decided gender."""
        scored = [f for f in self.files if f.gender_scored]
        return _ratio(sum(f.gender_errors for f in scored), sum(f.gender_frames for f in scored))

    @property
    def abstention(self) -> float:
        """Abstention pooled over predicted voice frames of the files whose analysis decided gender."""
        scored = [f for f in self.files if f.gender_scored]
        return _ratio(sum(f.gender_abstained for f in scored), sum(f.voice_frames_pred for f in scored))

    @property
    def female_share_error(self) -> float:
        """Mean of the per-file female share errors (points)."""
        return _mean([f.female_share_error for f in self.files])

    @property
    def composition_error(self) -> float:
        """Mean of the per-file composition share errors (points)."""
        return _mean([f.composition_error for f in self.files])

    @property
    def der_components(self) -> dict[str, float]:
        """DER components (seconds) summed over the files whose analysis told speakers apart."""
        return {k: float(sum(f.der_components[k] for f in self.files if f.speakers_scored)) for k in DER_COMPONENTS}

    @property
    def gender_calibration(self) -> Calibration:
        """Reliability of the gender probabilities, records pooled over files."""
        return calibration([r for f in self.files for r in f.gender_reliability], low=0.5)

    @property
    def label_calibration(self) -> Calibration:
        """Reliability of the stage-1 confidences, records pooled over files."""
        return calibration([r for f in self.files for r in f.label_reliability], low=0.0)

    @property
    def der(self) -> float:
        """DER pooled from the summed components (NaN when no file's analysis told speakers apart)."""
        return _der(self.der_components) if any(f.speakers_scored for f in self.files) else float("nan")

    @property
    def speaker_count_error(self) -> float:
        """Mean of the per-file speaker-count errors (of the files whose analysis told speakers apart)."""
        return _mean([float(f.speaker_count_error) for f in self.files])

    @property
    def duration(self) -> float:
        """Total reference seconds."""
        return float(sum(f.duration for f in self.files))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict: pooled totals under ``total`` and per-file scores under ``files``."""
        return _nan_to_none({
            "labels": list(STAGE1_LABELS),
            "total": {
                "files": len(self.files), "duration": round(self.duration, 3),
                "accuracy": self.accuracy, "classes": self.class_metrics,
                "confusion": self.confusion_matrix.tolist(), "gender_error": self.gender_error,
                "abstention": self.abstention,
                "female_share_error": self.female_share_error, "composition_error": self.composition_error,
                "der": self.der, "der_components": self.der_components,
                "speaker_count_error": self.speaker_count_error,
                "gender_calibration": self.gender_calibration.to_dict(),
                "label_calibration": self.label_calibration.to_dict(),
            },
            "files": [f.to_dict() for f in self.files],
        })

    def format_table(self) -> str:
        """A plain-text table: one row per file and a pooled total row, then the pooled confusion matrix."""
        head = ("file", "dur s", "acc", "F1 voi", "F1 song", "F1 noi", "F1 sil", "gend err", "abst", "fem pp",
                "comp pp", "DER", "spk p/r")
        rows: list[tuple[str, ...]] = []

        def line(name: str, dur: float, acc: float, classes: dict, gerr: float, abst: float, fem: float,
                 comp: float, der: float, spk: str) -> tuple[str, ...]:
            return (name, f"{dur:.1f}", _fmt(acc), *(_fmt(classes[k]["f1"]) for k in STAGE1_LABELS),
                    _fmt(gerr), _fmt(abst), _fmt(fem, ".1f"), _fmt(comp, ".1f"), _fmt(der), spk)

        for f in self.files:
            rows.append(line(f.name, f.duration, f.accuracy, f.class_metrics, f.gender_error, f.abstention,
                             f.female_share_error, f.composition_error, f.der,
                             f"{f.speakers_pred}/{f.speakers_ref}" if f.speakers_scored else f"-/{f.speakers_ref}"))
        count_error = self.speaker_count_error
        rows.append(line("TOTAL", self.duration, self.accuracy, self.class_metrics, self.gender_error,
                         self.abstention, self.female_share_error, self.composition_error, self.der,
                         "-" if math.isnan(count_error) else f"±{count_error:.2f}"))
        widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]

        def render(r: tuple[str, ...]) -> str:
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

        rule = "-" * len(render(head))
        out = [render(head), rule, *(render(r) for r in rows[:-1]), rule, render(rows[-1]), ""]
        out.append("confusion (frames; rows = reference, columns = prediction)")
        cm = self.confusion_matrix
        w = max(8, *(len(str(v)) for v in cm.ravel()))
        out.append(" " * 8 + "".join(k.rjust(w + 2) for k in STAGE1_LABELS))
        for label, row in zip(STAGE1_LABELS, cm):
            out.append(label.ljust(8) + "".join(str(v).rjust(w + 2) for v in row))
        gender, labels = self.gender_calibration, self.label_calibration
        out += ["", (f"calibration (seconds-weighted ECE): gender probability {_fmt(gender.ece)} over "
                     f"{gender.seconds:.1f} s of decided voice, stage-1 confidence {_fmt(labels.ece)} over "
                     f"{labels.seconds:.1f} s")]
        return "\n".join(out)


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def aggregate(scores: Sequence[FileScores]) -> Report:
    """Pool per-file scores into a report.

    Parameters
    ----------
    scores : sequence of FileScores

    Returns
    -------
    Report
        Confusion matrices summed (frame-pooled accuracy, class metrics and gender error), DER from summed
        components, means of the per-file share and speaker-count errors.
    """
    return Report(files=tuple(scores))


def mix_files(mixes_dir: Path, *, pattern: str = "*.labels.csv",
              limit: int | None = None) -> list[tuple[Path, Path]]:
    """The label files of a folder of dev mixes and the audio beside each, found without reading them: what
    ``dramapic eval --reference speech`` and ``--scenes`` check before they copy the folder (the copy rewrites the
    references, so they are not read here).

    Returns
    -------
    list of (Path, Path)
        Each mix's ``NAME.labels.csv`` (matching ``pattern``) and its ``NAME.opus``, in name order; the first
        ``limit`` when given.

    Raises
    ------
    InputError
        No label file matches, or a mix lacks its audio.
    """
    mixes_dir = Path(mixes_dir)
    label_files = sorted(mixes_dir.glob(pattern))
    if limit is not None:
        label_files = label_files[:max(limit, 0)]
    if not label_files:
        raise InputError(f"no {pattern} files in {mixes_dir}: not a folder of dev mixes")
    found = []
    for labels_csv in label_files:
        audio = labels_csv.with_name(f"{labels_csv.name.removesuffix('.labels.csv')}.opus")
        if not audio.is_file():
            raise InputError(f"{labels_csv.name} has no audio beside it: {audio.name} is missing")
        found.append((labels_csv, audio))
    return found


def read_mixes(mixes_dir: Path, *, pattern: str = "*.labels.csv",
               limit: int | None = None) -> list[tuple[Reference, Path]]:
    """Every dev mix of a folder, its reference read and its audio found (:func:`mix_files`): what each way of
    scoring the mixes does before the models load and the first (slow) mix is scored, so that a broken last mix is
    found then, not after all the others.

    Returns
    -------
    list of (Reference, Path)
        Each mix's reference and its ``NAME.opus``, in name order; the first ``limit`` when given.

    Raises
    ------
    InputError
        No label file matches, a mix lacks its audio, or its labels or RTTM cannot be read.
    """
    return [(load_reference(labels_csv), audio)
            for labels_csv, audio in mix_files(mixes_dir, pattern=pattern, limit=limit)]


def evaluate_mixes(mixes_dir: Path, *, analyze_fn: Callable[[Path], AnalysisResult | Mapping[str, Any]],
                   progress: Callable[[str, float, float], None] | None = None, limit: int | None = None,
                   pattern: str = MIXES_PATTERN, frame_s: float = FRAME_S,
                   collar_s: float = COLLAR_S) -> Report:
    """Analyse and score every labelled mix of a folder.

    Parameters
    ----------
    mixes_dir : Path
        Folder with ``NAME.labels.csv``, ``NAME.rttm`` and ``NAME.opus`` per mix.
    analyze_fn : callable
        ``analyze_fn(audio_path)`` returns an AnalysisResult or its dict form.
    progress : callable, optional
        A ``ProgressHook``: called as ``progress("evaluate", done, total)`` before the first and after each file.
    limit : int, optional
        Score only the first ``limit`` mixes (in name order).
    pattern : str, optional
        Glob of the label files.
    frame_s, collar_s : float, optional
        Passed to :func:`score_result`.

    Returns
    -------
    Report

    Raises
    ------
    InputError
        When the folder holds no label files, a mix lacks its audio or RTTM file, or its labels or RTTM cannot be
        read (:func:`~dramapic.lab.reference.load_reference`).
    """
    mixes = read_mixes(mixes_dir, pattern=pattern, limit=limit)
    scores: list[FileScores] = []
    if progress is not None:
        progress("evaluate", 0, len(mixes))
    for i, (reference, audio) in enumerate(mixes, start=1):
        scores.append(score_result(analyze_fn(audio), reference, frame_s=frame_s, collar_s=collar_s))
        if progress is not None:
            progress("evaluate", i, len(mixes))
    return aggregate(scores)
