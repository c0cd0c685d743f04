"""Training data: reading ``manifest.csv`` rows (and ``manifest_extra.csv`` ones, same columns) and loading their
audio; the augmentation every training target shares (music or noise under speech at an SNR, telephone band, gain,
room reverberation, low-pass, lossy re-encoding).

Only ``split == "train"`` rows are ever fitted; ``dev`` rows only measure.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import InputError
from ..result import GENDERS, SAMPLE_RATE

log = logging.getLogger(__name__)

EVAL_SEED = 20_240_601
_CLIPS_PER_BATCH = 16
"""Fixed seed of the noisy dev evaluation, independent of the training seed so metrics stay comparable."""

_SNR_DB = (0.0, 20.0)
_GAIN_DB = (-24.0, 6.0)
_P_MIX = 0.85
_P_PHONE = 0.25
_P_CROP = 0.5
_CROP_S = (1.5, 4.0)


class NotEnoughData(InputError, ValueError):
    """The training data hold too little to fit a model (one gender, fewer than 3 speakers): an InputError for the
    CLI, and the ValueError the fitting functions have always raised."""


def smoke_hint(max_clips: int | None) -> str:
    """What a :class:`NotEnoughData` message adds when a smoke run (``--max-clips``) took the clips: '' otherwise."""
    return "" if max_clips is None else f" (a smoke run of {max_clips} clip(s) per split: take more)"


@dataclass(frozen=True)
class _Clip:
    path: Path
    gender: str
    speaker: str
    source: str
    duration: float


#: the columns the lab reads from every row of a data manifest (the shared manifests have a few more)
DATA_COLUMNS: tuple[str, ...] = ("path", "label", "subtype", "gender", "speaker", "source", "split", "duration_s")


def read_manifest(manifest_csv: Path, *, columns: Sequence[str] = ("path",),
                  empty_ok: bool = False) -> list[dict[str, str]]:
    """The rows of a data manifest.

    Parameters
    ----------
    manifest_csv : Path
        The CSV file.
    columns : sequence of str
        Columns its header must name (:data:`DATA_COLUMNS` for a data manifest; ``path`` always).
    empty_ok : bool
        Whether a header without rows is a manifest of no clips (an extra manifest) rather than an error.

    Raises
    ------
    InputError
        The file is missing or unreadable, has no rows (unless ``empty_ok``) or lacks one of ``columns``.
    """
    manifest_csv = Path(manifest_csv)
    try:
        # utf-8-sig: a manifest saved by Excel or Notepad starts with a byte-order mark, which would make the first
        # column "\ufeffpath" and the file "no rows with a 'path' column"; a file without one reads the same
        with open(manifest_csv, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            header = reader.fieldnames or []
    except FileNotFoundError:
        raise InputError(f"data manifest not found: {manifest_csv}") from None
    except IsADirectoryError:
        raise InputError(f"{manifest_csv} is a directory, not a data manifest (manifest.csv)") from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"cannot read the data manifest {manifest_csv}: {err}") from None
    if (not rows and not (empty_ok and header)) or "path" not in header:
        raise InputError(f"{manifest_csv} has no rows with a 'path' column; is it a dramapic data manifest?")
    missing = [c for c in columns if c not in header]
    if missing:
        raise InputError(f"{manifest_csv} lacks the column(s) {', '.join(missing)}; a dramapic data manifest has "
                         f"{', '.join(DATA_COLUMNS)}")
    return rows


#: the data manifests of ``../shared/data``, in the order every lab tool reads (and fingerprints) them
DATA_MANIFESTS: tuple[str, ...] = ("manifest.csv", "manifest_extra.csv", "manifest_extra_music.csv")


def manifests_beside(manifest_csv: Path, names: Sequence[str]) -> list[Path]:
    """``manifest_csv`` and those of ``names`` (``manifest_extra.csv``, ...) that lie next to it, in that order:
    the extra manifests share its columns and data root."""
    manifest_csv = Path(manifest_csv)
    extra = [manifest_csv.with_name(name) for name in names]
    return [manifest_csv] + [m for m in extra if m.is_file() and m != manifest_csv]


def _must_exist(path: Path) -> None:
    """A clip the manifests list but the data folder lacks is one line naming its path: libsndfile's "System
    error." (a traceback where nothing caught it) and ffmpeg's words about the bare file name named neither."""
    if not Path(path).is_file():
        raise InputError(f"clip listed in the manifest not found: {path}")


def check_listed_clips(paths: Iterable[Path]) -> None:
    """Every clip of ``paths`` (listed by a data manifest) is a file: what a long pass over the clips (the stage-1
    mixes, the embedding pass) checks before it starts, where :func:`_must_exist` found a missing one only when its
    turn came.

    Raises
    ------
    InputError
        Naming the first missing clip (in path order) and how many are missing.
    """
    listed = {Path(p) for p in paths}
    missing = sorted(p for p in listed if not p.is_file())
    if missing:
        more = f" (and {len(missing) - 1} more of the {len(listed)} clips)" if len(missing) > 1 else ""
        raise InputError(f"clip listed in the manifest not found: {missing[0]}{more}")


def _load(path: Path) -> np.ndarray:
    import soundfile as sf

    _must_exist(path)
    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sr != SAMPLE_RATE:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(sr, SAMPLE_RATE)
        audio = resample_poly(audio, SAMPLE_RATE // g, sr // g).astype(np.float32)
    return audio


def load_audio(path: Path) -> np.ndarray:
    """A clip as float32 mono at 16 kHz, shape (n,): through libsndfile, or through ffmpeg (:mod:`dramapic.media`)
    for the files libsndfile cannot read (some Opus and MP3 files of the extra manifests)."""
    import soundfile as sf

    try:
        return _load(path)
    except (RuntimeError, sf.LibsndfileError):
        from .. import media

        return np.asarray(media.decode_audio(media.probe(Path(path))), dtype=np.float32)


def _load_piece(path: Path, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random stretch of ``n`` samples of the clip at ``path`` (looped when shorter), read without decoding
    the whole file where possible."""
    import soundfile as sf

    _must_exist(path)
    with sf.SoundFile(str(path)) as handle:
        frames, sr = handle.frames, handle.samplerate
        if sr == SAMPLE_RATE and frames > n:
            handle.seek(int(rng.integers(0, frames - n + 1)))
            return handle.read(n, dtype="float32", always_2d=True).mean(axis=1)
    return _bed_piece(_load(path), n, rng)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def _bed_piece(bed: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if len(bed) == 0:
        return np.zeros(n, dtype=np.float32)
    if len(bed) < n:
        bed = np.tile(bed, int(np.ceil(n / len(bed))))
    start = int(rng.integers(0, len(bed) - n + 1))
    return bed[start:start + n]


def mix_at_snr(speech: np.ndarray, bed: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``speech`` (n,) plus a random stretch of ``bed`` (looped if short) scaled to ``snr_db`` below it."""
    piece = _bed_piece(bed, len(speech), rng)
    s, b = _rms(speech), _rms(piece)
    if s <= 0 or b <= 0:
        return speech.copy()
    return (speech + piece * (s / b) * 10.0 ** (-snr_db / 20.0)).astype(np.float32)


def telephone(audio: np.ndarray) -> np.ndarray:
    """Band-limit to 300-3400 Hz (4th-order Butterworth band-pass)."""
    from scipy.signal import butter, sosfilt

    sos = butter(4, [300.0, 3400.0], btype="bandpass", fs=SAMPLE_RATE, output="sos")
    return sosfilt(sos, audio).astype(np.float32)


def augment_clip(speech: np.ndarray, beds: Sequence[Path | np.ndarray],
                 rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """One augmented copy of ``speech`` (n,) and a short description of what was done.

    ``beds`` are clip paths (a stretch is read from the file) or clips already decoded, shape (m,) each; both draw
    the same random numbers, so a run is reproducible either way."""
    done = []
    x = speech
    if rng.random() < _P_CROP and len(x) > _CROP_S[1] * SAMPLE_RATE:
        n = int(rng.uniform(*_CROP_S) * SAMPLE_RATE)
        start = int(rng.integers(0, len(x) - n + 1))
        x = x[start:start + n]
        done.append("crop")
    if beds and rng.random() < _P_MIX:
        chosen = beds[int(rng.integers(len(beds)))]
        bed = (_bed_piece(chosen, len(x), rng) if isinstance(chosen, np.ndarray)
               else _load_piece(chosen, len(x), rng))
        x = mix_at_snr(x, bed, float(rng.uniform(*_SNR_DB)), rng)
        done.append("mix")
    if rng.random() < _P_PHONE:
        x = telephone(x)
        done.append("phone")
    x = np.clip(x * 10.0 ** (rng.uniform(*_GAIN_DB) / 20.0), -1.0, 1.0).astype(np.float32)
    return x, "+".join(done) or "gain"


def _voice_clips(rows: list[dict[str, str]], root: Path, split: str) -> list[_Clip]:
    return [
        _Clip(root / r["path"], r["gender"], r["speaker"], r["source"], float(r["duration_s"]))
        for r in rows
        if r["split"] == split and r["label"] == "voice" and r["gender"] in GENDERS
    ]


def _subset(clips: list[_Clip], max_clips: int | None, rng: np.random.Generator) -> list[_Clip]:
    """At most ``max_clips`` clips, half of each gender where possible (seeded)."""
    if max_clips is None or max_clips >= len(clips):
        return clips
    picked: list[_Clip] = []
    for i, g in enumerate(GENDERS):
        pool = [c for c in clips if c.gender == g]
        take = min(len(pool), (max_clips + 1 - i) // 2)
        picked += [pool[j] for j in sorted(rng.choice(len(pool), size=take, replace=False))]
    return picked




def room_impulse(rng: np.random.Generator, *, rt60: float | None = None,
                 tail_db: tuple[float, float] = (-14.0, -4.0)) -> np.ndarray:
    """A synthetic room impulse response: a direct path plus exponentially decaying noise (RT60 0.2-0.9 s), shape (n,).

    ``tail_db``: the range the reverberant tail's energy against the direct path is drawn from (dB, uniformly). The
    default keeps the microphone near the speaker (the tail 4-14 dB under the direct sound); above 0 dB the
    microphone is distant and the room louder than the voice's direct sound (a meeting table, a theatre stage)."""
    rt60 = float(rng.uniform(0.2, 0.9)) if rt60 is None else rt60
    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.normal(size=n) * np.exp(-6.9 * t / rt60)
    tail[: int(0.002 * SAMPLE_RATE)] = 0.0
    ir = tail * 10 ** (rng.uniform(*tail_db) / 20) / max(np.sqrt(np.sum(tail ** 2)), 1e-9)
    ir[0] = 1.0
    return ir.astype(np.float32)


def apply_room(x: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """``x`` convolved with ``ir`` (same length as ``x``)."""
    from scipy.signal import fftconvolve

    return fftconvolve(x, ir)[: len(x)].astype(np.float32)


def low_pass(x: np.ndarray, cutoff_hz: float) -> np.ndarray:
    """6th-order Butterworth low-pass (band-limiting, as in low-bitrate or old broadcast audio)."""
    from scipy.signal import butter, sosfilt

    sos = butter(6, cutoff_hz, btype="lowpass", fs=SAMPLE_RATE, output="sos")
    return sosfilt(sos, x).astype(np.float32)


def reencode(x: np.ndarray, codec: str, bitrate_k: int) -> np.ndarray:
    """Lossy round trip through ffmpeg (:func:`dramapic.media.lossy_round_trip`): ``codec`` in {"opus", "aac", "mp3"}
    at ``bitrate_k`` kbit/s, same length; :class:`~dramapic.errors.MediaError` when ffmpeg fails."""
    from ..media import lossy_round_trip

    return lossy_round_trip(x, codec=codec, bitrate_k=bitrate_k, sample_rate=SAMPLE_RATE)


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("numpy", "scipy", "scikit-learn", "torch", "librosa", "resemblyzer"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover
            out[name] = "unknown"
    return out


def save_npz(out_dir: Path, filename: str, arrays: dict[str, np.ndarray]) -> None:
    """A model file, compressed and atomically (:func:`dramapic.writers.write_npz_atomic`: a full disk is an
    OutputError, and nothing half-written is left)."""
    from ..writers import write_npz_atomic

    write_npz_atomic(arrays, Path(out_dir) / filename, compressed=True)
