"""Offline re-scoring of dramapic's diarization (CURRENT main code, /work/main) on cached stage-1 segments and
first-pass windows.

Per file: the cached voice segments, first-pass window times / raw embeddings / pitch features (exp14's cache,
or this folder's cache of the bundled sample), male logits from the shipped v2 gender model
(``GenderClassifier.male_logit(emb, pitch)``), then main's ``analysis.diarization._diarize`` with a
``SpeakersConfig`` variant and a projection, then (``refine=True``) main's ``_refinement_starts`` and the second
pass against the same centroids, exactly as ``label_voice_segments``: refinement windows are looked up (same start
sample) in exp14's dense grid / memo and this folder's memo, missing ones are embedded from the audio with main's
``SpeakerEncoder.embed_regions`` (one region per window, as the product) + ``window_pitch_features`` and memoised
under ``memo/``. The result (stage-1 non-voice segments + turns) is scored by main's ``lab.evaluate.score_result``.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402

from dramapic.analysis.diarization import SpeakerProjection, _diarize, _refinement_starts  # noqa: E402
from dramapic.analysis.gender import GenderClassifier  # noqa: E402
from dramapic.config import SpeakersConfig, load_pipeline  # noqa: E402
from dramapic.lab.evaluate import score_result  # noqa: E402
from dramapic.lab.reference import load_reference  # noqa: E402
from dramapic.result import SAMPLE_RATE, SCHEMA  # noqa: E402

HERE = Path(__file__).resolve().parent
MEMO = HERE / "memo"
TL = Path("/work/exp14/timelines")
TL_CACHE = Path("/work/exp14/cache/timelines")
DEV = Path("/work/shared/data/dev_mixes")
PROJ = Path("/work/exp14d/proj_final100")
FOLDERS = ("librispeech-train-clean-100", "emodb", "cv", "ravdess", "nemo", "mixed")
SOURCE_OF = {"libri": "librispeech-train-clean-100", "emodb": "emodb", "cv": "cv", "ravdess": "ravdess",
             "nemo": "nemo"}

GENDER = GenderClassifier.from_npz(Path("/work/main/models/gender-resemblyzer-pitch-lr.npz"))
SHIPPED = load_pipeline(None).speakers


@dataclass
class Item:
    name: str
    folder: str
    cache: Path            # <name>.npz (exp14 layout: seg, times, emb, region, pitch, dense_*, duration)
    audio: Path
    labels: Path | None    # None: no reference (the looped sample: count only)
    proj_key: str          # projection file stem in PROJ


def cast_sources(labels_csv: Path) -> list[str]:
    with open(labels_csv, newline="") as fh:
        spk = {s for r in csv.DictReader(fh) if r["label"] == "voice" for s in r["speaker"].split("+") if s}
    return sorted({SOURCE_OF[s.split("_")[0]] for s in spk})


def items(folders=FOLDERS, dev=False) -> list[Item]:
    out = []
    for folder in folders:
        for labels in sorted((TL / folder).glob("*.labels.csv")):
            name = labels.name[:-len(".labels.csv")]
            key = "without_" + "+".join(cast_sources(labels) if folder == "mixed" else [folder])
            out.append(Item(name, folder, TL_CACHE / folder / f"{name}.npz", labels.with_name(f"{name}.opus"),
                            labels, key))
    if dev:
        for labels in sorted(DEV.glob("devmix_*.labels.csv")):
            name = labels.name[:-len(".labels.csv")]
            out.append(Item(name, "dev_mixes", TL_CACHE / "dev_mixes" / f"{name}.npz",
                            labels.with_name(f"{name}.opus"), labels, "all"))
    return out


def sample_items() -> list[Item]:
    return [Item(f"drama_sample_{t}", "sample", HERE / "cache" / f"drama_sample_{t}.npz",
                 Path(f"/work/exp14d/cache/drama_sample_{t}.mp4"), None, "all") for t in ("x1", "x4")]


_proj: dict = {}


def projection(key: str) -> SpeakerProjection:
    if key not in _proj:
        with np.load(PROJ / f"{key}.npz") as d:
            _proj[key] = SpeakerProjection(mean=d["mean"], components=d["components"],
                                           cluster_threshold=float(d["cluster_threshold"]),
                                           calibration=d["calibration"])
    return _proj[key]


_arrays: dict = {}


def arrays(item: Item) -> dict:
    key = str(item.cache)
    if key not in _arrays:
        with np.load(item.cache) as d:
            a = {k: d[k] for k in d.files}
        a["z"] = GENDER.male_logit(a["emb"].astype(np.float32), a["pitch"]) if len(a["emb"]) else np.zeros(0)
        pools = []
        if "dense_times" in a and len(a["dense_times"]):
            pools.append((a["dense_times"], a["dense_emb"], a["dense_region"], a["dense_pitch"]))
        for memo in (item.cache.with_suffix(".refine.npz"), MEMO / item.folder / f"{item.name}.refine.npz"):
            if memo.exists():
                with np.load(memo) as m:
                    pools.append((m["times"], m["emb"], m["region"], m["pitch"]))
        a["pool"] = _concat(pools)
        _arrays[key] = a
    return _arrays[key]


def _concat(pools):
    if not pools:
        return (np.zeros((0, 2)), np.zeros((0, 256), np.float32), np.zeros(0, np.int64), np.zeros((0, 6), np.float32))
    return (np.concatenate([p[0].reshape(-1, 2) for p in pools]).astype(np.float64),
            np.concatenate([p[1].reshape(-1, 256) for p in pools]).astype(np.float32),
            np.concatenate([p[2].reshape(-1) for p in pools]).astype(np.int64),
            np.concatenate([p[3].reshape(-1, 6) for p in pools]).astype(np.float32))


_encoder = None
_audio: dict = {}
stats = {"embedded": 0}


def _decode(path: Path) -> np.ndarray:
    from dramapic import media

    if str(path) not in _audio:
        _audio.clear()
        _audio[str(path)] = media.decode_audio(media.probe(path))
    return _audio[str(path)]


def refinement_windows(item: Item, a: dict, starts: np.ndarray, where: np.ndarray):
    global _encoder
    t_all, e_all, r_all, p_all = a["pool"]
    found = np.full(len(starts), -1, np.int64)
    keys = {}
    for j, (t, r) in enumerate(zip(np.round(t_all[:, 0] * SAMPLE_RATE).astype(np.int64), r_all)):
        keys.setdefault((int(r), int(t)), j)
    for i, (t, r) in enumerate(zip(starts, where)):
        found[i] = keys.get((int(r), int(round(t * SAMPLE_RATE))), -1)
    missing = np.flatnonzero(found < 0)
    if len(missing):
        from dramapic.analysis.embeddings import SpeakerEncoder
        from dramapic.analysis.pitch import window_pitch_features

        if _encoder is None:
            _encoder = SpeakerEncoder()
        wav = _decode(item.audio)
        w = SHIPPED.window_s
        new_t, new_e, new_r = _encoder.embed_regions(wav, sample_rate=SAMPLE_RATE,
                                                     regions=[(t, t + w) for t in starts[missing]],
                                                     window_s=w, hop_s=w)
        new_p = window_pitch_features(wav, times=new_t, sample_rate=SAMPLE_RATE) if len(new_t) else \
            np.zeros((0, 6), np.float32)
        stats["embedded"] += len(new_t)
        new_reg = where[missing][new_r]
        found[missing[new_r]] = len(t_all) + np.arange(len(new_r))
        memo = MEMO / item.folder / f"{item.name}.refine.npz"
        old = [] if not memo.exists() else [tuple(np.load(memo)[k] for k in ("times", "emb", "region", "pitch"))]
        merged = _concat(old + [(new_t, new_e, new_reg, new_p)])
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(memo.name + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, times=merged[0], emb=merged[1], region=merged[2], pitch=merged[3])
        tmp.replace(memo)
        a["pool"] = _concat([a["pool"], (new_t, new_e, new_reg, new_p)])
        t_all, e_all, r_all, p_all = a["pool"]
    ok = found >= 0  # a window too short to embed is dropped, as in the product
    f = found[ok]
    return t_all[f], e_all[f], r_all[f], p_all[f]


def label(item: Item, options: SpeakersConfig, proj: SpeakerProjection | None, *, refine: bool = True):
    """VoiceLabelling of one cached file (main's two passes)."""
    from dramapic.analysis.diarization import VoiceLabelling

    a = arrays(item)
    seg = a["seg"].reshape(-1, 2)
    if len(seg) == 0:
        return VoiceLabelling()
    times, emb, region, z = a["times"].reshape(-1, 2), a["emb"].astype(np.float32), a["region"], a["z"]
    result, cent, raw = _diarize(seg, times, emb, region, z, options, GENDER, projection=proj)
    if refine and options.refine_hop_s < options.hop_s and any(len(t) > 1 for t in raw):
        starts, where = _refinement_starts(seg, times, raw, options.window_s, options.refine_hop_s)
        if len(starts):
            et, ee, er, ep = refinement_windows(item, a, starts, where)
            ez = GENDER.male_logit(ee, ep) if len(ee) else np.zeros(0)
            result = _diarize(seg, np.concatenate([times, et]), np.concatenate([emb, ee]),
                              np.concatenate([region, er]), np.concatenate([z, ez]), options, GENDER,
                              centroids=cent, projection=proj)[0]
    return result


def to_result(item: Item, labelling) -> dict:
    """Stage-1 segments with every voice segment replaced by its turns (as analyze._stage2)."""
    segs_path = item.cache.with_name(item.name + ".segments.json")
    stage1 = json.loads(segs_path.read_text())
    a = arrays(item)
    turns_of = iter(labelling.turns)
    out = []
    for s in stage1:
        if s["label"] != "voice":
            out.append({"start": s["start"], "end": s["end"], "label": s["label"], "gender": None, "speaker": None})
            continue
        turns = next(turns_of)
        for i, t in enumerate(turns):
            out.append({"start": s["start"] if i == 0 else t.start, "end": s["end"] if i == len(turns) - 1 else t.end,
                        "label": "voice", "gender": t.gender, "speaker": t.speaker})
    return {"schema": SCHEMA, "source": {"duration": float(a["duration"])}, "segments": out}


_refs: dict = {}


def score(item: Item, options: SpeakersConfig, *, refine: bool = True, proj_key: str | None = None):
    """FileScores (or, without a reference, the speaker count as an int)."""
    proj = projection(proj_key or item.proj_key) if options.projection is not None else None
    lab = label(item, options, proj, refine=refine)
    if item.labels is None:
        return len(lab.speakers)
    if item.name not in _refs:
        _refs[item.name] = load_reference(item.labels)
    return score_result(to_result(item, lab), _refs[item.name])


def variant(**kw) -> SpeakersConfig:
    return dataclasses.replace(SHIPPED, **kw)


# ---------------------------------------------------------------------------------------------------------------
# Experimental cannot-link on the gender model's *group decision* (calibrated mean clipped logit, what
# GenderClassifier.decide gives a speaker) instead of the mean of window probabilities. Switched on by
# MODE["link"] = "decision"; implemented by wrapping main's functions (no edit of main):
# diarization.cluster_windows gets each window's clipped raw male logit in the p_female slot, and
# clustering.forbidden turns a cluster's mean of those into P(female) with the decision calibration.
import dramapic.analysis.clustering as _CL  # noqa: E402
import dramapic.analysis.diarization as _DI  # noqa: E402

MODE = {"link": "window"}
_orig_forbidden, _orig_cluster = _CL.forbidden, _DI.cluster_windows


def _forbidden(pf_mean, talk, options):
    if MODE["link"] == "decision":
        a, b = GENDER.decision_calibration
        pf_mean = 1.0 - 1.0 / (1.0 + np.exp(-(a * np.asarray(pf_mean, np.float64) + b)))
    return _orig_forbidden(pf_mean, talk, options)


def _cluster(*, embeddings, weights, p_female, options, threshold, seed=0):
    if MODE["link"] == "decision":
        a, b = GENDER.window_calibration
        p = np.clip(np.asarray(p_female, np.float64), 1e-15, 1 - 1e-15)
        p_female = np.clip((np.log((1 - p) / p) - b) / a, -GENDER.logit_clip, GENDER.logit_clip)
    return _orig_cluster(embeddings=embeddings, weights=weights, p_female=p_female, options=options,
                         threshold=threshold, seed=seed)


_CL.forbidden = _forbidden
_DI.cluster_windows = _cluster
