"""The cross-corpus protocol: fit without a voice source, score on timelines built only from that source.

The dev mixes come from the corpora the models were trained on, so they cannot show how dramapic does on voices,
corpora and languages it never heard (issue 14). This protocol can: a folder of *timelines* (dev-mix format:
``NAME.labels.csv``, ``NAME.rttm``, ``NAME.opus`` and the recipe ``NAME.json``) per voice source, built from that
source's ``dev`` speakers only, plus a ``mixed`` folder whose casts draw on several sources. Each timeline is
scored with a model fitted **without** the sources of its cast (:func:`held_out`); the dev mixes stay as the
regression check, scored with the model fitted on everything. Figures are printed per source, side by side with
the dev mixes (:func:`summarize`, :func:`format_table`).

The protocol is model-agnostic: ``fit_fn(excluded_sources) -> model`` and ``score_fn(model, timeline) ->
scores`` are plugged in (:func:`cross_corpus`); stage 1's leave-one-source-out with its member check
(:mod:`dramapic.lab.stage1_crosscorpus`) runs on the same loop with its own pair.
Scoring is :func:`dramapic.lab.evaluate.score_result` (abstained gender left out of the gender error and reported
as abstention; female share over known-gender voice).

For stage 2 the pair is :func:`fit_voice_models` (gender model and speaker projection fitted on the train windows
of the voice window table, :mod:`dramapic.lab.voice_windows`, without the held-out sources) and
:func:`voice_score_fn` (the pipeline's stage 1, then :func:`dramapic.analysis.analyze.refine_voice` with those
models); :func:`run_voice_protocol` runs it end to end (``dramapic eval --cross-corpus``). The timelines are built
by :mod:`dramapic.lab.timelines` (deterministic; byte-identical to the ones behind the issue-14 figures with the same
ffmpeg build).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..errors import InputError
from ..progress import ProgressHook, silent_hook
from .evaluate import FileScores, aggregate
from .voice_windows import SHIPPED_COPIES

#: the voice sources of manifest.csv + manifest_extra.csv (folder names of the timeline tree)
SOURCES = ("librispeech-train-clean-100", "emodb", "cv", "ravdess", "nemo")
MIXED = "mixed"          # timelines whose cast comes from several sources
DEV_MIXES = "dev_mixes"  # the regression check: nothing held out
SHORT = {"librispeech-train-clean-100": "libri"}


@dataclass(frozen=True)
class Timeline:
    """One labelled timeline of the protocol.

    Attributes
    ----------
    name : str
        File stem (``cv_03``, ``devmix_07``).
    folder : str
        A source name, :data:`MIXED` or :data:`DEV_MIXES`.
    labels_csv : Path
        The reference (``NAME.rttm`` and ``NAME.opus`` lie next to it).
    sources : tuple of str
        The voice sources of its cast (from the recipe), sorted.
    """

    name: str
    folder: str
    labels_csv: Path
    sources: tuple[str, ...]

    @property
    def audio(self) -> Path:
        return self.labels_csv.with_name(f"{self.name}.opus")


def recipe_sources(recipe: Mapping[str, Any]) -> tuple[str, ...]:
    """The voice sources of a timeline's cast, from its recipe JSON (``speakers[*].source``; the shared dev mixes'
    recipes carry none: their Emo-DB speaker ids start with ``emodb``, the others are LibriSpeech)."""
    out = set()
    for member in recipe.get("speakers", []):
        source = member.get("source")
        if source is None:
            source = "emodb" if str(member.get("id", "")).startswith("emodb") else SOURCES[0]
        out.add(str(source))
    return tuple(sorted(out))


def timeline_folders(root: Path) -> list[str]:
    """The sub-folders of a timeline tree that hold ``*.labels.csv`` files, sorted (none when ``root`` is missing)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*.labels.csv")))


def find_timelines(root: Path, *, folders: Iterable[str] | None = None, dev_mixes: Path | None = None
                   ) -> list[Timeline]:
    """The timelines under ``root`` (one sub-folder per source, and :data:`MIXED`), then the dev mixes.

    Parameters
    ----------
    root : Path
        The timeline tree.
    folders : iterable of str, optional
        Sub-folders to read, in this order (default: every sub-folder holding ``*.labels.csv``, sorted).
    dev_mixes : Path, optional
        The dev-mix folder, read as folder :data:`DEV_MIXES`.

    Raises
    ------
    InputError
        No timeline found, or a timeline without its recipe, with a recipe that is not one (unreadable, not JSON,
        no list of speakers), or without its RTTM or audio file (found here, before any fit or analysis: they were
        a JSON traceback, or one line only when the timeline's turn came, after the window table and the fits).
    """
    root = Path(root)
    names = list(folders) if folders is not None else timeline_folders(root)
    places = [(f, root / f) for f in names] + ([(DEV_MIXES, Path(dev_mixes))] if dev_mixes is not None else [])
    out = []
    for folder, where in places:
        for labels in sorted(where.glob("*.labels.csv")):
            name = labels.name[: -len(".labels.csv")]
            recipe = labels.with_name(f"{name}.json")
            if not recipe.is_file():
                raise InputError(f"timeline {labels} has no recipe {recipe.name}: its sources are unknown")
            for needed in (f"{name}.rttm", f"{name}.opus"):
                if not labels.with_name(needed).is_file():
                    raise InputError(f"timeline {labels} has no {needed} beside it")
            out.append(Timeline(name=name, folder=folder, labels_csv=labels, sources=_read_recipe(recipe)))
    if not out:
        # said apart: a path that is not there, and a flat folder of timelines (dev mixes) where the tree of one
        # sub-folder per source belongs, were both "no *.labels.csv timelines under" a folder
        if not root.is_dir():
            raise InputError(f"timelines folder not found: {root}")
        if any(root.glob("*.labels.csv")):
            raise InputError(f"{root} holds timelines itself, not one sub-folder of them per source: not a timeline "
                             "tree (dev mixes go to --mixes)")
        raise InputError(f"no *.labels.csv timelines under {root}")
    return out


def _read_recipe(recipe: Path) -> tuple[str, ...]:
    """The voice sources of a timeline's recipe file (:func:`recipe_sources`); :class:`InputError` when it cannot be
    read or is not a recipe."""
    try:
        data = json.loads(recipe.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise InputError(f"cannot read the timeline recipe {recipe}: {err}") from None
    cast = data.get("speakers", []) if isinstance(data, dict) else None
    if not isinstance(cast, list) or not all(isinstance(member, dict) for member in cast):
        raise InputError(f"{recipe} is not a timeline recipe (a JSON object whose 'speakers' is a list of objects)")
    return recipe_sources(data)


def held_out(timeline: Timeline) -> frozenset[str]:
    """The sources a timeline's model must be fitted without: its folder's source; for :data:`MIXED`, every
    source of its cast; nothing for the dev mixes (the shipped setting, a regression check)."""
    if timeline.folder == DEV_MIXES:
        return frozenset()
    if timeline.folder == MIXED:
        return frozenset(timeline.sources)
    return frozenset([timeline.folder])


def cross_corpus(timelines: Sequence[Any], *, fit_fn: Callable[[frozenset[str]], Any],
                 score_fn: Callable[[Any, Any], Any],
                 held_out_fn: Callable[[Any], frozenset[str]] = held_out) -> list[tuple[Any, frozenset[str], Any]]:
    """Fit without the held-out sources, score on their material: the one protocol core of both stages.

    Parameters
    ----------
    timelines : sequence
        What is scored, one after the other: :class:`Timeline` s from :func:`find_timelines` (stage 2), or any
        held-out unit that ``held_out_fn`` understands (stage 1 passes its source groups:
        :func:`dramapic.lab.stage1_crosscorpus.leave_one_source_out`).
    fit_fn : callable
        ``fit_fn(excluded_sources) -> model``; called once per distinct exclusion set (memoised, in order of
        first use). It must not see any speaker of an excluded source.
    score_fn : callable
        ``score_fn(model, timeline)`` -> its scores (for stage 2 a FileScores: analyse ``timeline.audio`` with the
        model and :func:`~dramapic.lab.evaluate.score_result` against ``timeline.labels_csv``).
    held_out_fn : callable
        ``held_out_fn(timeline) -> frozenset`` of the sources its model is fitted without (default
        :func:`held_out`).

    Returns
    -------
    list of (timeline, frozenset, scores)
        One row per input, in input order, with the exclusion set its model was fitted without.
    """
    models: dict[frozenset[str], Any] = {}
    rows = []
    for timeline in timelines:
        excluded = held_out_fn(timeline)
        if excluded not in models:
            models[excluded] = fit_fn(excluded)
        rows.append((timeline, excluded, score_fn(models[excluded], timeline)))
    return rows


def summarize(rows: Sequence[tuple[Timeline, frozenset[str], FileScores]]) -> list[dict[str, Any]]:
    """Per folder (first-seen order): gender error and abstention pooled over frames, female-share error (mean and
    worst file), DER pooled, share of files with the exact speaker count, the expected calibration error of the
    gender probabilities (records pooled: :func:`~dramapic.lab.evaluate.calibration`); then ``mean (held-out)``,
    the unweighted mean over the held-out folders (the dev mixes not included), placed before the dev mixes."""
    by_folder: dict[str, list[FileScores]] = {}
    for timeline, _, scores in rows:
        by_folder.setdefault(timeline.folder, []).append(scores)
    out = []
    for folder, files in by_folder.items():
        report = aggregate(files)
        out.append({"set": SHORT.get(folder, folder), "folder": folder, "files": len(files),
                    "gender_error": report.gender_error, "abstention": report.abstention,
                    "female_share_error": report.female_share_error,
                    "female_share_error_max": max((f.female_share_error for f in files), default=math.nan),
                    "der": report.der,
                    "count_exact": _count_exact(files),
                    "gender_ece": report.gender_calibration.ece})
    held = [r for r in out if r["folder"] != DEV_MIXES]
    if held:
        keys = ("gender_error", "abstention", "female_share_error", "female_share_error_max", "der", "count_exact",
                "gender_ece")
        mean: dict[str, Any] = {"set": "mean (held-out)", "folder": "", "files": sum(r["files"] for r in held)}
        for k in keys:
            values = [r[k] for r in held if not math.isnan(r[k])]
            mean[k] = sum(values) / len(values) if values else math.nan
        out.insert(len(held), mean)
    return out


def _count_exact(files: Sequence[FileScores]) -> float:
    """Share of the files with the exact speaker count, over those whose analysis told speakers apart (NaN when
    none did: a ``--no-speakers`` run counts nobody, which is not a count of 0 right)."""
    scored = [f for f in files if f.speakers_scored]
    return sum(f.speaker_count_error == 0 for f in scored) / len(scored) if scored else math.nan


def format_table(summary: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table of :func:`summarize` (rates in %, female-share error in points)."""
    head = ("set", "files", "gender err %", "abstain %", "female-share err pts (max)", "DER %", "count exact %",
            "gender ECE")

    def pct(v: float, spec: str = ".1f") -> str:
        return "-" if v is None or math.isnan(v) else format(100 * v, spec)

    rows = [(r["set"], str(r["files"]), pct(r["gender_error"]), pct(r["abstention"]),
             "-" if math.isnan(r["female_share_error"]) else
             f"{r['female_share_error']:.1f} ({r['female_share_error_max']:.1f})",
             pct(r["der"]), pct(r["count_exact"], ".0f"),
             "-" if math.isnan(r.get("gender_ece", math.nan)) else f"{r['gender_ece']:.3f}") for r in summary]
    return _aligned(head, rows)


def _aligned(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell (the first left-aligned, the rest right-aligned), a rule under the head."""
    widths = [max(len(x[i]) for x in (head, *rows)) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in (head, *rows)]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


SEED_FIGURES = ("gender_error", "abstention", "female_share_error", "der", "count_exact")


def summarize_over_seeds(summaries: Mapping[int, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """The protocol's figures over several training seeds of the held-out fits: per set, the mean, lowest and
    highest of each of :data:`SEED_FIGURES` over the seeds (each seed's :func:`summarize`).

    One seed's figure is one draw: refitting the gender model and the projection with another seed moved the
    held-out mean DER by 0.025 and the speaker counts by 3 of 28 (models/README.md, "The judge's own spread"), so
    settings are compared on the mean over seeds.

    Parameters
    ----------
    summaries : mapping of int to sequence of dict
        ``{seed: summarize(rows of that seed)}``; every seed over the same timelines.

    Returns
    -------
    list of dict
        Per set in the first seed's order: ``set``, ``folder``, ``files``, ``seeds`` (how many), and for each figure
        ``k``: ``k`` (mean), ``k_min``, ``k_max``; NaN figures (no gendered voice, say) are left out of the mean.
    """
    seeds = list(summaries)
    if not seeds:
        raise ValueError("no seeds to summarise")
    by_seed = {seed: {r["set"]: r for r in summaries[seed]} for seed in seeds}
    out = []
    for first in summaries[seeds[0]]:
        row: dict[str, Any] = {"set": first["set"], "folder": first["folder"], "files": first["files"],
                               "seeds": len(seeds)}
        for k in SEED_FIGURES:
            values = [by_seed[seed][first["set"]][k] for seed in seeds if first["set"] in by_seed[seed]]
            values = [v for v in values if v is not None and not math.isnan(v)]
            row[k] = sum(values) / len(values) if values else math.nan
            row[f"{k}_min"] = min(values, default=math.nan)
            row[f"{k}_max"] = max(values, default=math.nan)
        out.append(row)
    return out


def format_over_seeds(rows: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table of :func:`summarize_over_seeds`: each figure as mean (lowest-highest), rates in %."""
    head = ("set", "files", "gender err %", "abstain %", "female-share err pts", "DER %", "count exact %")

    def cell(r: Mapping[str, Any], k: str, scale: float, spec: str) -> str:
        if math.isnan(r[k]):
            return "-"
        lo, hi = (format(scale * r[f"{k}_{end}"], spec) for end in ("min", "max"))
        return f"{format(scale * r[k], spec)} ({lo}-{hi})"

    table = [(r["set"], str(r["files"]), cell(r, "gender_error", 100, ".1f"), cell(r, "abstention", 100, ".1f"),
              cell(r, "female_share_error", 1, ".1f"), cell(r, "der", 100, ".1f"),
              cell(r, "count_exact", 100, ".0f")) for r in rows]
    return _aligned(head, table)


# ------------------------------------------------------------------------------------------ stage 2 over voices


@dataclass(frozen=True)
class VoiceModels:
    """Stage 2's trained models fitted without some voice sources (one ``fit_fn`` result of the voice protocol).

    Attributes
    ----------
    excluded : frozenset of str
    gender_model : GenderClassifier or None
    projection : SpeakerProjection or None
        None where the pipeline does not score gender / speakers (that model is not fitted then).
    """

    excluded: frozenset[str]
    gender_model: Any
    projection: Any

    def to_dict(self) -> dict[str, Any]:
        # None where gender / speakers are not scored (that model was not fitted)
        return {"excluded": sorted(self.excluded),
                "gender_sources": None if self.gender_model is None else self.gender_model.model_info.get("sources"),
                "cluster_threshold": None if self.projection is None else self.projection.cluster_threshold}


def fit_voice_models(table: Mapping[str, Any], excluded: frozenset[str], *, seed: int = 0,
                     copies: int = SHIPPED_COPIES, gender: bool = True, speakers: bool = True,
                     gender_table: Mapping[str, Any] | None = None) -> VoiceModels:
    """The gender model (:func:`~dramapic.lab.gender_fit.fit_gender`, shipped settings) and the speaker projection
    (:func:`~dramapic.lab.train_speakers.fit_projection`, with its own calibrated stopping distance; clean windows
    counted ``copies`` times, as ``dramapic train --copies`` does; the table's copies), both fitted on the train
    windows outside ``excluded``: the voice protocol's ``fit_fn``. The projection learns from ``table`` (built
    with :data:`~dramapic.lab.voice_windows.SPEAKER_ROOMS`), the gender model from ``gender_table`` (built with
    :data:`~dramapic.lab.voice_windows.GENDER_ROOMS`, as ``dramapic train`` fits it; default ``table``).
    ``gender`` / ``speakers`` false leaves that model out (None): a run that does not score it has no use for it."""
    from .gender_fit import GenderTraining, fit_gender
    from .train_speakers import fit_projection

    gender_model = (fit_gender(table if gender_table is None else gender_table, excluded=excluded,
                               settings=GenderTraining(seed=seed)) if gender else None)
    projection = (fit_projection(table, excluded=excluded, seed=seed, clean_repeats=copies)[0] if speakers
                  else None)
    return VoiceModels(excluded=excluded, gender_model=gender_model, projection=projection)


def voice_score_fn(pipeline, *, progress: ProgressHook = silent_hook) -> Callable[[VoiceModels, Timeline], FileScores]:
    """The voice protocol's ``score_fn``: the pipeline's stage 1 on the timeline, then stage 2
    (:func:`~dramapic.analysis.analyze.refine_voice`) with the held-out-fitted models, scored against the
    timeline's reference (:func:`~dramapic.lab.evaluate.score_result`).

    Stage 1 is the pipeline's own: it is not refitted per voice source (its voice training material is
    LibriSpeech and Emo-DB, so their folders are not held out for stage 1; the other sources are)."""
    import dataclasses

    from .. import media
    from ..analysis.analyze import analyze_audio, refine_voice
    from ..analysis.loaders import uses_stage2
    from ..result import SAMPLE_RATE
    from .evaluate import score_result
    from .reference import load_reference

    stage1_only = dataclasses.replace(
        pipeline, stage2=dataclasses.replace(pipeline.stage2, gender=False),
        speakers=dataclasses.replace(pipeline.speakers, enabled=False))
    settings = pipeline.speakers.for_run()

    def score(models: VoiceModels, timeline: Timeline) -> FileScores:
        audio = media.decode_audio(media.probe(timeline.audio))
        segments, _, _ = analyze_audio(audio, stage1_only)
        # speakers.cluster_threshold null (the default) reads the stopping distance off this projection's own
        # calibration (at speakers.cluster_same_probability), so a refitted projection keeps the meaning
        if not uses_stage2(pipeline):  # stage 1 alone: refine_voice would embed every voice window for nothing
            merged = segments
        else:
            merged, _ = refine_voice(audio, segments, settings=settings, projection=models.projection,
                                     gender_model=models.gender_model if pipeline.stage2.gender else None,
                                     gender_min_voice=pipeline.stage2.gender_min_voice, progress=progress)
        result = {"source": {"duration": len(audio) / SAMPLE_RATE}, "segments": [s.to_dict() for s in merged]}
        return score_result(result, load_reference(timeline.labels_csv), gender_scored=pipeline.stage2.gender,
                            speakers_scored=pipeline.speakers.enabled)

    return score


def run_voice_protocol(*, data: Path, timelines: Path, pipeline, work: Path, dev_mixes: Path | None = None,
                       folders: Iterable[str] | None = None, limit: int | None = None, seed: int = 0,
                       table_seed: int | None = None, copies: int = SHIPPED_COPIES,
                       progress: ProgressHook = silent_hook) -> list[tuple[Timeline, frozenset[str], FileScores]]:
    """The cross-corpus protocol for stage 2 end to end (what ``dramapic eval --cross-corpus`` runs).

    Parameters
    ----------
    data : Path
        The shared data folder (``manifest.csv``, ``manifest_extra.csv``): the training windows.
    timelines : Path
        The timeline tree (:func:`find_timelines`; :func:`dramapic.lab.timelines.build_timelines` builds it, as
        ``dramapic eval --cross-corpus`` does when no ``--timelines`` is given).
    pipeline : PipelineConfig
        Stage 1, the clustering settings and the switches; its stage-2 *models* are replaced by the fits.
    work : Path
        Where the voice window tables are kept (:func:`~dramapic.lab.voice_windows.build_window_tables`' cache):
        the gender model's (near and distant rooms) and the projection's (near rooms), as ``dramapic train``.
    dev_mixes : Path, optional
        The dev mixes, scored as the regression check with models fitted on every source.
    folders : iterable of str, optional
        Only these timeline folders.
    limit : int, optional
        At most this many timelines per folder.
    seed : int
        The training seed of the fits (0 = the shipped models' seed).
    table_seed : int, optional
        The seed of the window table's augmentation (default: ``seed``, as ``dramapic eval --cross-corpus --seeds``
        uses it; another value separates the table's draw from the fits').
    copies : int
        Augmented copies per voice clip in the window table (default
        :data:`~dramapic.lab.voice_windows.SHIPPED_COPIES`, the shipped models'), as ``dramapic train --copies``;
        a new value builds its own table.
    progress : ProgressHook
        ``progress("cross-corpus", timelines_done, total)``; the table's embedding pass reports ``"embed"``.

    Returns
    -------
    list of (Timeline, frozenset, FileScores)
        As :func:`cross_corpus`; summarise with :func:`summarize`.
    """
    from ..analysis.loaders import uses_stage2
    from .voice_windows import GENDER_ROOMS, SPEAKER_ROOMS, build_window_tables

    found = find_timelines(timelines, folders=folders, dev_mixes=dev_mixes)
    if limit is not None:  # the first ``limit`` timelines of each folder
        seen: dict[str, int] = {}
        kept = []
        for t in found:
            seen[t.folder] = seen.get(t.folder, 0) + 1
            if seen[t.folder] <= limit:
                kept.append(t)
        found = kept
    if pipeline is None or uses_stage2(pipeline):
        gender_wanted = pipeline is None or pipeline.stage2.gender
        # the gender model's table only when gender is scored: it is minutes of embedding
        rooms = (SPEAKER_ROOMS, GENDER_ROOMS) if gender_wanted else (SPEAKER_ROOMS,)
        tables = build_window_tables(manifest_csv=Path(data) / "manifest.csv", rooms=rooms,
                                     seed=seed if table_seed is None else table_seed, copies=copies, cache=work,
                                     progress=progress)

        def fit(excluded: frozenset[str]) -> VoiceModels:
            return fit_voice_models(tables[0], excluded, seed=seed, copies=copies, gender_table=tables[-1],
                                    gender=gender_wanted,
                                    # the projection whenever stage 2 runs: gender is decided per speaker also
                                    # under --no-speakers
                                    speakers=pipeline is None or uses_stage2(pipeline))
    else:  # --no-gender --no-speakers: stage 1 alone is scored, and the table (minutes of embedding) would go unused
        def fit(excluded: frozenset[str]) -> VoiceModels:
            return VoiceModels(excluded=excluded, gender_model=None, projection=None)
    score = voice_score_fn(pipeline)
    done = [0]

    def counted(models: VoiceModels, timeline: Timeline) -> FileScores:
        out = score(models, timeline)
        done[0] += 1
        progress("cross-corpus", done[0], len(found))
        return out

    progress("cross-corpus", 0, len(found))
    return cross_corpus(found, fit_fn=fit, score_fn=counted)
