"""The dev mixes' ground truth: ``NAME.labels.csv`` (frame labels, gender, speakers) and ``NAME.rttm`` read into a
:class:`Reference` (the format is ``../shared/data/README.md``'s)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from pyannote.core import Annotation, Segment

from ..errors import InputError
from ..result import FRAME_S, STAGE1_LABELS

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

    Raises
    ------
    InputError
        When the file is missing or unreadable, or a ``SPEAKER`` line lacks its start, duration or speaker.
    """
    annotation = Annotation(uri=uri)
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.readlines()
    except FileNotFoundError:
        raise InputError(f"RTTM file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read the RTTM file {path}: {err}") from None
    for i, line in enumerate(lines):
        parts = line.split()
        if not parts or parts[0] != "SPEAKER":
            continue
        try:
            start, dur, speaker = float(parts[3]), float(parts[4]), parts[7]
        except (IndexError, ValueError):
            raise InputError(f"{path}: line {i + 1} is not an RTTM SPEAKER line "
                             "(SPEAKER uri channel start duration <NA> <NA> speaker ...)") from None
        if annotation.uri is None:
            annotation.uri = parts[1]
        if dur > 0:
            annotation[Segment(start, start + dur), f"t{i}"] = speaker
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
    InputError
        When the CSV or the RTTM file is missing or unreadable, the CSV lacks the ``start``, ``end`` and ``label``
        columns, a row has a time that is not a number or an unknown label, or the rows are not a sorted, gap-free
        partition.
    """
    labels_csv = Path(labels_csv)
    name = labels_csv.name.removesuffix(".labels.csv")
    rows: list[ReferenceRow] = []
    try:
        with open(labels_csv, newline="", encoding="utf-8") as handle:
            records = list(csv.DictReader(handle))
    except FileNotFoundError:
        raise InputError(f"labels file not found: {labels_csv}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"cannot read the labels file {labels_csv}: {err}") from None
    if records and not {"start", "end", "label"} <= set(records[0]):
        raise InputError(f"{labels_csv}: not a labels file (needs the columns start, end, label, gender, speaker)")
    for line, record in enumerate(records, start=2):
        label = (record["label"] or "").strip()
        if label not in LABEL_INDEX:
            raise InputError(f"{labels_csv}: unknown label {label!r}")
        try:
            start, end = float(record["start"]), float(record["end"])
            if not (math.isfinite(start) and math.isfinite(end)):  # 'inf' and 'nan' parse: a traceback downstream
                raise ValueError
        except (TypeError, ValueError):
            raise InputError(f"{labels_csv}: line {line}: start and end must be seconds, got "
                             f"{record['start']!r}, {record['end']!r}") from None
        row = ReferenceRow(start=start, end=end, label=label,
                           genders=_split(record.get("gender")), speakers=_split(record.get("speaker")))
        if rows and abs(row.start - rows[-1].end) > 1e-6:
            raise InputError(f"{labels_csv}: row at {row.start:.3f} does not start where the previous "
                             f"one ends ({rows[-1].end:.3f})")
        if row.end < row.start:
            raise InputError(f"{labels_csv}: row at {row.start:.3f} ends before it starts")
        rows.append(row)
    if not rows:
        raise InputError(f"{labels_csv}: no rows")
    rttm = labels_csv.with_name(f"{name}.rttm")
    annotation = read_rttm(rttm, uri=name)
    return Reference(name=name, duration=rows[-1].end, rows=tuple(rows), annotation=annotation)
