"""The ``AnalysisResult``: the one seam between analysis and every output (writers, renderer, archive, report).

``AnalysisResult.to_dict()`` is the ``dramapic/1`` JSON contract documented in README.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA = "dramapic/1"

# The grid every module works on, defined here only: decoded audio is 16 kHz mono float32, frames are 10 ms.
SAMPLE_RATE = 16_000
FRAME_S = 0.01
FRAME_SAMPLES = 160
#: stage-1 labels, in the column order of every probability array
STAGE1_LABELS = ("voice", "song", "noise", "silence")
#: stage-2 gender labels, in the column order of the gender model's probabilities
GENDERS = ("female", "male")


def _r(value: float, digits: int = 3) -> float:
    return round(float(value), digits)


@dataclass(frozen=True)
class Segment:
    """A labelled stretch of the time line; ``gender`` and ``speaker`` are set only for voice."""

    start: float
    end: float
    label: str
    confidence: float
    scores: dict[str, float] = field(default_factory=dict)
    gender: str | None = None
    speaker: str | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": _r(self.start), "end": _r(self.end), "label": self.label,
            "gender": self.gender, "speaker": self.speaker,
            "confidence": _r(self.confidence), "scores": {k: _r(v) for k, v in self.scores.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Segment":
        return cls(start=data["start"], end=data["end"], label=data["label"], confidence=data["confidence"],
                   scores=dict(data.get("scores", {})), gender=data.get("gender"), speaker=data.get("speaker"))


@dataclass(frozen=True)
class SpeakerSummary:
    id: str
    gender: str | None
    seconds: float
    gender_confidence: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "gender": self.gender, "seconds": _r(self.seconds),
                "gender_confidence": _r(self.gender_confidence)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SpeakerSummary":
        return cls(id=data["id"], gender=data.get("gender"), seconds=data["seconds"],
                   gender_confidence=data.get("gender_confidence", 0.0))


@dataclass(frozen=True)
class Genre:
    label: str
    confidence: float
    scores: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "confidence": _r(self.confidence),
                "scores": {k: _r(v) for k, v in self.scores.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Genre":
        return cls(label=data["label"], confidence=data["confidence"], scores=dict(data["scores"]))


@dataclass(frozen=True)
class Summary:
    """The composition of one video: shares of the whole duration, gender shares of voice time.

    ``gender_shares`` (female / male) are shares of the voice time whose gender is *known* and sum to 1 (both 0
    when none is); ``gender_unknown_share`` is the share of all voice time whose gender the model left unknown
    (its abstention rate). Both are None when gender was switched off, ``speakers`` None when diarization was:
    unknown, which is not the same as none.
    """

    duration: float
    shares: dict[str, float]
    gender_shares: dict[str, float] | None
    speakers: tuple[SpeakerSummary, ...] | None
    genre: Genre
    gender_unknown_share: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "duration": _r(self.duration),
            "shares": {k: _r(v, 4) for k, v in self.shares.items()},
            "gender_shares": None if self.gender_shares is None
            else {k: _r(v, 4) for k, v in self.gender_shares.items()},
            "gender_unknown_share": None if self.gender_unknown_share is None else _r(self.gender_unknown_share, 4),
            "speakers": None if self.speakers is None else [s.to_dict() for s in self.speakers],
            "genre": self.genre.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Summary":
        genders, speakers = data.get("gender_shares"), data.get("speakers")
        return cls(duration=data["duration"], shares=dict(data["shares"]),
                   gender_shares=None if genders is None else dict(genders),
                   speakers=None if speakers is None else tuple(SpeakerSummary.from_dict(s) for s in speakers),
                   genre=Genre.from_dict(data["genre"]), gender_unknown_share=data.get("gender_unknown_share"))


@dataclass(frozen=True)
class Source:
    path: str
    duration: float
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "duration": _r(self.duration), "sha256": self.sha256}


@dataclass(frozen=True)
class AnalysisResult:
    """Everything dramapic found in one input; outputs are written from this object alone."""

    source: Source
    pipeline_name: str
    pipeline_version: str
    models: tuple[dict[str, str], ...]
    segments: tuple[Segment, ...]
    summary: Summary

    @property
    def duration(self) -> float:
        return self.source.duration

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "source": self.source.to_dict(),
            "pipeline": {"name": self.pipeline_name, "version": self.pipeline_version},
            "models": [dict(m) for m in self.models],
            "segments": [s.to_dict() for s in self.segments],
            "summary": self.summary.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AnalysisResult":
        src = data["source"]
        return cls(
            source=Source(path=src["path"], duration=src["duration"], sha256=src["sha256"]),
            pipeline_name=data["pipeline"]["name"], pipeline_version=data["pipeline"]["version"],
            models=tuple(dict(m) for m in data["models"]),
            segments=tuple(Segment.from_dict(s) for s in data["segments"]),
            summary=Summary.from_dict(data["summary"]),
        )
