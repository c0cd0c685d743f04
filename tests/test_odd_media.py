"""Media that plays but used to be refused or damaged, odd paths and names, and ffmpeg builds that differ.

Inputs are built with ffmpeg in the test (looped concatenations, variable frame rates, silence), and checked with
ffmpeg too (packet timestamps from the ``framecrc`` muxer, which every build has, unlike ffprobe).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dramapic import media
from dramapic import run as run_module
from dramapic.analysis.analyze import AnalysisOptions
from dramapic.errors import InputError, MediaError, OutputError
from dramapic.result import Segment
from dramapic.run import RunOptions
from helpers import REPO, SAMPLE, make_result, tone


def dramapic(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "dramapic", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=900)


def ffmpeg(*args: str, cwd: Path | None = None) -> None:
    done = subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error", *args],
                          capture_output=True, cwd=cwd)
    assert done.returncode == 0, done.stderr.decode(errors="replace")


def video_packet_times(path: Path) -> list[float]:
    """Presentation times (s) of every video packet, in decode order, read with ffmpeg's framecrc muxer."""
    done = subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", media.file_arg(path),
                           "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    base = next(ln for ln in done.stdout.splitlines() if ln.startswith("#tb 0:")).split(":", 1)[1].strip()
    num, den = (int(x) for x in base.split("/"))
    return [int(ln.split(",")[2]) * num / den for ln in done.stdout.splitlines() if ln and not ln.startswith("#")]


def one_line(done: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


# -- 4. non-monotonic timestamps ---------------------------------------------------------------------------------

def test_a_looped_concatenation_with_backward_timestamps_is_analysed(tmp_path: Path, caplog):
    clip = tmp_path / "clip.mp4"
    ffmpeg("-i", str(SAMPLE), "-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(clip))
    listing = tmp_path / "list.txt"
    listing.write_text(f"file '{clip}'\nfile '{clip}'\n", encoding="utf-8")
    looped = tmp_path / "looped.mp4"
    ffmpeg("-f", "concat", "-safe", "0", "-stream_loop", "15", "-i", str(listing), "-c", "copy", str(looped))
    # the reproducer is real: a plain decode of it gets the muxer's timestamp complaints, more than the limit
    plain = subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(looped),
                            "-map", "0:a:0", "-ac", "1", "-ar", "16000", "-f", "f32le", "-"], capture_output=True)
    complaints = [ln for ln in plain.stderr.decode(errors="replace").splitlines() if "monotonic" in ln]
    assert len(complaints) > media.MAX_DECODE_ERRORS

    info = media.probe(looped)
    audio = media.decode_audio(info)
    assert abs(audio.shape[0] / media.SAMPLE_RATE - info.duration) < 1.0
    # the samples are those of the plain decode, in the same order
    assert np.array_equal(audio, np.frombuffer(plain.stdout, dtype="<f4"))


def test_real_corruption_is_still_refused(tmp_path: Path):
    data = bytearray(SAMPLE.read_bytes())
    rng = np.random.default_rng(0)
    for offset in rng.integers(len(data) // 4, len(data), size=400):
        data[offset:offset + 64] = rng.integers(0, 256, size=64, dtype=np.uint8).tobytes()
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(bytes(data))
    with pytest.raises((MediaError, InputError)):
        media.decode_audio(media.probe(bad))


# -- 5. variable frame rate ---------------------------------------------------------------------------------------

def test_burn_in_keeps_every_frame_of_a_variable_rate_video_at_its_time(tmp_path: Path):
    vfr = tmp_path / "vfr.mp4"
    # the recipe, shorter: 15 fps for 4 s, then 30 fps
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30:duration=8", "-i", str(SAMPLE), "-map", "0:v",
           "-map", "1:a", "-vf", r"select='not(mod(n\,2))+gt(t\,4)'", "-fps_mode", "vfr", "-c:v", "libx264",
           "-preset", "ultrafast", "-c:a", "copy", "-t", "8", str(vfr))
    cues = tmp_path / "cues.srt"
    cues.write_text("1\n00:00:01,000 --> 00:00:06,000\nvoice (0.90)\n\n", encoding="utf-8")
    burned = tmp_path / "burned.mp4"
    media.burn_subtitles(media.probe(vfr), cues, burned, fonts_dir=REPO / "dramapic" / "fonts", preset="ultrafast")
    before, after = sorted(video_packet_times(vfr)), sorted(video_packet_times(burned))
    assert len(before) == 60 + 120
    assert len(after) == len(before)
    assert max(abs(a - b) for a, b in zip(after, before)) < 0.002


# -- 6. no cues ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def silent_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("silent") / "silent.mp4"
    media.encode_test_video(path, seconds=6.0, audio=np.zeros(6 * media.SAMPLE_RATE, dtype=np.float32))
    return path


def test_a_silent_file_gets_valid_empty_subtitles_and_a_soft_subbed_video(tmp_path: Path, silent_video: Path):
    import pysrt

    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".silent.abcdefgh.part.srt"  # left by an earlier, killed run: removed by this one
    stale.write_text("old")
    done = dramapic("run", str(silent_video), "-o", str(out), "--soft-subs", "--quiet")
    assert done.returncode == 0, done.stderr
    assert not stale.exists()
    srt = out / "silent.srt"
    assert len(pysrt.open(str(srt), encoding="utf-8")) == 0
    info = media.probe(out / "silent.dramapic.mp4")
    assert info.has_video and [s.kind for s in info.streams].count("subtitle") == 1
    # the empty SRT is one ffmpeg can read too (as SRT)
    media._run([media.ffmpeg_exe(), "-v", "error", "-f", "srt", "-i", media.file_arg(srt), "-map", "0", "-c", "copy",
                "-f", "srt", "-"], what="read the empty SRT")


def test_a_silent_file_is_burned_with_its_summary_card(tmp_path: Path, silent_video: Path):
    from dramapic.run import RunOptions, run

    outputs = run(silent_video, options=RunOptions(output_dir=tmp_path, subtitle_format="vtt"))
    assert not [s for s in outputs.result.segments if s.label != "silence"]
    assert (tmp_path / "silent.vtt").read_text(encoding="utf-8").startswith("WEBVTT")
    burned = outputs.files["video"]
    assert media.probe(burned).has_video
    frames = []
    for path in (silent_video, burned):  # the card is drawn over the first seconds: the frames differ
        png = tmp_path / f"{path.stem}.png"
        media.extract_frame(path, at=1.0, output=png)
        raw = tmp_path / f"{path.stem}.gray"
        media._run([media.ffmpeg_exe(), "-v", "error", "-y", "-i", media.file_arg(png), "-f", "rawvideo",
                    "-pix_fmt", "gray", media.file_arg(raw)], what="to gray")
        frames.append(np.frombuffer(raw.read_bytes(), dtype=np.uint8).astype(float))
    assert np.mean(np.abs(frames[0] - frames[1])) > 10


# -- 7. names with a leading dash or a colon -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def short_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("short") / "short.mp4"
    media.encode_test_video(path, seconds=3.0, audio=tone(3.0, level=0.2) + tone(3.0, freq=220, level=0.1))
    return path


@pytest.mark.parametrize("name", ["-dash.mp4", "co:lon.mp4", "-x:y.mp4"])
def test_media_functions_take_relative_names_with_a_dash_or_a_colon(tmp_path: Path, short_video: Path, name: str,
                                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.link(short_video, tmp_path / name)
    relative = Path(name)
    info = media.probe(relative)
    assert info.has_video and media.decode_audio(info).shape[0] > 2 * media.SAMPLE_RATE
    cues = Path("-cues:1.srt")
    cues.write_text("1\n00:00:00,500 --> 00:00:02,000\nvoice (0.90)\n\n", encoding="utf-8")
    media.mux_subtitles(info, cues, Path(f"-soft:{name}"))
    media.burn_subtitles(info, cues, Path(f"-burn:{name}"), fonts_dir=REPO / "dramapic" / "fonts",
                         preset="ultrafast")
    media.extract_frame(Path(f"-burn:{name}"), at=1.0, output=Path("-frame:1.png"))
    for made in (f"-soft:{name}", f"-burn:{name}", "-frame:1.png"):
        assert (tmp_path / made).stat().st_size > 0


@pytest.mark.parametrize("argv", [["./-dash.mp4"], ["--", "-dash.mp4"], ["co:lon.mp4"]])
def test_run_takes_relative_names_with_a_dash_or_a_colon(tmp_path: Path, short_video: Path, argv: list[str]):
    name = argv[-1].removeprefix("./")
    os.link(short_video, tmp_path / name)
    done = dramapic("run", "--quiet", "--no-video", "-o", "out", *argv, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    stem = Path(name).stem
    assert sorted(os.listdir(tmp_path / "out")) == sorted([f"{stem}.srt", f"{stem}.dramapic.json", f"{stem}.rttm"])


# -- 8. long names ------------------------------------------------------------------------------------------------

def test_a_name_too_long_for_the_outputs_is_one_clear_line_before_any_work(tmp_path: Path, short_video: Path):
    name = "n" * 247 + ".mp4"  # 251 characters: NAME.dramapic.json would be 261
    os.link(short_video, tmp_path / name)
    done = dramapic("run", str(tmp_path / name), "-o", str(tmp_path / "out"))
    assert done.returncode == OutputError.exit_code
    assert "too long" in one_line(done)
    assert not (tmp_path / "out").exists()  # refused before any work: the folder -o made is removed again


@pytest.mark.parametrize("where", ["beside the input", "an existing -o folder"])
def test_a_name_too_long_for_the_outputs_is_refused_where_the_folder_exists(tmp_path: Path, short_video: Path,
                                                                             where: str):
    # in a folder that is there, looking for an earlier output of that name met ENAMETOOLONG (a traceback); in a
    # missing -o folder the lookup stopped at the folder, so the test above did not see it
    name = "n" * 247 + ".mp4"
    os.link(short_video, tmp_path / name)
    extra = [] if where == "beside the input" else ["-o", str(tmp_path / "out")]
    (tmp_path / "out").mkdir()
    done = dramapic("run", str(tmp_path / name), "--no-video", *extra)
    assert done.returncode == OutputError.exit_code, done.stderr
    assert one_line(done).startswith("dramapic: error: output file name too long")
    assert sorted(os.listdir(tmp_path)) == sorted([name, "out"]) and not os.listdir(tmp_path / "out")


@pytest.mark.parametrize("folder", ["f" * 260, "f" * 260 + "/inner"])
def test_an_output_folder_name_too_long_is_one_clear_line(tmp_path: Path, short_video: Path, folder: str):
    # -o with a folder name no file system takes: looking up the outputs in it was a traceback (File name too long)
    done = dramapic("run", str(short_video), "--no-video", "-o", str(tmp_path / folder))
    assert done.returncode == OutputError.exit_code, done.stderr
    assert one_line(done).startswith("dramapic: error: output folder name too long")
    assert os.listdir(tmp_path) == []


def test_temporary_names_stay_within_the_limit(tmp_path: Path):
    from dramapic.writers import OutputSet, temporary_stem

    for length in (200, 232, 240, 246, 251, 255, 256):
        final = tmp_path / ("m" * (length - 4) + ".srt")
        if length > 255:
            with pytest.raises(OutputError, match="too long"):
                OutputSet().check([final])
            continue
        with OutputSet() as outputs:
            outputs.check([final])
            temporary = outputs.reserve(final)
            assert len(temporary.name.encode()) <= 255 - 8
            temporary.write_text("x")
            assert outputs.commit() == [final]
        assert final.read_text() == "x"
    # multi-byte names are cut at a character boundary, and the same name always gives the same stem
    final = tmp_path / ("가" * 83 + ".srt")  # 249 + 4 bytes
    stem = temporary_stem(final)
    assert "~" in stem and stem == temporary_stem(final)
    assert len(f".{stem}.abcdefgh.part.srt".encode()) <= 255


def test_a_name_of_240_characters_runs_whole_with_a_video(tmp_path: Path, short_video: Path):
    name = "m" * 236 + ".mp4"  # its outputs are 249 and 250 bytes; their temporaries used to be 264 and 265
    os.link(short_video, tmp_path / name)
    done = dramapic("run", str(tmp_path / name), "-o", str(tmp_path / "out"), "--soft-subs", "--quiet")
    assert done.returncode == 0, done.stderr
    assert len(os.listdir(tmp_path / "out")) == 4


# -- 10. the ffmpeg build does not change the behaviour --------------------------------------------------------------

def test_the_same_unreadable_input_gives_the_same_message_with_and_without_ffprobe(tmp_path: Path, monkeypatch):
    notes = tmp_path / "notes.mp4"
    notes.write_text("these are my notes, not a video\n" * 20)
    messages = set()
    for probe_exe in {media.ffprobe_exe(), None}:
        with monkeypatch.context() as patch:
            patch.setattr(media, "ffprobe_exe", lambda exe=probe_exe: exe)
            with pytest.raises(InputError) as caught:
                media.probe(notes)
            messages.add(str(caught.value))
    assert messages == {"notes.mp4 is not a media file ffmpeg can read (Invalid data found when processing input)"}


def test_the_binaries_are_chosen_by_environment_then_path_and_never_mixed(tmp_path: Path, monkeypatch):
    import shutil

    real = media.ffmpeg_exe()
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "ffprobe").write_text("#!/bin/sh\nexit 1\n")
    (fake_bin / "ffprobe").chmod(0o755)
    try:
        media.ffmpeg_exe.cache_clear()
        media.ffprobe_exe.cache_clear()
        monkeypatch.setenv("DRAMAPIC_FFMPEG", real)
        monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ.get('PATH', '')}")
        monkeypatch.delenv("DRAMAPIC_FFPROBE", raising=False)
        assert media.ffmpeg_exe() == shutil.which(real)
        # an ffprobe elsewhere on PATH is another build: not used
        assert media.ffprobe_exe() in (None, str(Path(real).with_name("ffprobe")))
        media.ffmpeg_exe.cache_clear()
        monkeypatch.setenv("DRAMAPIC_FFMPEG", str(tmp_path / "no-such-ffmpeg"))
        with pytest.raises(MediaError, match="DRAMAPIC_FFMPEG"):
            media.ffmpeg_exe()
    finally:
        media.ffmpeg_exe.cache_clear()
        media.ffprobe_exe.cache_clear()


def test_burn_and_soft_subs_take_odd_frames_flac_audio_and_alarming_titles(tmp_path: Path):
    # 321x181 4:4:4 (yuv420p needs even sides), FLAC audio (experimental in MP4 to ffmpeg 5.x) and a title whose
    # words are also ffmpeg's full-disk message: all must come out as a video, with either ffmpeg build
    source = tmp_path / "odd.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=321x181:rate=25:duration=2", "-f", "lavfi", "-i",
           "sine=frequency=440:duration=2", "-pix_fmt", "yuv444p", "-c:v", "libx264", "-preset", "ultrafast",
           "-c:a", "flac", "-metadata", "title=Why the File too large error happens", str(source))
    srt = tmp_path / "cues.srt"
    srt.write_text("1\n00:00:00,200 --> 00:00:01,500\nvoice (0.90)\n\n", encoding="utf-8")
    info = media.probe(source)
    media.burn_subtitles(info, srt, tmp_path / "burned.mp4", fonts_dir=REPO / "dramapic" / "fonts",
                         preset="ultrafast")
    burned = media.probe(tmp_path / "burned.mp4")
    assert (burned.video_streams[0].width, burned.video_streams[0].height) == (320, 180)
    assert [s.codec for s in burned.audio_streams] == ["flac"]  # copied, not re-encoded
    media.mux_subtitles(info, srt, tmp_path / "soft.mp4")
    soft = media.probe(tmp_path / "soft.mp4")
    assert [s.codec for s in soft.audio_streams] == ["flac"] and len(soft.video_streams) == 1


def test_a_failed_burn_names_the_encoders_own_complaint(tmp_path: Path, short_video: Path):
    srt = tmp_path / "cues.srt"
    srt.write_text("1\n00:00:00,200 --> 00:00:01,500\nvoice (0.90)\n\n", encoding="utf-8")
    with pytest.raises(MediaError) as caught:
        media.burn_subtitles(media.probe(short_video), srt, tmp_path / "burned.mp4",
                             fonts_dir=REPO / "dramapic" / "fonts", preset="no-such-preset")
    message = str(caught.value)
    assert "no-such-preset" in message and " @ 0x" not in message, message
    assert not (tmp_path / "burned.mp4").exists() or (tmp_path / "burned.mp4").stat().st_size == 0


# -- non-square pixels --------------------------------------------------------------------------------------------

def test_the_banner_and_ffprobe_give_the_pixel_aspect_of_an_anamorphic_frame():
    _, streams = media.parse_ffmpeg_banner("  Stream #0:0: Video: mpeg2video (Main), yuv420p(tv, top first), "
                                           "720x576 [SAR 64:45 DAR 16:9], 25 fps\n")
    assert streams[0].pixel_aspect == pytest.approx(64 / 45) and streams[0].display_size == (1024, 576)
    assert media._ratio("0", "1") == 1.0 and media._ratio("N/A", "") == 1.0  # unknown: shown square


def _text_width_on_screen(tmp_path: Path, size: str, sar: str) -> int:
    """Width in screen pixels of one big line burned into a ``size`` frame of pixel aspect ``sar``."""
    source = tmp_path / f"{sar.replace('/', '-')}.mp4"
    ffmpeg("-f", "lavfi", "-i", f"color=black:size={size}:rate=25:duration=1,setsar={sar}", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(source))
    ass = tmp_path / "big.ass"
    ass.write_text("[Script Info]\nScriptType: v4.00+\nPlayResX: 1920\nPlayResY: 1080\n\n[V4+ Styles]\nFormat: Name, "
                   "Fontname, Fontsize, PrimaryColour, BackColour, Outline, Shadow, Alignment\n"
                   "Style: A,NanumGothic,300,&H00FFFFFF,&H00000000,0,0,5\n\n[Events]\nFormat: Layer, Start, End, "
                   "Style, Text\nDialogue: 0,0:00:00.00,0:00:05.00,A,OOO\n", encoding="utf-8")
    burned = tmp_path / "burned.mp4"
    media.burn_subtitles(media.probe(source), ass, burned, fonts_dir=REPO / "dramapic" / "fonts", preset="ultrafast")
    done = subprocess.run([media.ffmpeg_exe(), "-v", "error", "-i", str(burned), "-vf", "scale=iw*sar:ih,setsar=1",
                           "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"], capture_output=True)
    assert done.returncode == 0, done.stderr
    frame = np.frombuffer(done.stdout, np.uint8).reshape(576, -1)
    columns = np.flatnonzero((frame > 128).any(axis=0))
    return int(columns[-1] - columns[0])


def test_letters_burned_on_non_square_pixels_keep_their_shape_on_screen(tmp_path: Path):
    square = _text_width_on_screen(tmp_path, "1024x576", "1")
    anamorphic = _text_width_on_screen(tmp_path, "720x576", "64/45")  # 16:9 PAL DVD: shown 1024 wide
    assert anamorphic == pytest.approx(square, rel=0.05)  # drawn round in stored pixels they were 1.42 times wider


# -- an audio track that starts after the video ---------------------------------------------------------------------

@pytest.mark.parametrize("container", ["mkv", "ts"])
def test_audio_that_starts_after_the_video_is_decoded_on_the_videos_clock(tmp_path: Path, container: str):
    # in MPEG-TS (broadcast captures) ffmpeg started the timeline at the audio when only the audio was mapped, so
    # the late start was lost there
    (tmp_path / "tone.f32").write_bytes(tone(3.0).tobytes())
    ffmpeg("-f", "f32le", "-ar", "16000", "-ac", "1", "-i", str(tmp_path / "tone.f32"), "-c:a", "mp2",
           str(tmp_path / "tone.mka"))
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=4", "-c:v", "libx264", "-preset",
           "ultrafast", "-pix_fmt", "yuv420p", str(tmp_path / "video.mkv"))
    # the tone's first sample is shown 1 s after the first frame (as in broadcast captures and edited files)
    source = tmp_path / f"late.{container}"
    ffmpeg("-i", str(tmp_path / "video.mkv"), "-itsoffset", "1", "-i", str(tmp_path / "tone.mka"), "-map", "0:v",
           "-map", "1:a", "-c", "copy", str(source))
    audio = media.decode_audio(media.probe(source))
    first = np.flatnonzero(np.abs(audio) > 0.01)[0] / 16000
    assert first == pytest.approx(1.0, abs=0.05)  # not at 0: cues would come a second before their sound
    assert audio.shape[0] / 16000 == pytest.approx(4.0, abs=0.1)


def _tone_times(audio: np.ndarray, freq: float) -> list[float]:
    """The 0.1 s steps (their start, s) where ``freq`` is the loudest component (16 kHz audio)."""
    steps = range(0, len(audio) - 1600, 1600)
    return [k / 16000 for k in steps if abs(np.argmax(np.abs(np.fft.rfft(audio[k:k + 1600]))) * 10 - freq) < 30]


def _tones_under_pictures(tmp_path: Path, container: str, *, bsf: str | None = None) -> Path:
    """10 s of pictures over 440 Hz for 0-4 s and 880 Hz for 6-10 s, the audio's timestamps saying so (a 2 s
    dropout); with ``bsf``, the audio packets' timestamps rewritten by that bitstream filter."""
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=10", "-c:v", "libx264", "-preset",
           "ultrafast", "-pix_fmt", "yuv420p", "-f", "mpegts", str(tmp_path / "v.ts"))
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=4:sample_rate=48000", "-c:a", "aac", "-f", "mpegts",
           str(tmp_path / "a1.ts"))
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=880:duration=4:sample_rate=48000", "-c:a", "aac",
           "-output_ts_offset", "6", "-f", "mpegts", str(tmp_path / "a2.ts"))
    (tmp_path / "a.ts").write_bytes((tmp_path / "a1.ts").read_bytes() + (tmp_path / "a2.ts").read_bytes())
    source = tmp_path / f"dropout.{container}"
    ffmpeg("-i", str(tmp_path / "v.ts"), "-i", str(tmp_path / "a.ts"), "-map", "0:v", "-map", "1:a", "-c", "copy",
           *(["-bsf:a", bsf] if bsf else []), str(source))
    return source



def test_a_capture_whose_video_pid_holds_no_packets_still_decodes(tmp_path: Path, caplog):
    """A broadcast capture can list a video stream that holds no packet (a PID in the tables, nothing sent): the
    decode's copy of one video packet (to keep the file's own clock) failed there with "Could not write header",
    and the whole file with it. It is then decoded on the audio's clock, with no warning needed."""
    source = tmp_path / "no_pictures.ts"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=4:sample_rate=48000", "-f", "lavfi", "-i",
           "testsrc2=size=160x90:rate=25:duration=4", "-map", "0:a", "-map", "1:v", "-c:a", "mp2", "-c:v",
           "mpeg2video", "-vf", "select=0", "-fps_mode", "passthrough", str(source))
    info = media.probe(source)
    assert info.audio_streams and info.streams[-1].kind == "video"
    with caplog.at_level("WARNING", logger="dramapic.media"):
        audio = media.decode_audio(info)
    assert audio.shape[0] / 16000 == pytest.approx(4.0, abs=0.05) and "did not say" not in caplog.text



def test_damaged_pictures_do_not_fail_the_audio(tmp_path: Path):
    """A capture with reception errors in its video and intact audio: mapping the video into the audio decode (to
    keep a TS file's clock) let the h264 parser's complaints about every damaged picture count as audio decoding
    errors, and the file was refused as corrupt. The audio decode reads the audio alone."""
    source = tmp_path / "clean.ts"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=20", "-f", "lavfi", "-i",
           "sine=frequency=440:duration=20:sample_rate=48000", "-c:v", "libx264", "-preset", "ultrafast", "-g", "250",
           "-c:a", "mp2", str(source))
    data = bytearray(source.read_bytes())
    rng = np.random.default_rng(3)
    video_pid = 0x100
    for off in range(188 * 50, len(data) - 187, 188):   # bytes just after slice start codes, video packets only
        if ((data[off + 1] & 0x1F) << 8 | data[off + 2]) != video_pid:
            continue
        at = bytes(data[off + 4:off + 188]).find(b"\x00\x00\x01\x41")
        if at >= 0 and at + 8 < 184 and rng.random() < 0.5:
            data[off + 4 + at + 4 + int(rng.integers(3))] ^= int(rng.integers(1, 256))
    damaged = tmp_path / "damaged.ts"
    damaged.write_bytes(bytes(data))
    audio = media.decode_audio(media.probe(damaged))
    assert audio.shape[0] / 16000 == pytest.approx(20.0, abs=0.05)


@pytest.mark.parametrize("container", ["ts", "mkv", "mp4"])
def test_a_dropout_in_the_audio_is_filled_so_later_sound_keeps_to_the_video(tmp_path: Path, container: str):
    """A capture whose audio drops out for 2 s under continuous pictures: the decode closed the gap up, so every
    sound after it, and every cue, came 2 s early for the rest of the file (and it said the audio ended 2 s before
    the video). The gap is now that much silence, put in once the audio has kept to its new time for
    AUDIO_GAP_CONFIRM_S (that much of the sound after it comes before the silence)."""
    audio = media.decode_audio(media.probe(_tones_under_pictures(tmp_path, container)))
    assert audio.shape[0] / 16000 == pytest.approx(10.0, abs=0.05)
    high = _tone_times(audio, 880.0)
    assert len(high) >= 38 and high[2] == pytest.approx(6.0 + media.AUDIO_GAP_CONFIRM_S, abs=0.1)  # was 4.0
    assert max(_tone_times(audio, 440.0)) < 4.0
    gap = audio[int((4.0 + media.AUDIO_GAP_CONFIRM_S + 0.1) * 16000):int(5.9 * 16000)]
    assert np.abs(gap).max() == 0.0   # the dropout is silence


@pytest.mark.parametrize("shift", [3, -3])
def test_two_packets_stamped_wrong_do_not_move_the_audio_after_them(tmp_path: Path, shift: int):
    """Two audio packets stamped 3 s off (a capture's bit error) and then the old time again: no gap, nothing to
    fill; taken for a dropout, 3 s of silence went in and everything after came 3 s late."""
    (tmp_path / "tone.f32").write_bytes(tone(12.0).tobytes())
    ffmpeg("-f", "f32le", "-ar", "16000", "-ac", "1", "-i", str(tmp_path / "tone.f32"), "-c:a", "mp2", "-ar",
           "48000", "-f", "mpegts", str(tmp_path / "plain.ts"))
    glitch = tmp_path / "glitch.ts"
    ffmpeg("-i", str(tmp_path / "plain.ts"), "-c", "copy", "-bsf:a",
           f"setts=pts='if(between(N,200,201),PTS+{shift}*90000,PTS)'", "-f", "mpegts", str(glitch))
    audio = media.decode_audio(media.probe(glitch))
    assert audio.shape[0] / 16000 == pytest.approx(12.0, abs=0.05)
    assert np.abs(audio).min() < 0.01 and np.sqrt(np.mean(np.square(audio[160000:170000]))) > 0.1  # no silence put in


@pytest.mark.parametrize("title", [None, "Read-only file system"])
def test_a_channel_layout_change_mid_stream_adds_no_silence(tmp_path: Path, caplog, title):
    """A broadcast capture whose adverts are stereo and whose programme is 5.1: ffmpeg rebuilds the audio filters
    at each change, and the rebuilt graph's aresample took its first frame for a late start and put that many
    seconds of silence in front of it (a 9 s file decoded to 18 s, every cue after the change late). A file titled
    like a disk fault (its tags are in what ffmpeg prints) made the probe of the track's start fail, and that back."""
    parts = []
    for k, layout in enumerate(("stereo", "5.1", "stereo")):
        part = tmp_path / f"part{k}.ts"
        ffmpeg("-f", "lavfi", "-i", f"sine=frequency={440 * (k + 1)}:duration=3:sample_rate=48000", "-af",
               f"aformat=channel_layouts={layout}", "-c:a", "ac3", "-f", "mpegts", str(part))
        parts.append(f"file '{part}'\n")
    (tmp_path / "list.txt").write_text("".join(parts), encoding="utf-8")
    joined = tmp_path / "joined.ts"
    ffmpeg("-f", "concat", "-safe", "0", "-i", str(tmp_path / "list.txt"), "-c", "copy",
           *(["-metadata", f"service_name={title}"] if title else []), str(joined))
    with caplog.at_level("INFO", logger="dramapic.media"):
        audio = media.decode_audio(media.probe(joined))
    assert audio.shape[0] / 16000 == pytest.approx(9.0, abs=0.1)
    assert min(_tone_times(audio, 1320.0)) == pytest.approx(6.0, abs=0.15)
    # said as what it is, not as timestamps "not monotonic" (the filters' own, restarted at each rebuild)
    assert "not monotonic" not in caplog.text and "changes channels or sample rate mid-stream" in caplog.text


def test_audio_that_ends_before_the_video_is_analysed_but_a_cut_file_is_refused(tmp_path: Path):
    (tmp_path / "tone.f32").write_bytes(tone(3.0).tobytes())
    # a whole file: 3 s of audio under 5 s of pictures (a silent end card), not a cut one
    source = tmp_path / "end card.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=5", "-f", "f32le", "-ar", "16000", "-ac", "1",
           "-i", str(tmp_path / "tone.f32"), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           "-c:a", "aac", str(source))
    info = media.probe(source)
    assert info.duration == pytest.approx(5.0, abs=0.1)
    assert media.decode_audio(info).shape[0] / 16000 == pytest.approx(3.0, abs=0.1)
    # the same file cut in half ends its pictures too: still truncated
    cut = tmp_path / "cut.mp4"
    ffmpeg("-i", str(source), "-c", "copy", "-movflags", "+faststart", str(tmp_path / "fast.mp4"))
    data = (tmp_path / "fast.mp4").read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="truncated"):
        media.decode_audio(media.probe(cut))


# -- the analysed audio track is the one the captioned video plays ----------------------------------------------------

def _default_audio(path: Path) -> list[str]:
    """The audio stream lines of ``ffmpeg -i``'s banner marked ``(default)`` (every build prints the flag there,
    ffprobe or not)."""
    # exits 1 (no output file given) after printing the banner
    done = subprocess.run([media.ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", media.file_arg(path)],
                          check=False, capture_output=True, text=True)
    return [ln.strip() for ln in done.stderr.splitlines() if ": Audio: " in ln and "(default)" in ln]


def _pitch(info: media.MediaInfo, track: int) -> int:
    audio = media.decode_audio(info, audio_track=track)[:16000]
    return int(np.argmax(np.abs(np.fft.rfft(audio))))  # 1 s of audio: bin = Hz


@pytest.mark.parametrize("video", ["burn", "soft"])
def test_the_captioned_video_plays_the_audio_track_that_was_analysed_first_and_keeps_the_other(
        tmp_path: Path, monkeypatch, video: str):
    # a Korean track (300 Hz) that the input marks as its default, and an English one (1200 Hz) to analyse
    source = tmp_path / "dub.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=10:duration=1", "-f", "lavfi", "-i",
           "sine=frequency=300:duration=1", "-f", "lavfi", "-i", "sine=frequency=1200:duration=1", "-map", "0",
           "-map", "1", "-map", "2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
           "-metadata:s:a:0", "language=kor", "-metadata:s:a:1", "language=eng", str(source))
    assert ["(kor)" in line for line in _default_audio(source)] == [True]
    result = make_result([Segment(0.0, 1.0, "voice", 0.9, {"voice": 0.9})])  # cues within the 1 s video
    monkeypatch.setattr(run_module, "analyze", lambda *args, **kwargs: result)
    done = run_module.run(source, options=RunOptions(output_dir=tmp_path / "out", video=video,
                                                     analysis=AnalysisOptions(audio_track=1)))
    captioned = done.files["video"]
    # the analysed track first and the only default one, so a player starts with what the cues describe ...
    defaults = _default_audio(captioned)
    assert len(defaults) == 1 and "(eng)" in defaults[0], defaults
    info = media.probe(captioned)
    assert _pitch(info, 0) == pytest.approx(1200, abs=5)
    # ... and the other track is still there to switch to
    assert len(info.audio_streams) == 2 and _pitch(info, 1) == pytest.approx(300, abs=5)


def _dub_marked_default(path: Path) -> Path:
    """A video whose first audio track (300 Hz, Korean) is not the default and whose second (1200 Hz, English) is:
    the dub a player starts with."""
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=10:duration=1", "-f", "lavfi", "-i",
           "sine=frequency=300:duration=1", "-f", "lavfi", "-i", "sine=frequency=1200:duration=1", "-map", "0",
           "-map", "1", "-map", "2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
           "-metadata:s:a:0", "language=kor", "-metadata:s:a:1", "language=eng",
           "-disposition:a:0", "0", "-disposition:a:1", "default", str(path))
    assert ["(eng)" in line for line in _default_audio(path)] == [True]
    return path


@pytest.mark.parametrize("prober", ["ffprobe", "banner"])
def test_probe_knows_which_audio_track_the_file_marks_as_default(tmp_path: Path, monkeypatch, prober: str):
    source = _dub_marked_default(tmp_path / "dub.mp4")
    if prober == "banner":
        monkeypatch.setattr(media, "ffprobe_exe", lambda: None)
    elif not media.ffprobe_exe():
        pytest.skip("no ffprobe beside this ffmpeg")
    info = media.probe(source)
    assert [s.default for s in info.audio_streams] == [False, True]
    assert info.audio_track() == 1 and info.audio_track(0) == 0
    # nothing marked (or everything, as Matroska does unless told): the first track
    assert media.MediaInfo(path=source, duration=1.0, streams=(
        media.StreamInfo(index=0, kind="audio", codec="aac"),
        media.StreamInfo(index=1, kind="audio", codec="aac"))).audio_track() == 0


def test_without_audio_track_the_analysis_hears_the_track_a_player_starts_with(tmp_path: Path, monkeypatch):
    from dramapic.analysis import analyze as analyze_module

    source = _dub_marked_default(tmp_path / "dub.mp4")
    asked = []

    def stream_audio(info, *, audio_track, **kwargs):
        asked.append(audio_track)
        raise InputError("stop here")  # the track asked for is all this test needs

    monkeypatch.setattr(analyze_module.media, "stream_audio", stream_audio)
    for options, track in ((AnalysisOptions(), 1), (AnalysisOptions(audio_track=0), 0)):
        with pytest.raises(InputError, match="stop here"):
            analyze_module.analyze(source, options=options)
        assert asked.pop() == track
    monkeypatch.undo()  # media.stream_audio is the module's own: the checks below decode for real
    # and the captioned video keeps that track first and default, as the input had it
    result = make_result([Segment(0.0, 1.0, "voice", 0.9, {"voice": 0.9})])
    monkeypatch.setattr(run_module, "analyze", lambda *args, **kwargs: result)
    done = run_module.run(source, options=RunOptions(output_dir=tmp_path / "out", video="soft"))
    defaults = _default_audio(done.files["video"])
    assert len(defaults) == 1 and "(eng)" in defaults[0], defaults
    assert _pitch(media.probe(done.files["video"]), 0) == pytest.approx(1200, abs=5)


def test_soft_subs_of_a_prores_mov_give_a_captioned_mp4_and_report_the_encode(tmp_path: Path, monkeypatch):
    """``dramapic run --soft-subs`` of an editor's ProRes MOV failed after the whole analysis (MP4 cannot hold
    ProRes): its video is re-encoded with the pipeline's x264 settings, and the encode reports its progress."""
    from dramapic.config import load_pipeline

    source = tmp_path / "edit.mov"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=1", "-f", "lavfi", "-i", "sine=duration=1",
           "-c:v", "prores", "-c:a", "pcm_s16le", media.file_arg(source))
    monkeypatch.setattr(run_module, "analyze", lambda *args, **kwargs: make_result(
        [Segment(0.0, 1.0, "voice", 0.9, {"voice": 0.9})]))
    stages = []
    pipeline = load_pipeline(None).replace(render__preset="ultrafast")
    done = run_module.run(source, options=RunOptions(output_dir=tmp_path / "out", video="soft"), pipeline=pipeline,
                          progress=lambda stage, *args: stages.append(stage))
    muxed = media.probe(done.files["video"])
    assert [(s.kind, s.codec) for s in muxed.streams] == [("video", "h264"), ("audio", "aac"),
                                                          ("subtitle", "mov_text")]
    assert "burn" in stages


# -- one channel of a dual-mono bilingual track ------------------------------------------------------------------------

def test_one_channel_of_a_dual_mono_track_is_analysed_alone(tmp_path: Path):
    """A bilingual broadcast carries one language per channel of one track; the mix is both at once. Here the
    sample's dialogue is on the left and nothing on the right: each channel is analysed as what it holds."""
    source = tmp_path / "dual.mp4"
    ffmpeg("-t", "13", "-i", str(SAMPLE), "-af", "pan=stereo|c0=c0|c1=0*c0", "-c:v", "copy", "-c:a", "aac",
           str(source))
    shares = {}
    for channel in ("left", "right"):
        done = dramapic("run", str(source), "-o", str(tmp_path / channel), "--no-video", "--no-progress", "-q",
                        "--audio-channel", channel)
        assert done.returncode == 0, done.stderr
        data = json.loads((tmp_path / channel / "dual.dramapic.json").read_text())
        shares[channel] = data["summary"]["shares"]
        # the JSON says which sound it describes: the one track, and the channel of it
        assert (data["source"]["audio_track"], data["source"]["audio_channel"]) == (0, channel)
    assert shares["left"]["voice"] > 0.5
    assert shares["right"]["voice"] == 0.0 and shares["right"]["silence"] == 1.0
    bad = dramapic("run", str(source), "-o", str(tmp_path / "bad"), "--audio-channel", "centre")
    assert bad.returncode == 2 and "invalid choice: 'centre'" in bad.stderr
