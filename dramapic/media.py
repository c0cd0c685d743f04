"""Every ffmpeg call dramapic makes: probe, decode, burn-in and subtitle muxing (and, for the lab, Opus encoding).

Commands are built as argument lists (filter graphs with ffmpeg-python, which escapes paths correctly) and
run with stderr captured, so a failure becomes a typed error with ffmpeg's own words rather than a traceback.
Which ffmpeg: ``$DRAMAPIC_FFMPEG`` when set, else an ``ffmpeg`` on PATH, else the static build shipped by
imageio-ffmpeg. ffprobe is optional and only ever the one beside that ffmpeg (or ``$DRAMAPIC_FFPROBE``): the stream
table is read from ``ffmpeg -i`` when there is none, so two builds are never mixed. Whatever the build, the same
input gives the same error: messages are classified by what ffmpeg says, never by where it says it.

Every path is given to ffmpeg as ``file:`` + the absolute path, so that a name such as ``-dash.mp4`` cannot be read
as an option nor ``co:lon.mp4`` as a protocol.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .errors import InputError, MediaError, OutputError
from .lifecycle import child_dies_with_parent, removed_whole
from .result import SAMPLE_RATE

log = logging.getLogger(__name__)

# Audio codecs the MP4 muxer takes as they are; anything else is re-encoded to AAC when writing MP4.
MP4_AUDIO_CODECS = {"aac", "mp3", "ac3", "eac3", "alac", "flac", "opus"}
#: the most channels ffmpeg's AAC encoder takes (7.1)
AAC_MAX_CHANNELS = 8
# Video codecs the MP4 muxer takes as they are (ffmpeg 5.1 and 7.x); anything else (ProRes, VP8, Theora, DivX 3,
# WMV, FLV, FFV1, DV) is re-encoded to H.264 by --soft-subs, which would otherwise fail after the whole analysis.
MP4_VIDEO_CODECS = {"h264", "hevc", "mpeg4", "mpeg1video", "mpeg2video", "mjpeg", "vp9", "av1"}
MAX_DECODE_ERRORS = 10
#: a stereo piece whose mid (L + R) is this much weaker in energy than its side (L - R) has one channel out of
#: phase (a miswired deck or broadcast chain, a VHS hi-fi fault): mixed to mono, its dialogue cancels to near silence
ANTI_PHASE_RATIO = 0.1
#: ... unless the side is this quiet itself (RMS, -70 dBFS): noise-floor pieces may correlate either way
ANTI_PHASE_FLOOR = 3e-4
#: a block whose mean is this far off zero, and this large a share of its spread (standard deviation), carries a DC
#: offset (a capture card's or tape deck's bias): inaudible, but silence under it reads as a steady sound to every
#: level, VAD and spectral model. Ordinary audio's 5 s means stay under 0.0014 and 0.02 of the spread. The block's
#: median must be as far off, on the same side: an offset moves every sample, the quiet ones too, while hard clipping
#: (a loud voice or tone amplified past full scale) moves only the peaks, and the mean of an asymmetric waveform (a
#: voice's) clipped at ±1 leaves zero by up to a fifth of its spread, where its median, clipping only the samples
#: beyond the median's rank, stays put
DC_OFFSET_MIN, DC_OFFSET_SHARE = 1e-3, 0.05
#: seconds of audio judged at a time (its phase, its DC offset): long enough that a passing effect mixed out of phase
#: or a low note does not turn a block; a fixed grid, whatever the chunk size
BLOCK_S = 5.0
#: the channels ``--audio-channel`` may choose, by position in the track (a dual-mono bilingual broadcast carries
#: one language on each; of a surround track these are front left and front right)
AUDIO_CHANNELS = {"left": 0, "right": 1}
#: the most channels whose mix to mono is ffmpeg's own (``-ac 1``); a track of more (a field recorder's 12-channel
#: WAV) has no layout ffmpeg 5.x can name, which refused to mix it while the static build guessed 7.1.4 and summed
#: its channels: such a track is decoded as the plain mean of its channels, alike in every build
MAX_MIXED_CHANNELS = 8
#: a forward jump of the audio timestamps from MIN_AUDIO_GAP_S to MAX_AUDIO_GAP_S seconds is a gap (a capture's
#: dropout: filled with silence, so later cues keep to the video); a longer one is a discontinuity carried straight
#: on (ffmpeg's own ``-dts_delta_threshold`` default), a shorter one timestamp jitter
MIN_AUDIO_GAP_S = 0.1
MAX_AUDIO_GAP_S = 10.0
#: ... and is filled only once the audio after it has kept to the new time this long: a packet or two stamped wrong
#: (a capture's bit error) jump ahead and come back, and filling them would put everything after them late. The
#: silence then goes in this much after the gap's start, an error cues can bear
AUDIO_GAP_CONFIRM_S = 0.1
#: ffmpeg's stereo-to-mono gain (``-ac 1``, float output: no renormalisation), applied here in the same float32
#: arithmetic so that an in-phase stereo track decodes to exactly the samples ``-ac 1`` gave
_DOWNMIX_GAIN = np.float32(np.sqrt(0.5))
#: the width and height of a frame encoded as yuv420p (x264), which needs even sides: rounded down, but never below 2
#: (a 1-pixel side rounded to 0 is "keep the input's" to scale, and x264 refused it after the whole analysis)
EVEN_SIDES = ("max(2,trunc(iw/2)*2)", "max(2,trunc(ih/2)*2)")
#: the same as a ``-vf`` filter (quoted: the commas would end the filter)
EVEN_SIDES_VF = "scale='{}':'{}'".format(*EVEN_SIDES)
#: seconds of sound after the last picture from which the burn-in holds that picture to the end (less is a
#: container's rounding, or a fade-out's last frames)
HELD_PICTURE_MIN_S = 1.0
#: the environment variables that choose the binaries
FFMPEG_ENV, FFPROBE_ENV = "DRAMAPIC_FFMPEG", "DRAMAPIC_FFPROBE"
#: causes on the output side that ffmpeg reports in its own words (errno strings): a full disk is not bad media
OUTPUT_CAUSES = ("No space left on device", "Disk quota exceeded", "File too large", "Read-only file system")
#: muxer complaints about timestamps (concatenated episodes, broadcast captures): the audio itself decodes fine
TIMESTAMP_WARNINGS = ("non monotonically increasing dts", "non monotonous dts", "Application provided invalid",
                      "Queue input is backward in time", "timestamp discontinuity")
#: causes of an unreadable input, in the words every ffmpeg build uses (the path echoed in front of them varies)
INPUT_CAUSES = ("Invalid data found when processing input", "moov atom not found", "End of file",
                "Permission denied", "No such file or directory", "Invalid argument")


def _chosen(variable: str) -> str | None:
    value = os.environ.get(variable, "").strip()
    if not value:
        return None
    found = shutil.which(value)
    if not found:
        raise MediaError(f"${variable} is {value!r}, which is not an executable file")
    return found


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: ``$DRAMAPIC_FFMPEG``, else ``ffmpeg`` on PATH, else imageio-ffmpeg's static build."""
    system = _chosen(FFMPEG_ENV) or shutil.which("ffmpeg")
    if system:
        return system
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as err:  # imageio-ffmpeg raises RuntimeError when its binary is missing
        raise MediaError(f"no ffmpeg found: install ffmpeg or imageio-ffmpeg ({err})") from None


@lru_cache(maxsize=1)
def ffprobe_exe() -> str | None:
    """``$DRAMAPIC_FFPROBE``, else the ``ffprobe`` beside :func:`ffmpeg_exe` (same build), else None."""
    chosen = _chosen(FFPROBE_ENV)
    if chosen:
        return chosen
    beside = Path(ffmpeg_exe()).with_name("ffprobe")
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


#: a line of ``ffmpeg -filters``: " ..C scale   V->V   Scale the input…" (5.x has three flag columns, 7.x two)
_FILTER_LINE = re.compile(r"^ [A-Z.|]{2,3} (\w+)\s+\S*->\S*", re.MULTILINE)


@cache
def ffmpeg_filters(exe: str) -> frozenset[str]:
    """The filters the ffmpeg at ``exe`` was built with (``ffmpeg -filters``), asked once per binary."""
    done = _run([exe, "-hide_banner", "-nostdin", "-filters"], what=f"cannot list the filters of {exe}", timeout=60)
    return frozenset(_FILTER_LINE.findall(done.stdout.decode("utf-8", "replace")))


#: the first line of ``ffmpeg -version``: "ffmpeg version 5.1.9-0+deb12u1 Copyright (c) ..." (Debian's), "ffmpeg
#: version n9.0.2-17-g2a571b6068-20260930 Copyright ..." (imageio-ffmpeg's static build)
_VERSION_LINE = re.compile(r"^ffmpeg version (\S+)")


@cache
def ffmpeg_version(exe: str) -> str:
    """The version the ffmpeg at ``exe`` states (``ffmpeg -version``: ``5.1.9-0+deb12u1``), asked once per binary;
    its whole first line when it has no such word (a build that words it otherwise)."""
    done = _run([exe, "-nostdin", "-version"], what=f"cannot ask {exe} its version", timeout=60)
    first = next(iter(done.stdout.decode("utf-8", "replace").strip().splitlines()), "")
    found = _VERSION_LINE.match(first)
    return found.group(1) if found else (first.strip() or "unknown")


def opus_encoder() -> str:
    """What :func:`encode_opus` encodes with, in words a lab output records (``"ffmpeg 5.1.9-0+deb12u1"``): the chosen
    ffmpeg's version. Two builds encode the same samples to other Opus bytes, which moves a model's figures on them by
    tenths of a point. (The libopus version would say more, but ffmpeg states it nowhere: not in ``-version`` nor
    ``-encoders``, and a bit-exact file names only "Lavc libopus".)"""
    return f"ffmpeg {ffmpeg_version(ffmpeg_exe())}"


def check_burn_in() -> None:
    """Refuse before any analysis when the chosen ffmpeg cannot burn subtitles: its ``subtitles`` filter comes with
    libass, which some builds leave out, and the burn-in would otherwise fail only after the whole analysis."""
    exe = ffmpeg_exe()
    if "subtitles" not in ffmpeg_filters(exe):
        raise MediaError(f"{exe} has no 'subtitles' filter (it was built without libass), which burning the cues "
                         f"in needs: use --soft-subs or --no-video, or set ${FFMPEG_ENV} to an ffmpeg with libass")


def file_arg(path: Path | str) -> str:
    """``path`` as ffmpeg must be given it: ``file:`` + absolute path (no option, no protocol, whatever the name)."""
    return "file:" + os.path.abspath(os.fspath(path))


@dataclass(frozen=True)
class StreamInfo:
    index: int          # index among streams of the same kind (the N of ``0:a:N``)
    kind: str           # "audio" | "video" | "subtitle" | "data"
    codec: str
    sample_rate: int | None = None
    channels: int | None = None
    width: int | None = None
    height: int | None = None
    attached_picture: bool = False
    #: degrees of the display matrix: a phone's portrait video is often stored landscape and turned on playback
    rotation: int = 0
    #: width of one stored pixel on screen (SAR): 64/45 for a 16:9 DVD or SD broadcast stored as 720x576
    pixel_aspect: float = 1.0
    #: marked as the track a player starts with (disposition ``default``)
    default: bool = False
    #: the stream's first timestamp in seconds, as the container states it (None: not said; Debian's ffmpeg banner
    #: does not, its ffprobe and newer banners do)
    start_time: float | None = None

    @property
    def display_size(self) -> tuple[int | None, int | None]:
        """(width, height) as the picture is shown, and burned (ffmpeg turns it upright): the width stretched by
        the pixel aspect, swapped by a quarter turn."""
        width = round(self.width * self.pixel_aspect) if self.width else self.width
        if self.rotation % 180 == 90:
            return self.height, width
        return width, self.height


@dataclass(frozen=True)
class MediaInfo:
    path: Path
    duration: float
    streams: tuple[StreamInfo, ...]

    @property
    def audio_streams(self) -> tuple[StreamInfo, ...]:
        return tuple(s for s in self.streams if s.kind == "audio")

    def audio_track(self, requested: int | None = None) -> int:
        """The audio track to analyse: ``requested`` (``--audio-track N``), else the one the file marks as default.

        A player starts with the default track; a dub or a commentary marked default is what the viewer hears, so
        it is what the cues and the summary must describe. Where none is marked (or several: Matroska marks every
        track default unless told otherwise) the first of them, else track 0."""
        if requested is not None:
            return requested
        return next((s.index for s in self.audio_streams if s.default), 0)

    @property
    def video_streams(self) -> tuple[StreamInfo, ...]:
        """Real picture streams (cover art attached to audio files does not count)."""
        return tuple(s for s in self.streams if s.kind == "video" and not s.attached_picture)

    @property
    def has_video(self) -> bool:
        return bool(self.video_streams)


def _run(args: Sequence[str], *, what: str, error: type = MediaError, timeout: float | None = None,
         first: bool = False) -> subprocess.CompletedProcess:
    log.debug("running %s", " ".join(args))
    try:
        done = subprocess.run(list(args), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                              preexec_fn=child_dies_with_parent())
    except FileNotFoundError:
        raise MediaError(f"{what}: {args[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise MediaError(f"{what}: ffmpeg did not finish within {timeout:.0f} s") from None
    # some builds (Debian's 5.1) exit 0 after "Error writing trailer: No space left on device": the output is cut
    if done.returncode != 0 or _output_cause(done.stderr, args=args):
        raise _failure(done.stderr, what=what, error=error, first=first, args=args)
    return done


def _echoed_paths(args: Sequence[str]) -> list[str]:
    """The files named in an ffmpeg command (its ``file:`` arguments), as ffmpeg may echo them in its messages:
    with and without the prefix, longest first."""
    names = {form for arg in args if arg.startswith("file:") for form in (arg, arg[5:])}
    return sorted(names, key=len, reverse=True)


def _output_cause(stderr: bytes, *, args: Sequence[str] = ()) -> str | None:
    """The output-side cause (:data:`OUTPUT_CAUSES`) ffmpeg reports in ``stderr``, if any. The files named in
    ``args`` are taken out of the text first: ffmpeg echoes them ("file:/…/No space left on device.mp4: Invalid
    data found…"), and a name is not a full disk."""
    text = stderr.decode("utf-8", "replace")
    for path in _echoed_paths(args):
        text = text.replace(path, "")
    text = text.lower()
    return next((cause for cause in OUTPUT_CAUSES if cause.lower() in text), None)


def _failure(stderr: bytes, *, what: str, error: type = MediaError, first: bool = False,
             args: Sequence[str] = ()) -> Exception:
    """The error for a failed ffmpeg run: an output-side cause anywhere in stderr (a full disk) is an
    :class:`OutputError` named by that cause; otherwise ``error`` with the most specific line
    (:func:`_error_line`). ``args``, the command, names the files whose names are no cause (:func:`_output_cause`)."""
    cause = _output_cause(stderr, args=args)
    if cause:
        return OutputError(f"{what}: {cause}")
    return error(f"{what}: {_error_line(stderr, first=first)}")


def _input_cause(text: str) -> str:
    """Why ffmpeg/ffprobe could not open an input, without the path or the build's prefixes."""
    for cause in INPUT_CAUSES:
        if cause.lower() in text.lower():
            return cause
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1].rsplit(": ", 1)[-1] if lines else "no streams found"


#: components' prefixes on ffmpeg's log lines ("[vost#0:0/libx264 @ 0x55d0c8a3b2c0] [enc:libx264 @ 0x5...] "):
#: the addresses differ every run, and 7.x nests them
_COMPONENTS = re.compile(r"^(?:\[([^\]]+?) @ 0x[0-9a-f]+\]\s*)+")
#: ffmpeg's consequences of an error, in words that differ between builds ("Conversion failed!", 7.x's "Task
#: finished with error code: -22"): never the cause
_GENERIC = ("conversion failed", "error opening output", "exiting", "error while", "error initializing output",
            "nothing was written", "error sending frames", "task finished with error", "terminating thread",
            "could not open encoder", "frame=", "size=")


def _error_line(stderr: bytes, *, first: bool = False) -> str:
    """The most specific line of ffmpeg's stderr: the last one that is not a generic consequence, or with
    ``first`` the first one (with ``-v error`` the cause comes first: an encoder's own complaint)."""
    lines = []
    for raw in stderr.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        found = _COMPONENTS.match(line)
        if found:  # "[enc:libx264 @ 0x...] Error ..." -> "enc:libx264: Error ..." (the innermost component)
            line = f"{found.group(1)}: {line[found.end():]}"
        if line:
            lines.append(line)
    specific = [ln for ln in lines if not ln.lower().split(": ", 1)[-1].startswith(_GENERIC)
                and not ln.lower().startswith(_GENERIC)]
    chosen = specific or lines or ["ffmpeg failed without a message"]
    return chosen[0] if first else chosen[-1]


#: the input's own "  Duration: ..." line, never a tag's value that says "Duration: ..." (tags come first, as
#: "    title           : Duration: 10:00:00.00", which would be taken for the length and the file for truncated)
_DURATION = re.compile(r"^\s*Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)", re.MULTILINE)
#: the display matrix under a stream ("displaymatrix: rotation of -90.00 degrees" in 5.x, "Display Matrix: ..." later)
_ROTATION = re.compile(r"^\s*display ?matrix: rotation of (-?\d+(?:\.\d+)?) degrees", re.IGNORECASE)
_STREAM = re.compile(r"^\s*Stream #\d+:(\d+)(?:\[[^\]]*\])?(?:\([^)]*\))?: (Video|Audio|Subtitle|Data|Attachment): (\w+)(.*)$")


def parse_ffmpeg_banner(text: str) -> tuple[float | None, list[StreamInfo]]:
    """Duration and streams of the first input from the text ``ffmpeg -i FILE`` prints on stderr."""
    duration = None
    match = _DURATION.search(text)
    if match:
        hours, minutes, seconds = match.groups()
        duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    # by the stream's number in the file: a capture of several programs (services) lists its streams under each
    # program that carries them, so a stream may come twice and out of file order
    found_streams: dict[int, StreamInfo] = {}
    last = None
    index = 0  # a placeholder: each kind's indices are given once every stream is known
    for line in text.splitlines():
        if line.startswith("Output #"):
            break
        found = _STREAM.match(line)
        if not found:
            turned = _ROTATION.match(line)
            if turned and last is not None and found_streams[last].kind == "video":  # side data follows its stream
                found_streams[last] = dataclasses.replace(found_streams[last],
                                                          rotation=round(float(turned.group(1))))
            continue
        number, kind, codec, rest = int(found.group(1)), found.group(2).lower(), found.group(3), found.group(4)
        last = None if number in found_streams else number
        if last is None:
            continue
        # the dispositions close the line: "..., 128 kb/s (default)" (stream titles and tags come on later lines)
        default = "(default)" in rest
        info = StreamInfo(index=index, kind=kind, codec=codec, attached_picture="(attached pic)" in rest,
                          default=default)
        if kind == "audio":
            rate = re.search(r"(\d+) Hz", rest)
            layout = re.search(r"Hz, ([^,]+)", rest)
            channels = _layout_channels(layout.group(1)) if layout else None
            info = StreamInfo(index=index, kind=kind, codec=codec,
                              sample_rate=int(rate.group(1)) if rate else None, channels=channels, default=default)
        elif kind == "video":
            size = re.search(r", (\d{1,5})x(\d{1,5})\b", rest)  # a side of 1 pixel too (a placeholder picture)
            if size:
                # " [SAR 64:45 DAR 16:9]" from the codec, ", SAR 64:45 DAR 16:9" from the container (ProRes in MOV,
                # a remux relabelled 4:3): where both are printed the container's is last, and the one ffmpeg uses
                sars = re.findall(r"(?:\[|, )SAR (\d+):(\d+) DAR", rest)
                info = StreamInfo(index=index, kind=kind, codec=codec, width=int(size.group(1)),
                                  height=int(size.group(2)), attached_picture=info.attached_picture,
                                  pixel_aspect=_ratio(*sars[-1]) if sars else 1.0, default=default)
        started = re.search(r", start (-?\d+(?:\.\d+)?)", rest)
        if started:
            info = dataclasses.replace(info, start_time=float(started.group(1)))
        found_streams[number] = info
    streams: list[StreamInfo] = []
    counts: dict[str, int] = {}
    for number in sorted(found_streams):  # each kind's N of "0:a:N" counts in file order
        info = found_streams[number]
        streams.append(dataclasses.replace(info, index=counts.get(info.kind, 0)))
        counts[info.kind] = counts.get(info.kind, 0) + 1
    return duration, streams


#: the channel layouts ffmpeg names by a word (its ``-layouts``), with their channel counts
_NAMED_LAYOUTS = {"mono": 1, "stereo": 2, "downmix": 2, "binaural": 2, "quad": 4, "hexagonal": 6, "octagonal": 8,
                  "cube": 8, "hexadecagonal": 16}


def _layout_channels(layout: str) -> int | None:
    """Channels of a layout as the banner names it: a word ("quad", "downmix"), numbers ("5.1(side)", "7.1.4": each
    of them counts), a count ("12 channels (FL+FR+…)") or the channels themselves ("FL+FR+LFE"); None if unknown."""
    name = layout.split("(")[0].strip()
    if name in _NAMED_LAYOUTS:
        return _NAMED_LAYOUTS[name]
    if re.fullmatch(r"\d+(?:\.\d+)*", name):
        return sum(int(n) for n in name.split("."))
    counted = re.fullmatch(r"(\d+) channels", name)
    if counted:
        return int(counted.group(1))
    return name.count("+") + 1 if re.fullmatch(r"\w+(?:\+\w+)+", name) else None


def _ratio(numerator: str, denominator: str) -> float:
    """``64:45`` as a number; 1.0 for an unknown one (``0:1``, ``N/A``), which players show as square pixels."""
    try:
        value = int(numerator) / int(denominator)
    except (ValueError, ZeroDivisionError):
        return 1.0
    return value if value > 0 else 1.0


def _seconds(value: Any) -> float | None:
    """ffprobe's ``"1.400000"`` as a float; None for ``"N/A"``, missing or unreadable."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _ffprobe_rotation(raw: dict) -> int:
    """Degrees of a stream's display matrix in ffprobe's JSON (side data; the ``rotate`` tag of old builds)."""
    for side in raw.get("side_data_list", []):
        if "rotation" in side:
            return round(float(side["rotation"]))
    try:  # a tag is free text in Matroska: anything but a number there is no rotation
        return round(float(raw.get("tags", {}).get("rotate", 0)))
    except (TypeError, ValueError, OverflowError):
        return 0


def _probe_with_ffprobe(path: Path) -> tuple[float | None, list[StreamInfo]]:
    try:
        done = subprocess.run([ffprobe_exe(), "-v", "error", "-print_format", "json", "-show_format",
                               "-show_streams", file_arg(path)],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=120,
                              preexec_fn=child_dies_with_parent())
    except subprocess.TimeoutExpired:
        raise MediaError(f"cannot read {path.name}: ffprobe did not finish within 120 s") from None
    if done.returncode != 0:  # worded as the ffmpeg banner path words it: the same input, the same message
        raise InputError(f"{path.name} is not a media file ffmpeg can read "
                         f"({_input_cause(done.stderr.decode('utf-8', 'replace'))})")
    data = json.loads(done.stdout or b"{}")
    duration = data.get("format", {}).get("duration")
    streams, counts = [], {}
    for raw in data.get("streams", []):
        kind = raw.get("codec_type", "data")
        index = counts.get(kind, 0)
        counts[kind] = index + 1
        streams.append(StreamInfo(
            index=index, kind=kind, codec=raw.get("codec_name", "unknown"),
            sample_rate=int(raw["sample_rate"]) if raw.get("sample_rate") else None,
            channels=raw.get("channels"), width=raw.get("width"), height=raw.get("height"),
            attached_picture=bool(raw.get("disposition", {}).get("attached_pic")),
            default=bool(raw.get("disposition", {}).get("default")),
            rotation=_ffprobe_rotation(raw),
            pixel_aspect=_ratio(*str(raw.get("sample_aspect_ratio", "1:1")).partition(":")[::2]),
            start_time=_seconds(raw.get("start_time"))))
    return (float(duration) if duration not in (None, "N/A") else None), streams


def probe(path: Path) -> MediaInfo:
    """Streams and duration of a media file; raises :class:`InputError` for anything ffmpeg cannot read."""
    path = Path(path)
    if ffprobe_exe():
        duration, streams = _probe_with_ffprobe(path)
    else:
        # the timeout is this process's to enforce: killed outright, it would leave a probe of a file on a hung
        # network share running for good, but for the parent-death signal
        done = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", file_arg(path)],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=120,
                              preexec_fn=child_dies_with_parent())
        text = done.stderr.decode("utf-8", "replace")
        duration, streams = parse_ffmpeg_banner(text)
        if not streams:
            # the banner path always "fails" (no output given): only a missing stream table means unreadable
            lines = [ln for ln in text.splitlines() if "at least one output file must be specified" not in ln]
            raise InputError(f"{path.name} is not a media file ffmpeg can read ({_input_cause(chr(10).join(lines))})")
    if not streams:
        raise InputError(f"{path.name} is not a media file ffmpeg can read (no streams found)")
    return MediaInfo(path=path, duration=float(duration or 0.0), streams=tuple(streams))


def channel_analysed(info: MediaInfo, *, audio_track: int, audio_channel: str | None) -> str | None:
    """The one channel :func:`stream_audio` decodes of ``audio_track`` for ``audio_channel`` (``--audio-channel``),
    or None when it decodes the track's mix: also for a channel asked of a one-channel track, or of a track whose
    channel count is not known (it warns then)."""
    channels = info.audio_streams[audio_track].channels if audio_track < len(info.audio_streams) else None
    return audio_channel if channels not in (None, 1) else None


def decode_audio(info: MediaInfo, *, audio_track: int = 0, sample_rate: int = SAMPLE_RATE,
                 audio_channel: str | None = None) -> np.ndarray:
    """Decode one audio track (or one channel of it: ``audio_channel``) to mono float32 at ``sample_rate``, whole.

    Returns
    -------
    np.ndarray, shape (n_samples,)

    Raises
    ------
    MediaError
        As :func:`stream_audio`.
    """
    chunks = list(stream_audio(info, audio_track=audio_track, sample_rate=sample_rate, audio_channel=audio_channel))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


def stream_audio(info: MediaInfo, *, audio_track: int = 0, sample_rate: int = SAMPLE_RATE,
                 chunk_s: float = 60.0, audio_channel: str | None = None) -> Iterator[np.ndarray]:
    """Decode one audio track to mono float32 at ``sample_rate`` and yield it in ``chunk_s`` pieces.

    Memory stays at one chunk however long the input. The checks that need the whole stream (decoding errors,
    truncation) run when the stream ends, so a caller learns of a bad file before it writes anything. Two recording
    faults are mended on the way, each with a warning, judged per :data:`BLOCK_S` block on a fixed grid (so any
    ``chunk_s`` gives the same samples): stereo whose channels cancel in the mono mix is taken from its louder
    channel (:func:`_stereo_to_mono`), and a DC offset is taken out (:func:`_without_dc_offset`). Other audio is
    exactly what ffmpeg's own downmix gives, but for a track of more than :data:`MAX_MIXED_CHANNELS` channels: the
    plain mean of its channels.

    ``audio_channel`` (``"left"`` or ``"right"``: the track's first or second channel, front left / right of a
    surround track) decodes that channel alone instead of the mix: a bilingual broadcast carries one language per
    channel of a "dual mono" track, and their mix is two languages at once. A one-channel track has nothing to
    choose from: its channel is decoded, with a warning.

    Yields
    ------
    np.ndarray, shape (n_samples,)
        Consecutive pieces; all but the last hold exactly ``round(chunk_s * sample_rate)`` samples.

    Raises
    ------
    MediaError
        No such audio track, ffmpeg failed, many decoding errors, NaN or infinite samples, or a file that ends
        well before its stated duration.
    """
    if not info.audio_streams:
        raise MediaError(f"{info.path.name} has no audio stream")
    _check_audio_track(info, audio_track)
    if audio_channel is not None and audio_channel not in AUDIO_CHANNELS:
        raise ValueError(f"audio_channel must be one of {sorted(AUDIO_CHANNELS)} or None, not {audio_channel!r}")
    track_channels = info.audio_streams[audio_track].channels
    pick = []  # the one channel asked for, by position (c0, c1: a layout-free name every ffmpeg build knows)
    # which channel is decoded is channel_analysed's answer, the one the result records
    chosen = channel_analysed(info, audio_track=audio_track, audio_channel=audio_channel)
    if audio_channel is not None and track_channels == 1:
        log.warning("%s: audio track %d has one channel, so --audio-channel %s has nothing to choose from; that "
                    "channel is analysed", info.path.name, audio_track, audio_channel)
    elif audio_channel is not None and track_channels is None:
        # pan's second channel of a one-channel track is digital silence, without a word from ffmpeg
        log.warning("%s: how many channels audio track %d has is not known, so --audio-channel %s cannot be "
                    "trusted; the track's mix is analysed", info.path.name, audio_track, audio_channel)
    elif chosen is not None:
        pick = [f"pan=mono|c0=c{AUDIO_CHANNELS[chosen]}"]
    elif (track_channels or 0) > MAX_MIXED_CHANNELS:
        pick = ["pan=mono|c0=" + "+".join(f"{1 / track_channels:.9g}*c{n}" for n in range(track_channels))]
    # a stereo track is decoded as it is and mixed to mono here, a block at a time, so that a block whose channels
    # cancel (one out of phase) can be analysed from one channel instead of as the near-silence of their sum
    channels = 2 if track_channels == 2 and not pick else 1
    timeline = _timeline_filter(*_audio_start(info, audio_track))
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", file_arg(info.path),
            "-map", f"0:a:{audio_track}", "-vn", "-sn", "-dn",
            "-af", ",".join([*pick, timeline]),
            "-ac", str(channels), "-ar", str(sample_rate),
            "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"]
    what = f"cannot decode the audio of {info.path.name}"
    chunk_samples = max(1, round(chunk_s * sample_rate))
    # the audio is read, and judged, in blocks of BLOCK_S whatever the chunk size: the pieces of any chunk_s
    # stitched together equal the whole decode
    frame_bytes = 4 * channels
    read_bytes = round(BLOCK_S * sample_rate) * frame_bytes
    decoded_samples = 0
    anti_phase_samples = dc_samples = 0
    offset = 0.0
    log.debug("running %s", " ".join(args))
    with tempfile.TemporaryFile() as stderr:
        try:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                                    preexec_fn=child_dies_with_parent())
        except FileNotFoundError:
            raise MediaError(f"{what}: {args[0]} not found") from None
        try:
            assert proc.stdout is not None
            pending: list[np.ndarray] = []
            pending_n = 0
            while True:
                block = proc.stdout.read(read_bytes)
                if not block:
                    break
                usable = len(block) - len(block) % frame_bytes
                audio = np.frombuffer(block[:usable], dtype="<f4").astype(np.float32)
                if channels == 2:
                    audio, flipped = _stereo_to_mono(audio.reshape(-1, 2))
                    if flipped and not anti_phase_samples:
                        log.warning("%s: the two audio channels cancel out when mixed to mono (one is out of "
                                    "phase), from %.1f s; the louder channel alone is analysed there instead",
                                    info.path.name, decoded_samples / sample_rate)
                    anti_phase_samples += audio.shape[0] if flipped else 0
                audio, offset = _without_dc_offset(audio, previous=offset, whole=audio.shape[0] >= sample_rate)
                if offset and not dc_samples:
                    log.warning("%s: its audio has a DC offset of %+.3f (it sits off zero, a recording fault), from "
                                "%.1f s; it is taken out before analysis", info.path.name, offset,
                                decoded_samples / sample_rate)
                dc_samples += audio.shape[0] if offset else 0
                # float PCM (a 32-bit WAV) carries NaN and inf as they are: no model can analyse them
                bad = np.flatnonzero(~np.isfinite(audio))
                if bad.size:
                    first = (decoded_samples + bad[0]) / sample_rate
                    raise MediaError(f"{info.path.name} holds NaN or infinite audio samples (corrupt "
                                     f"floating-point audio), the first at {first:.2f} s")
                decoded_samples += audio.shape[0]
                pending.append(audio)
                pending_n += audio.shape[0]
                while pending_n >= chunk_samples:
                    joined = np.concatenate(pending) if len(pending) > 1 else pending[0]
                    yield joined[:chunk_samples]
                    pending = [joined[chunk_samples:]] if joined.shape[0] > chunk_samples else []
                    pending_n -= chunk_samples
            if pending_n:
                yield np.concatenate(pending)
            code = proc.wait()
        finally:
            if proc.poll() is None:  # the consumer stopped early or failed
                proc.kill()
                proc.wait()
        stderr.seek(0)
        text = stderr.read()
    if code != 0:
        raise _failure(text, what=what, args=args)
    lines = [ln.strip() for ln in text.decode("utf-8", "replace").splitlines() if ln.strip()]
    # timestamp complaints are not decoding errors: the audio is all there (counted, warned about once)
    # one pass, each line sorted once: after a mid-stream format change every later packet adds a complaint (a
    # 2 h capture: some 200,000 lines), and a list membership test per line took minutes
    errors, stamps, rebuilt = [], [], []
    # what the pictures' (or subtitles') decoders and parsers say while ffmpeg opens the file (it decodes a few
    # frames of every stream to learn their formats) is about them: a capture with damaged video and intact audio
    # was refused as corrupt audio
    # (newer builds also name an input stream's own messages "[vist#0:1/h264 @ ...]", subtitles "sist", data "dist")
    others = tuple({f"[{s.codec} @" for s in info.streams if s.kind != "audio"} |
                   {"[NULL @", "[vist#", "[sist#", "[dist#"})
    pictures = 0
    for ln in lines:
        if ln.startswith(others):
            pictures += 1
        elif not any(w.lower() in ln.lower() for w in TIMESTAMP_WARNINGS):
            errors.append(ln)
        # the raw output's own complaints: the timeline filters regenerate the timestamps gap-free, and start again
        # where ffmpeg rebuilds them, at a change of the audio's channels or rate (stereo adverts in 5.1
        # programme); the input's timestamps are not at fault, and the samples are all there, in order
        elif "[f32le @" in ln:
            rebuilt.append(ln)
        else:
            stamps.append(ln)
    if rebuilt:
        log.info("%s: its audio changes channels or sample rate mid-stream; decoded as one stream", info.path.name)
    if pictures:
        log.debug("%s: %d complaint(s) of ffmpeg about its other streams, not its audio", info.path.name, pictures)
    if stamps:
        log.warning("%s: its timestamps are not monotonic (%d complaint(s) from ffmpeg, first: %s); the audio was "
                    "decoded in stream order", info.path.name, len(stamps), stamps[0])
    # a broadcast recording cut mid-packet reports an error or two and is still worth analysing;
    # a stream that keeps failing is not
    if len(errors) > MAX_DECODE_ERRORS:
        raise MediaError(f"{info.path.name} is corrupt: ffmpeg reported {len(errors)} decoding errors, "
                         f"first: {errors[0]}")
    decoded = decoded_samples / sample_rate
    # a cut-off file still decodes, silently shorter than its container says; but a whole one may have audio that
    # ends before its pictures do (a silent end card), which the pictures tell apart: a cut file ends both
    if info.duration > 2.0 and decoded < 0.9 * info.duration:
        pictures = _video_end(info)
        if pictures < 0.9 * info.duration and not _duration_guessed(info):
            raise MediaError(f"{info.path.name} looks truncated: {decoded:.1f} s of audio decoded, "
                             f"the container says {info.duration:.1f} s")
        if pictures >= 0.9 * info.duration:
            log.warning("%s: its audio ends at %.1f s, its video at %.1f s; the analysis covers the audio",
                        info.path.name, decoded, pictures)
        else:
            log.info("%s: %.1f s of audio decoded; the %.1f s ffmpeg gave as its length was a guess from its "
                     "bitrate", info.path.name, decoded, info.duration)
    if errors:
        log.warning("%s: ffmpeg reported %d decoding error(s), first: %s", info.path.name, len(errors), errors[0])
    if anti_phase_samples:
        log.info("%s: %.1f s of %.1f s analysed from one channel (out of phase)", info.path.name,
                 anti_phase_samples / sample_rate, decoded_samples / sample_rate)

#: ashowinfo's line of the first frame: its pts (filter time base) and pts_time (as "%.6g" prints it: "1", "0.007",
#: "2.08333e-05")
_FIRST_FRAME = re.compile(r"Parsed_ashowinfo\S* @ \S+\] n:\s*0 pts:\s*(-?\d+) pts_time:\s*(-?[\d.]+(?:e[-+]?\d+)?)\s")


def _audio_start(info: MediaInfo, audio_track: int) -> tuple[int | None, float]:
    """Where the track's audio starts on the file's clock, as the timeline filters need it.

    Returns
    -------
    first_pts : int or None
        The first decoded frame's timestamp on ffmpeg's timeline of the audio decode, in the audio filters' time
        base, read with ``ashowinfo``; None when ffmpeg does not say (a warning: the decode that follows reports
        what is wrong with the file, if anything).
    extra_s : float
        Seconds of silence to put in front beyond that: the late start of an MPEG-TS capture's audio after its
        pictures. With the video unused, ffmpeg starts a TS (or MPEG-PS) file's timeline at its audio, so the
        decode sees no late start; the streams' own start times (the probe's) tell it. Mapping the video into the
        decode instead made its parser's complaints about damaged pictures count as audio errors.

    Its own ``subprocess`` call, not :func:`_run`: at ``-v info`` the banner prints the file's tags, and a title
    that reads "No space left on device" must not be taken for a full disk.
    """
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "info", "-i", file_arg(info.path),
            "-map", f"0:a:{audio_track}", "-vn", "-sn", "-dn", "-af", "ashowinfo", "-frames:a", "1", "-f", "null", "-"]
    log.debug("running %s", " ".join(args))
    try:
        done = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, timeout=300, check=False,
                              preexec_fn=child_dies_with_parent())
    except (OSError, subprocess.TimeoutExpired):
        done = None
    found = done and _FIRST_FRAME.search(done.stderr.decode("utf-8", "replace"))
    if not found:
        log.warning("%s: ffmpeg did not say where audio track %d starts; it is taken to start with the file, and a "
                    "change of its channels or rate mid-stream may add silence", info.path.name, audio_track)
        return None, 0.0
    first_pts, first_s = int(found.group(1)), float(found.group(2))
    audio = info.audio_streams[audio_track].start_time
    video = info.video_streams[0].start_time if info.video_streams else None
    if audio is None or video is None:
        return first_pts, 0.0
    # the audio's start after the pictures' as the container states them, beyond what the decode's timeline shows
    extra = (audio - min(audio, video)) - first_s
    return first_pts, extra if extra > 0.005 else 0.0


def _timeline_filter(first_pts: int | None, extra_s: float = 0.0) -> str:
    """The filters that put the decoded audio on the video's clock, so that every time found is the video's time
    too and cues come with their sound.

    1. An audio track that starts after the file does (a broadcast capture, an edit list) is preceded by that much
       silence (``aresample=first_pts=0``), ``extra_s`` more where the decode's timeline cannot show it (MPEG-TS:
       :func:`_audio_start`).
    2. A forward jump of its timestamps of :data:`MIN_AUDIO_GAP_S` to :data:`MAX_AUDIO_GAP_S` that the audio keeps
       to for :data:`AUDIO_GAP_CONFIRM_S` (a capture's dropout) is filled with that much silence: closed up, every
       later cue came that much early.
    3. Anything else carries straight on, sample after sample, as a plain decode gives it: an overlap (the priming
       samples at each join of a looped or concatenated file), a jump back, a jump beyond :data:`MAX_AUDIO_GAP_S`,
       a jump either way that comes back within :data:`AUDIO_GAP_CONFIRM_S` (a few packets stamped wrong).

    The first ``asetpts`` decides: it places each frame right after the samples before it plus the gaps filled so
    far, so that ``aresample``'s hard compensation sees those gaps only and never trims. Its memory (``st``/``ld``,
    kept from frame to frame): 0 this frame's distance from where the samples put it, 1 the gaps' sum, 2 the shift
    taken at the jumps carried on, 3 the jump waiting to be confirmed (0: none), 4 the samples consumed when it
    was seen. ffmpeg builds the filters afresh where the audio's channels or rate change mid-stream (a broadcast's
    stereo adverts between 5.1 programme): the new graph's first frame is not the track's first (``first_pts``
    tells them apart), so it starts at 0 rather than have ``first_pts=0`` put its whole start time of silence in
    front of it. The last ``asetpts`` regenerates the timestamps from the sample count for the raw muxer.
    """
    tolerance, gap_min, gap_max = MIN_AUDIO_GAP_S / 2, MIN_AUDIO_GAP_S, MAX_AUDIO_GAP_S
    # the track's first frame keeps its time (the silence in front of a late track); a rebuilt graph's starts at 0
    start = "STARTPTS" if first_pts is None else f"if(eq(STARTPTS,{first_pts}),STARTPTS+{extra_s:.6f}/TB,0)"
    place = "NB_CONSUMED_SAMPLES/SR/TB+ld(1)"
    decide = (
        f"st(0,PTS-STARTPTS-({place})+ld(2));"
        # nothing waiting: any jump waits to be confirmed
        f"if(eq(ld(3),0),if(gt(abs(ld(0)),{gap_min:g}/TB),st(3,ld(0))+st(4,NB_CONSUMED_SAMPLES),0),"
        # a jump waiting, and the audio keeps to it: once long enough, a gap is filled, any other jump carried on
        f"if(lte(abs(ld(0)-ld(3)),{tolerance:g}/TB),if(gte(NB_CONSUMED_SAMPLES-ld(4),{AUDIO_GAP_CONFIRM_S:g}*SR),"
        f"if(gt(ld(3),{gap_min:g}/TB)*lte(ld(3),{gap_max:g}/TB),st(1,ld(1)+ld(3)),st(2,ld(2)-ld(3)))+st(3,0),0),"
        # back on the old time: the jump was a glitch; yet another jump waits in its place
        f"if(lte(abs(ld(0)),{tolerance:g}/TB),st(3,0),st(3,ld(0))+st(4,NB_CONSUMED_SAMPLES))));"
    )
    return (f"asetpts='{decide}{start}+{place}',aresample=first_pts=0:min_comp=0.001:min_hard_comp=0.05,"
            "asetpts=N/SR/TB")


def _without_dc_offset(audio: np.ndarray, *, previous: float = 0.0, whole: bool = True) -> tuple[np.ndarray, float]:
    """``audio`` less its mean where that is a DC offset (:data:`DC_OFFSET_MIN`, :data:`DC_OFFSET_SHARE`: the mean
    and the median both that far off zero, on the same side), and the offset taken out (0.0: none, ``audio`` itself
    is returned, sample for sample).

    A block too short to judge (``whole`` false: the last, under 1 s) has the ``previous`` block's offset taken
    out, if any: a fading tail's mean over a fraction of a second says little, a capture's bias holds to its end.
    """
    if not whole:
        return (audio - np.float32(previous), previous) if previous else (audio, 0.0)
    mean = float(np.mean(audio, dtype=np.float64)) if audio.size else 0.0
    floor = max(DC_OFFSET_MIN, DC_OFFSET_SHARE * float(np.std(audio, dtype=np.float64))) if audio.size else 0.0
    if abs(mean) <= floor:
        return audio, 0.0
    # the mean alone took hard clipping for an offset (a loud voice clipped at ±1: "a DC offset of -0.033"); the
    # median, which clipping does not move, must agree
    median = float(np.median(audio))
    if abs(median) > floor and (median > 0) == (mean > 0):
        return audio - np.float32(mean), mean
    return audio, 0.0


def _stereo_to_mono(frames: np.ndarray) -> tuple[np.ndarray, bool]:
    """Mix (n, 2) stereo to mono as ffmpeg's ``-ac 1`` does, or take its louder channel where the two cancel.

    Returns the mono samples and whether they are one channel. The side (L - R) must be :data:`ANTI_PHASE_RATIO`
    times stronger than the mid (L + R): a decorrelated pair, or dialogue on one channel only, has mid and side of
    equal energy, an in-phase pair far more mid, so only a channel inverted as a whole (or nearly) is turned to.
    One channel rather than L - R: where the mix itself is that wide (a loud effect spread out of phase over
    dialogue in the centre), L - R would cancel the dialogue instead, and a channel holds both. It is scaled to the
    level the pair would mix to in phase.
    """
    left, right = frames[:, 0], frames[:, 1]
    mid = left * _DOWNMIX_GAIN + right * _DOWNMIX_GAIN
    side = left * _DOWNMIX_GAIN - right * _DOWNMIX_GAIN
    mid_energy = float(np.mean(np.square(mid, dtype=np.float64))) if mid.size else 0.0
    side_energy = float(np.mean(np.square(side, dtype=np.float64))) if side.size else 0.0
    if side_energy > ANTI_PHASE_FLOOR ** 2 and mid_energy < ANTI_PHASE_RATIO * side_energy:
        louder = left if np.mean(np.square(left, dtype=np.float64)) >= np.mean(np.square(right, dtype=np.float64)) \
            else right
        return louder * (2 * _DOWNMIX_GAIN), True
    return mid, False


#: libavformat's word that it has no length for the file and guessed one from its size and first bitrate (a VBR
#: MP3 without a Xing header, a raw ADTS stream): ``[mp3 @ 0x…]`` in 5.x, ``[in#0/mp3 @ 0x…]`` later
_GUESSED_DURATION = re.compile(r"^\[[^\]]+ @ 0x[0-9a-f]+\] Estimating duration from bitrate", re.MULTILINE)


def _duration_guessed(info: MediaInfo) -> bool:
    """Whether the duration :func:`probe` gave is ffmpeg's guess from the bitrate, which a VBR file's quiet start
    makes far too long: no sign that the file was cut. Asked only of a file whose audio ends early (its banner,
    read by line: a tag's text is indented, never a component's message)."""
    try:
        # exits 1 (no output file given) after printing the banner
        done = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", file_arg(info.path)],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=120, check=False,
                              preexec_fn=child_dies_with_parent())
    except (OSError, subprocess.TimeoutExpired):
        return False
    return bool(_GUESSED_DURATION.search(done.stderr.decode("utf-8", "replace")))


def _video_end(info: MediaInfo) -> float:
    """Seconds to the last packet of the first picture stream (packets read, not decoded); 0 without one."""
    if not info.has_video:
        return 0.0
    # what was read counts, whatever the exit status: a cut file may end in a read error
    done = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", file_arg(info.path),
                           "-map", f"0:v:{info.video_streams[0].index}", "-c", "copy", "-f", "framecrc", "-"],
                          stdin=subprocess.DEVNULL, capture_output=True, preexec_fn=child_dies_with_parent())
    lines = done.stdout.decode("ascii", "replace").splitlines()
    base = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("#tb 0:")), "1/1")
    num, den = (int(x) for x in base.split("/"))
    end = 0.0
    for line in lines:  # framecrc: stream, dts, pts, duration, size, checksum; times in the stream's time base
        fields = line.split(",")
        if line.startswith("#") or len(fields) < 4 or not fields[2].strip().lstrip("-").isdigit() \
                or not fields[3].strip().isdigit():
            continue
        end = max(end, (int(fields[2]) + int(fields[3])) * num / den)
    return end


def _progress_args() -> list[str]:
    return ["-progress", "pipe:1", "-nostats"]


def _run_with_progress(args: list[str], *, what: str, duration: float,
                       progress: Callable[[float], None] | None) -> None:
    """Run a long ffmpeg job, feeding ``progress(seconds_done)`` from its ``-progress`` output."""
    log.debug("running %s", " ".join(args))
    with tempfile.TemporaryFile() as stderr:
        try:
            # read to its end in this thread, so it may die with it (a decoder needs no such care: it dies of
            # the broken pipe when its reader does)
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                                    preexec_fn=child_dies_with_parent())
        except FileNotFoundError:
            raise MediaError(f"{what}: {args[0]} not found") from None
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode("ascii", "replace").strip()
                if progress and line.startswith("out_time_us=") and line[12:].lstrip("-").isdigit():
                    progress(min(duration, max(0.0, int(line[12:]) / 1e6)))
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        stderr.seek(0)
        text = stderr.read()
        if code != 0 or _output_cause(text, args=args):  # see _run: a failed trailer write can still exit 0
            raise _failure(text, what=what, first=True, args=args)  # -v error: the cause comes first
    if progress:
        progress(duration)


def _check_audio_track(info: MediaInfo, audio_track: int) -> None:
    tracks = info.audio_streams
    if tracks and not 0 <= audio_track < len(tracks):
        raise MediaError(f"{info.path.name} has {len(tracks)} audio track(s); --audio-track {audio_track} "
                         f"does not exist (tracks are numbered from 0)")


def _audio_maps(info: MediaInfo, audio_track: int) -> list[str]:
    """Maps for every audio track of input 0, the analysed one first and the only default one.

    The captioned video describes ``audio_track``: a player starts with the default track (the first where none
    is marked), so that one must be it, or the cues and the card would describe audio the viewer does not hear.
    The other tracks are kept (a dub, a commentary), after it and no longer default. ``+``/``-`` change the one flag
    and keep the rest the input had (ffmpeg 5.0 and later; 4.x reads them as default / none)."""
    _check_audio_track(info, audio_track)
    count = len(info.audio_streams)
    if count == 0:  # a silent video: "-map 0:a:0" would match no stream, and ffmpeg would refuse the whole command
        return []
    maps = [arg for n in _audio_order(info, audio_track) for arg in ("-map", f"0:a:{n}")]
    flags = [arg for position in range(count)
             for arg in (f"-disposition:a:{position}", "+default" if position == 0 else "-default")]
    return maps + flags


def _audio_order(info: MediaInfo, audio_track: int) -> list[int]:
    """The input's audio tracks in the order the captioned video has them: ``audio_track`` first."""
    return [audio_track, *(n for n in range(len(info.audio_streams)) if n != audio_track)]


def _mp4_takes(stream: StreamInfo) -> bool:
    """Whether the MP4 muxer takes this audio stream as it is: its codec, and for MP3 its rate (MPEG-2.5's 8 to
    12 kHz, a talk radio or phone recording's, is refused as "not standard", after the whole analysis)."""
    return stream.codec in MP4_AUDIO_CODECS and not (stream.codec == "mp3" and (stream.sample_rate or 16000) < 16000)


def _audio_args(info: MediaInfo, *, audio_track: int = 0) -> list[str]:
    """Audio codec arguments for an MP4 holding the input's audio tracks in :func:`_audio_order`: copied where MP4
    takes every one as it is, else all re-encoded to AAC."""
    if all(_mp4_takes(stream) for stream in info.audio_streams):
        # FLAC in MP4 is still "experimental" to ffmpeg 5.x (Debian 12's): refused without -strict, which the
        # static 7.x build no longer asks for; the flag is harmless where it is not needed
        experimental = any(stream.codec == "flac" for stream in info.audio_streams)
        return ["-c:a", "copy", *(["-strict", "experimental"] if experimental else [])]
    log.warning("%s: audio codec %s cannot be copied into MP4; re-encoding it to AAC", info.path.name,
                ",".join(s.codec if _mp4_takes(s) or s.codec != "mp3" else f"mp3 at {s.sample_rate} Hz"
                         for s in info.audio_streams))
    # ffmpeg's AAC encoder takes the common layouts of 1 to 8 channels only: a master's 12-channel track, or a layout
    # it has no place for (a Lt/Rt "downmix", 5.1.2), failed after the whole analysis
    layouts = [arg for position, n in enumerate(_audio_order(info, audio_track))
               for arg in _aac_layout(info.audio_streams[n], position=position)]
    return ["-c:a", "aac", "-b:a", "192k", *layouts]


def _aac_layout(stream: StreamInfo, *, position: int) -> list[str]:
    """Arguments that give output audio stream ``position`` (``stream`` of the input) a layout AAC takes: its
    channel count, which ffmpeg mixes to that count's common layout, or over 8 channels the first 8 as 7.1 (the bed
    of a 7.1.4 mix; ffmpeg 5.x knows no layout of 12 channels to mix from)."""
    if not stream.channels:
        return []
    if stream.channels > AAC_MAX_CHANNELS:
        return [f"-filter:a:{position}", "pan=7.1|" + "|".join(f"c{n}=c{n}" for n in range(AAC_MAX_CHANNELS))]
    return [f"-ac:a:{position}", str(stream.channels)]


def burn_subtitles(info: MediaInfo, subtitles: Path, output: Path, *, fonts_dir: Path, preset: str = "veryfast",
                   crf: int = 20, audio_track: int = 0, sound_end: float | None = None,
                   progress: Callable[[float], None] | None = None) -> None:
    """Re-encode the first video stream with ``subtitles`` (an ASS or SRT file) drawn by libass.

    The audio streams are copied as they are (re-encoded to AAC only where MP4 cannot hold the codec), the analysed
    ``audio_track`` first and the default one (:func:`_audio_maps`).
    ``fonts_dir`` is passed to libass so rendering uses the bundled fonts, never the system's. ``sound_end``, the
    seconds the analysed sound lasts (the container's duration when None, which ffmpeg may have guessed), is where
    pictures that end well before it are held to.
    """
    import ffmpeg  # ffmpeg-python: builds the filter graph and escapes the paths inside it

    if not info.has_video:
        raise MediaError(f"{info.path.name} has no video stream to burn subtitles into")
    video = ffmpeg.input(file_arg(info.path))[f"v:{info.video_streams[0].index}"]
    # pictures that end well before the sound (one still picture under a radio play or podcast, a video cut short)
    # would carry no cue after their last frame: that frame is held (cloned) to the end, and the cues drawn on it
    held = (info.duration if sound_end is None else sound_end) - _video_end(info)
    if held > HELD_PICTURE_MIN_S:
        video = video.filter("tpad", stop_mode="clone", stop_duration=f"{held:.3f}")
    # yuv420p needs an even width and height: a 321x181 (or 1x1) frame would fail in x264 after the whole analysis
    video = video.filter("scale", *EVEN_SIDES)
    stream = info.video_streams[0]
    # non-square pixels (a 16:9 DVD or SD broadcast stored as 720x576): libass is told the frame's shape on screen,
    # or it draws letters round in stored pixels, which the player then shows 1.42 times too wide
    shown = {"original_size": "{}x{}".format(*stream.display_size)} \
        if stream.pixel_aspect != 1.0 and stream.width and stream.height else {}
    video = video.filter("subtitles", filename=os.path.abspath(subtitles), fontsdir=os.path.abspath(fonts_dir),
                         charenc="UTF-8", **shown)
    # every frame at its own time: variable-rate input stays variable (the default would make it constant at the
    # stream's nominal rate, dropping frames), and a fine time base keeps the timestamps exact
    graph = ffmpeg.output(video, file_arg(output), vcodec="libx264", preset=preset, crf=crf, pix_fmt="yuv420p",
                          movflags="+faststart", f="mp4", fps_mode="vfr", enc_time_base="1/90000")
    args = graph.compile(cmd=ffmpeg_exe())
    # ffmpeg-python knows nothing of copying the input's audio; splice the maps in before the output path
    extra = [*_audio_maps(info, audio_track), *_audio_args(info, audio_track=audio_track), "-map_metadata", "0"] \
        if info.audio_streams else []
    # -v error: stderr holds errors only, never the input's banner (a title saying "File too large" would read as
    # a full disk) nor the build's progress lines; the progress comes from -progress on stdout
    args = [args[0], "-hide_banner", "-nostdin", "-y", "-v", "error", *args[1:-1], *extra, *_progress_args(),
            args[-1]]
    _run_with_progress(args, what=f"cannot burn subtitles into {info.path.name}", duration=info.duration,
                       progress=progress)


def mux_subtitles(info: MediaInfo, subtitles: Path, output: Path, *, language: str = "und",
                  audio_track: int = 0, preset: str = "veryfast", crf: int = 20,
                  progress: Callable[[float], None] | None = None) -> None:
    """Copy video and audio untouched into MP4 and add ``subtitles`` (SRT) as a mov_text stream; the analysed
    ``audio_track`` comes first and is the default one (:func:`_audio_maps`).

    A codec MP4 cannot hold is re-encoded instead of copied, as :func:`burn_subtitles` would: video to H.264 with
    ``preset`` and ``crf`` (``progress`` is fed while it runs), audio to AAC."""
    if not info.has_video:
        raise MediaError(f"{info.path.name} has no video stream to add subtitles to")
    stream = info.video_streams[0]
    if stream.codec in MP4_VIDEO_CODECS:
        # HEVC copied from Matroska or MPEG-TS is tagged hev1 by the MP4 muxer, which QuickTime, iOS and Safari
        # refuse to play; hvc1 is the same bitstream with its parameter sets in the sample description, as Apple asks
        video = ["-c:v", "copy", *(["-tag:v", "hvc1"] if stream.codec == "hevc" else [])]
    else:
        log.warning("%s: video codec %s cannot be copied into MP4; re-encoding it to H.264", info.path.name,
                    stream.codec)
        # the encode burn_subtitles makes, without the subtitles filter: even sides for yuv420p, every frame at
        # its own time
        video = ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-vf", EVEN_SIDES_VF,
                 "-pix_fmt", "yuv420p", "-fps_mode:v", "vfr", "-enc_time_base:v", "1/90000"]
    # -f srt: an SRT without cues (a silent file) is an empty file, which ffmpeg would not recognise by probing
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error", "-i", file_arg(info.path),
            "-sub_charenc", "UTF-8", "-f", "srt", "-i", file_arg(subtitles),
            "-map", f"0:v:{stream.index}", *_audio_maps(info, audio_track), "-map", "1:s:0",
            # a cue's duration is kept in the subtitle track's time base, microseconds by default, where the MP4
            # muxer refuses one over 2^31 (a song or noise segment longer than 35.8 minutes: a concert, a long
            # ambience); milliseconds are SRT's own resolution and hold cues of 24 days
            *video, *_audio_args(info, audio_track=audio_track), "-c:s", "mov_text", "-time_base:s", "1:1000",
            "-metadata:s:s:0", f"language={language}", "-metadata:s:s:0", "title=dramapic",
            "-map_metadata", "0", "-movflags", "+faststart", "-f", "mp4"]
    what = f"cannot add subtitles to {info.path.name}"
    if video[1] == "copy":  # seconds: no progress to report
        _run([*args, file_arg(output)], what=what, first=True)  # -v error: the cause comes first
    else:
        _run_with_progress([*args, *_progress_args(), file_arg(output)], what=what, duration=info.duration,
                           progress=progress)


def encode_test_video(output: Path, *, seconds: float, audio: np.ndarray | None = None,
                      sample_rate: int = SAMPLE_RATE, size: str = "320x180", rate: int = 25) -> None:
    """Write a small H.264 video of a moving test pattern (with ``audio`` as AAC when given).

    Used by the benchmark and by tests to wrap audio into a video; not part of analysis.
    """
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds:.3f}"]
    if audio is not None:
        args += ["-f", "f32le", "-ar", str(sample_rate), "-ac", "1", "-i", "pipe:0"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio is not None:
        args += ["-c:a", "aac", "-b:a", "96k", "-shortest"]
    args += [file_arg(output)]
    payload = None if audio is None else np.ascontiguousarray(audio, dtype="<f4").tobytes()
    try:
        done = subprocess.run(args, input=payload, capture_output=True)
    except FileNotFoundError:
        raise MediaError(f"{args[0]} not found") from None
    if done.returncode != 0:
        raise _failure(done.stderr, what=f"cannot encode {output.name}", args=args)


def encode_opus(samples: np.ndarray, output: Path, *, sample_rate: int = SAMPLE_RATE, bitrate: str = "32k") -> None:
    """Write mono ``samples`` as Ogg Opus (libopus) at ``output``, whatever its name.

    Metadata is dropped and the muxer and encoder run bit-exact, so the same samples give the same bytes with the
    same ffmpeg/libopus build (another build may encode differently). Used by the lab to write labelled timelines;
    not part of analysis.

    Parameters
    ----------
    samples : np.ndarray, shape (n_samples,)
        Mono float audio at ``sample_rate`` (full scale 1.0).
    output : Path
        The file to write (overwritten). The Ogg Opus muxer is named, not guessed from the extension, so a
        temporary name works.
    sample_rate : int
        Rate of ``samples`` in Hz (also the rate stated in the file).
    bitrate : str
        libopus target bitrate, in ffmpeg's notation (``"32k"``).

    Raises
    ------
    MediaError
        ffmpeg (or its libopus encoder) is missing or failed.
    OutputError
        The disk is full or read-only.
    """
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", "-f", "f32le", "-ar", str(sample_rate),
            "-ac", "1", "-i", "pipe:0", "-c:a", "libopus", "-b:a", bitrate, "-map_metadata", "-1",
            "-fflags", "+bitexact", "-flags:a", "+bitexact", "-f", "opus", file_arg(output)]
    log.debug("running %s", " ".join(args))
    try:
        done = subprocess.run(args, input=np.ascontiguousarray(samples, dtype="<f4").tobytes(), capture_output=True)
    except FileNotFoundError:
        raise MediaError(f"cannot encode {Path(output).name}: {args[0]} not found") from None
    if done.returncode != 0 or _output_cause(done.stderr, args=args):
        raise _failure(done.stderr, what=f"cannot encode {Path(output).name}", args=args)


#: ``codec`` of :func:`lossy_round_trip`: (ffmpeg encoder, file extension)
LOSSY_CODECS = {"opus": ("libopus", "ogg"), "aac": ("aac", "m4a"), "mp3": ("libmp3lame", "mp3")}


def lossy_round_trip(samples: np.ndarray, *, codec: str, bitrate_k: int,
                     sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mono ``samples`` encoded with ``codec`` at ``bitrate_k`` kbit/s and decoded again (the lab's augmentation).

    Parameters
    ----------
    samples : np.ndarray, shape (n_samples,)
        Mono float audio at ``sample_rate``.
    codec : str
        One of :data:`LOSSY_CODECS` (opus, aac, mp3).
    bitrate_k : int
        Target bitrate in kbit/s.
    sample_rate : int
        Rate of ``samples`` in Hz.

    Returns
    -------
    np.ndarray, shape (n_samples,)
        float32, cut or padded with zeros to the input's length.

    Raises
    ------
    MediaError
        ffmpeg (or its encoder) is missing or failed.
    OutputError
        The temporary folder's disk is full or read-only.
    """
    encoder, ext = LOSSY_CODECS[codec]
    what = f"cannot re-encode a clip as {codec} at {bitrate_k} kbit/s"
    with removed_whole(tempfile.TemporaryDirectory(prefix="dramapic-enc-")) as tmp:
        path = Path(tmp) / f"x.{ext}"
        args = [ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-f", "f32le", "-ar", str(sample_rate), "-ac", "1",
                "-i", "-", "-c:a", encoder, "-b:a", f"{bitrate_k}k", str(path)]
        log.debug("running %s", " ".join(args))
        try:
            done = subprocess.run(args, input=np.ascontiguousarray(samples, np.float32).tobytes(),
                                  capture_output=True)
        except FileNotFoundError:
            raise MediaError(f"{what}: {args[0]} not found") from None
        if done.returncode != 0 or _output_cause(done.stderr):
            raise _failure(done.stderr, what=what)
        raw = _run([ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(sample_rate),
                    "-f", "f32le", "-"], what=what).stdout
    decoded = np.frombuffer(raw, np.float32)
    out = np.zeros(len(samples), np.float32)
    out[: min(len(samples), len(decoded))] = decoded[: len(samples)]
    return out


def loop_media(source: Path, output: Path, *, seconds: float, size: str | None = None, rate: int = 25) -> None:
    """Write ``source``'s first audio track repeated for ``seconds``, alone or under a moving test pattern.

    The audio packets are copied (nothing is decoded or re-encoded), so hours of input take seconds to build and
    never pass through Python. ``output`` should be Matroska (``.mka``, ``.mkv``), which holds any audio codec.
    With ``size`` (e.g. ``"1280x720"``) a test pattern is encoded as H.264 (ultrafast) under the audio. Used by
    the benchmark; not part of analysis.
    """
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error"]
    if size:
        args += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds:.3f}"]
    args += ["-stream_loop", "-1", "-i", file_arg(source)]
    if size:
        args += ["-map", "0:v:0", "-map", "1:a:0", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    else:
        args += ["-map", "0:a:0", "-vn"]
    args += ["-sn", "-dn", "-c:a", "copy", "-t", f"{seconds:.3f}", file_arg(output)]
    _run(args, what=f"cannot build {output.name} from {source.name}")


def extract_frame(path: Path, *, at: float, output: Path) -> None:
    """Write the video frame at ``at`` seconds as an image (PNG by extension)."""
    _run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error", "-ss", f"{max(at, 0.0):.3f}",
          "-i", file_arg(path), "-frames:v", "1", file_arg(output)], what=f"cannot extract a frame of {path.name}")


def plain_reencode(info: MediaInfo, output: Path, *, preset: str, crf: int) -> None:
    """The same encode as :func:`burn_subtitles` without subtitles: the speed baseline for benchmarks."""
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error", "-i", file_arg(info.path),
            "-map", f"0:v:{info.video_streams[0].index}", "-map", "0:a?", "-c:v", "libx264", "-preset", preset,
            "-crf", str(crf), "-vf", EVEN_SIDES_VF, "-pix_fmt", "yuv420p", *_audio_args(info),
            "-f", "mp4", file_arg(output)]
    _run(args, what=f"cannot re-encode {info.path.name}")
