"""What the archive database keeps and gives, as records: a file it knows (:class:`KnownFile`), one of its runs
(:class:`KnownRun`), what a batch records of one file (:class:`RunRecord`) and one video as the reports show it
(:class:`VideoRecord`, made from an analysis by :func:`video_record`). :mod:`dramapic.archive.store` reads and
writes them; the batch and the report pass them around.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..analysis.composition import gender_seconds
from ..result import AnalysisResult

#: the genre of a run with too little but silence to judge (its JSON's null): summaries.genre is NOT NULL, so the
#: word is kept, with confidence 0 and no scores, as the reports show it
UNKNOWN_GENRE = "unknown"


@dataclass(frozen=True)
class KnownFile:
    """What the database remembers about one archive path."""

    id: int
    path: str
    size: int
    mtime_ns: int
    sha256: str | None
    current_run_id: int | None
    missing_since: float | None = None     # when a batch found it gone from the archive; None while it is there


@dataclass(frozen=True)
class KnownRun:
    """One (file, key) run as stored."""

    id: int
    file_id: int
    key: str
    status: str
    attempts: int
    batch_id: int | None
    outputs: dict[str, str]
    models: tuple[dict[str, Any], ...] = ()
    error: str | None = None
    error_key: str | None = None     # the key whose processing failed (on a done run: a redo's, see Store.record)


@dataclass(frozen=True)
class RunRecord:
    """Everything the store needs to record one processed file (built by :mod:`dramapic.archive.batch`)."""

    path: str                       # relative to the archive root, POSIX separators
    size: int
    mtime_ns: int
    key: str
    status: str                     # "done" | "failed"
    sha256: str | None
    pipeline_name: str
    pipeline_version: str
    pipeline_sha256: str
    models: tuple[dict[str, Any], ...]
    options: dict[str, Any]
    started: float
    finished: float
    seconds: float
    worker: str = ""
    duration: float | None = None
    error_type: str | None = None
    error: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)   # kind -> path relative to OUT_DIR
    result: AnalysisResult | None = None
    #: a failure that came after this run's outputs replaced the folder's (the file changed while it was
    #: processed): the failure becomes current even over a finished run, whose outputs are no longer there
    outputs_written: bool = False
    #: what ``dramapic run`` would have told its user about the file (:mod:`~dramapic.archive.notes`)
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.status not in ("done", "failed"):
            raise ValueError(f"status must be done or failed, not {self.status!r}")
        if (self.status == "done") != (self.result is not None):
            raise ValueError("a done run carries its AnalysisResult; a failed run carries none")


@dataclass(frozen=True)
class VideoRecord:
    """One archive file as the report shows it: its current run's summary, or its failure."""

    path: str
    status: str
    duration: float | None = None
    #: which sound of the file the figures describe (:func:`audio_analysed`); None where not known (a run recorded
    #: before dramapic kept it, a JSON written before it was recorded) or nothing was analysed (a failed file)
    audio_track: int | None = None
    audio_channel: str | None = None        # "left" | "right" | "mix"
    #: the gain in dB the analysis heard the file with (0: its own level; above: a recording too quiet for stage 1,
    #: raised, whose figures are the raised sound's); None where not known (a run recorded before the archive kept it
    #: (schema 11), a JSON written before the key) or nothing was analysed (a failed file)
    gain_db: float | None = None
    shares: dict[str, float] = field(default_factory=dict)
    # the four gender figures are None for a run made with gender switched off (--no-gender): not measured
    female_share: float | None = 0.0
    male_share: float | None = 0.0
    female_seconds: float | None = 0.0
    male_seconds: float | None = 0.0
    unknown_seconds: float | None = 0.0     # voice whose gender the model left unknown
    n_speakers: int | None = 0              # None: diarization was switched off (--no-speakers), not known
    speakers: tuple[dict[str, Any], ...] = ()
    genre: str | None = None
    genre_confidence: float = 0.0
    seconds: float | None = None            # wall-clock processing time
    finished: float | None = None            # unix time
    worker: str = ""
    error_type: str | None = None           # failed: why; done: why a later redo failed (this result was kept)
    error: str | None = None
    attempts: int = 1
    #: the run's notes (a DC offset, a stale subtitle file); None where not known (a run recorded before dramapic
    #: kept them, one run's JSON, which does not hold them)
    notes: tuple[str, ...] | None = None
    #: a done run's failed redo (``error``): the notes that attempt gave (its own, not this result's); empty where
    #: none, or where the failure was noted before dramapic kept them (schema 10)
    redo_notes: tuple[str, ...] = ()

    @property
    def realtime_factor(self) -> float | None:
        """Seconds of audio processed per second of processing (higher is faster)."""
        if not self.duration or not self.seconds:
            return None
        return self.duration / self.seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "status": self.status, "duration": self.duration, "audio_track": self.audio_track,
            "audio_channel": self.audio_channel, "gain_db": self.gain_db, "shares": dict(self.shares),
            "female_share": self.female_share, "male_share": self.male_share,
            "female_seconds": self.female_seconds, "male_seconds": self.male_seconds,
            "unknown_seconds": self.unknown_seconds,
            "n_speakers": self.n_speakers, "speakers": [dict(s) for s in self.speakers], "genre": self.genre,
            "genre_confidence": self.genre_confidence, "seconds": self.seconds, "finished": self.finished,
            "worker": self.worker, "error_type": self.error_type, "error": self.error, "attempts": self.attempts,
            "notes": None if self.notes is None else list(self.notes), "redo_notes": list(self.redo_notes),
        }


def audio_analysed(result: AnalysisResult) -> tuple[int | None, str | None]:
    """The audio track and channel ``result`` describes, as the archive keeps them (``runs.audio_track`` and
    ``runs.audio_channel``): the channel is ``left`` / ``right``, or ``mix`` for the mix of the track's channels (the
    JSON's null, which there means the mix only beside a track). Both None for a result that does not say (a JSON
    written before they were recorded): not known, which is not track 0's mix."""
    source = result.source
    if source.audio_track is None:
        return None, None
    return source.audio_track, source.audio_channel or "mix"


def video_record(result: AnalysisResult, *, path: str | None = None, seconds: float | None = None,
                 finished: float | None = None, worker: str = "") -> VideoRecord:
    """The :class:`VideoRecord` of one analysis (what ``dramapic report RUN.json`` shows)."""
    summary = result.summary
    by_gender = gender_seconds(result)
    measured = summary.gender_shares is not None  # None: gender switched off, nothing to show as 0 %
    track, channel = audio_analysed(result)
    return VideoRecord(
        path=path if path is not None else result.source.path, status="done", duration=result.duration,
        audio_track=track, audio_channel=channel, gain_db=result.source.gain_db, shares=dict(summary.shares),
        female_share=float(summary.gender_shares.get("female", 0.0)) if measured else None,
        male_share=float(summary.gender_shares.get("male", 0.0)) if measured else None,
        female_seconds=by_gender["female"] if measured else None, male_seconds=by_gender["male"] if measured else None,
        unknown_seconds=by_gender["unknown"] if measured else None,
        n_speakers=None if summary.speakers is None else len(summary.speakers),
        speakers=tuple(s.to_dict() for s in summary.speakers or ()),
        genre=summary.genre.label if summary.genre else UNKNOWN_GENRE,
        genre_confidence=summary.genre.confidence if summary.genre else 0.0, seconds=seconds, finished=finished,
        worker=worker)
