import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dramapic import media
from dramapic.errors import InputError, MediaError, OutputError
from helpers import SAMPLE, ffmpeg_builds, tone

BANNER = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.mp4':
  Duration: 01:02:03.50, start: 0.000000, bitrate: 1055 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 1920x1080 [SAR 1:1 DAR 16:9], 1000 kb/s, 25 fps
  Stream #0:1[0x2](kor): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo, fltp, 128 kb/s (default)
  Stream #0:2[0x3](eng): Audio: ac3, 48000 Hz, 5.1(side), fltp, 384 kb/s
  Stream #0:3: Video: mjpeg (Baseline), yuvj420p(pc), 600x600, 90k tbr (attached pic)
  Stream #0:4(kor): Subtitle: mov_text (tx3g / 0x67337874)
At least one output file must be specified
"""


def test_parse_ffmpeg_banner_without_ffprobe():
    duration, streams = media.parse_ffmpeg_banner(BANNER)
    assert duration == pytest.approx(3723.5)
    kinds = [(s.kind, s.index, s.codec) for s in streams]
    assert kinds == [("video", 0, "h264"), ("audio", 0, "aac"), ("audio", 1, "ac3"), ("video", 1, "mjpeg"),
                     ("subtitle", 0, "mov_text")]
    assert (streams[0].width, streams[0].height) == (1920, 1080)
    assert (streams[1].sample_rate, streams[1].channels) == (48000, 2)
    assert streams[3].attached_picture
    info = media.MediaInfo(Path("x.mp4"), duration, tuple(streams))
    assert [s.codec for s in info.video_streams] == ["h264"]  # cover art is not a picture stream


def test_a_tag_saying_duration_is_not_the_length_of_the_file_without_ffprobe(tmp_path: Path, monkeypatch):
    """Without ffprobe (imageio-ffmpeg's build) the first "Duration:" of the banner was taken, a title's among
    them: a 5 s file titled "Duration: 10:00:00.00" was 36000 s long, and refused as truncated."""
    path = tmp_path / "titled.mkv"
    media._run([media.ffmpeg_exe(), "-v", "error", "-i", media.file_arg(SAMPLE), "-t", "5", "-c", "copy",
                "-metadata", "title=Duration: 10:00:00.00", media.file_arg(path)], what="make a test file")
    lengths = set()
    for probe_exe in {media.ffprobe_exe(), None}:
        with monkeypatch.context() as patch:
            patch.setattr(media, "ffprobe_exe", lambda exe=probe_exe: exe)
            info = media.probe(path)
            lengths.add(round(info.duration))
            assert media.decode_audio(info).shape[0] > 4 * 16000
    assert lengths == {5}


def test_probe_and_decode_sample():
    info = media.probe(SAMPLE)
    assert info.has_video and len(info.audio_streams) == 1
    audio = media.decode_audio(info)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.shape[0] / 16000 - info.duration) < 0.1
    assert 0.01 < float(np.sqrt(np.mean(audio ** 2))) < 0.5


def test_decode_selects_audio_track(tmp_path: Path):
    path = tmp_path / "two tracks.mkv"
    left, right = tone(2.0, freq=300), tone(2.0, freq=1200)
    (tmp_path / "a.f32").write_bytes(left.tobytes())
    (tmp_path / "b.f32").write_bytes(right.tobytes())
    media._run([media.ffmpeg_exe(), "-v", "error", "-f", "f32le", "-ar", "16000", "-ac", "1", "-i",
                str(tmp_path / "a.f32"), "-f", "f32le", "-ar", "16000", "-ac", "1", "-i", str(tmp_path / "b.f32"),
                "-map", "0", "-map", "1", "-c:a", "flac", str(path)], what="make test file")
    info = media.probe(path)
    second = media.decode_audio(info, audio_track=1)
    spectrum = np.abs(np.fft.rfft(second[:16000]))
    assert abs(np.argmax(spectrum) - 1200) < 5
    with pytest.raises(MediaError, match="--audio-track 2"):
        media.decode_audio(info, audio_track=2)


def test_not_media_raises_input_error(tmp_path: Path):
    path = tmp_path / "notes.mp4"
    path.write_text("just some text, not a video\n" * 20)
    with pytest.raises(InputError, match="not a media file"):
        media.probe(path)


def test_soft_subs_copy_video_and_audio_bit_exact(tmp_path: Path):
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:01,000 --> 00:00:02,000\nvoice · female · S1 (0.90)\n", encoding="utf-8")
    out = tmp_path / "out.mp4"
    info = media.probe(SAMPLE)
    media.mux_subtitles(info, srt, out)
    muxed = media.probe(out)
    assert [s.kind for s in muxed.streams] == ["video", "audio", "subtitle"]
    assert muxed.streams[2].codec == "mov_text"
    assert np.array_equal(media.decode_audio(muxed), media.decode_audio(info))


def test_soft_subs_on_a_video_without_audio(tmp_path: Path):
    """mux_subtitles (library use: run refuses such input earlier) mapped audio track 0 of a video that has none:
    "Stream map '0:a:0' matches no streams"."""
    source = tmp_path / "mute.mp4"
    media._run([media.ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=1",
                "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", media.file_arg(source)],
               what="make a test video")
    info = media.probe(source)
    assert not info.audio_streams
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,200 --> 00:00:00,800\nnoise (0.90)\n", encoding="utf-8")
    media.mux_subtitles(info, srt, tmp_path / "out.mp4")
    assert [s.kind for s in media.probe(tmp_path / "out.mp4").streams] == ["video", "subtitle"]


@pytest.mark.parametrize("codec, container", [("prores", "mov"), ("ffv1", "mkv")])
def test_soft_subs_re_encode_a_video_codec_mp4_cannot_hold(tmp_path: Path, codec, container):
    """ProRes (an editor's or a camera's MOV) or FFV1 cannot be copied into MP4: --soft-subs failed with "Could not
    find tag for codec" after the whole analysis. Such a video is re-encoded to H.264, the PCM audio to AAC."""
    source = tmp_path / f"edit.{container}"
    media._run([media.ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=162x90:rate=25:duration=1",
                "-f", "lavfi", "-i", "sine=duration=1", "-c:v", codec, "-c:a", "pcm_s16le", media.file_arg(source)],
               what="make a test video")
    info = media.probe(source)
    assert info.video_streams[0].codec == codec
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,200 --> 00:00:00,800\nvoice · female · S1 (0.90)\n", encoding="utf-8")
    media.mux_subtitles(info, srt, tmp_path / "out.mp4")
    muxed = media.probe(tmp_path / "out.mp4")
    assert [(s.kind, s.codec) for s in muxed.streams] == [("video", "h264"), ("audio", "aac"),
                                                          ("subtitle", "mov_text")]
    assert (muxed.streams[0].width, muxed.streams[0].height) == (162, 90)
    done = []  # an encode takes minutes on a real video: it reports how far it has come, as burn-in does
    media.mux_subtitles(info, srt, tmp_path / "again.mp4", preset="ultrafast", progress=done.append)
    assert done and done[-1] == info.duration


def _encoders(exe: str) -> str:
    return media._run([exe, "-hide_banner", "-encoders"], what="list the encoders").stdout.decode("utf-8", "replace")



@pytest.mark.parametrize("build", ffmpeg_builds())
def test_soft_subs_tag_copied_hevc_hvc1_for_apple_players(tmp_path: Path, monkeypatch, build):
    """HEVC copied from Matroska into MP4 was tagged hev1, which QuickTime, iOS and Safari will not play."""
    import shutil
    import subprocess

    maker = next((exe for exe in ffmpeg_builds() if " libx265 " in _encoders(exe)), None)
    if maker is None:
        pytest.skip("no ffmpeg here has libx265 to make an HEVC test video")
    checker = shutil.which("ffprobe")
    if checker is None:
        pytest.skip("needs ffprobe to read the codec tag")
    source = tmp_path / "hevc.mkv"
    media._run([maker, "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=1",
                "-f", "lavfi", "-i", "sine=duration=1", "-c:v", "libx265", "-x265-params", "log-level=error",
                "-preset", "ultrafast", "-c:a", "aac", media.file_arg(source)], what="make a test video")
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,200 --> 00:00:00,800\nvoice (0.90)\n", encoding="utf-8")
    try:
        monkeypatch.setenv(media.FFMPEG_ENV, build)
        monkeypatch.delenv(media.FFPROBE_ENV, raising=False)
        media.ffmpeg_exe.cache_clear()
        media.ffprobe_exe.cache_clear()
        info = media.probe(source)
        assert info.video_streams[0].codec == "hevc"
        media.mux_subtitles(info, srt, tmp_path / "out.mp4")
    finally:
        media.ffmpeg_exe.cache_clear()
        media.ffprobe_exe.cache_clear()
    tag = subprocess.run([checker, "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=codec_name,codec_tag_string", "-of", "csv=p=0", str(tmp_path / "out.mp4")],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert tag == "hevc,hvc1"


@pytest.mark.parametrize("build", ffmpeg_builds())
def test_soft_subs_take_a_cue_longer_than_36_minutes(tmp_path: Path, monkeypatch, build):
    """One song or noise segment over 2^31 microseconds (35.8 min: a concert) failed --soft-subs after the whole
    analysis: "Application provided duration: 2300000000 is invalid"."""
    source = tmp_path / "concert.mp4"
    media._run([media.ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "color=black:size=32x32:rate=1:duration=2400",
                "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "2400", "-c:v", "libx264", "-preset", "ultrafast",
                "-c:a", "aac", "-b:a", "8k", media.file_arg(source)], what="make a test video")
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:01,000 --> 00:38:21,000\nsong (0.90)\n\n2\n00:38:21,000 --> 00:39:00,500\n"
                   "voice (0.80)\n", encoding="utf-8")
    try:
        monkeypatch.setenv(media.FFMPEG_ENV, build)
        media.ffmpeg_exe.cache_clear()
        media.ffprobe_exe.cache_clear()
        media.mux_subtitles(media.probe(source), srt, tmp_path / "out.mp4")
        cues = media._run([media.ffmpeg_exe(), "-v", "error", "-i", media.file_arg(tmp_path / "out.mp4"),
                           "-map", "0:s:0", "-f", "srt", "-"], what="read the cues back").stdout.decode()
    finally:
        media.ffmpeg_exe.cache_clear()
        media.ffprobe_exe.cache_clear()
    assert "00:00:01,000 --> 00:38:21,000" in cues and "00:38:21,000 --> 00:39:00,500" in cues, cues


def test_stream_audio_yields_fixed_chunks_equal_to_whole_decode():
    info = media.probe(SAMPLE)
    chunks = list(media.stream_audio(info, chunk_s=10.0))
    assert [c.shape[0] for c in chunks[:-1]] == [160000] * (len(chunks) - 1)
    assert np.array_equal(np.concatenate(chunks), media.decode_audio(info))


def _child_processes() -> list[str]:
    import os

    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            children.append(stat.parent.name)
    return children


def test_stream_audio_stopped_early_leaves_no_process():
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to list child processes")
    # children already there are not the stream's (e.g. multiprocessing's resource tracker, which lives as long
    # as the test process once an earlier test has used a spawn pool)
    before = set(_child_processes())
    stream = media.stream_audio(media.probe(SAMPLE), chunk_s=1.0)
    next(stream)
    assert set(_child_processes()) - before, "ffmpeg should be running while the stream is open"
    stream.close()
    assert set(_child_processes()) - before == set()


@pytest.mark.parametrize("build", ffmpeg_builds())
def test_a_file_name_that_says_disk_full_is_not_a_full_disk(tmp_path: Path, monkeypatch, build):
    """ffmpeg echoes the files it was given in its errors: an output in a folder that is gone, or an unreadable
    input, named "No space left on device…" was reported as a full disk (OutputError) instead of what happened."""
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,200 --> 00:00:00,800\nvoice (0.90)\n", encoding="utf-8")
    garbage = tmp_path / "Disk quota exceeded.mp4"
    garbage.write_bytes(b"\x00\x01 not media " * 50)
    try:
        monkeypatch.setenv(media.FFMPEG_ENV, build)
        media.ffmpeg_exe.cache_clear()
        media.ffprobe_exe.cache_clear()
        with pytest.raises(MediaError, match="No such file or directory") as failed:
            media.mux_subtitles(media.probe(SAMPLE), srt, tmp_path / "gone" / "No space left on device.mp4")
        assert not isinstance(failed.value, OutputError)
        with pytest.raises(MediaError, match="Invalid data found") as failed:
            media.extract_frame(garbage, at=0.0, output=tmp_path / "frame.png")
        assert not isinstance(failed.value, OutputError)
    finally:
        media.ffmpeg_exe.cache_clear()
        media.ffprobe_exe.cache_clear()


def _stereo(tmp_path: Path, left: np.ndarray, right: np.ndarray, name: str = "stereo.wav") -> Path:
    import soundfile as sf

    path = tmp_path / name
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    return path


def _dialogue_like(seconds: float, seed: int = 0) -> np.ndarray:
    """A tone in noise, switched on and off every half second: something with a level to lose."""
    rng = np.random.default_rng(seed)
    gate = (np.arange(int(seconds * 16000)) // 8000) % 2
    return ((tone(seconds, freq=220.0, level=0.2) + 0.05 * rng.standard_normal(gate.size)) * gate).astype(np.float32)


def test_stereo_with_one_channel_out_of_phase_is_not_decoded_as_silence(tmp_path: Path, caplog):
    """R = -L (a miswired deck or broadcast chain, a VHS hi-fi fault) summed to mono by ``-ac 1`` cancelled to
    digital silence: the whole dialogue came out as "silence". Such a piece is now analysed from its louder channel,
    with a warning."""
    left = _dialogue_like(12.0)
    path = _stereo(tmp_path, left, -left)
    with caplog.at_level("WARNING", logger="dramapic.media"):
        audio = media.decode_audio(media.probe(path))
    # the level a correctly wired copy (R = L) decodes to
    expected = np.sqrt(np.mean(np.square(left * np.sqrt(2.0), dtype=np.float64)))
    assert np.sqrt(np.mean(np.square(audio, dtype=np.float64))) == pytest.approx(expected, rel=0.05)
    assert "out of phase" in caplog.text


def test_dialogue_in_the_centre_of_a_mix_that_cancels_is_kept(tmp_path: Path):
    """A mix wide enough to cancel in mono (a loud effect spread out of phase) may still carry dialogue in the
    centre, in phase: L - R would cancel that instead. One channel holds both."""
    dialogue = _dialogue_like(6.0)
    effect = 4 * _dialogue_like(6.0, seed=3)[::-1]
    audio = media.decode_audio(media.probe(_stereo(tmp_path, dialogue + effect, dialogue - effect)))
    # the dialogue's part of the decoded audio: sqrt(2) as in an in-phase mix, none at all in L - R
    assert float(np.dot(audio, dialogue) / np.dot(dialogue, dialogue)) == pytest.approx(np.sqrt(2.0), rel=0.1)


def test_ordinary_stereo_decodes_to_exactly_the_ffmpeg_downmix(tmp_path: Path, chosen_build):
    """Stereo is mixed to mono in Python (to see a cancelling pair), in the same float32 arithmetic as ffmpeg's
    ``-ac 1``: in-phase, decorrelated and one-sided stereo decode to the very samples they always did."""
    left, other = _dialogue_like(7.0), _dialogue_like(7.0, seed=1)
    for right in (0.8 * np.roll(left, 5), other, np.zeros_like(left)):
        path = _stereo(tmp_path, left, right)
        plain = subprocess.run([chosen_build, "-v", "error", "-i", str(path), "-ac", "1", "-ar", "16000", "-f",
                                "f32le", "pipe:1"], capture_output=True, check=True).stdout
        assert np.array_equal(media.decode_audio(media.probe(path)), np.frombuffer(plain, "<f4"))


def test_stereo_pieces_stitched_equal_the_whole_decode_whatever_the_chunk(tmp_path: Path):
    """The phase is judged on a fixed grid, not per piece: a file out of phase for a while decodes the same in
    pieces of any size (odd ones included) as whole."""
    left = _dialogue_like(23.3)
    right = left.copy()
    right[7 * 16000:16 * 16000] *= -1
    info = media.probe(_stereo(tmp_path, left, right))
    whole = media.decode_audio(info)
    for chunk_s in (0.37, 4.999, 30.0):
        pieces = list(media.stream_audio(info, chunk_s=chunk_s))
        assert [p.shape[0] for p in pieces[:-1]] == [round(chunk_s * 16000)] * (len(pieces) - 1)
        assert np.array_equal(np.concatenate(pieces), whole)


@pytest.mark.parametrize("offset", [0.02, -0.3])
def test_a_dc_offset_is_taken_out_of_the_decoded_audio(tmp_path: Path, caplog, offset):
    """A capture with a DC offset (the waveform sitting off zero: a card's or deck's bias) is inaudible, but its
    silences read as a steady sound: 0.02 took the sample's silence share from 12 % to none. The offset is now
    removed where it is found, with a warning; the sound itself is left as it was."""
    import soundfile as sf

    sound = _dialogue_like(11.0)
    path = tmp_path / "offset.wav"
    sf.write(path, sound + offset, 16000, subtype="FLOAT")
    with caplog.at_level("WARNING", logger="dramapic.media"):
        audio = media.decode_audio(media.probe(path))
    assert abs(float(np.mean(audio))) < 1e-4
    assert np.abs(audio - sound).max() < 0.01
    assert "DC offset" in caplog.text


def test_ordinary_audio_keeps_its_own_small_mean():
    """Content has a mean of its own (a low note, an asymmetric waveform): under the DC thresholds it is not an
    offset, and the sample decodes to the very samples ffmpeg gives."""
    info = media.probe(SAMPLE)
    plain = subprocess.run([media.ffmpeg_exe(), "-v", "error", "-i", str(SAMPLE), "-map", "0:a:0", "-af",
                            "aresample=first_pts=0:min_comp=0.001:min_hard_comp=100000,asetpts=N/SR/TB", "-ac", "1",
                            "-ar", "16000", "-f", "f32le", "pipe:1"], capture_output=True, check=True).stdout
    assert np.array_equal(media.decode_audio(info), np.frombuffer(plain, "<f4"))


def test_a_short_tail_is_judged_by_the_block_before_it(tmp_path: Path):
    """The last block of a file may be a fraction of a second, whose mean says little: a fading breath there is
    no DC offset and stays as it was, while a capture's offset is taken out to its very end."""
    import soundfile as sf

    sound = _dialogue_like(10.3)
    tail = np.arange(10 * 16000, sound.size)
    sound[tail] = -0.002 + 0.005 * np.sin(2 * np.pi * 3.0 * tail / 16000)  # 0.3 s of a slow, off-centre swell
    path = tmp_path / "tail.wav"
    sf.write(path, sound, 16000, subtype="FLOAT")
    assert np.array_equal(media.decode_audio(media.probe(path)), sound)
    sf.write(path, sound + 0.02, 16000, subtype="FLOAT")
    assert np.abs(media.decode_audio(media.probe(path))[tail] - sound[tail]).max() < 1e-3


def test_one_channel_of_a_dual_mono_track_is_decoded_alone(tmp_path: Path, caplog, chosen_build):
    """A bilingual broadcast carries one language per channel of a "dual mono" track: mixed, the analysis heard both
    at once. ``audio_channel`` decodes the one asked for, sample for sample, with either ffmpeg build; the stitched
    pieces equal the whole decode as for the mix."""
    left, right = _dialogue_like(7.0), _dialogue_like(7.0, seed=1)
    info = media.probe(_stereo(tmp_path, left, right))
    assert np.array_equal(media.decode_audio(info, audio_channel="left"), left)
    assert np.array_equal(media.decode_audio(info, audio_channel="right"), right)
    pieces = list(media.stream_audio(info, audio_channel="right", chunk_s=2.0))
    assert len(pieces) == 4 and np.array_equal(np.concatenate(pieces), right)
    mix = media.decode_audio(info)
    assert not np.array_equal(mix, left) and not np.array_equal(mix, right)  # the default is still the mix
    assert media.channel_analysed(info, audio_track=0, audio_channel="right") == "right"
    assert media.channel_analysed(info, audio_track=0, audio_channel=None) is None
    import soundfile as sf

    sf.write(tmp_path / "mono.wav", left, 16000, subtype="FLOAT")
    mono = media.probe(tmp_path / "mono.wav")
    with caplog.at_level("WARNING", logger="dramapic.media"):
        assert np.array_equal(media.decode_audio(mono, audio_channel="right"), left)
    assert "has one channel, so --audio-channel right has nothing to choose from" in caplog.text
    assert media.channel_analysed(mono, audio_track=0, audio_channel="right") is None  # its one channel: the mix
    # a channel count the probe could not read: pan's "second channel" of a mono track would be silence
    unknown = dataclasses.replace(mono, streams=tuple(dataclasses.replace(st, channels=None)
                                                      for st in mono.streams))
    with caplog.at_level("WARNING", logger="dramapic.media"):
        assert np.array_equal(media.decode_audio(unknown, audio_channel="right"), left)
    assert "cannot be trusted; the track's mix is analysed" in caplog.text
    with pytest.raises(ValueError, match="audio_channel"):
        media.decode_audio(info, audio_channel="centre")


def test_the_first_audio_frame_is_read_however_ffmpeg_prints_its_time():
    """ashowinfo prints pts_time with %.6g: a start one tick after 0 reads "2.08333e-05", which the first pattern
    missed (the track was then taken to start with the file, and a format change mid-stream added silence)."""
    line = "[Parsed_ashowinfo_0 @ 0x55d0] n:0 pts:{} pts_time:{} pos:37398 fmt:fltp channels:1 chlayout:mono "
    for pts, seconds in (("1", "2.08333e-05"), ("48000", "1"), ("-336", "-0.007")):
        assert media._FIRST_FRAME.search(line.format(pts, seconds)).groups() == (pts, seconds)


def _loud_voice_like(seconds: float) -> np.ndarray:
    """A voice's asymmetric waveform (its negative peaks higher than its positive ones, with no mean: a fundamental
    and a second harmonic), switched on and off every half second, amplified six times past full scale."""
    t = np.arange(int(seconds * 16000)) / 16000
    gate = (np.arange(t.size) // 8000) % 2
    wave = 0.3 * (np.sin(2 * np.pi * 220.0 * t) - 0.6 * np.cos(2 * np.pi * 440.0 * t))
    return (6.0 * gate * wave).astype(np.float32)


@pytest.mark.parametrize("kind", ["voice", "sine"])
def test_hard_clipping_is_no_dc_offset(tmp_path: Path, caplog, kind):
    """A loud voice amplified until it clips at ±1 was warned of as "a DC offset of -0.114" and had that taken out:
    clipping an asymmetric waveform moves its mean, though nothing sits off zero (its pauses are at 0). The median,
    which clipping does not move, must now agree; a clipped sine, symmetric, never had either off."""
    import soundfile as sf

    loud = _loud_voice_like(11.0) if kind == "voice" else tone(11.0, freq=1000.0, level=6.0)
    path = tmp_path / "clipped.wav"
    sf.write(path, np.clip(loud, -1.0, 1.0), 16000, subtype="PCM_16")
    with caplog.at_level("WARNING", logger="dramapic.media"):
        audio = media.decode_audio(media.probe(path))
    assert "DC offset" not in caplog.text
    assert np.array_equal(audio, sf.read(path, dtype="float32")[0])  # the samples as written, none taken out


@pytest.mark.parametrize("clipped", [False, True])
def test_a_dc_offset_under_a_loud_voice_is_still_found(tmp_path: Path, caplog, clipped):
    """The median's agreement takes no true offset away: +0.2 under the loud voice (clipped at ±1 after the offset
    or not) is found and taken out."""
    import soundfile as sf

    loud = _loud_voice_like(11.0)
    if clipped:
        loud = np.clip(loud, -1.0, 1.0)
    path = tmp_path / "offset.wav"
    sf.write(path, loud + 0.2, 16000, subtype="FLOAT")
    with caplog.at_level("WARNING", logger="dramapic.media"):
        audio = media.decode_audio(media.probe(path))
    assert "DC offset of +0." in caplog.text
    assert abs(float(np.mean(audio))) < 1e-3
