"""Cross-corpus protocol for dramapic's stage 2 (issue 14): fit without a source, score on that source's timelines.

Three parts, each usable on its own:

* **Timelines** - :func:`build_timelines` runs ``make_timelines.py`` (the dev-mix recipe, one folder per voice
  source built only from that source's ``dev`` speakers, plus ``mixed``); :func:`timeline_sources` says which
  sources a timeline's cast comes from (read from its ``.json`` recipe).
* **Cached stage 2** - ``cache_timelines.py`` ran the shipped pipeline once per timeline and stored the stage-1
  segments and the raw window embeddings; :func:`rescore` redoes stage 2 on them (the product's own
  ``dramapic.speakers._diarize`` and ``_refinement_starts``) with any window gender scorer, projection,
  clustering options and gender policy, in well under a second per timeline.
* **Protocol** - :func:`cross_corpus` takes ``fit_fn(excluded_sources) -> model`` and
  ``score_fn(model, timeline) -> dict`` and returns one row per timeline, fitted without every source of that
  timeline's cast; :func:`summarize` makes the per-source table and the mean over sources.

The product code is imported from ``dramapic`` (``PYTHONPATH=/work/base`` for the frozen layout).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

HERE = Path(__file__).resolve().parent
TIMELINES = HERE / "timelines"
CACHE = HERE / "cache" / "timelines"
DEV_MIXES = Path("/work/shared/data/dev_mixes")
SOURCES = ("librispeech-train-clean-100", "emodb", "cv", "ravdess", "nemo")
SHORT = {"librispeech-train-clean-100": "libri", "emodb": "emodb", "cv": "cv", "ravdess": "ravdess",
         "nemo": "nemo", "mixed": "mixed", "dev_mixes": "devmix"}


# ------------------------------------------------------------------------------------------------ timelines
def build_timelines(*, out: Path = TIMELINES, only: str | None = None) -> None:
    """(Re)build the cross-corpus timelines (deterministic; ~1 min)."""
    import make_timelines

    make_timelines.main(["--out", str(out)] + (["--only", only] if only else []))


@dataclass(frozen=True)
class Timeline:
    """One cached timeline.

    Attributes
    ----------
    name : str
        File stem (``cv_03``, ``devmix_07``).
    folder : str
        ``librispeech-train-clean-100``, ``emodb``, ``cv``, ``ravdess``, ``nemo``, ``mixed`` or ``dev_mixes``.
    labels_csv : Path
        The reference (``.rttm`` next to it).
    sources : tuple of str
        Voice sources of its cast (for ``dev_mixes``: read from its recipe as well).
    """

    name: str
    folder: str
    labels_csv: Path
    sources: tuple[str, ...]
    cache: Path = field(default=None)  # type: ignore[assignment]

    def arrays(self) -> dict[str, np.ndarray]:
        with np.load(self.cache.with_suffix(".npz"), allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def segments(self) -> list[dict[str, Any]]:
        return json.loads(self.cache.with_suffix(".segments.json").read_text(encoding="utf-8"))

    def shipped_result(self) -> dict[str, Any]:
        return json.loads(self.cache.with_suffix(".result.json").read_text(encoding="utf-8"))

    def reference(self):
        from dramapic.evaluate import load_reference

        return load_reference(self.labels_csv)


def _recipe_sources(recipe: Mapping[str, Any]) -> tuple[str, ...]:
    out = []
    for c in recipe.get("speakers", []):
        src = c.get("source")
        if src is None:  # dev mixes: Emo-DB ids start with emodb_, LibriSpeech with libri_
            src = "emodb" if str(c["id"]).startswith("emodb") else "librispeech-train-clean-100"
        out.append(src)
    return tuple(sorted(set(out)))


def timelines(folders: Iterable[str] = (*SOURCES, "mixed")) -> list[Timeline]:
    """The cached timelines of ``folders`` (``dev_mixes`` is the shared dev-mix folder)."""
    out = []
    for folder in folders:
        src_dir = DEV_MIXES if folder == "dev_mixes" else TIMELINES / folder
        for labels in sorted(src_dir.glob("*.labels.csv")):
            name = labels.name[:-len(".labels.csv")]
            recipe = json.loads(labels.with_name(f"{name}.json").read_text(encoding="utf-8"))
            cache = CACHE / folder / name
            if not cache.with_suffix(".npz").exists():
                continue
            out.append(Timeline(name=name, folder=folder, labels_csv=labels, sources=_recipe_sources(recipe),
                                cache=cache))
    return out


# ------------------------------------------------------------------------------------------------ rescoring
@dataclass(frozen=True)
class GenderDecision:
    """A gender (``"female"``, ``"male"`` or None = unknown) with its scores and confidence."""

    gender: str | None
    p_female: float
    confidence: float


GenderPolicy = Callable[[Sequence[Sequence[np.ndarray]], Sequence[Sequence[str]], Sequence[Sequence[float]],
                         np.ndarray], list[list[GenderDecision]]]
"""``policy(turn_rows, turn_speakers, turn_seconds, p_female) -> decisions``: per voice segment, per turn, the
window rows of the turn, its speaker name, its duration, and the windows' female probabilities (n,)."""


def product_policy(turn_rows, turn_speakers, turn_seconds, p_female) -> list[list[GenderDecision]]:
    """The shipped rule (``dramapic.speakers._diarize`` step 4): speaker mean of all its windows, 0.5 cut; a turn
    with >= 3 windows whose own mean gives the other gender > 0.8 takes its own decision."""
    from dramapic.speakers import _OVERRIDE_MIN_WINDOWS, _OVERRIDE_P

    by_spk: dict[str, list[np.ndarray]] = {}
    for rows_s, spk_s in zip(turn_rows, turn_speakers):
        for rows, spk in zip(rows_s, spk_s):
            by_spk.setdefault(spk, []).append(rows)

    def decide(p):
        g = "female" if p >= 0.5 else "male"
        return GenderDecision(g, float(p), float(max(p, 1 - p)))

    spk_dec = {}
    for spk, parts in by_spk.items():
        rows = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        spk_dec[spk] = decide(float(p_female[rows].mean()) if len(rows) else 0.5)
    out = []
    for rows_s, spk_s in zip(turn_rows, turn_speakers):
        seg_out = []
        for rows, spk in zip(rows_s, spk_s):
            d = spk_dec[spk]
            if len(rows) >= _OVERRIDE_MIN_WINDOWS:
                own = float(p_female[rows].mean())
                if (1.0 - own if d.gender == "female" else own) > _OVERRIDE_P:
                    d = decide(own)
            seg_out.append(d)
        out.append(seg_out)
    return out


def _valid(times, emb, region, extra):
    keep = np.linalg.norm(np.asarray(emb, dtype=np.float32), axis=1) > 0
    return (np.asarray(times, np.float64).reshape(-1, 2)[keep], np.asarray(emb, np.float32)[keep],
            np.asarray(region, np.int64)[keep], np.asarray(extra)[keep])


_ENCODER = None


def _decode(timeline: Timeline) -> np.ndarray:
    """The timeline's audio exactly as ``analyze`` decodes it (ffmpeg stream, 16 kHz mono float32)."""
    from dramapic import media

    audio_path = timeline.labels_csv.with_name(f"{timeline.name}.opus")
    info = media.probe(audio_path)
    return np.concatenate([np.asarray(p, np.float32) for p in media.stream_audio(info)])


def _refinement_windows(timeline: Timeline, a: Mapping[str, np.ndarray], starts: np.ndarray, where: np.ndarray):
    """Times, embeddings, regions and pitch of the refinement windows at ``starts``: from the cached dense grid
    or the per-timeline memo (``<name>.refine.npz``); missing ones are embedded from the audio exactly as the
    product's extra windows (one region of one window each) and added to the memo."""
    global _ENCODER
    from dramapic.speakers import SAMPLE_RATE, SpeakerEncoder

    from pitch import window_pitch_features

    memo_path = timeline.cache.with_suffix(".refine.npz")
    pools = [(a["dense_times"], a["dense_emb"], a["dense_region"], a["dense_pitch"])]
    if memo_path.exists():
        with np.load(memo_path) as m:
            pools.append((m["times"], m["emb"], m["region"], m["pitch"]))
    t_all = np.concatenate([p[0].reshape(-1, 2) for p in pools])
    e_all = np.concatenate([p[1].reshape(-1, 256) for p in pools]).astype(np.float32)
    r_all = np.concatenate([p[2].reshape(-1) for p in pools]).astype(np.int64)
    p_all = np.concatenate([p[3].reshape(-1, 6) for p in pools]).astype(np.float32)
    found = np.full(len(starts), -1, np.int64)
    for i, (t, r) in enumerate(zip(starts, where)):
        cand = np.flatnonzero(r_all == r)
        if len(cand):
            j = cand[int(np.argmin(np.abs(t_all[cand, 0] - t)))]
            # the product rounds a window start to the sample: same sample = same window
            if int(round(t_all[j, 0] * SAMPLE_RATE)) == int(round(t * SAMPLE_RATE)):
                found[i] = j
    missing = np.flatnonzero(found < 0)
    if len(missing):
        if _ENCODER is None:
            _ENCODER = SpeakerEncoder()
        wav = _decode(timeline)
        w = float(a["times"][0, 1] - a["times"][0, 0]) if len(a["times"]) else 1.5
        w = round(w / 0.01) * 0.01
        new_t, new_e, new_r = _ENCODER._embed(wav, SAMPLE_RATE, [(t, t + w) for t in starts[missing]], w, w)
        new_p = window_pitch_features(wav, times=new_t, sample_rate=SAMPLE_RATE)
        new_reg = where[missing][new_r]
        found[missing[new_r]] = len(t_all) + np.arange(len(new_r))
        t_all = np.concatenate([t_all, new_t])
        e_all = np.concatenate([e_all, new_e])
        r_all = np.concatenate([r_all, new_reg])
        p_all = np.concatenate([p_all, new_p])
        memo = {"times": t_all[len(pools[0][0]):], "emb": e_all[len(pools[0][0]):],
                "region": r_all[len(pools[0][0]):], "pitch": p_all[len(pools[0][0]):]}
        tmp = memo_path.with_name(memo_path.name + f".{np.random.default_rng().integers(1 << 30)}.tmp.npz")
        np.savez(tmp, **memo)
        tmp.replace(memo_path)
    ok = found >= 0  # a window too short to embed (< 0.3 s of audio) is dropped, as in the product
    return t_all[found[ok]], e_all[found[ok]], r_all[found[ok]], p_all[found[ok]]



@dataclass(frozen=True)
class Diarization:
    """Stage 2 on a cached timeline up to (not including) the gender decision.

    Attributes
    ----------
    timeline : Timeline
    segments : list of dict
        The stage-1 segments (all labels).
    duration : float
    turns : tuple of tuple of VoiceTurn
        Per voice segment, its turns (speaker names ``S1``.. by talk time; their genders are not used).
    turn_rows : list of list of np.ndarray
        Per voice segment, per turn, the rows (into ``times`` / ``emb`` / ``pitch``) of the windows that voted.
    times, emb, pitch : np.ndarray, shapes (n, 2), (n, 256), (n, 6)
        Every window used (first pass, then refinement windows), digital-silence windows dropped.
    """

    timeline: Timeline
    segments: list
    duration: float
    turns: tuple
    turn_rows: list
    times: np.ndarray
    emb: np.ndarray
    pitch: np.ndarray

    @property
    def turn_speakers(self) -> list[list[str]]:
        return [[t.speaker for t in ts] for ts in self.turns]

    @property
    def turn_seconds(self) -> list[list[float]]:
        return [[t.end - t.start for t in ts] for ts in self.turns]


def default_settings():
    """``(SpeakerOptions, SpeakerProjection)`` of the default pipeline (shipped ``speaker-lda``)."""
    from dramapic.analysis import speaker_settings
    from dramapic.config import load_pipeline

    return speaker_settings(load_pipeline(None))


def diarize(timeline: Timeline, *, projection=None, options=None,
            arrays: Mapping[str, np.ndarray] | None = None) -> Diarization:
    """The product's diarization (``dramapic.speakers._diarize`` + refinement) on the cached windows.

    Clustering and re-segmentation never look at the gender model, so one :class:`Diarization` serves every
    gender variant. ``options`` None: the default pipeline's settings; ``projection`` as in
    ``label_voice_segments`` (None = raw embeddings; pass ``default_settings()[1]`` for the shipped LDA).
    """
    from dramapic.speakers import _diarize, _refinement_starts

    if options is None:
        options = default_settings()[0]
    a = dict(arrays) if arrays is not None else timeline.arrays()
    seg = a["seg"].reshape(-1, 2)
    segments = timeline.segments()
    duration = float(a["duration"])
    times, emb, region, pitch = _valid(a["times"], a["emb"], a["region"], a["pitch"])
    dummy = np.full(len(emb), 0.5)
    if len(seg) == 0:
        return Diarization(timeline, segments, duration, (), [], times, emb, pitch)
    labelling, cent, raw = _diarize(seg, times, emb, region, dummy, options, projection=projection)
    if options.refine_hop_s < options.hop_s and any(len(t) > 1 for t in raw):
        starts, where = _refinement_starts(seg, times, raw, options.window_s, options.refine_hop_s)
        if len(starts):
            d_t, d_e, d_r, d_p = _refinement_windows(timeline, a, starts, where)
            e_t, e_e, e_r, e_p = _valid(d_t, d_e, d_r, d_p)
            times = np.concatenate([times, e_t])
            emb = np.concatenate([emb, e_e])
            region = np.concatenate([region, e_r])
            pitch = np.concatenate([pitch, e_p])
            labelling, _, raw = _diarize(seg, times, emb, region, np.full(len(emb), 0.5), options,
                                         centroids=cent, projection=projection)
    turns = labelling.turns
    turn_rows = ([[r[3] for r in raw_s] for raw_s in raw] if raw
                 else [[np.zeros(0, np.int64) for _ in ts] for ts in turns])
    return Diarization(timeline, segments, duration, turns, turn_rows, times, emb, pitch)


def label_genders(diar: Diarization, policy: Callable[[Diarization], list[list[GenderDecision]]]) -> dict[str, Any]:
    """The result dict of a diarization with each turn's gender from ``policy(diar)``.

    Returns
    -------
    dict
        ``{"source": {"duration"}, "segments": [...], "speakers": [...], "windows": {...}}`` in the
        ``dramapic/1`` result form that ``dramapic.evaluate.score_result`` reads; voice segments are split into
        turns (the first and last turn keep the segment's bounds, as ``analysis._stage2`` does) and carry
        ``gender`` (None = unknown), ``speaker``, ``gender_confidence`` and ``p_female``; ``windows`` holds every
        window (times, speaker) for calibration studies.
    """
    decisions = policy(diar) if diar.turns else []
    out_segments = []
    vi = 0
    for s in diar.segments:
        if s["label"] != "voice":
            out_segments.append({**s, "gender": None, "speaker": None})
            continue
        if vi >= len(diar.turns):  # no voice segment could be embedded
            out_segments.append({**s, "gender": None, "speaker": None})
            continue
        ts, ds = diar.turns[vi], decisions[vi]
        vi += 1
        for i, (t, d) in enumerate(zip(ts, ds)):
            out_segments.append({**s, "start": s["start"] if i == 0 else t.start,
                                 "end": s["end"] if i == len(ts) - 1 else t.end, "speaker": t.speaker,
                                 "gender": d.gender, "gender_confidence": d.confidence, "p_female": d.p_female})
    member = np.full(len(diar.emb), "", dtype=object)
    for rows_s, spk_s in zip(diar.turn_rows, diar.turn_speakers):
        for rows, spk in zip(rows_s, spk_s):
            member[rows] = spk
    speakers = sorted({x["speaker"] for x in out_segments if x.get("speaker")})
    return {"source": {"duration": diar.duration}, "segments": out_segments, "speakers": speakers,
            "windows": {"times": diar.times, "speaker": member}}


def product_policy_of(p_female_fn: Callable[[np.ndarray, np.ndarray], np.ndarray]):
    """The shipped decision rule (:func:`product_policy`) over the window probabilities of ``p_female_fn``."""
    def policy(diar: Diarization):
        p = np.asarray(p_female_fn(diar.emb, diar.pitch), dtype=np.float64)
        return product_policy(diar.turn_rows, diar.turn_speakers, diar.turn_seconds, p)
    return policy


def rescore(timeline: Timeline, *, p_female_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
            projection=None, options=None, policy: Callable[[Diarization], list[list[GenderDecision]]] | None = None,
            arrays: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Stage 2 of the product on a cached timeline, with pluggable parts: :func:`diarize` then
    :func:`label_genders`.

    Parameters
    ----------
    timeline : Timeline
        From :func:`timelines`.
    p_female_fn : callable, optional
        ``p_female_fn(embeddings (n, 256) float32, pitch (n, 6) float32) -> (n,) float``: each window's female
        probability, decided with the shipped rule (:func:`product_policy`). The shipped model:
        ``lambda e, p: model.predict_proba(e)[:, 0]``.
    projection : SpeakerProjection or None
        As in ``label_voice_segments`` (the default pipeline uses the shipped ``speaker-lda``:
        ``default_settings()[1]``).
    options : SpeakerOptions or None
        Clustering / re-segmentation settings (None: the default pipeline's).
    policy : callable, optional
        ``policy(Diarization) -> decisions per segment per turn``; overrides ``p_female_fn``.
    arrays : dict, optional
        ``timeline.arrays()`` when the caller already loaded them.

    Returns
    -------
    dict
        See :func:`label_genders`.
    """
    if policy is None:
        if p_female_fn is None:
            raise ValueError("give p_female_fn or policy")
        policy = product_policy_of(p_female_fn)
    return label_genders(diarize(timeline, projection=projection, options=options, arrays=arrays), policy)


# ------------------------------------------------------------------------------------------------ scoring
def music_bed_mask(labels_csv: Path, n_frames: int, frame_s: float = 0.01) -> np.ndarray:
    """Frames (10 ms) under a music bed, from the timeline's ``.json`` recipe (``role == "bed_music"``)."""
    name = labels_csv.name[:-len(".labels.csv")]
    recipe = json.loads(labels_csv.with_name(f"{name}.json").read_text(encoding="utf-8"))
    mask = np.zeros(n_frames, bool)
    for item in recipe.get("items", []):
        if item.get("role") == "bed_music":
            a = int(round(item["start_s"] / frame_s))
            mask[a:a + int(round(item["dur_s"] / frame_s))] = True
    return mask


def score(result: Mapping[str, Any], reference, *, labels_csv: Path | None = None,
          product: bool = True) -> dict[str, float]:
    """The product's figures plus the abstention-aware ones.

    Returns
    -------
    dict
        ``gender_error_product`` (unknown counted wrong, as ``score_result``), ``gender_error`` (over scored
        single-speaker reference voice frames, frames predicted voice with gender unknown left out),
        ``abstention`` (predicted-voice time with unknown gender / predicted-voice time),
        ``female_share_error`` (points; predicted share over known-gender predicted voice, reference over
        reference voice, overlaps fractional), ``der``, ``speakers_pred``, ``speakers_ref``, ``count_exact``,
        plus the frame counts behind them.
    """
    from dramapic.evaluate import (GENDER_FEMALE, GENDER_MALE, VOICE, _collar_mask, _frame_span, _n_frames,
                                   _rasterize_rows, _split, score_result)

    # product=False skips score_result (pyannote DER: the slow part) for gender-only sweeps
    fs = score_result({k: v for k, v in result.items() if k != "windows"}, reference) if product else None
    n = _n_frames(reference.duration, 0.01)
    ref_labels, ref_genders, ref_female = _rasterize_rows(reference.rows, n_frames=n, frame_s=0.01)
    pred_voice = np.zeros(n, bool)
    pred_g = np.zeros(n, np.int8)  # 0 unknown / none, 1 female, 2 male
    pred_pf = np.zeros(n)  # calibrated p(female) of unknown-gender voice (for the expected female share)
    for s in result["segments"]:
        a, b = _frame_span(float(s["start"]), float(s["end"]), n_frames=n, frame_s=0.01)
        if s["label"] != "voice":
            pred_voice[a:b] = False
            pred_g[a:b] = 0
            continue
        pred_voice[a:b] = True
        g = _split(s.get("gender"))
        pred_g[a:b] = GENDER_FEMALE if g == ("female",) else GENDER_MALE if g == ("male",) else 0
        pred_pf[a:b] = float(s.get("p_female", 0.5)) if not g else 0.0
    keep = _collar_mask(reference.boundaries, n_frames=n, frame_s=0.01, collar_s=0.25)
    single = keep & (ref_labels == VOICE) & np.isin(ref_genders, (GENDER_FEMALE, GENDER_MALE))
    abstained = pred_voice & (pred_g == 0)
    decided = single & ~abstained
    wrong = decided & ~(pred_voice & (pred_g == ref_genders))
    known = pred_voice & (pred_g > 0)
    ref_voice = ref_labels == VOICE
    fem_ref = float(ref_female[ref_voice].sum() / ref_voice.sum()) if ref_voice.any() else float("nan")
    fem_pred = float((pred_g[known] == GENDER_FEMALE).mean()) if known.any() else float("nan")
    # expected share: known frames count as decided, unknown frames by their calibrated p(female)
    fem_exp = (float(((pred_g == GENDER_FEMALE) + np.where(abstained, pred_pf, 0.0))[pred_voice].mean())
               if pred_voice.any() else float("nan"))
    extra = {}
    if labels_csv is not None:
        music = music_bed_mask(Path(labels_csv), n)
        extra = {"gender_frames_music": int((decided & music).sum()), "gender_wrong_music": int((wrong & music).sum())}
    return {
        **extra,
        "duration": reference.duration,
        "gender_error_product": fs.gender_error if fs else float("nan"),
        "female_share_error_product": fs.female_share_error if fs else float("nan"),
        "gender_error": float(wrong.sum() / max(decided.sum(), 1)),
        "gender_frames": int(decided.sum()), "gender_wrong": int(wrong.sum()),
        # stage 2 alone: frames that stage 1 called voice and stage 2 gave a gender
        "gender_frames_s2": int((decided & known).sum()), "gender_wrong_s2": int((wrong & known).sum()),
        "abstention": float(abstained.sum() / max(pred_voice.sum(), 1)),
        "abstained_s": float(abstained.sum() * 0.01), "voice_pred_s": float(pred_voice.sum() * 0.01),
        "female_share_ref": fem_ref, "female_share_pred": fem_pred,
        "female_share_error": 100.0 * abs(fem_pred - fem_ref) if known.any() else float("nan"),
        "female_share_error_expected": 100.0 * abs(fem_exp - fem_ref) if pred_voice.any() else float("nan"),
        "der": fs.der if fs else float("nan"), "speakers_pred": fs.speakers_pred if fs else -1,
        "speakers_ref": fs.speakers_ref if fs else -1,
        "count_exact": float(fs.speakers_pred == fs.speakers_ref) if fs else float("nan"),
    }


def window_truth(result: Mapping[str, Any], reference) -> np.ndarray:
    """Reference gender of every window in ``result["windows"]``: 1 female, 0 male, -1 when the window's centre
    is not single-speaker voice of known gender (shape (n,), int8)."""
    from dramapic.evaluate import GENDER_FEMALE, GENDER_MALE, VOICE

    w = result.get("windows") or {}
    if not len(w.get("times", ())):
        return np.zeros(0, np.int8)
    centre = w["times"].mean(axis=1)
    idx = np.clip((centre / reference.frame_s).astype(int), 0, len(reference.labels) - 1)
    lab, gen = reference.labels[idx], reference.genders[idx]
    return np.where((lab == VOICE) & (gen == GENDER_FEMALE), 1,
                    np.where((lab == VOICE) & (gen == GENDER_MALE), 0, -1)).astype(np.int8)


# ------------------------------------------------------------------------------------------------ protocol
def cross_corpus(fit_fn: Callable[[frozenset[str]], Any], score_fn: Callable[[Any, Timeline], Mapping[str, Any]],
                 *, folders: Sequence[str] = (*SOURCES, "mixed"), dev_mixes: bool = True) -> list[dict[str, Any]]:
    """Fit without the held-out sources, score on their timelines.

    Parameters
    ----------
    fit_fn : callable
        ``fit_fn(excluded_sources: frozenset[str]) -> model``; called once per distinct exclusion set (memoised):
        a source folder's timelines exclude that source, a ``mixed`` timeline excludes every source of its cast,
        the dev mixes exclude nothing (the regression check: the shipped setting).
    score_fn : callable
        ``score_fn(model, timeline) -> dict`` of figures (e.g. ``score(rescore(...), timeline.reference())``).
    folders : sequence of str
        Timeline folders to score.
    dev_mixes : bool
        Also score the 20 dev mixes with the model fitted on everything.

    Returns
    -------
    list of dict
        One row per timeline: ``folder``, ``name``, ``excluded`` and the figures of ``score_fn``.
    """
    models: dict[frozenset[str], Any] = {}
    rows = []
    todo = timelines(folders) + (timelines(["dev_mixes"]) if dev_mixes else [])
    for tl in todo:
        if tl.folder == "dev_mixes":
            excluded = frozenset()
        elif tl.folder == "mixed":
            excluded = frozenset(tl.sources)
        else:
            excluded = frozenset([tl.folder])
        if excluded not in models:
            models[excluded] = fit_fn(excluded)
        rows.append({"folder": tl.folder, "name": tl.name, "excluded": "+".join(sorted(excluded)),
                     **score_fn(models[excluded], tl)})
    return rows


def summarize(rows: Sequence[Mapping[str, Any]],
              keys: Sequence[str] = ("gender_error", "gender_error_s2", "gender_error_music", "abstention",
                                     "female_share_error", "female_share_error_expected", "der", "count_exact")
              ) -> list[dict[str, Any]]:
    """Per folder: gender error and abstention pooled over frames (time-weighted), female-share error, DER and
    count as the mean over files; then ``mean (sources)`` = the unweighted mean over the held-out folders
    (``mixed`` included, ``dev_mixes`` not)."""
    out = []
    folders = list(dict.fromkeys(r["folder"] for r in rows))
    for f in folders:
        rs = [r for r in rows if r["folder"] == f]
        row: dict[str, Any] = {"folder": SHORT.get(f, f), "files": len(rs)}
        for k in keys:
            if k == "gender_error" and "gender_frames" in rs[0]:
                row[k] = sum(r["gender_wrong"] for r in rs) / max(sum(r["gender_frames"] for r in rs), 1)
            elif k == "gender_error_s2" and "gender_frames_s2" in rs[0]:
                row[k] = sum(r["gender_wrong_s2"] for r in rs) / max(sum(r["gender_frames_s2"] for r in rs), 1)
            elif k == "gender_error_music" and "gender_frames_music" in rs[0]:
                row[k] = sum(r["gender_wrong_music"] for r in rs) / max(sum(r["gender_frames_music"] for r in rs), 1)
            elif k == "abstention" and "abstained_s" in rs[0]:
                row[k] = sum(r["abstained_s"] for r in rs) / max(sum(r["voice_pred_s"] for r in rs), 1e-9)
            else:
                vals = [r[k] for r in rs if r.get(k) is not None and np.isfinite(r[k])]
                row[k] = float(np.mean(vals)) if vals else float("nan")
        for k, m in (("female_share_error", "fse_max"), ("female_share_error_expected", "fse_exp_max")):
            if k in keys and k in rs[0]:
                row[m] = max((r[k] for r in rs if np.isfinite(r[k])), default=float("nan"))
        out.append(row)
    held = [r for r in out if r["folder"] != "devmix"]
    if held:
        mean = {"folder": "mean (held-out)", "files": sum(r["files"] for r in held)}
        for k in [*keys, "fse_max", "fse_exp_max"]:
            if k in held[0]:
                vals = [r[k] for r in held if np.isfinite(r[k])]
                mean[k] = float(np.mean(vals)) if vals else float("nan")
        out.insert(len(held), mean)
    return out


def format_table(summary: Sequence[Mapping[str, Any]], *, title: str = "") -> str:
    """Markdown table of :func:`summarize` (rates in %, female-share error in points)."""
    head = ("| set | files | gender err % | stage-2 only % | under music bed % | abstain % | female-share err pts "
            "(max) | expected female-share err pts (max) | DER % | count exact % |")
    lines = ([f"**{title}**", ""] if title else []) + [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in summary:
        lines.append(f"| {r['folder']} | {r['files']} | {100 * r.get('gender_error', float('nan')):.1f} | "
                     f"{100 * r.get('gender_error_s2', float('nan')):.1f} | "
                     f"{100 * r.get('gender_error_music', float('nan')):.1f} | "
                     f"{100 * r.get('abstention', float('nan')):.1f} | {r.get('female_share_error', float('nan')):.1f} "
                     f"({r.get('fse_max', float('nan')):.1f}) | {r.get('female_share_error_expected', float('nan')):.1f} "
                     f"({r.get('fse_exp_max', float('nan')):.1f}) | {100 * r.get('der', float('nan')):.1f} | "
                     f"{100 * r.get('count_exact', float('nan')):.0f} |")
    return "\n".join(lines)


def ece(p: np.ndarray, y: np.ndarray, *, bins: int = 10, weights: np.ndarray | None = None
        ) -> tuple[float, list[dict[str, float]]]:
    """Expected calibration error of the *decided* class and the 10-bin reliability table.

    Parameters
    ----------
    p : np.ndarray, shape (n,)
        Female probability.
    y : np.ndarray, shape (n,)
        1 female, 0 male.
    bins : int
        Equal-width bins of the confidence max(p, 1 - p) over [0.5, 1].
    weights : np.ndarray, shape (n,), optional
        E.g. seconds per decision.

    Returns
    -------
    (float, list of dict)
        ECE and per bin ``{lo, hi, n, weight, confidence, accuracy}``.
    """
    p = np.asarray(p, np.float64)
    y = np.asarray(y)
    w = np.ones_like(p) if weights is None else np.asarray(weights, np.float64)
    conf = np.maximum(p, 1 - p)
    correct = ((p >= 0.5).astype(int) == y).astype(np.float64)
    edges = np.linspace(0.5, 1.0, bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, bins - 1)
    table, total, err = [], w.sum(), 0.0
    for b in range(bins):
        m = idx == b
        if not m.any():
            table.append({"lo": edges[b], "hi": edges[b + 1], "n": 0, "weight": 0.0, "confidence": float("nan"),
                          "accuracy": float("nan")})
            continue
        c = float(np.average(conf[m], weights=w[m]))
        acc = float(np.average(correct[m], weights=w[m]))
        err += w[m].sum() / total * abs(c - acc)
        table.append({"lo": edges[b], "hi": edges[b + 1], "n": int(m.sum()), "weight": float(w[m].sum()),
                      "confidence": c, "accuracy": acc})
    return float(err), table
