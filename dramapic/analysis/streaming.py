"""The streamed first pass and the audio spool.

:class:`ChunkedStage1` runs the detectors and the stage-1 model over audio fed piece by piece, one chunk of
:data:`CHUNK_S` (plus :data:`CONTEXT_S` of context either side) at a time, keeping only the 10 ms frame arrays;
:class:`SpooledAudio` is the decoded audio in a temporary raw file, read back a slice at a time by stage 2.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from . import detectors
from ..errors import OutputError
from ..lifecycle import removed_whole
from ..progress import ProgressHook, silent_hook
from .detectors import DetectorScores
from ..result import FRAME_S, FRAME_SAMPLES, SAMPLE_RATE

log = logging.getLogger(__name__)

#: Audio analysed per chunk in the streamed first pass (rounded to the 12 s grid); also the most audio stage 2
#: reads back from the spool at once. Inputs shorter than this are analysed in one piece, as a whole. The
#: detectors' transient memory grows with it (FireRedVAD about 1 MB per second of audio), the share of audio
#: analysed twice as context shrinks with it.
CHUNK_S = 120.0
#: Audio either side of a chunk that its detectors and stage-1 members see but whose frames come from the
#: neighbouring chunk. It must cover their receptive field: FireRedVAD (measured: frames equal from 4 s),
#: ``detector_features`` (+-1.5 s of scores) and the window members (1 s windows, YAMNet's 0.96 s patches).
#: silero brings its own lead-in (:func:`detectors.silero_lead_in`).
CONTEXT_S = 4.0
#: Decoded audio arrives from ffmpeg in pieces of this length.
PIECE_S = 30.0
# 12 s: a multiple of the 10 ms frame, of silero's 0.16 s alignment, of the window members' hops (0.5 s; YAMNet
# 0.48 s) and of their STFT hops (128, 160, 256 samples): audio analysed from a multiple of it sees the whole
# recording's frame and window grids
_GRID_SAMPLES = 192_000


def grid_samples(seconds: float) -> int:
    """``seconds`` in samples, rounded to the 12 s grid, at least one step of it."""
    return max(1, int(round(seconds * SAMPLE_RATE / _GRID_SAMPLES))) * _GRID_SAMPLES


class ChunkedStage1:
    """Detectors and the stage-1 model over audio fed piece by piece, one chunk (plus context) at a time.

    Feed consecutive pieces of any length with :meth:`feed`, then call :meth:`finish` once. A chunk is analysed as
    soon as its right context has arrived; the audio kept meanwhile is one chunk, its contexts, silero's lead-in
    and the pieces not yet used, whatever the length of the input.

    Chunk ``k`` reads the audio from ``k * chunk`` (on the grid) and gives the frames from ``k * chunk + context``
    (from 0 for the first) to ``(k + 1) * chunk + context``; it reads ``context`` further than that.

    Parameters
    ----------
    model : DetectorCombiner or Stage1Ensemble
        Anything with ``frame_probabilities(audio, scores) -> (n_frames, 4)`` for a chunk of at least 1 s.
    chunk_s, context_s : float
        Chunk length (rounded to the 12 s grid, at least 12 s) and context either side (rounded to 10 ms).
    expected_s : float
        Expected duration (for progress only; 0 when unknown).
    progress : ProgressHook
        Called as ``progress("detectors", chunks_done, chunks_expected)``.
    timings : dict
        ``detectors`` and ``stage1`` seconds are added to it.
    """

    def __init__(self, model, *, chunk_s: float = CHUNK_S, context_s: float = CONTEXT_S, expected_s: float = 0.0,
                 progress: ProgressHook = silent_hook, timings: dict[str, float] | None = None) -> None:
        self._model = model
        self._chunk = grid_samples(chunk_s)
        self._context = max(0, int(round(context_s / FRAME_S))) * FRAME_SAMPLES
        self._expected = max(1, int(np.ceil(expected_s * SAMPLE_RATE / self._chunk)))
        self._progress = progress
        self._timings = timings if timings is not None else {}
        self._timings["detectors"] = self._timings["stage1"] = 0.0
        self._pieces: list[np.ndarray] = []
        self._base = 0            # position in the recording of the first sample kept
        self._core = 0            # start of the next chunk's own frames
        self._scores: list[np.ndarray] = []
        self._probabilities: list[np.ndarray] = []
        self._finished = False
        #: samples fed so far
        self.n_samples = 0

    def feed(self, piece: np.ndarray) -> None:
        """Take the next piece of audio (shape (n,), 16 kHz mono float32) and analyse every chunk it completes."""
        if self._finished:
            raise RuntimeError("feed() after finish()")
        piece = np.asarray(piece, dtype=np.float32)
        if piece.ndim != 1:
            raise ValueError(f"audio must be mono with shape (n_samples,), got {piece.shape}")
        if piece.shape[0]:
            self._pieces.append(piece)
            self.n_samples += piece.shape[0]
        while self.n_samples >= self._next_end() + self._context:
            self._analyse(self._next_end(), self._next_end() + self._context)
            done = len(self._probabilities)
            self._progress("detectors", done, max(self._expected, done + 1))

    def finish(self) -> tuple[DetectorScores, np.ndarray]:
        """Analyse what is left and return the whole recording's frames.

        Returns
        -------
        scores : DetectorScores
            Arrays of shape (n_frames,), ``n_frames = detectors.n_frames_for(n_samples)``.
        probabilities : np.ndarray, shape (n_frames, 4), float32
            Stage-1 probabilities, columns in ``STAGE1_LABELS`` order.
        """
        if not self._finished:
            if self._core < self.n_samples or not self._probabilities:
                self._analyse(self.n_samples, self.n_samples)
            self._finished = True
            self._pieces = []
            done = len(self._probabilities)
            self._progress("detectors", done, done)
        columns = np.concatenate(self._scores).T
        return DetectorScores(*columns), np.concatenate(self._probabilities)

    def _next_end(self) -> int:
        return (len(self._probabilities) + 1) * self._chunk + self._context

    def _analyse(self, end: int, stop: int) -> None:
        """Frames ``[core, end)`` from the audio ``[core - context, stop)``."""
        core = self._core
        start = max(0, core - self._context)
        lead = detectors.silero_lead_in(start)
        audio = self._audio(lead, stop)
        clock = time.perf_counter()
        scores = detectors.run_detectors(audio, offset=lead, lead_in=start - lead)
        self._timings["detectors"] += time.perf_counter() - clock
        clock = time.perf_counter()
        probabilities = self._model.frame_probabilities(audio[start - lead:], scores)
        self._timings["stage1"] += time.perf_counter() - clock
        first = (core - start) // FRAME_SAMPLES
        count = detectors.n_frames_for(end) - core // FRAME_SAMPLES
        self._scores.append(scores.as_matrix()[first:first + count])
        self._probabilities.append(np.asarray(probabilities, dtype=np.float32)[first:first + count])
        self._core = end
        # keep only what the next chunk reads: its left context and silero's lead-in before that
        keep = detectors.silero_lead_in(max(0, end - self._context))
        if keep > self._base and self._pieces:
            self._pieces[0] = self._pieces[0][keep - self._base:]
            self._base = keep

    def _audio(self, begin: int, stop: int) -> np.ndarray:
        if len(self._pieces) > 1:
            self._pieces = [np.concatenate(self._pieces)]
        return self._pieces[0][begin - self._base:stop - self._base] if self._pieces else np.zeros(0, np.float32)


def raised(audio: np.ndarray, gain: float) -> np.ndarray:
    """``audio`` (shape (n,), float32) times ``gain``, clipped to [-1, 1] as every model's input was in training (a
    click at full scale in a faint recording must not leave the range); ``audio`` itself where ``gain`` is 1."""
    if gain == 1.0:
        return audio
    return np.clip(audio * np.float32(gain), -1.0, 1.0).astype(np.float32, copy=False)


class SpooledAudio:
    """Read-only mono float32 audio in a raw file, read on demand: ``audio[a:b]`` reads just those samples.

    Stands in for the decoded array, shape (n_samples,), where only slices are taken; nothing but the slice asked
    for is held in memory (no memory map, whose touched pages would count as resident). Use as a context manager,
    or call :meth:`close`.

    Parameters
    ----------
    path : Path
        Native-endian float32 samples, nothing else.
    gain : float, optional
        Every sample read is multiplied by it and clipped to [-1, 1] (a quiet recording raised for the
        analysis, :func:`~dramapic.analysis.analyze.level_gain`); 1.0 reads the samples as spooled.
    """

    dtype = np.dtype(np.float32)
    ndim = 1

    def __init__(self, path: str | Path, *, gain: float = 1.0) -> None:
        self.path = Path(path)
        self.gain = float(gain)
        self._file = open(self.path, "rb", buffering=0)
        self._n = os.fstat(self._file.fileno()).st_size // self.dtype.itemsize

    @property
    def shape(self) -> tuple[int]:
        return (self._n,)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, key) -> np.ndarray:
        """``audio[a:b]`` (step 1) as an array of shape (b - a,), or one sample ``audio[i]``."""
        if isinstance(key, (int, np.integer)):
            index = int(key) + (self._n if key < 0 else 0)
            if not 0 <= index < self._n:
                raise IndexError(f"index {key} is out of range for {self._n} samples")
            return self.read(index, index + 1)[0]
        if not isinstance(key, slice):
            raise TypeError(f"SpooledAudio takes an integer or a slice, not {type(key).__name__}")
        start, stop, step = key.indices(self._n)
        if step != 1:
            raise ValueError("SpooledAudio slices take no step")
        return self.read(start, max(start, stop))

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` (within the audio), shape (stop - start,), float32, writable."""
        out = np.empty(stop - start, dtype=self.dtype)
        view = memoryview(out).cast("B")
        done, offset = 0, start * self.dtype.itemsize
        while done < len(view):
            got = os.preadv(self._file.fileno(), [view[done:]], offset + done)
            if got == 0:
                raise EOFError(f"{self.path} ends before sample {stop}")
            done += got
        return raised(out, self.gain)

    def __array__(self, dtype=None, copy=None):
        # correct but defeats the purpose: callers are meant to slice
        log.warning("the whole spooled audio (%d samples) was read into memory", self._n)
        data = self.read(0, self._n)
        return data if dtype is None else data.astype(dtype, copy=False)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "SpooledAudio":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


SPOOL_PREFIX = "dramapic-spool-"
#: every scratch folder :func:`scratch_dir` makes starts so (the spool's, the burn-in's subtitle script's)
SCRATCH_PREFIX = "dramapic-"
#: held locked (flock) by the run that owns a spool folder; one nobody holds was left by a run that was killed
SPOOL_LOCK = ".in-use"


def remove_stale_spools(root: str | Path) -> list[Path]:
    """Remove the spool folders under ``root`` left by runs killed outright (``kill -9``, the OOM killer: no
    clean-up runs), about 230 MB per hour of input each. A folder counts as left behind only when its lock file
    exists and nobody holds it; a folder still being made (no lock yet) or in use is never touched."""
    import fcntl
    import shutil

    removed = []
    # any scratch folder of scratch_dir's: only one holding an unheld lock file is removed, never another program's
    for folder in sorted(Path(root).glob(f"{SCRATCH_PREFIX}*")):
        try:
            handle = os.open(folder / SPOOL_LOCK, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: a live run's (or a file system without locks: leave it)
            os.close(handle)
            continue
        try:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        finally:
            os.close(handle)
    if removed:
        log.info("removed %d scratch folder(s) (audio spools, subtitle scripts) left by runs that were killed",
                 len(removed))
    return removed


@contextlib.contextmanager
def scratch_dir(*, prefix: str = SPOOL_PREFIX, purpose: str = "the audio spool"):
    """A temporary folder (for ``purpose``: the audio spool, by default), removed on exit; :class:`OutputError`
    when none can be made. ``prefix`` must start with :data:`SCRATCH_PREFIX`.

    While in use it holds a locked :data:`SPOOL_LOCK` file, so that a later run can tell a folder left by a killed
    run (:func:`remove_stale_spools`, called here first) from one in use."""
    import fcntl

    remove_stale_spools(tempfile.gettempdir())
    try:
        scratch = tempfile.TemporaryDirectory(prefix=prefix)
    except OSError as err:
        raise OutputError(f"cannot create a temporary folder in {tempfile.gettempdir()} for {purpose}: "
                          f"{err.strerror} (set TMPDIR to a writable folder)") from None
    with removed_whole(scratch) as folder:  # whole: a SIGTERM waits until the spool is gone
        handle = None
        try:
            # locked under a private name, then renamed: the lock file never exists unlocked
            handle, name = tempfile.mkstemp(dir=folder, prefix=".lock-")
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(name, os.path.join(folder, SPOOL_LOCK))
        except OSError:  # no locks here: the folder is only removed by this run, as before
            pass
        try:
            yield folder
        finally:
            if handle is not None:
                os.close(handle)
