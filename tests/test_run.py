"""``run()``'s handling of its output folder: what an earlier run left there, and names that clash. The analysis
is replaced by a fixed result, so these tests take the time of writing the outputs only."""

from __future__ import annotations

import json
import os
import re
import unicodedata
from pathlib import Path

import pytest
from helpers import SAMPLE, make_result

from dramapic import run as run_module
from dramapic.errors import MediaError, OutputError
from dramapic.result import Segment
from dramapic.run import RunOptions
from dramapic.writers import case_twin, get_writer


@pytest.fixture
def no_analysis(monkeypatch):
    monkeypatch.setattr(run_module, "analyze", lambda *args, **kwargs: make_result())


@pytest.mark.parametrize("overwrite", [True, False])
def test_a_run_without_a_video_says_an_earlier_captioned_video_is_left_and_removes_nothing(tmp_path: Path,
                                                                                          no_analysis, overwrite):
    out = tmp_path / "out"
    out.mkdir()
    older = out / "drama_sample.dramapic.mp4"  # burned by an earlier run, from its analysis: an hour's encode
    older.write_bytes(b"the older analysis")
    others = ["drama_sample.mp4", "drama_sample.dramapic.mp4.bak", "other.dramapic.mp4", "drama_sample.mkv"]
    for name in others:
        (out / name).write_bytes(b"not this run's")
    done = run_module.run(SAMPLE, options=RunOptions(output_dir=out, video="none", overwrite=overwrite))
    assert older.read_bytes() == b"the older analysis"
    assert sorted(os.listdir(out)) == sorted([*others, older.name, "drama_sample.srt", "drama_sample.dramapic.json",
                                              "drama_sample.rttm"])
    # ... but not left unsaid: it sits beside the new JSON and shows another analysis
    assert [note for note in done.notes if str(older) in note and "earlier run" in note], done.notes


def test_without_an_earlier_captioned_video_there_is_nothing_to_say(tmp_path: Path, no_analysis):
    done = run_module.run(SAMPLE, options=RunOptions(output_dir=tmp_path, video="none"))
    assert not done.notes


def test_a_result_holding_nan_is_one_output_error_and_leaves_nothing(tmp_path: Path, monkeypatch):
    nan = make_result([Segment(0.0, 1.0, "voice", 0.9, {"voice": float("nan")})])
    monkeypatch.setattr(run_module, "analyze", lambda *args, **kwargs: nan)
    out = tmp_path / "new"
    with pytest.raises(OutputError, match=r"segments\[0\]\.scores\.voice = nan is not a finite number"):
        run_module.run(SAMPLE, options=RunOptions(output_dir=out, video="none"))
    assert not out.exists()  # no output, no temporary, not the folder the run made for them


def test_an_output_named_like_another_inputs_but_for_case_is_refused_before_any_work(tmp_path: Path, monkeypatch):
    # DRAMA_SAMPLE.mp4's subtitles, where drama_sample.mp4's go: one file on macOS and Windows (whatever this
    # machine's file system), which --overwrite gives no leave to replace
    monkeypatch.setattr(run_module, "analyze", lambda *args, **kwargs: pytest.fail("analysed before refusing"))
    other = tmp_path / "DRAMA_SAMPLE.srt"
    other.write_text("another input's subtitles")
    with pytest.raises(OutputError, match="drama_sample.srt would replace DRAMA_SAMPLE.srt .*differ only in case"):
        run_module.run(SAMPLE, options=RunOptions(output_dir=tmp_path, video="none", overwrite=True))
    assert os.listdir(tmp_path) == ["DRAMA_SAMPLE.srt"] and other.read_text() == "another input's subtitles"


def test_case_twin_finds_the_name_a_case_insensitive_file_system_would_open(tmp_path: Path):
    (tmp_path / "EP01.srt").write_text("x")
    assert case_twin(tmp_path / "ep01.srt") == "EP01.srt"
    assert case_twin(tmp_path / "EP01.srt") is None  # the file itself
    assert case_twin(tmp_path / "ep02.srt") is None
    nfd = unicodedata.normalize("NFD", "드라마.srt")  # as macOS stores Hangul
    (tmp_path / nfd).write_text("x")
    assert case_twin(tmp_path / unicodedata.normalize("NFC", "드라마.srt")) is None  # the same name to the user


def test_a_vtt_soft_subs_run_keeps_its_srt_from_a_run_of_the_same_input_starting_meanwhile(tmp_path: Path,
                                                                                            monkeypatch):
    """The SRT a VTT run muxes with --soft-subs was an unlocked ``.part.srt.tmp`` beside the outputs: a second run of
    the same input, starting while ffmpeg read it, took it for a killed run's leftover and removed it."""
    from dramapic import media
    from dramapic.writers import OutputSet

    options = RunOptions(output_dir=tmp_path, subtitle_format="vtt", video="soft")
    finals = list(run_module.output_paths(SAMPLE, options, with_video=True).values())
    mux = media.mux_subtitles
    removed = []

    def second_run_starts(info, subtitles, output, **kwargs):
        removed.extend(OutputSet.remove_stale(finals))  # what the second run does first
        assert subtitles.is_file(), "the SRT to mux was removed"
        mux(info, subtitles, output, **kwargs)

    monkeypatch.setattr(media, "mux_subtitles", second_run_starts)
    short = make_result([Segment(0.0, 1.5, "noise", 0.8, {"noise": 0.8}),
                         Segment(1.5, 4.0, "song", 0.9, {"song": 0.9})])
    monkeypatch.setattr(run_module, "analyze", lambda *args, **kwargs: short)  # cues within the sample's 26 s
    done = run_module.run(SAMPLE, options=options)
    assert removed == []
    assert [s.codec for s in media.probe(done.files["video"]).streams if s.kind == "subtitle"] == ["mov_text"]
    assert sorted(os.listdir(tmp_path)) == ["drama_sample.dramapic.json", "drama_sample.dramapic.mp4",
                                            "drama_sample.rttm", "drama_sample.vtt"]


def test_an_ffmpeg_without_libass_is_refused_before_any_work_when_burning_in(tmp_path: Path, monkeypatch):
    """Burn-in (the default) with an ffmpeg built without libass failed only after the whole analysis."""
    from dramapic import media

    monkeypatch.setattr(run_module, "analyze", lambda *args, **kwargs: pytest.fail("analysed before refusing"))
    monkeypatch.setattr(media, "ffmpeg_filters", lambda exe: frozenset({"scale", "anullsrc"}))
    out = tmp_path / "new"
    with pytest.raises(MediaError, match=r"has no 'subtitles' filter .*--soft-subs or --no-video.*DRAMAPIC_FFMPEG"):
        run_module.run(SAMPLE, options=RunOptions(output_dir=out))
    assert not out.exists()
    monkeypatch.setattr(run_module, "analyze", lambda *args, **kwargs: make_result())
    for video in ("none", "soft"):  # neither needs libass
        run_module.run(SAMPLE, options=RunOptions(output_dir=out, video=video, overwrite=True))


def test_both_ffmpeg_builds_here_have_the_subtitles_filter():
    """The probe behind the check above, on the real builds (both have libass): a probe that misread ffmpeg's list
    would refuse every burn-in."""
    import imageio_ffmpeg

    from dramapic import media

    for exe in ("/usr/bin/ffmpeg", imageio_ffmpeg.get_ffmpeg_exe()):
        if not os.path.exists(exe):
            continue
        filters = media.ffmpeg_filters(exe)
        assert {"subtitles", "scale", "anullsrc"} <= filters, exe


def _earlier_outputs_of(folder: Path, input_name: str) -> dict[str, str]:
    """What a run of ``input_name`` left in ``folder`` (its stem is the sample's): name -> text."""
    earlier = {"drama_sample.srt": "1\n00:00:00,000 --> 00:00:01,000\nvoice (0.90)\n",
               "drama_sample.dramapic.json": json.dumps({"source": {"path": f"/archive/{input_name}"}})}
    for name, text in earlier.items():
        (folder / name).write_text(text, encoding="utf-8")
    return earlier


def test_outputs_of_another_input_with_the_same_stem_are_named_as_its_own_before_any_work(tmp_path: Path,
                                                                                         monkeypatch):
    # drama_sample.mkv's outputs are where drama_sample.mp4's go: the refusal says whose they are
    monkeypatch.setattr(run_module, "analyze", lambda *args, **kwargs: pytest.fail("analysed before refusing"))
    earlier = _earlier_outputs_of(tmp_path, "drama_sample.mkv")
    with pytest.raises(OutputError, match=r"output already exists: .*drama_sample\.srt.*written for "
                                          r"drama_sample\.mkv .*-o DIR, or use --overwrite"):
        run_module.run(SAMPLE, options=RunOptions(output_dir=tmp_path, video="none"))
    assert {p.name: p.read_text(encoding="utf-8") for p in tmp_path.iterdir()} == earlier


def test_overwriting_another_inputs_outputs_says_whose_they_were(tmp_path: Path, no_analysis):
    _earlier_outputs_of(tmp_path, "drama_sample.mkv")
    done = run_module.run(SAMPLE, options=RunOptions(output_dir=tmp_path, video="none", overwrite=True))
    assert [n for n in done.notes if "replaced the outputs of drama_sample.mkv" in n], done.notes
    assert json.loads((tmp_path / "drama_sample.dramapic.json").read_text(encoding="utf-8"))["source"]["path"] \
        != "/archive/drama_sample.mkv"


@pytest.mark.parametrize("recorded", ["drama_sample.mp4", "DRAMA_SAMPLE.MP4", None])
def test_outputs_of_this_input_or_of_no_known_input_get_the_usual_refusal_and_no_note(tmp_path: Path, no_analysis,
                                                                                      recorded):
    if recorded is None:
        (tmp_path / "drama_sample.dramapic.json").write_text("not json", encoding="utf-8")
    else:
        _earlier_outputs_of(tmp_path, recorded)
    with pytest.raises(OutputError, match=r"output already exists: .* \(use --overwrite to replace\)") as refused:
        run_module.run(SAMPLE, options=RunOptions(output_dir=tmp_path, video="none"))
    assert "written for" not in str(refused.value)
    done = run_module.run(SAMPLE, options=RunOptions(output_dir=tmp_path, video="none", overwrite=True))
    assert not done.notes


@pytest.mark.parametrize(("earlier", "now"), [("srt", "vtt"), ("vtt", "srt")])
def test_subtitles_in_the_other_format_that_no_longer_match_are_kept_and_named(tmp_path: Path, no_analysis,
                                                                               earlier, now):
    """``--format vtt --overwrite`` after an SRT run replaced the JSON, RTTM and video, and left the earlier
    ``.srt`` beside the new ``.vtt`` without a word: a player that opens the video finds both and may show the
    SRT, the earlier run's analysis."""
    older = tmp_path / f"drama_sample.{earlier}"
    stale = "WEBVTT\n\n1\n00:00:00.000 --> 00:00:01.000\nsong (0.99)\n" if earlier == "vtt" else \
        "1\n00:00:00,000 --> 00:00:01,000\nsong (0.99)\n\n"
    older.write_text(stale, encoding="utf-8")
    done = run_module.run(SAMPLE, options=RunOptions(output_dir=tmp_path, video="none", subtitle_format=now))
    assert older.read_text(encoding="utf-8") == stale  # kept: it may be wanted, or edited by hand
    assert [n for n in done.notes if str(older) in n and "does not match this run's cues" in n
            and f"drama_sample.{now}" in n], done.notes


@pytest.mark.parametrize("language", ["en", "ko"])
def test_subtitles_in_the_other_format_that_match_this_run_need_no_note(tmp_path: Path, monkeypatch, language):
    # both formats of one input, wanted both: the second run is told nothing
    import dataclasses

    result = make_result()
    result = dataclasses.replace(result, source=dataclasses.replace(result.source, path=str(SAMPLE)))
    monkeypatch.setattr(run_module, "analyze", lambda *args, **kwargs: result)
    first = run_module.run(SAMPLE, options=RunOptions(output_dir=tmp_path, video="none", language=language))
    second = run_module.run(SAMPLE, options=RunOptions(output_dir=tmp_path, video="none", subtitle_format="vtt",
                                                       overwrite=True, language=language))
    assert first.files["subtitles"].is_file() and second.files["subtitles"].is_file()
    assert not second.notes
    # the same analysis with the cues in another language is another file
    third = run_module.run(SAMPLE, options=RunOptions(output_dir=tmp_path, video="none", subtitle_format="vtt",
                                                      overwrite=True, language="ko" if language == "en" else "en"))
    assert [n for n in third.notes if "drama_sample.srt" in n], third.notes


@pytest.mark.parametrize("text", ["1\n00:00:01,000 --> 00:00:03,000\nWhere were you last night?\n\n",
                                  "\ufeff1\r\n00:00:01,000 --> 00:00:03,000\r\n어젯밤에 어디 있었어?\r\n\r\n"])
def test_the_dialogues_own_subtitles_beside_the_input_are_not_called_an_earlier_run_s(tmp_path: Path, no_analysis,
                                                                                      text):
    # ep1.srt downloaded for ep1.mp4: a VTT run leaves it alone, and does not call it dramapic's
    theirs = tmp_path / "drama_sample.srt"
    theirs.write_bytes(text.encode("utf-8"))
    done = run_module.run(SAMPLE, options=RunOptions(output_dir=tmp_path, video="none", subtitle_format="vtt"))
    assert theirs.read_bytes() == text.encode("utf-8")
    assert not done.notes


_NOT_OURS_SRT = r"holds subtitles that are not dramapic's cues .*even with --overwrite: write the outputs elsewhere " \
    r"with -o DIR, or as --format vtt"
_NOT_OURS_RTTM = r"holds speaker turns that are not dramapic's .*even with --overwrite: write the outputs elsewhere " \
    r"with -o DIR$"


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("name, text, says", [
    # ep1.srt beside ep1.mp4 is the usual place of the dialogue's subtitles: dramapic said "output already exists
    # (use --overwrite to replace)", and --overwrite replaced them with its cues
    ("drama_sample.srt", "1\n00:00:01,000 --> 00:00:03,000\nWhere were you last night?\n\n", _NOT_OURS_SRT),
    ("drama_sample.srt", ("1\n00:00:01,000 --> 00:00:03,000\nvoice · female · S1 (0.91)\n\n"
                          "2\n00:00:03,000 --> 00:00:05,000\nAlice, furious\n\n"), _NOT_OURS_SRT),  # edited by hand
    # its speakers given their names, one word each (a speaker id was any one word, so these were replaced)
    ("drama_sample.srt", ("1\n00:00:01,000 --> 00:00:03,000\nvoice · female · Alice (0.91)\n\n"
                          "2\n00:00:03,000 --> 00:00:05,000\n음성 · 남성 · 민수 (0.88)\n\n"), _NOT_OURS_SRT),
    # NAME.rttm beside NAME.wav is how diarization corpora keep their reference (the dev mixes' own devmix_01.rttm
    # beside devmix_01.opus): --overwrite replaced it with dramapic's turns
    ("drama_sample.rttm", ("SPEAKER drama_sample 1 9.240 1.960 <NA> <NA> emodb_09 <NA> <NA>\n"
                           "SPEAKER drama_sample 1 12.030 4.180 <NA> <NA> emodb_09 <NA> <NA>\n"), _NOT_OURS_RTTM),
])
def test_a_file_dramapic_did_not_write_is_never_replaced(tmp_path: Path, monkeypatch, overwrite, name, text, says):
    monkeypatch.setattr(run_module, "analyze", lambda *args, **kwargs: pytest.fail("analysed before refusing"))
    theirs = tmp_path / name
    theirs.write_text(text, encoding="utf-8")
    with pytest.raises(OutputError, match=re.escape(name) + " " + says):
        run_module.run(SAMPLE, options=RunOptions(output_dir=tmp_path, video="none", overwrite=overwrite))
    assert os.listdir(tmp_path) == [theirs.name] and theirs.read_text(encoding="utf-8") == text


@pytest.mark.parametrize("text", ["", ("1\r\n00:00:01,000 --> 00:00:03,000\r\n음성 · 여성 · S1 (0.91)\r\n\r\n"
                                       "2\r\n00:00:03,000 --> 00:00:05,000\r\n음악 (0.84)\r\n")])
def test_dramapic_s_own_cues_are_replaced_with_overwrite(tmp_path: Path, no_analysis, text):
    # an earlier run's (a silent input's empty SRT among them, and Korean cues saved by a Windows editor)
    ours = tmp_path / "drama_sample.srt"
    ours.write_text(text, encoding="utf-8", newline="")
    with pytest.raises(OutputError, match=r"output already exists: .*drama_sample\.srt \(use --overwrite"):
        run_module.run(SAMPLE, options=RunOptions(output_dir=tmp_path, video="none"))
    done = run_module.run(SAMPLE, options=RunOptions(output_dir=tmp_path, video="none", overwrite=True))
    assert ours.read_text(encoding="utf-8") == get_writer("srt").render(done.result)


@pytest.mark.parametrize("text", ["", ("SPEAKER drama_sample 1 0.930 3.125 <NA> <NA> S1 <NA> <NA>\n"
                                       "SPEAKER drama_sample 1 4.055 3.250 <NA> <NA> S12 <NA> <NA>\n")])
def test_dramapic_s_own_turns_are_replaced_with_overwrite(tmp_path: Path, no_analysis, text):
    ours = tmp_path / "drama_sample.rttm"  # an earlier run's (one without speakers wrote an empty file)
    ours.write_text(text, encoding="utf-8")
    done = run_module.run(SAMPLE, options=RunOptions(output_dir=tmp_path, video="none", overwrite=True))
    assert ours.read_text(encoding="utf-8") == get_writer("rttm").render(done.result)
