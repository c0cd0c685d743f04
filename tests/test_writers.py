import os
from pathlib import Path

import pysrt
import pytest

from dramapic.errors import OutputError
from dramapic.result import AnalysisResult, Segment
from dramapic.writers import OutputSet, cue_text, get_writer
from helpers import make_result


def test_cue_text_formats():
    result = make_result()
    assert cue_text(result.segments[1]) == "voice · female · S1 (0.91)"
    assert cue_text(result.segments[2]) == "song (0.84)"
    assert cue_text(result.segments[1], language="ko") == "음성 · 여성 · S1 (0.91)"


def test_srt_is_numbered_utf8_without_bom_and_skips_silence(tmp_path: Path):
    path = tmp_path / "movie.srt"
    get_writer("srt").write(make_result(), path)
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    items = pysrt.open(str(path), encoding="utf-8")
    assert [i.index for i in items] == [1, 2, 3]
    assert str(items[0].start) == "00:00:01,500" and str(items[1].end) == "01:02:05,500"
    assert items[0].text == "voice · female · S1 (0.91)"


def test_vtt(tmp_path: Path):
    text = get_writer("vtt").render(make_result())
    assert text.startswith("WEBVTT\n\n1\n00:00:01.500 --> 00:00:04.250\nvoice · female · S1 (0.91)\n")


def test_a_segment_shorter_than_a_millisecond_gets_no_cue_and_the_numbering_stays_whole():
    """With ``min_duration_s: 0`` a label may change on the clipped last frame (10.0004 s of audio): its segment
    lasts 0.4 ms, and SRT and VTT wrote a cue "00:00:10.000 --> 00:00:10.000" (invalid WebVTT)."""
    import re

    segments = [Segment(0.0, 1.0001, "voice", 0.9, {"voice": 0.9}, None, "S1"),
                Segment(1.0001, 1.0004, "noise", 0.6, {"noise": 0.6}),   # 1.000 --> 1.000 once in milliseconds
                Segment(1.0004, 10.0, "song", 0.8, {"song": 0.8}),
                Segment(10.0, 10.0004, "noise", 0.6, {"noise": 0.6})]
    result = make_result(segments)
    srt = pysrt.from_string(get_writer("srt").render(result))
    assert [(i.index, str(i.start), str(i.end), i.text) for i in srt] == [
        (1, "00:00:00,000", "00:00:01,000", "voice · S1 (0.90)"), (2, "00:00:01,000", "00:00:10,000", "song (0.80)")]
    vtt = get_writer("vtt").render(result)
    timings = re.findall(r"^(\d+)\n(\S+) --> (\S+)$", vtt, re.MULTILINE)
    assert timings == [("1", "00:00:00.000", "00:00:01.000"), ("2", "00:00:01.000", "00:00:10.000")]


def test_subtitles_rttm_and_json_give_every_segment_the_same_milliseconds():
    """The last segment ends at the last sample (n / 16000 s), where a time may fall half-way between two
    milliseconds: SRT and VTT rounded it one way and the JSON the other, and RTTM's start + duration, each rounded
    apart, could end 1 ms off too."""
    import re

    def seconds(stamp: str) -> float:
        hours, minutes, rest = stamp.replace(",", ".").split(":")
        return round(int(hours) * 3600 + int(minutes) * 60 + float(rest), 3)

    mismatches = []
    for n in range(160_008, 160_008 + 16 * 200, 16):  # every end that is a half millisecond: 10.0005, 10.0015, ...
        segments = [Segment(0.0, 7.27, "noise", 0.9, {"noise": 0.9}),
                    Segment(7.27, n / 16000, "voice", 0.9, {"voice": 0.9}, None, "S1")]
        result = make_result(segments)
        json_times = [(s["start"], s["end"]) for s in result.to_dict()["segments"]]
        srt = [(seconds(i.start.to_time().isoformat()), seconds(i.end.to_time().isoformat()))
               for i in pysrt.from_string(get_writer("srt").render(result))]
        vtt = [(seconds(a), seconds(b)) for a, b in
               re.findall(r"^(\S+) --> (\S+)$", get_writer("vtt").render(result), re.MULTILINE)]
        onset, duration = get_writer("rttm").render(result).split()[3:5]
        rttm = [(float(onset), round(float(onset) + float(duration), 3))]
        if not srt == vtt == json_times or rttm != json_times[1:]:
            mismatches.append((n / 16000, json_times, srt, vtt, rttm))
    assert not mismatches, mismatches[:3]


def test_rttm_has_one_line_per_voice_segment():
    lines = get_writer("rttm").render(make_result()).splitlines()
    assert lines == ["SPEAKER movie 1 1.500 2.750 <NA> <NA> S1 <NA> <NA>"]


def test_a_voice_turn_shorter_than_a_millisecond_gets_no_rttm_line():
    """With ``min_duration_s: 0`` a voice turn may last only the clipped last frame (0.4 ms): its RTTM line had
    duration 0.000, which dscore refuses, and the whole file with it ("Turn duration <= 0 seconds"), and
    pyannote drops. It gets no line, as it gets no cue."""
    segments = [Segment(0.0, 9.9996, "voice", 0.9, {"voice": 0.9}, None, "S1"),
                Segment(9.9996, 10.0, "voice", 0.6, {"voice": 0.6}, None, "S2")]
    lines = get_writer("rttm").render(make_result(segments)).splitlines()
    assert lines == ["SPEAKER movie 1 0.000 10.000 <NA> <NA> S1 <NA> <NA>"]
    assert all(float(line.split()[4]) > 0 for line in lines)


def test_the_rttm_file_id_has_no_white_space_of_any_kind(tmp_path: Path):
    import dataclasses

    from dramapic.lab.reference import read_rttm

    result = make_result()
    named = dataclasses.replace(result, source=dataclasses.replace(result.source, path="/x/드라마\u30001화\tfinal.mp4"))
    path = tmp_path / "film.rttm"
    get_writer("rttm").write(named, path)
    line = path.read_text(encoding="utf-8").splitlines()[0]
    assert line.split()[1] == "드라마_1화_final" and len(line.split()) == 10
    annotation = read_rttm(path, uri="드라마_1화_final")
    assert [(round(s.start, 3), round(s.end, 3), label) for s, _, label in annotation.itertracks(yield_label=True)] \
        == [(1.5, 4.25, "S1")]


def test_json_round_trips():
    import json

    result = make_result()
    data = json.loads(get_writer("json").render(result))
    assert data["schema"] == "dramapic/1"
    assert AnalysisResult.from_dict(data).to_dict() == data


@pytest.mark.parametrize(("value", "where"), [(float("nan"), r"segments\[0\]\.confidence = nan"),
                                             (float("inf"), r"segments\[0\]\.confidence = inf")])
def test_json_refuses_nan_and_infinity_in_one_typed_error_and_writes_no_file(tmp_path: Path, value, where):
    # Python's json writes NaN and Infinity; they are not JSON, and dramapic report refuses such a file
    result = make_result([Segment(0.0, 1.0, "voice", value, {"voice": 0.9})])
    path = tmp_path / "movie.dramapic.json"
    with pytest.raises(OutputError, match=rf"cannot write the JSON output: {where} is not a finite number"):
        get_writer("json").write(result, path)
    assert os.listdir(tmp_path) == []  # not even an empty file


def test_unknown_format():
    with pytest.raises(OutputError):
        get_writer("docx")


def test_output_set_is_all_or_nothing(tmp_path: Path):
    finals = [tmp_path / "a.srt", tmp_path / "a.json"]
    with pytest.raises(RuntimeError):
        with OutputSet() as outputs:
            outputs.check(finals)
            for final in finals:
                outputs.reserve(final).write_text("partial")
            raise RuntimeError("analysis failed half way")
    assert os.listdir(tmp_path) == []
    with OutputSet() as outputs:
        temps = [outputs.reserve(f) for f in finals]
        for temp in temps:
            temp.write_text("done")
        outputs.commit()
    assert sorted(os.listdir(tmp_path)) == ["a.json", "a.srt"]


def test_outputs_get_the_umask_mode_not_the_private_temporary_one(tmp_path: Path):
    import stat

    from dramapic.writers import write_json_atomic

    old = os.umask(0o022)
    try:
        with OutputSet() as outputs:
            outputs.reserve(tmp_path / "a.srt").write_text("done")
            outputs.commit()
        write_json_atomic({"a": 1}, tmp_path / "eval.json")
    finally:
        os.umask(old)
    for name in ("a.srt", "eval.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


def test_outputs_are_written_where_the_file_system_refuses_a_mode_change(tmp_path: Path, monkeypatch):
    """FAT and exFAT (a USB drive, a camera card) answer chmod 0644 with EPERM (every file there has the mount's
    mode): was a PermissionError traceback after the whole analysis, with an empty temporary left behind."""
    import errno

    from dramapic.writers import write_json_atomic

    def refused(path, mode, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted", str(path))

    monkeypatch.setattr(os, "chmod", refused)
    with OutputSet() as outputs:
        get_writer("srt").write(make_result(), outputs.reserve(tmp_path / "movie.srt"))
        outputs.commit()
    write_json_atomic({"a": 1}, tmp_path / "eval.json")
    assert sorted(os.listdir(tmp_path)) == ["eval.json", "movie.srt"]
    assert "voice · female · S1" in (tmp_path / "movie.srt").read_text(encoding="utf-8")


def test_output_set_refuses_existing_without_overwrite(tmp_path: Path):
    (tmp_path / "a.srt").write_text("old")
    with pytest.raises(OutputError, match="--overwrite"):
        OutputSet().check([tmp_path / "a.srt"])
    OutputSet(overwrite=True).check([tmp_path / "a.srt"])


def test_a_folder_where_an_output_goes_is_refused_before_anything_is_written(tmp_path: Path):
    (tmp_path / "a.rttm").mkdir()
    with pytest.raises(OutputError, match="a folder is where an output goes"):
        OutputSet(overwrite=True).check([tmp_path / "a.srt", tmp_path / "a.rttm"])


@pytest.mark.parametrize("stop", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_model_file_that_cannot_be_written_leaves_nothing(tmp_path, monkeypatch, stop):
    """``dramapic train`` on a full disk (or stopped while writing): was an OSError traceback with NAME.tmp.npz left
    half-written in the models folder."""
    import numpy as np

    from dramapic.analysis.gender import GenderClassifier
    from dramapic.lab.data import save_npz

    def half_then_fail(file, **arrays):
        Path(file).write_bytes(b"PK\x03\x04 half a zip")
        raise stop

    monkeypatch.setattr(np, "savez", half_then_fail)
    monkeypatch.setattr(np, "savez_compressed", half_then_fail)
    model = GenderClassifier(mean=np.zeros(256), scale=np.ones(256), coef=np.ones(256), intercept=np.zeros(1),
                             labels=("female", "male"))
    for write in (lambda: save_npz(tmp_path, "speaker-lda.npz", {"a": np.zeros(3)}),
                  lambda: model.to_npz(tmp_path / "gender.npz")):
        with pytest.raises(OutputError if isinstance(stop, OSError) else KeyboardInterrupt):
            write()
        assert list(tmp_path.iterdir()) == []


def test_an_output_another_run_publishes_after_the_check_is_not_replaced(tmp_path: Path, monkeypatch):
    """Two runs of one input finishing together: commit checked "exists?" and then renamed, so the later run
    replaced the earlier one's files without --overwrite. The race is made certain here: the other run's file
    appears just after the check."""
    finals = [tmp_path / "a.srt", tmp_path / "a.json"]
    check = OutputSet.check

    def check_then_the_other_run_publishes(self, paths):
        check(self, paths)
        finals[1].write_text("the other run's")

    with pytest.raises(OutputError, match=r"a\.json.*--overwrite"), OutputSet() as outputs:
        for final in finals:
            outputs.reserve(final).write_text("this run's")
        monkeypatch.setattr(OutputSet, "check", check_then_the_other_run_publishes)
        outputs.commit()
    assert finals[1].read_text() == "the other run's"
    assert sorted(os.listdir(tmp_path)) == ["a.json"]  # no half-set of this run's, no temporary


def test_a_dangling_link_at_an_output_name_is_refused_before_the_work(tmp_path: Path):
    """A symbolic link whose target is gone, at an output's name, passed the check ("exists?" follows links): the
    run analysed the whole input and then failed at the rename with "output already exists". It is refused at the
    check now; --overwrite replaces the link itself, as it replaces any output."""
    final = tmp_path / "a.srt"
    final.symlink_to(tmp_path / "gone.srt")
    with pytest.raises(OutputError, match=r"output already exists: .*a\.srt"):
        OutputSet().check([final])
    with OutputSet(overwrite=True) as outputs:
        outputs.check([final])
        outputs.reserve(final).write_text("this run's")
        outputs.commit()
    assert not final.is_symlink() and final.read_text() == "this run's"


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_commit_that_fails_part_way_takes_back_what_it_published(tmp_path: Path, monkeypatch, overwrite):
    """The second rename failing (a vanished folder, an I/O error) left the first output published: a half-set
    (a new SRT beside no JSON, or beside the JSON of an older run)."""
    import errno

    finals = [tmp_path / "a.srt", tmp_path / "a.json", tmp_path / "a.rttm"]
    if overwrite:  # an earlier run's set, which --overwrite replaced in part and then removed the SRT of
        for final in finals:
            final.write_text("older run's")

    def failing_on(real):
        def publish(source, target, *args, **kwargs):
            if Path(target) == finals[1]:
                raise OSError(errno.EIO, "Input/output error")
            return real(source, target, *args, **kwargs)
        return publish

    monkeypatch.setattr(os, "link", failing_on(os.link))
    monkeypatch.setattr(os, "replace", failing_on(os.replace))
    with pytest.raises(OutputError, match=r"cannot write .*a\.json: Input/output error"), \
            OutputSet(overwrite=overwrite) as outputs:
        for final in finals:
            outputs.reserve(final).write_text("this run's")
        outputs.commit()
    assert sorted(os.listdir(tmp_path)) == (["a.json", "a.rttm", "a.srt"] if overwrite else [])
    if overwrite:  # the earlier set whole again: the SRT put back, the JSON and RTTM never replaced
        assert [final.read_text() for final in finals] == ["older run's"] * 3



def test_an_overwrite_that_succeeds_leaves_no_earlier_output_aside(tmp_path: Path):
    finals = [tmp_path / "a.srt", tmp_path / "a.json"]
    finals[0].write_text("older run's")
    with OutputSet(overwrite=True) as outputs:
        for final in finals:
            outputs.reserve(final).write_text("this run's")
        outputs.commit()
    assert sorted(os.listdir(tmp_path)) == ["a.json", "a.srt"]
    assert [final.read_text() for final in finals] == ["this run's"] * 2

@pytest.mark.parametrize("overwrite", [False, True])
def test_a_signal_that_lands_as_an_output_is_published_takes_that_output_back_too(tmp_path: Path, monkeypatch,
                                                                                 overwrite):
    """A SIGTERM or Ctrl-C raised just as a rename or link returns (Python runs the handler at the next bytecode,
    so one that arrives during the system call lands there) left that output published: the roll-back knew only
    those published before it. Found with `kill` during the commit of `dramapic run`: a lone JSON was left."""
    finals = [tmp_path / "a.srt", tmp_path / "a.json", tmp_path / "a.rttm"]

    def interrupted_after(real):
        def publish(source, target, *args, **kwargs):
            real(source, target, *args, **kwargs)
            if Path(target) == finals[1]:
                raise KeyboardInterrupt
        return publish

    monkeypatch.setattr(os, "link", interrupted_after(os.link))
    monkeypatch.setattr(os, "replace", interrupted_after(os.replace))
    with pytest.raises(KeyboardInterrupt), OutputSet(overwrite=overwrite) as outputs:
        for final in finals:
            outputs.reserve(final).write_text("this run's")
        outputs.commit()
    assert os.listdir(tmp_path) == []  # no half-set, no temporary


def test_outputs_are_published_where_the_file_system_has_no_hard_links(tmp_path: Path, monkeypatch):
    """FAT and exFAT refuse link() with EPERM: the outputs are renamed into place, still refusing one that
    exists."""
    import errno

    def no_links(source, target, *args, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    with OutputSet() as outputs:
        outputs.reserve(tmp_path / "a.srt").write_text("done")
        assert outputs.commit() == [tmp_path / "a.srt"]
    assert sorted(os.listdir(tmp_path)) == ["a.srt"]
    assert (tmp_path / "a.srt").read_text() == "done"


def test_two_writers_of_one_model_file_do_not_share_a_temporary(tmp_path: Path, monkeypatch):
    """Every writer used NAME.tmp.npz: a second writer of the same path (two trainings sharing a models folder)
    truncated the first one's half-written temporary, renamed it into place, and the first one's remaining bytes
    then landed in the published file (or its rename found nothing). Here writer B runs whole while A is half-way."""
    import io

    import numpy as np

    from dramapic.writers import write_npz_atomic

    real_savez = np.savez
    final = tmp_path / "gender.npz"
    wanted = io.BytesIO()
    real_savez(wanted, a=np.arange(1000.0))
    a_bytes = wanted.getvalue()

    def slow_a_then_b(file, **arrays):
        if "b" in arrays:  # writer B: written whole
            return real_savez(file, **arrays)
        with open(file, "wb") as handle:  # writer A: half, then B, then the rest
            handle.write(a_bytes[:len(a_bytes) // 2])
            handle.flush()
            write_npz_atomic({"b": np.zeros(3)}, final)
            handle.write(a_bytes[len(a_bytes) // 2:])

    monkeypatch.setattr(np, "savez", slow_a_then_b)
    write_npz_atomic({"a": np.arange(1000.0)}, final)
    with np.load(final) as data:  # the last rename wins, whole
        assert list(data) == ["a"] and np.array_equal(data["a"], np.arange(1000.0))
    assert os.listdir(tmp_path) == ["gender.npz"]


def test_the_json_says_which_track_and_channel_it_describes_and_older_json_still_reads():
    # a dub marked default, or one language of a dual-mono broadcast: the JSON did not say which sound its figures
    # describe, so two runs of one file with other --audio-track / --audio-channel could not be told apart
    import dataclasses

    from dramapic.result import Source

    plain = make_result()
    chosen = dataclasses.replace(plain, source=Source("ep1.mkv", plain.duration, "0" * 64, audio_track=1,
                                                      audio_channel="left"))
    data = chosen.to_dict()
    assert data["source"] == {"path": "ep1.mkv", "duration": plain.duration, "sha256": "0" * 64, "audio_track": 1,
                              "audio_channel": "left"}
    assert AnalysisResult.from_dict(data).source == chosen.source
    mix = dataclasses.replace(plain, source=Source("ep1.mkv", plain.duration, "0" * 64, audio_track=0))
    assert mix.to_dict()["source"]["audio_channel"] is None  # the mix of the track's channels: said, as null
    older = {**data, "source": {"path": "ep1.mkv", "duration": plain.duration, "sha256": "0" * 64}}
    assert AnalysisResult.from_dict(older).to_dict()["source"] == older["source"]
    for bad in (-1, 1.5, True, "1"):
        with pytest.raises(TypeError, match="audio_track"):
            AnalysisResult.from_dict({**data, "source": {**data["source"], "audio_track": bad}})


def test_the_number_on_a_cue_is_the_one_the_json_gives():
    """The cue's number was taken from the unrounded confidence: a song segment of confidence 0.67496 read
    "song (0.67)" on its cue, while its JSON says 0.675 and the run report, reading it, said "confidence 0.68"; a
    voice cue's P(voice) × P(gender) was likewise not the product of the JSON's two figures."""
    import json
    import re

    segments, start = [], 0.0
    for step in range(400):
        value = 0.6 + step * 0.0001 + 0.00004  # 0.60004, 0.60014, ...: every one within 0.00005 of the JSON's figure
        label = ("song", "noise", "voice")[step % 3]
        scores = {label: value} if label != "voice" else {"voice": value, "female": 1.7 - value, "male": value - 0.7}
        segments.append(Segment(start, start + 1.0, label, value, scores, "female" if label == "voice" else None,
                                "S1" if label == "voice" else None))
        start += 1.0
    result = make_result(segments)
    stored = json.loads(get_writer("json").render(result))["segments"]
    expected = [f"{s['confidence'] * (s['scores'][s['gender']] if s['gender'] else 1.0):.2f}" for s in stored]
    shown = re.findall(r"\((\d\.\d\d)\)$", get_writer("srt").render(result), re.MULTILINE)
    mismatches = [(s, want, got) for s, want, got in zip(stored, expected, shown) if want != got]
    assert len(shown) == len(stored) and not mismatches, mismatches[:3]


@pytest.mark.parametrize("language", ["en", "ko"])
def test_every_cue_and_turn_dramapic_writes_is_known_as_its_own(tmp_path: Path, language):
    """A run refuses to replace subtitles or an RTTM that are not dramapic's (writers.written_by_dramapic): a cue or a
    line it writes itself and did not recognise would make every later --overwrite of that input refuse."""
    import dataclasses

    from dramapic.writers import written_by_dramapic

    voice = {"voice": 0.95, "female": 0.4, "male": 0.6}
    results = [make_result(), make_result([Segment(0.0, 5.0, "silence", 0.9, {"silence": 0.9})]),
               make_result([Segment(0.0, 2.0, "voice", 1.0, voice, "male", "S12"),      # (1.00), two-digit id
                            Segment(2.0, 4.0, "voice", 0.95, voice, None, "S2"),        # gender unknown
                            Segment(4.0, 6.0, "voice", 0.95, voice, "female", None),    # --no-speakers
                            Segment(6.0, 8.0, "voice", 0.0, {"voice": 0.0}),            # neither
                            Segment(8.0, 9.0, "noise", 0.5, {"noise": 0.5})])]
    results.append(dataclasses.replace(results[0], source=dataclasses.replace(results[0].source,
                                                                              path="/x/드라마\u3000 1화.mkv")))
    for number, result in enumerate(results):
        for fmt in ("srt", "vtt", "rttm"):
            path = tmp_path / f"{number}.{fmt}"
            get_writer(fmt, language=language).write(result, path)
            assert written_by_dramapic(path) is True, path.read_text(encoding="utf-8")


@pytest.mark.parametrize("line", ["voice · female · Alice (0.91)", "음성 · 남성 · 민수 (0.88)", "song · Opening (0.84)",
                                  "female (0.91)", "voice · S1 · female (0.91)", "voice · female · male (0.91)"])
def test_a_cue_edited_by_hand_is_not_known_as_dramapic_s(tmp_path: Path, line):
    # a speaker given its name (S1 -> Alice) is the edit a user makes to dramapic's cues: any one word was taken for
    # a speaker id, so --overwrite replaced the edited file with the earlier cues
    from dramapic.writers import written_by_dramapic

    path = tmp_path / "ep1.srt"
    path.write_text(f"1\n00:00:01,000 --> 00:00:03,000\n{line}\n\n", encoding="utf-8")
    assert written_by_dramapic(path) is False


def test_an_rttm_an_earlier_dramapic_wrote_for_a_name_with_a_tab_or_ideographic_space_is_its_own(tmp_path: Path):
    # until 2026-12-05 only the plain space of the input's name became "_" in the RTTM file id: the turns an earlier
    # run wrote for "드라마\u30001화.mkv" were called "not dramapic's", and --overwrite refused to replace them, ever
    from dramapic.writers import written_by_dramapic

    path = tmp_path / "드라마\u30001화.rttm"
    path.write_text("SPEAKER 드라마\u30001화 1 0.930 3.125 <NA> <NA> S1 <NA> <NA>\n"
                    "SPEAKER a\tb 1 4.055 3.250 <NA> <NA> S2 <NA> <NA>\n", encoding="utf-8")
    assert written_by_dramapic(path) is True
    path.write_text("SPEAKER 드라마\u30001화 1 0.930 3.125 <NA> <NA> 민지 <NA> <NA>\n", encoding="utf-8")
    assert written_by_dramapic(path) is False  # a reference's speaker names are still told apart
