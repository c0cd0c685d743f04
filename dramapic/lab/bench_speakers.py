"""Speed and memory of the diarization on long input: ``dramapic bench --speakers --hours 2``.

Builds a long dialogue from real speech and runs the diarization part of the pipeline on it
(:func:`dramapic.analysis.diarization.label_voice_segments`: window embeddings, gender scores, clustering, re-segmentation)
at a quarter, half and all of ``--hours``, each size in a fresh process, and prints per size:

* wall time of the diarization and its real-time factor (wall time / audio duration; the target is < 0.05 on
  2 CPU cores), and the CPU time per audio second (all threads together; on an otherwise idle machine the wall
  time is at most this, so it bounds the RTF even when other jobs share the cores; the 1-minute load average
  is printed to show how busy the machine was),
* the peak resident memory *added* by the diarization (Linux ``VmHWM`` after resetting it once the audio is built
  and the models are loaded; ``ru_maxrss`` elsewhere, which then includes the input), and the number of windows
  clustered (the refinement adds a few more around every change of speaker),
* DER (pyannote.metrics, 0.5 s collar in total) and the speaker count against the known turns, for information:
  the material repeats a few speakers' clips, so it is easier than real audio.

Memory must grow about linearly with the duration (the audio and the window embeddings), not with the square of
the number of windows: clustering sees at most ``clustering.MAX_CLUSTER_WINDOWS`` windows.

Input: the dialogue alternates 8 train-split speakers (4 female, 4 male): 6 LibriSpeech readers (random 2-6 s
excerpts of their one ~16 s clip) and 2 Emo-DB actors of different gender (their acted-emotion clips), from
``../shared/data/manifest.csv``; one clip or excerpt per turn, 0.2 s between turns of one exchange
(stage 1 would not split there, so one voice segment holds several turns) and 1.5 s between exchanges of 2-6 turns.
The voice segments are the exchanges (no stage 1 is run). Without the shared data folder, the bundled
``samples/drama_sample.mp4`` is repeated instead, with its ground-truth voice rows as segments.

``--json OUT`` also writes the figures as JSON.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ..result import SAMPLE_RATE as SR

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO.parent / "shared" / "data"
#: the stand-in without the shared data: in the source checkout only, not in an installed dramapic
SAMPLE = REPO / "samples" / "drama_sample.mp4"
#: ``--hours`` at most (more than a year of audio, far beyond any machine's memory; 1e306 h was infinite seconds)
MAX_HOURS = 1e4
SPEAKERS = {  # train-split speaker id -> how to cut turns from its clips (4 female, 4 male)
    "emodb_16": "clip", "emodb_15": "clip",
    "libri_7178": "excerpt", "libri_8465": "excerpt", "libri_441": "excerpt",
    "libri_8770": "excerpt", "libri_229": "excerpt", "libri_3374": "excerpt",
}


def _load_speakers(data: Path) -> dict[str, list[np.ndarray]]:
    """The clips of :data:`SPEAKERS` in ``data / "manifest.csv"``; :class:`InputError` when one has none or a clip
    cannot be read."""
    import soundfile as sf

    from ..errors import InputError
    from .data import _must_exist, read_manifest

    clips: dict[str, list[np.ndarray]] = {s: [] for s in SPEAKERS}
    for row in read_manifest(data / "manifest.csv", columns=("path", "label", "speaker")):
        if row["label"] == "voice" and row["speaker"] in clips:
            _must_exist(data / row["path"])  # not libsndfile's "System error."
            try:
                audio, sr = sf.read(str(data / row["path"]), dtype="float32")
            except (OSError, RuntimeError, sf.LibsndfileError) as err:
                raise InputError(f"cannot read {data / row['path']}: {err}") from None
            if audio.ndim > 1:
                audio = audio.mean(axis=1)
            if sr != SR:
                from ..analysis.embeddings import _as_mono_16k

                audio = _as_mono_16k(audio, sr)
            clips[row["speaker"]].append(audio)
    missing = [s for s, c in clips.items() if not c]
    if missing:
        raise InputError(f"no voice clips of {', '.join(missing)} in {data / 'manifest.csv'}: the dialogue is built "
                         "from these train speakers of the shared data")
    return clips


def build_dialogue(seconds: float, data: Path, seed: int = 0):
    """``(audio, segments, reference)``: float32 16 kHz audio of about ``seconds``, the voice segments
    [(start, end)], and the reference turns [(start, end, speaker)]."""
    rng = np.random.default_rng(seed)
    clips = _load_speakers(data)
    names = sorted(clips)
    pieces: list[np.ndarray] = []
    segments, reference = [], []
    t = 0.0
    previous = None
    while t < seconds:
        turns = int(rng.integers(2, 7))
        seg_start = t
        for j in range(turns):
            speaker = str(rng.choice([n for n in names if n != previous]))
            previous = speaker
            source = clips[speaker][int(rng.integers(len(clips[speaker])))]
            if SPEAKERS[speaker] == "excerpt":
                length = int(rng.uniform(2.0, 6.0) * SR)
                start = int(rng.integers(0, max(1, len(source) - length)))
                source = source[start:start + length]
            pieces.append(source)
            reference.append((t, t + len(source) / SR, speaker))
            t += len(source) / SR
            if j < turns - 1:
                pieces.append(np.zeros(int(0.2 * SR), np.float32))
                t += 0.2
        segments.append((seg_start, t))
        pieces.append(np.zeros(int(1.5 * SR), np.float32))
        t += 1.5
    return np.concatenate(pieces), segments, reference


def build_from_sample(seconds: float):
    """The bundled sample repeated to about ``seconds``, with its ground-truth voice rows as segments."""
    from .. import media

    audio = media.decode_audio(media.probe(SAMPLE))
    rows = []
    with open(SAMPLE.with_suffix(".labels.csv"), newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["label"] == "voice":
                rows.append((float(row["start"]), float(row["end"]), row["speaker"]))
    length = audio.shape[0] / SR
    copies = max(1, int(np.ceil(seconds / length)))
    segments = [(a + k * length, b + k * length) for k in range(copies) for a, b, _ in rows]
    reference = [(a + k * length, b + k * length, s) for k in range(copies) for a, b, s in rows]
    return np.tile(audio, copies), segments, reference


def _rss_peak_mb() -> tuple[float, str]:
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) / 1024.0, "VmHWM"
    except OSError:
        pass
    scale = 1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale, "ru_maxrss"


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def measure_one(hours: float, data: Path, *, pipeline_path: Path | None = None) -> dict:
    """Build ``hours`` of dialogue and time the diarization on it (run in a fresh process), with the speakers
    settings and projection of the pipeline at ``pipeline_path`` (default: the bundled default pipeline)."""
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    from ..analysis import diarization as speakers
    from ..analysis.analyze import speaker_settings
    from ..config import load_pipeline
    from ..models import load_manifest

    clock = time.perf_counter()
    if (data / "manifest.csv").is_file():
        audio, segments, reference = build_dialogue(hours * 3600.0, data)
        material = "dialogue of 8 speakers (6 LibriSpeech, 2 Emo-DB)"
    else:
        audio, segments, reference = build_from_sample(hours * 3600.0)
        material = "samples/drama_sample.mp4 repeated"
    build_s = time.perf_counter() - clock
    encoder = speakers.SpeakerEncoder()
    pipeline = load_pipeline(pipeline_path)
    gender_model = speakers.GenderClassifier.from_manifest(load_manifest(), pipeline.stage2.gender_model)
    # the pipeline's diarization: its settings, its gender model and its trained speaker projection
    options, projection = speaker_settings(pipeline)
    speakers.label_voice_segments(audio[: 20 * SR], sample_rate=SR, segments=[(0.0, 20.0)], encoder=encoder,
                                  gender_model=gender_model, options=options,
                                  projection=projection)  # warm-up: first torch call allocates its pools
    base_mb, how = _rss_peak_mb()
    reset = _reset_peak()
    if reset:
        base_mb, how = _rss_peak_mb()
    windows = [0]

    def count(stage: str, done: float, total: float) -> None:
        windows[0] = int(total)

    clock, cpu = time.perf_counter(), time.process_time()
    result = speakers.label_voice_segments(audio, sample_rate=SR, segments=segments, encoder=encoder,
                                           gender_model=gender_model, options=options, projection=projection,
                                           progress=count)
    wall, cpu = time.perf_counter() - clock, time.process_time() - cpu
    peak_mb, _ = _rss_peak_mb()

    duration = audio.shape[0] / SR
    ref = Annotation(uri="bench")
    for i, (a, b, s) in enumerate(reference):
        ref[Segment(a, b), i] = s
    hyp = speakers.to_annotation([t for turns in result.turns for t in turns], uri="bench")
    metric = DiarizationErrorRate(collar=0.5, skip_overlap=False)
    der = float(metric(ref, hyp, uem=Timeline([Segment(0.0, duration)])))
    return {
        "hours": hours, "audio_s": round(duration, 1), "voice_segments": len(segments), "windows": windows[0],
        "build_s": round(build_s, 1), "diarization_s": round(wall, 2), "rtf": round(wall / duration, 5),
        "cpu_s": round(cpu, 2), "cpu_per_audio_s": round(cpu / duration, 5), "torch_threads": _torch_threads(),
        "load_average": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "input_mb": round(audio.nbytes / 2**20, 1), "rss_before_mb": round(base_mb, 1),
        "peak_added_mb": round(peak_mb - base_mb, 1), "peak_measure": how if reset else "ru_maxrss (whole process)",
        "speakers_found": len(result.speakers), "speakers_true": len({s for _, _, s in reference}),
        "der": round(der, 4), "material": material,
    }


def _child_error(returncode: int, stderr: str, what: str):
    """The DramapicError a ``dramapic bench --one`` process ended with: the class of its exit code, its one line
    (or, from a process that died otherwise, the last line it wrote)."""
    from ..errors import ConfigError, DramapicError, InputError, MediaError, ModelError, OutputError

    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    said = lines[-1].removeprefix("dramapic: error: ") if lines else f"exit status {returncode}"
    for kind in (InputError, MediaError, ConfigError, ModelError, OutputError):
        if kind.exit_code == returncode:
            return kind(f"{what}: {said}")
    return DramapicError(f"{what}: {said}")


def run_sizes(*, hours: float = 2.0, data: Path = DEFAULT_DATA, pipeline_path: Path | None = None,
              report=print) -> dict:
    """``dramapic bench --speakers``: :func:`measure_one` at 1/4, 1/2 and all of ``hours``, each in a fresh process
    (``dramapic bench --one H``), so that each peak memory is that size's alone; with ``pipeline_path``, that
    pipeline's diarization settings. ``report`` gets one line per size and a last line on growth. Returns
    ``{"runs": [figures per size]}``.

    Raises
    ------
    ConfigError
        ``hours`` is not a positive number up to :data:`MAX_HOURS`, or the pipeline is unreadable or invalid
        (checked before any process starts); ModelError when its speaker projection is missing or altered (the same).
    DramapicError
        A measuring process failed: the error it ended with (its class by its exit code) and its message.
    """
    from ..analysis.analyze import speaker_settings
    from ..config import load_pipeline
    from ..errors import ConfigError

    # infinite hours (or 1e306, infinite seconds) would build a dialogue until memory runs out
    if not 0 < hours <= MAX_HOURS:
        raise ConfigError(f"--hours must be a positive number up to {MAX_HOURS:g}, got {hours}")
    # a bad YAML, or a projection not in the manifest, fails here in one line, not in each child (a traceback)
    pipeline = load_pipeline(pipeline_path)
    if not pipeline.speakers.enabled:
        raise ConfigError("the pipeline switches diarization off (speakers.enabled: false): nothing to measure")
    speaker_settings(pipeline)
    if not (data / "manifest.csv").is_file() and not SAMPLE.is_file():
        from ..errors import InputError

        # each child failed on the missing sample, one after the other
        raise InputError(f"no manifest.csv in {data} and no bundled sample to stand in ({SAMPLE.name} is in the "
                         "source checkout's samples/, not in an installed dramapic): give --data, the shared data "
                         "folder")
    # the file loaded, not the path as given: a bundled pipeline's name resolved against the current folder
    pipeline_args = [] if pipeline_path is None else ["--pipeline", str(Path(pipeline.source).resolve())]
    rows = []
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(__file__).resolve().parents[2]),
                                                    env.get("PYTHONPATH", "")) if p)
    for size in (hours / 4, hours / 2, hours):
        out = subprocess.run([sys.executable, "-m", "dramapic", "bench", "--one", str(size), "--data", str(data),
                              "--no-progress", *pipeline_args], capture_output=True, text=True, env=env, check=False)
        if out.returncode != 0:
            raise _child_error(out.returncode, out.stderr, f"measuring {size:g} h failed")
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        report(f"{row['hours']:5.2f} h  audio {row['audio_s']:7.0f} s  windows {row['windows']:6d}  "
               f"diarization {row['diarization_s']:7.1f} s  RTF {row['rtf']:.4f} (CPU {row['cpu_per_audio_s']:.4f}, "
               f"load {row['load_average']})  "
               f"peak +{row['peak_added_mb']:6.0f} MB (input {row['input_mb']:.0f} MB)  "
               f"speakers {row['speakers_found']}/{row['speakers_true']}  DER {row['der']:.3f}")
    first, last = rows[0], rows[-1]
    growth_windows = last["windows"] / max(first["windows"], 1)
    growth_memory = last["peak_added_mb"] / max(first["peak_added_mb"], 1e-9)
    report(f"windows x{growth_windows:.1f} -> peak memory x{growth_memory:.1f} (quadratic would be "
           f"x{growth_windows ** 2:.0f}); worst RTF {max(r['rtf'] for r in rows):.4f} (target < 0.05); "
           f"memory measured as {last['peak_measure']}; material: {last['material']}")
    return {"runs": rows}
