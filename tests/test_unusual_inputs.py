"""Unusual but legitimate inputs at the media front end: frames of a pixel or two, container-stated pixel aspects,
several audio tracks or programs, named and many-channel layouts, low-rate MP3, guessed lengths, still pictures.

Inputs are built with ffmpeg in the test; each media check runs with both ffmpeg builds dramapic meets.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, make_result

from dramapic import media
from dramapic import run as run_module
from dramapic.analysis.analyze import AnalysisOptions
from dramapic.errors import MediaError
from dramapic.run import RunOptions


def ffmpeg(*args: str) -> None:
    done = subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error", *args],
                          check=False, capture_output=True)
    assert done.returncode == 0, done.stderr.decode(errors="replace")


@pytest.mark.parametrize("size", ["2:2", "1:180", "320:1"])
def test_a_frame_under_ten_pixels_a_side_has_its_size_read_with_or_without_ffprobe(tmp_path: Path, chosen_build: str,
                                                                                   size: str):
    # the banner (no ffprobe beside the static build) was read for sizes of 2 to 5 digits a side: a 2x2 or 1x180
    # frame had no size, and the burn-in drew its cues for a 16:9 frame
    source = tmp_path / "tiny.nut"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=1", "-vf", f"scale={size}", "-c:v", "rawvideo",
           "-pix_fmt", "rgb24", str(source))
    stream = media.probe(source).video_streams[0]
    assert (stream.width, stream.height) == tuple(int(side) for side in size.split(":"))


def _cues(tmp_path: Path) -> Path:
    srt = tmp_path / "cues.srt"
    srt.write_text("1\n00:00:00,200 --> 00:00:01,500\nvoice (0.90)\n\n", encoding="utf-8")
    return srt


@pytest.mark.parametrize("size", ["1:1", "1:180", "320:1"])
def test_a_frame_one_pixel_wide_or_high_is_burned_and_re_encoded(tmp_path: Path, chosen_build: str, size: str):
    # even sides for yuv420p rounded a side of 1 down to 0, which scale reads as "keep it": x264 then refused the
    # 1-pixel side after the whole analysis. The side is at least 2 now
    source = tmp_path / "tiny.nut"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=1", "-f", "lavfi", "-i",
           "sine=frequency=440:duration=1", "-vf", f"scale={size}", "-c:v", "rawvideo", "-pix_fmt", "rgb24",
           "-c:a", "flac", str(source))
    info = media.probe(source)
    media.burn_subtitles(info, _cues(tmp_path), tmp_path / "burned.mp4", fonts_dir=REPO / "dramapic" / "fonts",
                         preset="ultrafast")
    media.mux_subtitles(info, _cues(tmp_path), tmp_path / "soft.mp4", preset="ultrafast")  # rawvideo: re-encoded
    width, height = (max(2, int(side) // 2 * 2) for side in size.split(":"))
    for name in ("burned.mp4", "soft.mp4"):
        shown = media.probe(tmp_path / name).video_streams[0]
        assert (shown.width, shown.height) == (width, height), name


def test_the_pixel_aspect_a_container_states_is_read_with_or_without_ffprobe(tmp_path: Path, chosen_build: str):
    # a ProRes MOV (an editor's anamorphic export) states its pixel aspect in the container, which the banner prints
    # unbracketed (", SAR 64:45 DAR 16:9", not " [SAR 64:45 DAR 16:9]"): without ffprobe it was taken for square,
    # and the burn-in drew letters 1.42 times too wide. Where the codec states another (an H.264 relabelled 4:3 on
    # a remux), the banner prints both, and the container's is the one ffmpeg and ffprobe go by
    source = tmp_path / "anamorphic.mov"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=720x576:rate=25:duration=1,setsar=64/45", "-c:v", "prores_ks",
           str(source))
    stream = media.probe(source).video_streams[0]
    assert stream.pixel_aspect == pytest.approx(64 / 45) and stream.display_size == (1024, 576)
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=720x576:rate=25:duration=1,setsar=64/45", "-c:v", "libx264",
           "-preset", "ultrafast", str(tmp_path / "wide.mp4"))
    ffmpeg("-i", str(tmp_path / "wide.mp4"), "-c", "copy", "-aspect", "4:3", str(tmp_path / "relabelled.mov"))
    stream = media.probe(tmp_path / "relabelled.mov").video_streams[0]
    assert stream.pixel_aspect == pytest.approx(16 / 15) and stream.display_size == (768, 576)


def test_which_of_several_audio_tracks_is_analysed_is_said(tmp_path: Path, monkeypatch):
    # a dub marked default was analysed instead of the first track without a word: the summary and the cues
    # described one track of two, and nothing said which
    monkeypatch.setattr(run_module, "analyze", lambda *args, **kwargs: make_result())
    source = tmp_path / "dub.mkv"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:duration=1", "-f", "lavfi", "-i", "sine=frequency=1200:duration=1",
           "-map", "0", "-map", "1", "-c:a", "flac", "-disposition:a:0", "0", "-disposition:a:1", "default",
           str(source))
    done = run_module.run(source, options=RunOptions(output_dir=tmp_path / "a", video="none"))
    assert [note for note in done.notes if "2 audio tracks: track 1 is analysed (the one it marks as default"
            in note], done.notes
    chosen = RunOptions(output_dir=tmp_path / "b", video="none", analysis=AnalysisOptions(audio_track=0))
    assert not run_module.run(source, options=chosen).notes  # the user chose: nothing to say
    both = tmp_path / "both.mkv"  # Matroska often marks every track default
    ffmpeg("-i", str(source), "-map", "0", "-c", "copy", "-disposition:a", "default", str(both))
    done = run_module.run(both, options=RunOptions(output_dir=tmp_path / "d", video="none"))
    assert [note for note in done.notes if "track 0 is analysed (the first of the 2 it marks as default" in note]
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:duration=1", "-c:a", "flac", str(tmp_path / "one.mkv"))
    assert not run_module.run(tmp_path / "one.mkv", options=RunOptions(output_dir=tmp_path / "c", video="none")).notes


def test_a_vbr_mp3_without_a_length_header_is_not_taken_for_a_cut_file(tmp_path: Path, chosen_build: str):
    # without a Xing header ffmpeg guesses an MP3's length from its first frame's bitrate: 2 s of silence (32 kbit/s)
    # before 8 s of loud sound made a whole file "33 s long", and it was refused as truncated at 10 s
    def vbr(name: str, *extra: str) -> Path:
        ffmpeg("-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono:d=2", "-f", "lavfi", "-i",
               "anoisesrc=r=44100:d=8:a=0.3", "-filter_complex", "[0][1]concat=n=2:v=0:a=1", "-c:a", "libmp3lame",
               "-q:a", "2", *extra, str(tmp_path / name))
        return tmp_path / name

    guessed = media.probe(vbr("no-header.mp3", "-write_xing", "0"))
    assert guessed.duration > 15  # the guess this test is about
    assert media.decode_audio(guessed).shape[0] / 16000 == pytest.approx(10.0, abs=0.1)
    # one with the header that is cut in half is still refused
    data = vbr("whole.mp3").read_bytes()
    (tmp_path / "cut.mp3").write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="truncated"):
        media.decode_audio(media.probe(tmp_path / "cut.mp3"))


def test_mp3_below_16_khz_is_re_encoded_for_mp4(tmp_path: Path, chosen_build: str):
    # MP4 takes MP3 as it is from 16 kHz up only: a talk radio or phone recording's 8 kHz MP3 failed the burn-in
    # ("muxing mp3 at 8000hz is not standard") after the whole analysis
    source = tmp_path / "radio.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=10:duration=1", "-f", "lavfi", "-i",
           "sine=frequency=440:duration=1:sample_rate=8000", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", "-c:a", "libmp3lame", str(source))
    info = media.probe(source)
    media.burn_subtitles(info, _cues(tmp_path), tmp_path / "burned.mp4", fonts_dir=REPO / "dramapic" / "fonts",
                         preset="ultrafast")
    media.mux_subtitles(info, _cues(tmp_path), tmp_path / "soft.mp4")
    for name in ("burned.mp4", "soft.mp4"):
        assert [s.codec for s in media.probe(tmp_path / name).audio_streams] == ["aac"], name


@pytest.mark.parametrize("layout,channels", [("quad", 4), ("hexagonal", 6), ("downmix", 2), ("22.2", 24), (None, 12)])
def test_the_channels_of_a_named_layout_are_counted_with_or_without_ffprobe(tmp_path: Path, chosen_build: str,
                                                                            layout: str | None, channels: int):
    # the banner (no ffprobe beside the static build) was read by the first two numbers of its layout: "quad",
    # "hexagonal" and "downmix" had no count (so --audio-channel fell back to the mix, and a Lt/Rt stereo pair was
    # decoded as mono), "7.1.4" (12 channels, as the static build names them) counted 8
    source = tmp_path / "layout.mov"
    made = (["-f", "lavfi", "-i", "sine=duration=0.2", "-af", f"aformat=channel_layouts={layout}"] if layout else
            ["-f", "lavfi", "-i", "aevalsrc=exprs=" + "|".join(["0.1*sin(440*2*PI*t)"] * channels) + ":d=0.2"])
    ffmpeg(*made, "-c:a", "pcm_s16le", str(source))
    assert [s.channels for s in media.probe(source).audio_streams] == [channels]


@pytest.mark.parametrize("channels,layout,kept", [(12, None, 8), (2, "downmix", 2)])
def test_audio_the_aac_encoder_cannot_take_as_it_is_is_re_encoded_for_mp4(tmp_path: Path, chosen_build: str, channels: int,
                                                                          layout: str | None, kept: int):
    # PCM (which MP4 cannot hold) re-encoded to AAC as it was: a master's 12-channel track, or a layout AAC has
    # no place for (a Lt/Rt downmix), failed the burn-in and --soft-subs after the whole analysis. Its channels are
    # mixed to the nearest AAC takes (at most 7.1); the second track, stereo, keeps its two
    exprs = "|".join(f"0.1*sin({300 + 50 * n}*2*PI*t)" for n in range(channels))
    source = tmp_path / "master.mov"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=10:duration=1", "-f", "lavfi", "-i",
           f"aevalsrc=exprs={exprs}:d=1" + (f":c={layout}" if layout else ""), "-f", "lavfi", "-i",
           "sine=frequency=440:duration=1", "-map", "0", "-map", "2", "-map", "1", "-ac:a:0", "2",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "pcm_s16le", str(source))
    info = media.probe(source)
    assert [s.channels for s in info.audio_streams] == [2, channels]
    media.burn_subtitles(info, _cues(tmp_path), tmp_path / "burned.mp4", fonts_dir=REPO / "dramapic" / "fonts",
                         preset="ultrafast", audio_track=1)
    media.mux_subtitles(info, _cues(tmp_path), tmp_path / "soft.mp4", audio_track=1)
    for name in ("burned.mp4", "soft.mp4"):
        audio = media.probe(tmp_path / name).audio_streams
        assert [(s.codec, s.channels) for s in audio] == [("aac", kept), ("aac", 2)], name


def test_a_track_of_more_than_eight_channels_is_decoded_as_their_mean(tmp_path: Path, chosen_build: str):
    # a field recorder's 12-channel WAV has no layout ffmpeg 5.x can name, so its "-ac 1" refused to mix it
    # ("Failed to inject frame into filter network") where the static build guessed 7.1.4: every build now takes
    # the plain mean of such a track's channels
    source = tmp_path / "poly.wav"
    exprs = "|".join(["0.1*sin(440*2*PI*t)"] * 6 + ["0.3*sin(440*2*PI*t)"] * 6)
    ffmpeg("-f", "lavfi", "-i", f"aevalsrc=exprs={exprs}:d=2:s=48000", "-c:a", "pcm_f32le", str(source))
    audio = media.decode_audio(media.probe(source))
    assert audio.shape[0] == 32000
    assert float(np.sqrt(np.mean(audio[1600:-1600] ** 2))) == pytest.approx(0.2 / np.sqrt(2), rel=0.01)


def _picture_times(path: Path) -> list[float]:
    """Presentation times (s) of every picture of ``path``, from ffmpeg's framecrc muxer (every build has it)."""
    done = subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", media.file_arg(path),
                           "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"], check=True, capture_output=True,
                          text=True)
    base = next(ln for ln in done.stdout.splitlines() if ln.startswith("#tb 0:")).split(":", 1)[1].strip()
    num, den = (int(x) for x in base.split("/"))
    return sorted(int(ln.split(",")[2]) * num / den for ln in done.stdout.splitlines() if ln and ln[0] != "#")


def test_a_still_picture_under_longer_audio_is_burned_with_every_cue(tmp_path: Path, chosen_build: str):
    # a radio drama or podcast published as one picture under its sound: the burned video was that one frame,
    # drawn with the cues of its first 40 ms, and no cue after it was ever seen. The last picture is now held
    # (cloned) to the end of the audio, and the cues are drawn on it
    source = tmp_path / "still.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=gray:size=160x90:rate=25:duration=0.04", "-f", "lavfi", "-i",
           "sine=frequency=440:duration=3", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           "-c:a", "aac", str(source))
    assert len(_picture_times(source)) == 1
    srt = tmp_path / "late.srt"
    srt.write_text("1\n00:00:02,000 --> 00:00:02,900\nvoice (0.90)\n\n", encoding="utf-8")
    burned = tmp_path / "burned.mp4"
    media.burn_subtitles(media.probe(source), srt, burned, fonts_dir=REPO / "dramapic" / "fonts", preset="ultrafast")
    times = _picture_times(burned)
    assert times[0] == pytest.approx(0.0, abs=0.05) and times[-1] > 2.8, times[-3:]
    before, held, cued = (_gray(burned, at) for at in (0.5, 1.5, 2.5))
    assert np.abs(held - before).max() < 30 < np.abs(cued - before).max()  # the cue is drawn on the held picture
    # held to the end of the analysed sound where it is given (the container's length may be a guess)
    media.burn_subtitles(media.probe(source), srt, burned, fonts_dir=REPO / "dramapic" / "fonts", preset="ultrafast",
                         sound_end=0.5)
    assert len(_picture_times(burned)) == 1


def _gray(path: Path, at: float) -> np.ndarray:
    """The picture of ``path`` shown at ``at`` seconds, as gray levels."""
    done = subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-ss", f"{at}", "-i",
                           media.file_arg(path), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                          check=True, capture_output=True)
    return np.frombuffer(done.stdout, np.uint8).astype(np.int16)


def test_the_streams_of_a_capture_of_several_programs_are_counted_once_in_file_order(tmp_path: Path, chosen_build: str):
    # the banner lists an MPEG-TS capture's streams under each program (service) that carries them: a picture shared
    # by two services was counted twice, and streams listed out of their file order got the wrong 0:a:N, where
    # ffprobe (and ffmpeg's -map) count each stream once, in file order
    source = tmp_path / "mux.ts"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=1", "-f", "lavfi", "-i",
           "sine=frequency=300:duration=1", "-f", "lavfi", "-i", "sine=frequency=1200:duration=1", "-map", "0",
           "-map", "1", "-map", "2", "-c:v", "mpeg2video", "-c:a", "mp2", "-program", "title=one:st=0:st=1",
           "-program", "title=two:st=0:st=2", str(source))
    assert [(s.kind, s.index) for s in media.probe(source).streams] == [("video", 0), ("audio", 0), ("audio", 1)]
    _, streams = media.parse_ffmpeg_banner(
        "  Program 1\n  Stream #0:2[0x102]: Audio: mp2, 48000 Hz, stereo, fltp, 192 kb/s\n"
        "  Stream #0:3[0x103]: Audio: ac3, 48000 Hz, 5.1(side), fltp, 384 kb/s\n  Program 2\n"
        "  Stream #0:0[0x100]: Video: mpeg2video (Main), yuv420p(tv), 720x576 [SAR 64:45 DAR 16:9], 25 fps\n"
        "  Stream #0:1[0x101]: Audio: aac (LC), 44100 Hz, mono, fltp, 64 kb/s\n")
    assert [(s.kind, s.index, s.codec) for s in streams] == [("video", 0, "mpeg2video"), ("audio", 0, "aac"),
                                                            ("audio", 1, "mp2"), ("audio", 2, "ac3")]
