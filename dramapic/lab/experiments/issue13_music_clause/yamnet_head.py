"""What the three scripts of this folder read from YAMNet's own AudioSet head, defined once: the families member
(the shipped, untrained ``stage1-yamnet-families`` table, loaded as the product loads it), the family columns the
clauses use, and their centred 3 s mean (``uniform_filter1d`` with edges repeated, as stage 1's own context
features are taken)."""
import numpy as np
from scipy.ndimage import uniform_filter1d

from dramapic.analysis import stage1
from dramapic.models import load_manifest

CONTEXT_FRAMES = 301   # 3 s of 10 ms frames, centred
MUSIC_SIDE = [stage1.FAMILY_NAMES.index(k) for k in ("singing", "choir", "rap", "music")]
SINGING_SIDE = [stage1.FAMILY_NAMES.index(k) for k in ("singing", "choir", "rap")]
SPEECH = stage1.FAMILY_NAMES.index("speech")


def families_member():
    """``stage1-yamnet-families`` from the manifest (sha256-checked)."""
    return stage1.load_member(load_manifest(), "stage1-yamnet-families")


def context_mean(values: np.ndarray) -> np.ndarray:
    """Centred 3 s mean of a frame series (n,), edges repeated."""
    return uniform_filter1d(np.asarray(values, np.float64), size=CONTEXT_FRAMES, mode="nearest")


def side_means(fam: np.ndarray, side: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """3 s means of the max over the ``side`` families and of the speech family; ``fam`` (n, len(FAMILY_NAMES))."""
    return context_mean(fam[:, side].max(axis=1)), context_mean(fam[:, SPEECH])
