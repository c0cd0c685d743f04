"""The cross-corpus protocol for stage 1 (issue 13): for every held-out source, fit without it, score on material
made only from it, and check that no member alone beats the ensemble there. The loop is stage 2's
(:func:`dramapic.lab.crosscorpus.cross_corpus`, one core for both stages); this module adds the member check.

This module is the protocol, not the data: it takes the held-out groups, a ``fit`` that trains on everything but
one group and returns scorers (the ensemble and each member alone), and a ``score`` that measures one scorer on
that group's held-out material.

Two uses:

* :func:`stage1_member_check` -- what ``dramapic eval --cross-corpus`` prints under the stage-2 table: the shipped
  stage 1 (not refitted) on the voice-source timelines, per folder, the ensemble against each member alone. Folders
  whose voices it heard are marked (:func:`heard_voice_sources`, read from the stacker's training record: LibriSpeech
  and Emo-DB for the shipped files, which never heard Common Voice, RAVDESS or nEMO; the mixed casts hold some of
  both).
* The refit over music sources too, lab only (``dramapic/lab/experiments/issue13_songs/run13.py loo VARIANT``:
  source-tagged training mixes, one 150 s dev timeline per held-out voice / music source built by
  ``data13.crosscorpus_timelines``, scores = accuracy over non-silent frames outside a 0.25 s collar): it refits
  every member per source from feature caches that take about two CPU-hours to build on the 2-core machine.

Example
-------
>>> report = leave_one_source_out(groups=["voice:cv", "music:usdx"], fit=my_fit, score=my_score)
>>> print(report.format_table()); report.check   # True when the ensemble >= its best member everywhere
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .crosscorpus import SHORT, cross_corpus, timeline_folders

ENSEMBLE = "ensemble"


def _short(name: str) -> str:
    """A scorer's column heading: manifest names without the ``stage1-`` every member shares, 14 characters."""
    return name.removeprefix("stage1-")[:14]


@dataclass(frozen=True)
class HeldOutScores:
    """One held-out group: every scorer's figure (higher is better) and which member did best."""

    group: str
    scores: Mapping[str, float]
    best_member: str

    @property
    def ensemble_at_least_best_member(self) -> bool:
        return self.scores[ENSEMBLE] >= self.scores[self.best_member]


@dataclass(frozen=True)
class CrossCorpusReport:
    """The protocol's table, one row per held-out group."""

    rows: tuple[HeldOutScores, ...]

    @classmethod
    def from_scores(cls, scores: Mapping[str, Mapping[str, float]]) -> "CrossCorpusReport":
        """The table from figures already measured: held-out group -> scorer name -> figure (higher is better).

        Raises
        ------
        ValueError
            A group without the ensemble or without any member.
        """
        rows = []
        for group, figures in scores.items():
            figures = {name: float(v) for name, v in figures.items()}
            if ENSEMBLE not in figures or len(figures) < 2:
                raise ValueError(f"{group!r} needs the ensemble and at least one member, got {list(figures)}")
            best = max((n for n in figures if n != ENSEMBLE), key=lambda n: figures[n])
            rows.append(HeldOutScores(group=group, scores=figures, best_member=best))
        return cls(rows=tuple(rows))

    @property
    def check(self) -> bool:
        """No member alone beats the ensemble on any held-out group (the issue's condition)."""
        return all(r.ensemble_at_least_best_member for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {"check_no_member_beats_the_ensemble": self.check,
                "held_out": {r.group: {"scores": dict(r.scores), "best_member": r.best_member,
                                       "ensemble_at_least_best_member": r.ensemble_at_least_best_member}
                             for r in self.rows}}

    def format_table(self) -> str:
        names = [ENSEMBLE] + sorted({n for r in self.rows for n in r.scores} - {ENSEMBLE})
        wide = max([28] + [len(r.group) + 2 for r in self.rows])  # a refit's row name is long: keep columns aligned
        lines = [f"{'held-out source':<{wide}}" + "".join(f"{_short(n):>15}" for n in names)
                 + f"{'best member':>16}  ok"]
        for r in self.rows:
            cells = "".join(f"{r.scores[n]:>15.4f}" if n in r.scores else f"{'-':>15}" for n in names)
            ok = "yes" if r.ensemble_at_least_best_member else "NO"
            lines.append(f"{r.group:<{wide}}{cells}{_short(r.best_member):>16}  {ok}")
        lines.append(f"CHECK no member beats the ensemble on any held-out source: {self.check}")
        return "\n".join(lines)


def leave_one_source_out(*, groups: Sequence[str], fit: Callable[[str], Mapping[str, Any]],
                         score: Callable[[Any, str], float]) -> CrossCorpusReport:
    """Run the protocol.

    Parameters
    ----------
    groups : sequence of str
        Held-out groups, e.g. ``"voice:cv"``, ``"music:usdx"``.
    fit : callable
        ``fit(group)`` trains on every group but ``group`` and returns ``{name: scorer}`` holding ``"ensemble"`` and
        at least one member.
    score : callable
        ``score(scorer, group)`` -> the scorer's figure on ``group``'s held-out material (higher is better).

    Returns
    -------
    CrossCorpusReport

    Raises
    ------
    ValueError
        ``fit`` returned no ensemble or no member.
    """
    def fit_without(excluded: frozenset[str]) -> dict[str, Any]:
        (group,) = excluded
        scorers = dict(fit(group))
        if ENSEMBLE not in scorers or len(scorers) < 2:
            raise ValueError(f"fit({group!r}) must return the ensemble and at least one member, got {list(scorers)}")
        return scorers

    rows = cross_corpus(list(groups), fit_fn=fit_without, held_out_fn=lambda g: frozenset([g]),
                        score_fn=lambda scorers, g: {name: score(scorer, g) for name, scorer in scorers.items()})
    return CrossCorpusReport.from_scores({group: scores for group, _, scores in rows})


#: voice sources of the timeline tree whose speakers stage 1 is always trained on (train split of manifest.csv); the
#: other sources' voices (Common Voice, RAVDESS, nEMO) the shipped stage 1 never heard
STAGE1_VOICE_SOURCES = ("librispeech-train-clean-100", "emodb")
#: the voice sources of manifest_extra.csv: heard only by a stage 1 trained with ``extra_voices``
#: (:func:`dramapic.lab.mixes.stage1_rows`)
EXTRA_VOICE_SOURCES = ("cv", "nemo", "ravdess")


def heard_voice_sources(training_data: Mapping[str, Any]) -> frozenset[str]:
    """The voice sources of the timeline tree a stage 1 heard in training, from its stacker's manifest entry's
    ``training_data`` (``extra_voices`` and ``excluded_voice_sources`` are recorded there when used): the
    :data:`STAGE1_VOICE_SOURCES`, plus :data:`EXTRA_VOICE_SOURCES` when it trained on the extra voices, minus any
    source left out."""
    heard = set(STAGE1_VOICE_SOURCES)
    if training_data.get("extra_voices"):
        heard |= set(EXTRA_VOICE_SOURCES)
    heard -= set(training_data.get("excluded_voice_sources", ()))
    return frozenset(heard)


def folder_sources(root: Path, folder: str) -> frozenset[str]:
    """The voice sources of a timeline folder's casts: the folder's own source, or for
    :data:`~dramapic.lab.crosscorpus.MIXED` every source its timelines' recipes name
    (:func:`~dramapic.lab.crosscorpus.find_timelines`, which refuses a timeline without its recipe)."""
    from .crosscorpus import SOURCES, find_timelines

    if folder in SOURCES:
        return frozenset([folder])
    return frozenset(source for t in find_timelines(root, folders=[folder]) for source in t.sources)


def stage1_member_check(*, timelines: Path, pipeline, folders: Sequence[str] | None = None, limit: int | None = None,
                        progress: Callable[[str, float, float], None] | None = None) -> CrossCorpusReport:
    """Stage 1's member check on the cross-corpus timelines: per folder, the ensemble and each member alone.

    Every folder of the timeline tree (:func:`dramapic.lab.crosscorpus.find_timelines`) is scored with
    :func:`dramapic.lab.variants.evaluate_variants` (the pipeline's detectors, each member, the stacker, the song
    guard and smoothing; accuracy over non-silent frames outside the 0.25 s collar). Stage 1 is not refitted: the
    folders whose voices it never heard are held out by construction, those whose sources' speakers it was trained on
    (:func:`heard_voice_sources` of the stacker's manifest entry: LibriSpeech and Emo-DB for the shipped files; a
    ``mixed`` cast with a speaker of one of them) are named ``... (voices seen)``; their music and noise are dev-split clips of stage 1's own sources.

    Parameters
    ----------
    timelines : Path
        The timeline tree (one folder per voice source, plus ``mixed``).
    pipeline : PipelineConfig
        Its ``stage1`` section is scored (``model: ensemble``).
    folders : sequence of str, optional
        Only these folders (default: every folder with timelines, sorted).
    limit : int, optional
        At most this many timelines per folder.
    progress : callable, optional
        ``progress("variants", done, total)`` per folder, as :func:`~dramapic.lab.variants.evaluate_variants`.

    Returns
    -------
    CrossCorpusReport
        One row per folder; ``check`` is True when no member alone beats the ensemble anywhere.
    """
    from ..errors import InputError
    from ..models import load_manifest
    from .variants import evaluate_variants

    root = Path(timelines)
    names = list(folders) if folders is not None else timeline_folders(root)
    if not names:
        raise InputError(f"no timeline folders under {root}")
    if pipeline.stage1.model != "ensemble":
        raise InputError("the member check needs stage1.model: ensemble")
    heard = heard_voice_sources(load_manifest().get(pipeline.stage1.stacker).info.get("training_data") or {})
    scores = {}
    for folder in names:  # nothing is refitted: the shipped stage 1, each member alone and the ensemble
        variants = evaluate_variants(root / folder, pipeline, gender=False, limit=limit, progress=progress,
                                     pattern="*.labels.csv").stage1
        # seen: a source of the folder's casts is one stage 1 trained on (a mixed cast with a LibriSpeech reader)
        label = SHORT.get(folder, folder) + (" (voices seen)" if folder_sources(root, folder) & heard else "")
        scores[label] = {name: variants[name].accuracy for name in (ENSEMBLE, *pipeline.stage1.members)}
    return CrossCorpusReport.from_scores(scores)
