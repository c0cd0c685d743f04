"""Short scenes for the evaluations: excerpts of labelled timelines, their references cut alike.

The cross-corpus timelines and the dev mixes are 60-210 s long, while users also cut scenes, trailers and clips of
20-30 s, where the speaker count's floors meet a recording with little talk (``speakers.short_talk_share``). A
scene copy of a folder of timelines holds, per timeline of D seconds, one excerpt per length L and position P,
from P x (D - L) on (mid-utterance where the cut falls there): ``NAME_<L>s<P>.labels.csv`` and ``.rttm`` cut and
shifted, ``.opus`` the excerpt's audio (decoded, sliced, encoded again: media.encode_opus), ``.json`` a link to the
timeline's recipe (so the protocol holds out the same sources). ``dramapic eval --scenes 20,30`` scores the copies
instead of the whole timelines (``dramapic/lab/experiments/issue14_short_scenes``).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError
from ..progress import ProgressHook, silent_hook
from ..result import SAMPLE_RATE

FORMAT = 1
MARKER = "scenes.json"
#: where in a timeline the excerpts start, as a share of the room it leaves (0: at its start, 1: at its end)
POSITIONS = (0.2, 0.6)


def cut_rows(rows: Sequence[dict[str, str]], *, start: float, length: float) -> list[dict[str, str]]:
    """The label rows (``start``, ``end``, ``label``, ``gender``, ``speaker``) of ``[start, start + length)``,
    shifted to begin at 0; a gap-free partition of ``[0, length]`` when ``rows`` cover the excerpt."""
    end = start + length
    out = []
    for row in rows:
        a, b = max(float(row["start"]), start), min(float(row["end"]), end)
        if b - a > 1e-6:
            out.append({**row, "start": f"{a - start:.3f}", "end": f"{b - start:.3f}"})
    if not out:
        raise InputError(f"no labels between {start:.3f} and {end:.3f} s")
    out[0]["start"] = "0.000"
    return out


def cut_rttm(lines: Sequence[str], *, name: str, start: float, length: float) -> list[str]:
    """RTTM ``SPEAKER`` lines of ``[start, start + length)``, clipped, shifted and renamed to ``name``."""
    end = start + length
    out = []
    for line in lines:
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 8:
            raise InputError(f"not an RTTM line: {line!r}")
        a, b = max(float(fields[3]), start), min(float(fields[3]) + float(fields[4]), end)
        if b - a > 1e-6:
            fields[1], fields[3], fields[4] = name, f"{a - start:.3f}", f"{b - a:.3f}"
            out.append(" ".join(fields))
    return out


def scene_excerpts(folder: Path, *, out: Path, lengths: Sequence[float], positions: Sequence[float] = POSITIONS,
                   progress: ProgressHook = silent_hook) -> Path:
    """Write (or reuse) the scene copy of one folder of timelines and return it.

    Parameters
    ----------
    folder : Path
        ``NAME.labels.csv`` + ``NAME.rttm`` + ``NAME.json`` (recipe) + ``NAME.opus`` per timeline.
    out : Path
        The copy (module docstring), with a marker. Written whole into a staging folder and renamed into place;
        reused while the marker says it was made by this format, with these lengths and positions, encoded by this
        run's ffmpeg, from the same files, and its own files are unchanged.
    lengths : sequence of float
        Excerpt lengths in seconds; a timeline shorter than a length gives no excerpt of it.
    positions : sequence of float
        Starts as shares (0 .. 1) of the room each timeline leaves.
    progress : ProgressHook

    Raises
    ------
    InputError
        No timeline in ``folder``, a file of one missing, its labels or RTTM malformed
        (:func:`~dramapic.lab.reference.load_reference`), a length not positive or a position outside 0 .. 1.
    OutputError
        ``out`` cannot be written.
    """
    from .. import media
    from .kept_copies import kept_copy, staged_copy
    from .reference import load_reference
    from .speech_reference import _link
    from .timelines import timeline_digests, timeline_labels, timeline_stem

    folder, out = Path(folder), Path(out)
    if not lengths or any(not length > 0 for length in lengths):
        raise InputError(f"scene lengths must be positive seconds, got {list(lengths)}")
    if any(not 0.0 <= p <= 1.0 for p in positions):
        raise InputError(f"scene positions must lie in 0 .. 1, got {list(positions)}")
    labels = timeline_labels(folder)
    files = timeline_digests(labels)
    key = {"generator": __name__, "format": FORMAT, "source": str(folder.resolve()),
           "lengths": [float(x) for x in lengths], "positions": [float(p) for p in positions],
           # the excerpts' audio is this run's encoding (as far_rooms'): a copy another ffmpeg encoded is made
           # again, so that the scored bytes' second encoder is the one this run names
           "encoder": media.opus_encoder(), "files": files}
    if kept_copy(out, marker=MARKER, key=key):
        return out
    for path in labels:  # labels or RTTM that cannot be read are one InputError before anything is cut
        load_reference(path)
    with staged_copy(out, marker=MARKER, key=key, what="the scene excerpts") as staging:
        for i, labels_csv in enumerate(labels):
            progress("scenes", i, len(labels))
            name = timeline_stem(labels_csv)
            with open(labels_csv, newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
            rttm = labels_csv.with_name(f"{name}.rttm").read_text(encoding="utf-8").splitlines()
            audio = media.decode_audio(media.probe(labels_csv.with_name(f"{name}.opus")))
            duration = max(float(row["end"]) for row in rows)
            for length in lengths:
                if length > duration:
                    continue
                for position in positions:
                    start = round(position * (duration - length), 2)
                    cut = f"{name}_{length:g}s{round(position * 100):02d}"
                    with open(staging / f"{cut}.labels.csv", "w", newline="", encoding="utf-8") as handle:
                        writer = csv.DictWriter(handle, fieldnames=["start", "end", "label", "gender", "speaker"],
                                                extrasaction="ignore")
                        writer.writeheader()
                        writer.writerows(cut_rows(rows, start=start, length=length))
                    (staging / f"{cut}.rttm").write_text(
                        "".join(f"{ln}\n" for ln in cut_rttm(rttm, name=cut, start=start, length=length)),
                        encoding="utf-8")
                    first = round(start * SAMPLE_RATE)
                    media.encode_opus(audio[first:first + round(length * SAMPLE_RATE)], staging / f"{cut}.opus",
                                      bitrate="64k")
                    _link(labels_csv.with_name(f"{name}.json").resolve(), staging / f"{cut}.json")
        progress("scenes", len(labels), len(labels))
    return out


def scene_excerpts_tree(root: Path, *, out: Path, lengths: Sequence[float], positions: Sequence[float] = POSITIONS,
                        progress: ProgressHook = silent_hook) -> Path:
    """:func:`scene_excerpts` for every timeline folder of a tree; returns ``out``."""
    from .crosscorpus import timeline_folders

    for name in timeline_folders(Path(root)):
        scene_excerpts(Path(root) / name, out=Path(out) / name, lengths=lengths, positions=positions,
                       progress=progress)
    return Path(out)
