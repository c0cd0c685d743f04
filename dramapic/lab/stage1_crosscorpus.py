"""The cross-corpus protocol for stage 1 (issue 13): for every held-out source, fit without it, score on material
made only from it, and check that no member alone beats the ensemble there. The loop is stage 2's
(:func:`dramapic.lab.crosscorpus.cross_corpus`, one core for both stages); this module adds the member check.

This module is the protocol, not the data: it takes the held-out groups, a ``fit`` that trains on everything but
one group and returns scorers (the ensemble and each member alone), and a ``score`` that measures one scorer on
that group's held-out material. For stage 1 the exp13 scripts supply them (``dramapic/lab/experiments/issue13_songs/run13.py loo VARIANT``:
source-tagged training mixes, one 150 s dev timeline per held-out voice / music source built by
``data13.crosscorpus_timelines``, scores = accuracy over non-silent frames outside a 0.25 s collar). Not a ``dramapic eval`` option yet: a stage-1
run refits every member per source from feature caches that take about two CPU-hours to build on the 2-core machine.

Example
-------
>>> report = leave_one_source_out(groups=["voice:cv", "music:usdx"], fit=my_fit, score=my_score)
>>> print(report.format_table()); report.check   # True when the ensemble >= its best member everywhere
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from .crosscorpus import cross_corpus

ENSEMBLE = "ensemble"


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
        lines = [f"{'held-out source':<28}" + "".join(f"{n[:14]:>15}" for n in names) + f"{'best member':>16}  ok"]
        for r in self.rows:
            cells = "".join(f"{r.scores[n]:>15.4f}" if n in r.scores else f"{'-':>15}" for n in names)
            ok = "yes" if r.ensemble_at_least_best_member else "NO"
            lines.append(f"{r.group:<28}{cells}{r.best_member[:14]:>16}  {ok}")
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

    rows = []
    for group, _, scores in cross_corpus(
            list(groups), fit_fn=fit_without, held_out_fn=lambda g: frozenset([g]),
            score_fn=lambda scorers, g: {name: float(score(scorer, g)) for name, scorer in scorers.items()}):
        best = max((n for n in scores if n != ENSEMBLE), key=lambda n: scores[n])
        rows.append(HeldOutScores(group=group, scores=scores, best_member=best))
    return CrossCorpusReport(rows=tuple(rows))
