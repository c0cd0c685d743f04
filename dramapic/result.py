"""The ``AnalysisResult``: the one seam between analysis and every output (writers, renderer, archive, report).

``AnalysisResult.to_dict()`` is the ``dramapic/1`` JSON contract documented in README.md.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
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


def settings_sha256(settings: Mapping[str, Any]) -> str:
    """The checksum of a pipeline's settings (:meth:`dramapic.config.PipelineConfig.to_dict`): what a result
    records beside them and what a batch keys each run on, so that editing any value of the YAML changes it."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _r(value: float, digits: int = 3) -> float:
    return round(float(value), digits)


#: how far a set's sum may be from 1 and still be shares of one whole: the JSON keeps each share to 4 places, so
#: four shares that summed to 1 can sum to 1 ± 0.0002 as read back
WHOLE_TOLERANCE = 1e-3


def whole_percentages(*, shares: Mapping[str, float]) -> dict[str, int]:
    """Whole percentages of one whole that add up to exactly 100, by the largest-remainder (Hamilton) method.

    Each share gets the whole part of its percentage; the points still missing to 100 go one each to the shares
    with the largest fractional parts. Rounded each on its own, voice / song / noise / silence of 0.3333, 0.3333,
    0.3334 and 0 read 33 + 33 + 33 + 0 = 99 %; here they read 33 + 33 + 34 + 0.

    Parameters
    ----------
    shares : mapping of str to float
        Shares of one whole (the label shares of a duration, the female / male shares of the voice of known gender),
        meant to sum to 1; the result keeps the mapping's keys and order.

    Returns
    -------
    dict of str to int
        The whole percentage of each share. Equal fractional parts (to 9 decimals, below float noise) are settled
        in favour of the larger share, then of the one earlier in the mapping, so the same shares always read the
        same. A set that is not shares of one whole (its sum more than :data:`WHOLE_TOLERANCE` away from 1, as
        when all are 0, the gender shares of no voice of known gender; or a value negative, as a hand-edited JSON
        may have) is not made to add up: each value is rounded on its own, half to even, as it always was.

    Raises
    ------
    ValueError
        A value is NaN or infinite: it has no whole percentage.
    """
    values = {key: float(value) for key, value in shares.items()}
    bad = [key for key, value in values.items() if not math.isfinite(value)]
    if bad:
        raise ValueError(f"no whole percentage of {', '.join(f'{k}={values[k]}' for k in bad)}: not a share")
    total = math.fsum(values.values())
    if abs(total - 1.0) > WHOLE_TOLERANCE or any(value < 0 for value in values.values()):
        return {key: round(100 * value) for key, value in values.items()}
    # rounded to 9 places: 100 * 0.29 is 28.999999999999996, whose whole part 28 would make a tie-break of float noise
    quotas = {key: round(100 * value / total, 9) for key, value in values.items()}
    whole = {key: math.floor(quota) for key, quota in quotas.items()}
    missing = 100 - sum(whole.values())
    position = {key: index for index, key in enumerate(values)}
    ranked = sorted(values, key=lambda k: (-round(quotas[k] - whole[k], 9), -quotas[k], position[k]))
    for key in ranked[:max(0, missing)]:
        whole[key] += 1
    return whole


# from_dict reads JSON written by someone else (dramapic report takes any .dramapic.json): a value of the wrong
# type is a TypeError naming the field here, not a crash in whatever formats it later
def _num(value: Any, field_name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{field_name}: a number, not {value!r}")
    return float(value)


def _opt_num(value: Any, field_name: str) -> float | None:
    return None if value is None else _num(value, field_name)


def _text(value: Any, field_name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{field_name}: a string, not {value!r}")
    return value


def _opt_text(value: Any, field_name: str) -> str | None:
    return None if value is None else _text(value, field_name)


def _numbers(value: Any, field_name: str) -> dict[str, float]:
    if not isinstance(value, dict):
        raise TypeError(f"{field_name}: an object of numbers, not {value!r}")
    return {_text(k, field_name): _num(v, f"{field_name}.{k}") for k, v in value.items()}


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
        return cls(start=_num(data["start"], "segment start"), end=_num(data["end"], "segment end"),
                   label=_text(data["label"], "segment label"),
                   confidence=_num(data["confidence"], "segment confidence"),
                   scores=_numbers(data.get("scores", {}), "segment scores"),
                   gender=_opt_text(data.get("gender"), "segment gender"),
                   speaker=_opt_text(data.get("speaker"), "segment speaker"))


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
        return cls(id=_text(data["id"], "speaker id"), gender=_opt_text(data.get("gender"), "speaker gender"),
                   seconds=_num(data["seconds"], "speaker seconds"),
                   gender_confidence=_num(data.get("gender_confidence", 0.0), "speaker gender_confidence"))


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
        return cls(label=_text(data["label"], "genre label"), confidence=_num(data["confidence"], "genre confidence"),
                   scores=_numbers(data["scores"], "genre scores"))


@dataclass(frozen=True)
class Summary:
    """The composition of one video: shares of the whole duration, gender shares of voice time.

    ``gender_shares`` (female / male) are shares of the voice time whose gender is *known* and sum to 1 (both 0
    when none is); ``gender_unknown_share`` is the share of all voice time whose gender the model left unknown
    (its abstention rate). Both are None when gender was switched off, ``speakers`` None when diarization was:
    unknown, which is not the same as none. ``genre`` is None (unknown) when there was too little besides silence
    to judge (:data:`dramapic.analysis.composition.GENRE_MIN_CONTENT_S`).
    """

    duration: float
    shares: dict[str, float]
    gender_shares: dict[str, float] | None
    speakers: tuple[SpeakerSummary, ...] | None
    genre: Genre | None
    gender_unknown_share: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "duration": _r(self.duration),
            "shares": {k: _r(v, 4) for k, v in self.shares.items()},
            "gender_shares": None if self.gender_shares is None
            else {k: _r(v, 4) for k, v in self.gender_shares.items()},
            "gender_unknown_share": None if self.gender_unknown_share is None else _r(self.gender_unknown_share, 4),
            "speakers": None if self.speakers is None else [s.to_dict() for s in self.speakers],
            "genre": None if self.genre is None else self.genre.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Summary":
        genders, speakers, genre = data.get("gender_shares"), data.get("speakers"), data["genre"]
        if speakers is not None and not isinstance(speakers, list):
            raise TypeError(f"summary speakers: a list or null, not {speakers!r}")
        return cls(duration=_num(data["duration"], "summary duration"),
                   shares=_numbers(data["shares"], "summary shares"),
                   gender_shares=None if genders is None else _numbers(genders, "summary gender_shares"),
                   speakers=None if speakers is None else tuple(SpeakerSummary.from_dict(s) for s in speakers),
                   genre=None if genre is None else Genre.from_dict(genre),
                   gender_unknown_share=_opt_num(data.get("gender_unknown_share"), "summary gender_unknown_share"))


@dataclass(frozen=True)
class Source:
    """The input: its path as given, the duration analysed, the sha256 of its content, and which of its sound
    was analysed (a dub or the original, one channel of a dual-mono broadcast or their mix)."""

    path: str
    duration: float
    sha256: str
    #: the audio track analysed, from 0 among the audio tracks; None where unknown (a JSON written before it was
    #: recorded)
    audio_track: int | None = None
    #: the one channel analysed (``left``/``right``, ``--audio-channel``), None for the mix of the track's channels
    audio_channel: str | None = None
    #: the gain (dB) the analysis heard the sound with: 0 at its own level, more for a recording too quiet for
    #: stage 1 (:func:`dramapic.analysis.analyze.level_gain`; the outputs keep the file's sound); None where
    #: unknown (a JSON written before it was recorded)
    gain_db: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path, "duration": _r(self.duration), "sha256": self.sha256}
        if self.audio_track is not None:
            data.update(audio_track=self.audio_track, audio_channel=self.audio_channel)
        if self.gain_db is not None:
            data["gain_db"] = _r(self.gain_db, 1)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Source:
        track = data.get("audio_track")
        if track is not None and (isinstance(track, bool) or not isinstance(track, int) or track < 0):
            raise TypeError(f"source audio_track: a track number, not {track!r}")
        channel = data.get("audio_channel")
        # the channels --audio-channel chooses, of a track said (written back, a channel without one would be lost)
        if channel not in (None, "left", "right") or (channel is not None and track is None):
            raise TypeError(f"source audio_channel: left, right or null, with an audio_track, not {channel!r}")
        return cls(path=_text(data["path"], "source path"), duration=_num(data["duration"], "source duration"),
                   sha256=_text(data["sha256"], "source sha256"), audio_track=track,
                   audio_channel=channel, gain_db=_opt_num(data.get("gain_db"), "source gain_db"))


@dataclass(frozen=True)
class AnalysisResult:
    """Everything dramapic found in one input; outputs are written from this object alone."""

    source: Source
    pipeline_name: str
    pipeline_version: str
    models: tuple[dict[str, str], ...]
    segments: tuple[Segment, ...]
    summary: Summary
    #: every setting the analysis ran with (the YAML's, with the command line's changes); None where unknown (a
    #: result read back from a JSON written before they were recorded)
    pipeline_settings: Mapping[str, Any] | None = None

    @property
    def duration(self) -> float:
        return self.source.duration

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "source": self.source.to_dict(),
            "pipeline": self._pipeline_dict(),
            "models": [dict(m) for m in self.models],
            "segments": [s.to_dict() for s in self.segments],
            "summary": self.summary.to_dict(),
        }

    @property
    def pipeline_sha256(self) -> str | None:
        """The checksum of :attr:`pipeline_settings` (:func:`settings_sha256`); None where they are unknown."""
        return None if self.pipeline_settings is None else settings_sha256(self.pipeline_settings)

    def _pipeline_dict(self) -> dict[str, Any]:
        # the settings themselves, so that a run can be repeated from its JSON (saved as YAML they are a pipeline
        # file), and their checksum, which tells an edited copy of the default apart from the default at a glance
        named: dict[str, Any] = {"name": self.pipeline_name, "version": self.pipeline_version}
        if self.pipeline_settings is None:
            return named
        # as JSON holds them (a tuple of members is a list), so that the dict equals the JSON read back
        settings = json.loads(json.dumps(self.pipeline_settings, default=str))
        return {**named, "sha256": self.pipeline_sha256, "settings": settings}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AnalysisResult":
        src = data["source"]
        settings = data["pipeline"].get("settings")
        if settings is not None and not isinstance(settings, dict):
            raise TypeError(f"pipeline settings: an object, not {settings!r}")
        if not isinstance(data["segments"], list) or not isinstance(data["models"], list):
            raise TypeError("segments and models: lists")
        return cls(
            source=Source.from_dict(src),
            pipeline_name=_text(data["pipeline"]["name"], "pipeline name"),
            pipeline_version=_text(data["pipeline"]["version"], "pipeline version"),
            models=tuple(dict(m) for m in data["models"]),
            segments=tuple(Segment.from_dict(s) for s in data["segments"]),
            summary=Summary.from_dict(data["summary"]),
            pipeline_settings=settings,
        )
