"""Mains hum and sub-20 Hz rumble under the bundled sample, and how much sub-20 Hz content stage 1's training clips
carry (2026-12-07). Imports the current package.

    python hum_rumble.py sample table.txt          # the sample with hum / rumble added at several levels (1 min)
    python hum_rumble.py clips ../shared/data clips.txt   # sub-20 Hz level of manifest.csv's train clips (3 min)
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
from scipy.signal import butter, sosfilt

from dramapic import media
from dramapic.analysis.analyze import analyze_audio
from dramapic.config import load_pipeline

SAMPLE = Path(__file__).resolve().parents[4] / "samples" / "drama_sample.mp4"
RATE = 16000
LABELS = ("voice", "song", "noise", "silence")


def hum(n: int, *, f0: float, level_db: float) -> np.ndarray:
    """Mains hum: ``f0`` and three harmonics (1, 0.5, 0.3, 0.2), RMS ``level_db`` dBFS."""
    t = np.arange(n) / RATE
    x = sum(a * np.sin(2 * np.pi * f0 * (k + 1) * t + k) for k, a in enumerate((1.0, 0.5, 0.3, 0.2)))
    return (x / np.sqrt(np.mean(x ** 2)) * 10 ** (level_db / 20)).astype(np.float32)


def rumble(n: int, *, level_db: float) -> np.ndarray:
    """Inaudible rumble: white noise low-passed at 12 Hz (4th order), RMS ``level_db`` dBFS."""
    x = sosfilt(butter(4, 12.0, "lowpass", fs=RATE, output="sos"), np.random.default_rng(0).standard_normal(n))
    return (x / np.sqrt(np.mean(x ** 2)) * 10 ** (level_db / 20)).astype(np.float32)


def reference_frames(labels_csv: Path, n_frames: int, hop_s: float = 0.01) -> np.ndarray:
    ref = np.full(n_frames, -1)
    with labels_csv.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            ref[round(float(row["start"]) / hop_s):round(float(row["end"]) / hop_s)] = \
                LABELS.index(row["label"])
    return ref


def predicted_frames(segments, n_frames: int, hop_s: float = 0.01) -> np.ndarray:
    out = np.full(n_frames, -1)
    for s in segments:
        out[round(s.start / hop_s):round(s.end / hop_s)] = LABELS.index(s.label)
    return out


def sample_table(out: Path) -> None:
    audio = media.decode_audio(media.probe(SAMPLE))
    n_frames = int(audio.size / RATE / 0.01)
    ref = reference_frames(SAMPLE.with_suffix("").with_suffix(".labels.csv"), n_frames)
    variants = {"clean": audio}
    for level in (-26, -36, -46, -56):
        variants[f"hum 50 Hz {level} dBFS"] = audio + hum(audio.size, f0=50.0, level_db=level)
    variants["hum 60 Hz -36 dBFS"] = audio + hum(audio.size, f0=60.0, level_db=-36)
    for level in (-20, -30, -40, -50, -60):
        variants[f"rumble <12 Hz {level} dBFS"] = audio + rumble(audio.size, level_db=level)
    pipeline = load_pipeline(None)
    lines = ["variant | accuracy (all frames) | silence recall | share voice / song / noise / silence"]
    for name, x in variants.items():
        segments, _, _ = analyze_audio(x, pipeline)
        pred = predicted_frames(segments, n_frames)
        known = ref >= 0
        acc = float(np.mean(pred[known] == ref[known]))
        silent = ref == LABELS.index("silence")
        recall = float(np.mean(pred[silent] == ref[silent]))
        shares = " / ".join(f"{np.mean(pred[known] == k):.3f}" for k in range(4))
        lines.append(f"{name} | {acc:.3f} | {recall:.3f} | {shares}")
        print(lines[-1], flush=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def sub20_level_db(x: np.ndarray) -> float:
    """RMS level (dBFS) of ``x``'s content from 0 to 20 Hz, its mean excluded."""
    x = x.astype(np.float64) - float(np.mean(x))
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / RATE)
    return float(10 * np.log10(2 * power[(freqs > 0) & (freqs < 20)].sum() / x.size ** 2 + 1e-20))


def clips_table(data: Path, out: Path, per_label: int = 150) -> None:
    rows = [r for r in csv.DictReader((data / "manifest.csv").open(encoding="utf-8")) if r["split"] == "train"]
    rng = np.random.default_rng(0)
    lines = ["label | clips | sub-20 Hz level dBFS: median / 90th / 99th percentile / max | share of clips above -50"]
    for label in ("noise", "song", "voice"):
        mine = [r for r in rows if r["label"] == label]
        pick = rng.choice(len(mine), size=min(per_label, len(mine)), replace=False)
        levels = []
        for i in pick:
            audio = media.decode_audio(media.probe(data / mine[i]["path"]))
            if audio.size >= RATE:
                levels.append(sub20_level_db(audio))
        q = np.percentile(levels, [50, 90, 99, 100])
        lines.append(f"{label} | {len(levels)} | " + " / ".join(f"{v:.1f}" for v in q)
                     + f" | {np.mean(np.array(levels) > -50):.2f}")
        print(lines[-1], flush=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1] == "sample":
        sample_table(Path(sys.argv[2]))
    else:
        clips_table(Path(sys.argv[2]), Path(sys.argv[3]))
