"""Far rooms for the evaluations: every labelled timeline as one distant microphone across a room would hear it.

The cross-corpus timelines and the dev mixes are recorded near the microphone: their only room is the training
copies' (``lab.data.room_impulse`` with the reverberant tail 4-14 dB under the direct sound). Meetings and
recordings made across a room, where the room is as loud as the voice or louder, score much worse (issue 14's
real meetings; ``dramapic/lab/experiments/issue14_far_field``), and the judge could not see it. A far-room copy of
a folder of timelines holds, per timeline ``NAME``:

* ``NAME.opus``: the timeline's decoded audio convolved with one seeded room (:func:`far_room`; the whole timeline
  through one room: one microphone, every speaker, bed and interlude in it), a hiss at :data:`HISS_DBFS`, rescaled
  so that its peak is the original's (never above full scale), encoded again to Opus at :data:`BITRATE`
  (``media.encode_opus``; twice the timelines' 32 kbit/s, so the second encoding adds little next to the room)
  by this run's ffmpeg (the copy is keyed by it: one encoded by another build is made again);
* ``NAME.labels.csv``, ``NAME.rttm`` and ``NAME.json`` (the recipe, so the protocol holds out the same sources):
  linked to the originals, unchanged. The labels are the truth of who spoke when, as built: a far room's tail
  smears each voice into the silence, song or noise after it, and that tail is *not* relabelled voice (a listener
  does not hear the speaker talk on; a product that calls the tail voice is late, as it would be on a real
  recording);
* ``far-rooms.csv``: the room drawn for each timeline (RT60, the tail's level against the direct sound).

The room of a timeline is drawn from a generator seeded by :data:`SEED` and its name alone, so it does not depend
on which other timelines are built, in which order, or in which folder: RT60 uniformly in :data:`RT60_S`, the
reverberant tail uniformly :data:`TAIL_DB` against the direct sound (0 dB: the room as loud as the voice; +6 dB:
louder), with ``lab.data.room_impulse`` and ``lab.data.apply_room``. ``dramapic eval --rooms far`` scores the
copies instead of the timelines.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..progress import ProgressHook, silent_hook

#: bumped whenever a rule below changes, so kept copies are made again
FORMAT = 1
MARKER = "far-rooms.json"
ROOMS_FILE = "far-rooms.csv"
SEED = 20_261_207
#: reverberation time (s) and the tail's energy against the direct sound (dB), each drawn uniformly
RT60_S = (0.5, 1.0)
TAIL_DB = (0.0, 6.0)
#: the microphone's hiss, RMS against full scale (as issue14_far_field/probe.py)
HISS_DBFS = -50.0
BITRATE = "64k"


@dataclass(frozen=True)
class FarRoom:
    """The room one timeline was heard in.

    Attributes
    ----------
    name : str
        The timeline's file stem.
    rt60_s : float
        Reverberation time drawn, seconds.
    tail_db : float
        The reverberant tail's energy against the direct sound, dB (above 0: the room louder than the voice).
    """

    name: str
    rt60_s: float
    tail_db: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def room_rng(name: str) -> np.random.Generator:
    """The generator of timeline ``name``'s room: :data:`SEED` and the name's sha256, nothing else."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return np.random.default_rng([SEED, int.from_bytes(digest[:8], "big")])


def far_room(audio: np.ndarray, *, name: str) -> tuple[np.ndarray, FarRoom]:
    """``audio`` as a distant microphone in timeline ``name``'s room hears it (see the module docstring).

    Parameters
    ----------
    audio : np.ndarray, shape (n_samples,)
        The whole timeline, 16 kHz mono float.
    name : str
        The timeline's file stem: the room's seed.

    Returns
    -------
    audio : np.ndarray, shape (n_samples,), float32
        Same length; peak as ``audio``'s (at most 1.0).
    room : FarRoom
    """
    from .data import apply_room, room_impulse

    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"audio must be mono with shape (n_samples,), got {x.shape}")
    rng = room_rng(name)
    rt60 = float(rng.uniform(*RT60_S))
    ir = room_impulse(rng, rt60=rt60, tail_db=TAIL_DB)
    # room_impulse draws the tail's level itself: read back from the response (the direct path is ir[0] = 1)
    tail_db = 10.0 * float(np.log10(max(float(np.sum(ir[1:].astype(np.float64) ** 2)), 1e-12)))
    hiss = rng.standard_normal(x.shape[0]) * 10 ** (HISS_DBFS / 20)
    peak = min(float(np.max(np.abs(x))) if x.size else 0.0, 1.0)  # a clipped original is not copied above 1.0
    wet = apply_room(x, ir).astype(np.float64)
    wet_peak = float(np.max(np.abs(wet))) if wet.size else 0.0
    if wet_peak > 0:  # the room adds energy: the level is brought back before the hiss, which is absolute
        wet *= peak / wet_peak
    out = wet + hiss
    out_peak = float(np.max(np.abs(out))) if out.size else 0.0
    if peak > 0 and out_peak > 0:  # and the peak made the original's exactly (the hiss moves it a hair)
        out *= peak / out_peak
    return out.astype(np.float32), FarRoom(name=name, rt60_s=round(rt60, 4), tail_db=round(tail_db, 2))


def far_room_copy(folder: Path, *, out: Path, progress: ProgressHook = silent_hook) -> Path:
    """Write (or reuse) the far-room copy of one folder of timelines and return it.

    Parameters
    ----------
    folder : Path
        ``NAME.labels.csv`` + ``NAME.rttm`` + ``NAME.json`` (recipe) + ``NAME.opus`` per timeline: a folder of the
        timeline tree or the dev mixes.
    out : Path
        The copy (module docstring), with a marker. Written whole into a staging folder and renamed into place;
        reused while the marker says it was made by this format and these rooms, encoded by this run's ffmpeg, from
        the same files, and its own files are unchanged.
    progress : ProgressHook

    Raises
    ------
    InputError
        No timeline in ``folder``, or a file of one missing.
    MediaError
        A timeline's audio cannot be decoded, or ffmpeg cannot encode.
    OutputError
        ``out`` cannot be written.
    """
    from .. import media
    from .kept_copies import kept_copy, staged_copy
    from .speech_reference import _link
    from .timelines import timeline_digests, timeline_labels, timeline_stem

    folder, out = Path(folder), Path(out)
    labels = timeline_labels(folder)
    files = timeline_digests(labels)
    key = {"generator": __name__, "format": FORMAT, "source": str(folder.resolve()), "seed": SEED,
           "rt60_s": list(RT60_S), "tail_db": list(TAIL_DB), "hiss_dbfs": HISS_DBFS, "bitrate": BITRATE,
           # the far audio is this run's encoding: a copy another ffmpeg encoded is made again, so that the scored
           # bytes' second encoder is always the one this run names
           "encoder": media.opus_encoder(), "files": files}
    if kept_copy(out, marker=MARKER, key=key):
        return out
    rooms: list[FarRoom] = []
    with staged_copy(out, marker=MARKER, key=key, what="the far-room copy") as staging:
        for i, labels_csv in enumerate(labels):
            progress("far rooms", i, len(labels))
            name = timeline_stem(labels_csv)
            audio = media.decode_audio(media.probe(labels_csv.with_name(f"{name}.opus")))
            far, room = far_room(audio, name=name)
            media.encode_opus(far, staging / f"{name}.opus", bitrate=BITRATE)
            rooms.append(room)
            for ext in (".labels.csv", ".rttm", ".json"):  # the truth as built (module docstring)
                _link(labels_csv.with_name(f"{name}{ext}").resolve(), staging / f"{name}{ext}")
        with open(staging / ROOMS_FILE, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["name", "rt60_s", "tail_db"])
            writer.writeheader()
            writer.writerows(room.to_dict() for room in rooms)
        progress("far rooms", len(labels), len(labels))
    return out


def far_room_tree(root: Path, *, out: Path, folders: Sequence[str] | None = None,
                  progress: ProgressHook = silent_hook) -> Path:
    """:func:`far_room_copy` for every timeline folder of a tree (``folders``: only these); returns ``out``."""
    from .crosscorpus import timeline_folders

    for name in (list(folders) if folders is not None else timeline_folders(Path(root))):
        far_room_copy(Path(root) / name, out=Path(out) / name, progress=progress)
    return Path(out)
