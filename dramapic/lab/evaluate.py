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
  speaker ``female`` or every speaker ``male``; ``female+male`` overlaps and unknown gender are left out): the
  share of frames that are not predicted as ``voice`` with that same gender.
* **female share error** - ``|predicted female share - reference female share|`` in percentage points over the
  whole file (no collar). Female share of voice time = (sum over ``voice`` frames of the fraction of
  the frame's genders that are ``female``) / (number of ``voice`` frames), computed alike for the prediction
  and the reference: a ``female`` frame counts 1, a ``male`` or gender-less (null) voice frame 0, a
  ``female+male`` overlap 0.5. A share is 0 when there is no voice.
* **composition share error** - the mean over voice, song, noise, silence of
  ``|predicted share - reference share|`` of the whole file's frames, in percentage points (no collar).
* **DER** - ``pyannote.metrics.diarization.DiarizationErrorRate(collar=0.5, skip_overlap=False)`` between the
  reference RTTM and a hypothesis made of the predicted ``voice`` segments that carry a speaker id (a speaker
  ``"S1+S2"`` adds one track per id), scored on the UEM ``[0, duration]``; speaker labels are mapped optimally.
  DER = (false alarm + missed detection + confusion) / total reference speech.
* **speaker-count error** - ``|#distinct predicted speaker ids - #distinct reference speakers|``.

``aggregate`` pools files: confusion matrices are summed (so accuracy, precision/recall/F1 and gender error are
pooled over frames), DER is pooled from the summed components, and the female share, composition share and
speaker-count errors are means of the per-file values.

Run ``python -m dramapic.lab.evaluate --mixes DIR [--json OUT] [--limit N]``; add ``--variants`` for every stage-1
member alone versus the ensemble and the hand rule, and the gender cascade versus independent gender
(:func:`evaluate_variants`).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from pyannote.core import Annotation, Segment, Timeline

from ..result import SCHEMA, STAGE1_LABELS, AnalysisResult

FRAME_S = 0.01
COLLAR_S = 0.25
DER_COLLAR_S = 0.5
LABEL_INDEX = {label: i for i, label in enumerate(STAGE1_LABELS)}
VOICE, SILENCE = LABEL_INDEX["voice"], LABEL_INDEX["silence"]
#: Per-frame gender codes (reference and prediction): ``MIXED`` = speakers of both genders at once.
GENDER_NONE, GENDER_FEMALE, GENDER_MALE, GENDER_MIXED = 0, 1, 2, 3
GENDER_CODES = {"none": GENDER_NONE, "female": GENDER_FEMALE, "male": GENDER_MALE, "mixed": GENDER_MIXED}
DER_COMPONENTS = ("total", "correct", "false alarm", "missed detection", "confusion")


# ------------------------------------------------------------------------------------------------ reference
@dataclass(frozen=True)
class ReferenceRow:
    """One row of a ``labels.csv`` file.

    Attributes
    ----------
    start, end : float
        Seconds.
    label : str
        One of voice, song, noise, silence.
    genders : tuple of str
        One entry per speaker (``("female", "male")`` for an overlap); empty for non-voice rows.
    speakers : tuple of str
        Speaker ids in the same order as ``genders``.
    """

    start: float
    end: float
    label: str
    genders: tuple[str, ...] = ()
    speakers: tuple[str, ...] = ()

    @property
    def gender_code(self) -> int:
        """``GENDER_FEMALE``/``GENDER_MALE`` when every speaker has that gender, ``GENDER_MIXED`` when the
        speakers' genders differ, ``GENDER_NONE`` when no gender is known."""
        known = set(self.genders) & {"female", "male"}
        if len(known) == 2:
            return GENDER_MIXED
        if len(known) == 1 and all(g in known for g in self.genders):
            return GENDER_CODES[known.pop()]
        return GENDER_NONE

    @property
    def female_fraction(self) -> float:
        """The fraction of this row's speakers that are female (0 for non-voice rows)."""
        if self.label != "voice" or not self.genders:
            return 0.0
        return sum(g == "female" for g in self.genders) / len(self.genders)

    def to_dict(self) -> dict[str, Any]:
        """The row as ``labels.csv`` writes it."""
        return {"start": self.start, "end": self.end, "label": self.label,
                "gender": "+".join(self.genders) or None, "speaker": "+".join(self.speakers) or None}


@dataclass(frozen=True, eq=False)
class Reference:
    """The ground truth of one labelled file.

    Attributes
    ----------
    name : str
        The file's stem (``devmix_05``).
    duration : float
        Seconds (the end of the last row).
    rows : tuple of ReferenceRow
        The flat partition from ``labels.csv``.
    annotation : pyannote.core.Annotation
        Speaker turns from the ``.rttm`` file (overlaps kept).
    frame_s : float
        The grid of ``labels`` and ``genders``.
    labels : numpy.ndarray
        Stage-1 label index per frame (index into ``STAGE1_LABELS``).
    genders : numpy.ndarray
        Gender code per frame (``GENDER_NONE``, ``GENDER_FEMALE``, ``GENDER_MALE``, ``GENDER_MIXED``).
    """

    name: str
    duration: float
    rows: tuple[ReferenceRow, ...]
    annotation: Annotation = field(repr=False)
    frame_s: float = FRAME_S
    labels: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    genders: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.labels is None or self.genders is None:
            labels, genders, _ = _rasterize_rows(self.rows, n_frames=_n_frames(self.duration, self.frame_s),
                                                 frame_s=self.frame_s)
            object.__setattr__(self, "labels", labels)
            object.__setattr__(self, "genders", genders)

    @property
    def boundaries(self) -> tuple[float, ...]:
        """Interior row boundaries in seconds (the collar is laid around these)."""
        return tuple(row.start for row in self.rows[1:])

    @property
    def speakers(self) -> tuple[str, ...]:
        """The distinct speaker ids of the RTTM, sorted."""
        return tuple(sorted(str(label) for label in self.annotation.labels()))

    def to_dict(self) -> dict[str, Any]:
        """A summary: name, duration, seconds per label, speakers, overlapped seconds."""
        seconds = {label: 0.0 for label in STAGE1_LABELS}
        overlap = 0.0
        for row in self.rows:
            seconds[row.label] += row.end - row.start
            if len(row.speakers) > 1:
                overlap += row.end - row.start
        return {"name": self.name, "duration": round(self.duration, 3),
                "seconds": {k: round(v, 3) for k, v in seconds.items()},
                "speakers": list(self.speakers), "overlap_seconds": round(overlap, 3)}


def _n_frames(duration: float, frame_s: float) -> int:
    return max(int(round(duration / frame_s)), 0)


def _frame_span(start: float, end: float, *, n_frames: int, frame_s: float) -> tuple[int, int]:
    a = min(max(int(round(start / frame_s)), 0), n_frames)
    b = min(max(int(round(end / frame_s)), 0), n_frames)
    return a, b


def _rasterize_rows(rows: Sequence[ReferenceRow], *, n_frames: int,
                    frame_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels = np.full(n_frames, SILENCE, dtype=np.int8)
    genders = np.full(n_frames, GENDER_NONE, dtype=np.int8)
    female = np.zeros(n_frames, dtype=np.float64)
    for row in rows:
        a, b = _frame_span(row.start, row.end, n_frames=n_frames, frame_s=frame_s)
        labels[a:b] = LABEL_INDEX[row.label]
        genders[a:b] = row.gender_code
        female[a:b] = row.female_fraction
    return labels, genders, female


def _split(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(part.strip() for part in str(value).split("+") if part.strip())


def read_rttm(path: Path, *, uri: str | None = None) -> Annotation:
    """Read an RTTM file into a pyannote Annotation.

    Parameters
    ----------
    path : Path
        The ``.rttm`` file (``SPEAKER uri channel start duration <NA> <NA> speaker <NA> <NA>`` lines).
    uri : str, optional
        The annotation's uri; the file's first uri when omitted.

    Returns
    -------
    pyannote.core.Annotation
        One track per line, labelled with the speaker id.
    """
    annotation = Annotation(uri=uri)
    with open(path, encoding="utf-8") as handle:
        for i, line in enumerate(handle):
            parts = line.split()
            if not parts or parts[0] != "SPEAKER":
                continue
            if annotation.uri is None:
                annotation.uri = parts[1]
            start, dur = float(parts[3]), float(parts[4])
            if dur > 0:
                annotation[Segment(start, start + dur), f"t{i}"] = parts[7]
    return annotation


def load_reference(labels_csv: Path) -> Reference:
    """Load the ground truth of one labelled file.

    Parameters
    ----------
    labels_csv : Path
        ``NAME.labels.csv``; ``NAME.rttm`` must lie next to it.

    Returns
    -------
    Reference
        Rows, 10 ms frame arrays and the RTTM annotation.

    Raises
    ------
    FileNotFoundError
        When the CSV or the RTTM file is missing.
    ValueError
        When a row has an unknown label or the rows are not a sorted, gap-free partition.
    """
    labels_csv = Path(labels_csv)
    name = labels_csv.name.removesuffix(".labels.csv")
    rows: list[ReferenceRow] = []
    with open(labels_csv, newline="", encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            label = record["label"].strip()
            if label not in LABEL_INDEX:
                raise ValueError(f"{labels_csv}: unknown label {label!r}")
            row = ReferenceRow(start=float(record["start"]), end=float(record["end"]), label=label,
                               genders=_split(record.get("gender")), speakers=_split(record.get("speaker")))
            if rows and abs(row.start - rows[-1].end) > 1e-6:
                raise ValueError(f"{labels_csv}: row at {row.start:.3f} does not start where the previous "
                                 f"one ends ({rows[-1].end:.3f})")
            if row.end < row.start:
                raise ValueError(f"{labels_csv}: row at {row.start:.3f} ends before it starts")
            rows.append(row)
    if not rows:
        raise ValueError(f"{labels_csv}: no rows")
    rttm = labels_csv.with_name(f"{name}.rttm")
    annotation = read_rttm(rttm, uri=name)
    return Reference(name=name, duration=rows[-1].end, rows=tuple(rows), annotation=annotation)


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
        Numerator and denominator of the gender error.
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
        """Share of single-gender reference voice frames not predicted as voice of that gender."""
        return _ratio(self.gender_errors, self.gender_frames)

    @property
    def female_share_error(self) -> float:
        """``|predicted - reference|`` female share of voice time, in percentage points."""
        return 100.0 * abs(self.female_share_pred - self.female_share_ref)

    @property
    def composition_error(self) -> float:
        """Mean absolute error of the four label shares, in percentage points."""
        return 100.0 * float(np.mean([abs(self.shares_pred[k] - self.shares_ref[k]) for k in STAGE1_LABELS]))

    @property
    def der(self) -> float:
        """Diarization error rate (0..; may exceed 1)."""
        return _der(self.der_components)

    @property
    def speaker_count_error(self) -> int:
        """``|#predicted speakers - #reference speakers|``."""
        return abs(self.speakers_pred - self.speakers_ref)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (NaN becomes null)."""
        return _nan_to_none({
            "name": self.name, "duration": round(self.duration, 3), "frame_s": self.frame_s,
            "collar_s": self.collar_s, "n_frames": self.n_frames, "scored_frames": self.scored_frames,
            "predicted_duration": round(self.predicted_duration, 3), "uncovered_s": round(self.uncovered_s, 3),
            "accuracy": self.accuracy, "classes": self.class_metrics,
            "labels": list(STAGE1_LABELS), "confusion": [list(r) for r in self.confusion],
            "gender_error": self.gender_error, "gender_errors": self.gender_errors,
            "gender_frames": self.gender_frames,
            "female_share_pred": self.female_share_pred, "female_share_ref": self.female_share_ref,
            "female_share_error": self.female_share_error,
            "shares_pred": dict(self.shares_pred), "shares_ref": dict(self.shares_ref),
            "composition_error": self.composition_error,
            "der": self.der, "der_components": dict(self.der_components),
            "speakers_pred": self.speakers_pred, "speakers_ref": self.speakers_ref,
            "speaker_count_error": self.speaker_count_error,
        })


def _stage1_accuracy(confusion: np.ndarray) -> float:
    rows = [i for i in range(len(STAGE1_LABELS)) if i != SILENCE]
    return _ratio(sum(confusion[i, i] for i in rows), confusion[rows, :].sum())


def _result_parts(result: AnalysisResult | Mapping[str, Any]) -> tuple[float, list[Mapping[str, Any]]]:
    """The duration and the segment dicts of an AnalysisResult or of its dict form."""
    if isinstance(result, AnalysisResult):
        return float(result.duration), [
            {"start": s.start, "end": s.end, "label": s.label, "gender": s.gender, "speaker": s.speaker}
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
                 frame_s: float = FRAME_S, collar_s: float = COLLAR_S) -> FileScores:
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
    for k, seg in enumerate(segments):
        label = seg["label"]
        if label not in LABEL_INDEX:
            raise ValueError(f"segment {k}: unknown label {label!r}")
        start, end = float(seg["start"]), float(seg["end"])
        a, b = _frame_span(start, end, n_frames=n, frame_s=frame_s)
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

    single = keep & (ref_labels == VOICE) & np.isin(ref_genders, (GENDER_FEMALE, GENDER_MALE))
    gender_ok = (pred_labels == VOICE) & (pred_genders == ref_genders)
    gender_frames = int(single.sum())
    gender_errors = int((single & ~gender_ok).sum())

    ref_voice = ref_labels == VOICE
    pred_voice = pred_labels == VOICE
    female_ref = float(ref_female[ref_voice].sum() / ref_voice.sum()) if ref_voice.any() else 0.0
    female_pred = float(pred_female[pred_voice].sum() / pred_voice.sum()) if pred_voice.any() else 0.0
    shares_ref = {k: float((ref_labels == i).mean()) if n else 0.0 for k, i in LABEL_INDEX.items()}
    shares_pred = {k: float((pred_labels == i).mean()) if n else 0.0 for k, i in LABEL_INDEX.items()}

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
    )


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
        """Gender error pooled over frames."""
        return _ratio(sum(f.gender_errors for f in self.files), sum(f.gender_frames for f in self.files))

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
        """Summed DER components (seconds)."""
        return {k: float(sum(f.der_components[k] for f in self.files)) for k in DER_COMPONENTS}

    @property
    def der(self) -> float:
        """DER pooled from the summed components."""
        return _der(self.der_components) if self.files else float("nan")

    @property
    def speaker_count_error(self) -> float:
        """Mean of the per-file speaker-count errors."""
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
                "female_share_error": self.female_share_error, "composition_error": self.composition_error,
                "der": self.der, "der_components": self.der_components,
                "speaker_count_error": self.speaker_count_error,
            },
            "files": [f.to_dict() for f in self.files],
        })

    def format_table(self) -> str:
        """A plain-text table: one row per file and a pooled total row, then the pooled confusion matrix."""
        head = ("file", "dur s", "acc", "F1 voi", "F1 song", "F1 noi", "F1 sil", "gend err", "fem pp",
                "comp pp", "DER", "spk p/r")
        rows: list[tuple[str, ...]] = []

        def line(name: str, dur: float, acc: float, classes: dict, gerr: float, fem: float, comp: float,
                 der: float, spk: str) -> tuple[str, ...]:
            return (name, f"{dur:.1f}", _fmt(acc), *(_fmt(classes[k]["f1"]) for k in STAGE1_LABELS),
                    _fmt(gerr), _fmt(fem, ".1f"), _fmt(comp, ".1f"), _fmt(der), spk)

        for f in self.files:
            rows.append(line(f.name, f.duration, f.accuracy, f.class_metrics, f.gender_error,
                             f.female_share_error, f.composition_error, f.der,
                             f"{f.speakers_pred}/{f.speakers_ref}"))
        rows.append(line("TOTAL", self.duration, self.accuracy, self.class_metrics, self.gender_error,
                         self.female_share_error, self.composition_error, self.der,
                         f"±{_fmt(self.speaker_count_error, '.2f')}"))
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


def evaluate_mixes(mixes_dir: Path, *, analyze_fn: Callable[[Path], AnalysisResult | Mapping[str, Any]],
                   progress: Callable[[str, float, float], None] | None = None, limit: int | None = None,
                   pattern: str = "devmix_*.labels.csv", frame_s: float = FRAME_S,
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
    FileNotFoundError
        When the folder holds no label files, or a mix lacks its audio or RTTM file.
    """
    mixes_dir = Path(mixes_dir)
    label_files = sorted(mixes_dir.glob(pattern))
    if limit is not None:
        label_files = label_files[:max(limit, 0)]
    if not label_files:
        raise FileNotFoundError(f"no {pattern} files in {mixes_dir}")
    scores: list[FileScores] = []
    if progress is not None:
        progress("evaluate", 0, len(label_files))
    for i, labels_csv in enumerate(label_files, start=1):
        reference = load_reference(labels_csv)
        audio = labels_csv.with_name(f"{reference.name}.opus")
        if not audio.is_file():
            raise FileNotFoundError(f"audio {audio} is missing")
        scores.append(score_result(analyze_fn(audio), reference, frame_s=frame_s, collar_s=collar_s))
        if progress is not None:
            progress("evaluate", i, len(label_files))
    return aggregate(scores)


# ------------------------------------------------------------------------------------------------ variants
#: Gender variants of :func:`evaluate_variants` (see its docstring).
GENDER_VARIANTS = ("sequential", "sequential_windows", "independent", "sequential_windows_oracle_stage1")


@dataclass(frozen=True)
class VariantsReport:
    """Stage-1 members versus the ensemble, and the gender cascade versus independent gender, on the same files.

    Attributes
    ----------
    stage1 : dict of str to Report
        One report per stage-1 variant (``rule``, each member alone, ``ensemble``); their segments carry no gender.
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
    """Segment dicts from a frame label path and an optional per-frame gender code (voice frames only)."""
    key = labels.astype(np.int64) * 4 + (genders.astype(np.int64) if genders is not None else 0)
    change = np.flatnonzero(np.diff(key)) + 1
    starts = np.concatenate([[0], change]).astype(int)
    ends = np.concatenate([change, [len(key)]]).astype(int)
    out = []
    for a, b in zip(starts, ends):
        start, end = a * frame_s, min(b * frame_s, duration)
        if end <= start:
            continue
        label = STAGE1_LABELS[int(labels[a])]
        gender = None
        if label == "voice" and genders is not None and genders[a] in (GENDER_FEMALE, GENDER_MALE):
            gender = "female" if genders[a] == GENDER_FEMALE else "male"
        out.append({"start": start, "end": end, "label": label, "gender": gender, "speaker": None})
    if out:
        out[0]["start"], out[-1]["end"] = 0.0, duration
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
                      pattern: str = "devmix_*.labels.csv") -> VariantsReport:
    """Score every stage-1 member alone, the ensemble and the hand rule, and the gender variants, on labelled mixes.

    Stage-1 variants share the detectors' scores of each file and the pipeline's smoothing (Viterbi switching
    penalty and minimum durations): ``rule`` (:class:`dramapic.ensemble.DetectorCombiner`), each member of
    ``pipeline.stage1.members`` alone, and ``ensemble`` (members + stacker).

    Gender variants (the pipeline's gender model and speaker windows, on the ensemble's stage-1 labels):

    * ``sequential`` - the product itself, :func:`dramapic.analysis.analyze` with ``pipeline``: stage 2 only
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
    """
    import time

    from ..analysis import detectors
    from .. import media
    from ..analysis.analyze import segments_from_frames
    from ..config import load_pipeline
    from ..analysis.stage1 import DetectorCombiner, Stage1Ensemble
    from ..models import load_manifest
    from ..analysis.smoothing import smooth_labels

    pipeline = pipeline or load_pipeline(None)
    manifest = manifest or load_manifest()
    cfg = pipeline.stage1
    ensemble = Stage1Ensemble.from_manifest(manifest, members=cfg.members, stacker=cfg.stacker)
    rule = DetectorCombiner(cfg)
    min_frames = np.array([round(cfg.min_duration_s[lab] / FRAME_S) for lab in STAGE1_LABELS])
    if gender:
        from ..analysis.analyze import analyze
        from ..analysis.diarization import GenderClassifier, SpeakerEncoder

        encoder = SpeakerEncoder()
        gender_model = GenderClassifier.from_manifest(manifest, pipeline.stage2.gender_model)
        sp = pipeline.speakers
    label_files = sorted(Path(mixes_dir).glob(pattern))[: limit if limit is not None else None]
    if not label_files:
        raise FileNotFoundError(f"no {pattern} files in {mixes_dir}")
    stage1: dict[str, list[FileScores]] = {}
    genders: dict[str, list[FileScores]] = {}
    seconds: dict[str, float] = {}
    duration_total = 0.0

    def tick(name: str, clock: float) -> float:
        now = time.perf_counter()
        seconds[name] = seconds.get(name, 0.0) + now - clock
        return now

    for i, labels_csv in enumerate(label_files):
        if progress is not None:
            progress("variants", i, len(label_files))
        reference = load_reference(labels_csv)
        audio_path = labels_csv.with_name(f"{reference.name}.opus")
        audio = media.decode_audio(media.probe(audio_path))
        duration = audio.shape[0] / detectors.SAMPLE_RATE
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
        probs["ensemble"] = ensemble.combine([members[m.name] for m in ensemble.members])
        clock = tick("stacker", clock)
        paths = {}
        for name, p in probs.items():
            paths[name] = smooth_labels(p, switch_penalty=cfg.switch_penalty, min_frames=min_frames)
            result = {"schema": SCHEMA, "source": {"duration": duration},
                      "segments": _segments_from_frames(paths[name], None, duration)}
            stage1.setdefault(name, []).append(score_result(result, reference))
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
            times, emb = encoder.embed_windows(audio, sample_rate=detectors.SAMPLE_RATE, regions=regions,
                                               window_s=sp.window_s, hop_s=sp.hop_s)
            valid = np.linalg.norm(emb, axis=1) > 0
            p_female = gender_model.predict_proba(emb[valid])[:, 0] if valid.any() else np.zeros(0)
            frame_p = _frame_female(times[valid], p_female, n)
            codes = np.where(path == VOICE, np.where(frame_p >= 0.5, GENDER_FEMALE, GENDER_MALE), GENDER_NONE)
            result = {"schema": SCHEMA, "source": {"duration": duration},
                      "segments": _segments_from_frames(path, codes, duration)}
            genders.setdefault(name, []).append(score_result(result, reference))
            clock = tick(f"gender_{name}", clock)
    if progress is not None:
        progress("variants", len(label_files), len(label_files))
    return VariantsReport(stage1={k: aggregate(v) for k, v in stage1.items()},
                          gender={k: aggregate(v) for k, v in genders.items()}, seconds=seconds,
                          duration=duration_total)


def write_json_atomic(data: Any, path: Path) -> None:
    """Write JSON to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        from ..writers import ordinary_file_mode

        os.chmod(tmp, ordinary_file_mode())
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, allow_nan=False)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dramapic.lab.evaluate --mixes DIR [--json OUT] [--limit N]``: analyse, score, print a table."""
    parser = argparse.ArgumentParser(prog="python -m dramapic.lab.evaluate",
                                     description="Score dramapic on labelled mixes (labels.csv + rttm + opus).")
    parser.add_argument("--mixes", required=True, type=Path, help="folder with devmix_NN.{opus,labels.csv,rttm}")
    parser.add_argument("--json", type=Path, default=None, help="write the report as JSON here")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N mixes")
    parser.add_argument("--variants", action="store_true",
                        help="score each stage-1 member alone, the ensemble and the hand rule, and the gender cascade "
                             "versus independent gender, instead of the full pipeline")
    parser.add_argument("--no-gender", action="store_true", help="with --variants: stage-1 variants only")
    parser.add_argument("--pipeline", type=Path, default=None, help="pipeline YAML (default: the bundled one)")
    args = parser.parse_args(argv)

    from dramapic.analysis.analyze import analyze
    from dramapic.config import load_pipeline

    pipeline = load_pipeline(args.pipeline)

    def progress(stage: str, completed: float, total: float) -> None:
        print(f"{stage}: {int(completed)}/{int(total)}", file=sys.stderr, flush=True)

    if args.variants:
        variants = evaluate_variants(args.mixes, pipeline, limit=args.limit, gender=not args.no_gender,
                                     progress=progress)
        print(variants.format_table())
        if args.json is not None:
            write_json_atomic(variants.to_dict(), args.json)
        return 0

    report = evaluate_mixes(args.mixes, analyze_fn=lambda p: analyze(p, pipeline), progress=progress,
                            limit=args.limit)
    print(report.format_table())
    if args.json is not None:
        write_json_atomic(report.to_dict(), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
