"""Unusual but legitimate inputs at the media front end: frames of a pixel or two, files of several audio tracks.

Inputs are built with ffmpeg in the test; each media check runs with both ffmpeg builds dramapic meets.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dramapic import media


def _builds() -> list[str]:
    """Debian's ffmpeg on PATH and imageio-ffmpeg's static one."""
    import imageio_ffmpeg

    return sorted({exe for exe in (shutil.which("ffmpeg"), imageio_ffmpeg.get_ffmpeg_exe()) if exe})


@pytest.fixture(params=_builds())
def build(request, monkeypatch) -> str:
    """Each build chosen as a user would ($DRAMAPIC_FFMPEG; the ffprobe beside it, or none and the banner)."""
    monkeypatch.setenv(media.FFMPEG_ENV, request.param)
    monkeypatch.delenv(media.FFPROBE_ENV, raising=False)
    media.ffmpeg_exe.cache_clear()
    media.ffprobe_exe.cache_clear()
    yield request.param
    media.ffmpeg_exe.cache_clear()
    media.ffprobe_exe.cache_clear()


def ffmpeg(*args: str) -> None:
    done = subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error", *args],
                          check=False, capture_output=True)
    assert done.returncode == 0, done.stderr.decode(errors="replace")


@pytest.mark.parametrize("size", ["2:2", "1:180", "320:1"])
def test_a_frame_under_ten_pixels_a_side_has_its_size_read_with_or_without_ffprobe(tmp_path: Path, build: str,
                                                                                   size: str):
    # the banner (no ffprobe beside the static build) was read for sizes of 2 to 5 digits a side: a 2x2 or 1x180
    # frame had no size, and the burn-in drew its cues for a 16:9 frame
    source = tmp_path / "tiny.nut"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=1", "-vf", f"scale={size}", "-c:v", "rawvideo",
           "-pix_fmt", "rgb24", str(source))
    stream = media.probe(source).video_streams[0]
    assert (stream.width, stream.height) == tuple(int(side) for side in size.split(":"))
