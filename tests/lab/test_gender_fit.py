"""The version-2 gender fit on a small synthetic window table: sources left out, weights, calibration, decisions."""

from __future__ import annotations

import numpy as np
import pytest

from dramapic.lab.gender_fit import GenderTraining, _weights, fit_gender


def _table(seed: int = 0) -> dict[str, np.ndarray]:
    """Three sources of speakers whose embedding leans on dimension 0 by gender (+ noise); pitch follows gender."""
    rng = np.random.default_rng(seed)
    rows = {k: [] for k in ("emb", "pitch", "clip", "condition", "speaker", "source", "gender", "split")}
    flags = []
    clip = 0
    for source, n_spk in (("a", 12), ("b", 6), ("c", 4)):
        for s in range(n_spk):
            gender = "female" if s % 2 == 0 else "male"
            sign = -1.0 if gender == "female" else 1.0
            split = "dev" if s >= n_spk - 2 else "train"
            for _ in range(3):  # clips
                flags.append("strong" if (source, s) == ("a", 0) else "")
                for cond in ("clean", "aug"):
                    for _ in range(4):  # windows
                        e = rng.normal(scale=0.3, size=256)
                        e[0] += sign
                        rows["emb"].append(e / np.linalg.norm(e))
                        rows["pitch"].append([0.9, 0.0, 0.3 * -sign + 0.5, 0.6, 0.1, 0.0])
                        for k, v in (("clip", clip), ("condition", cond), ("speaker", f"{source}{s}"),
                                     ("source", source), ("gender", gender), ("split", split)):
                            rows[k].append(v)
                clip += 1
    data = {k: np.asarray(v) for k, v in rows.items()}
    data["emb"] = data["emb"].astype(np.float32)
    data["pitch"] = data["pitch"].astype(np.float32)
    data["clip_f0_flag"] = np.asarray(flags)
    return data


def test_fit_without_a_source_decides_its_dev_speakers():
    data = _table()
    model = fit_gender(data, excluded=frozenset({"c"}))
    assert model.model_info["sources"] == ["a", "b"] and model.model_info["excluded"] == ["c"]
    assert model.n_pitch == 6 and model.abstain_below == 0.9
    a, b = model.window_calibration
    assert a > 0 and model.decision_calibration[0] > 0  # fitted out of fold, monotone
    held = (data["source"] == "c") & (data["split"] == "dev")
    for speaker in np.unique(data["speaker"][held]):
        rows = data["speaker"] == speaker
        decision = model.decide(model.male_logit(data["emb"][rows], data["pitch"][rows]))
        assert decision.gender == data["gender"][rows][0]
    proba = model.predict_proba(data["emb"][held], data["pitch"][held])
    truth = data["gender"][held] == "male"
    assert np.mean((proba[:, 1] > 0.5) == truth) > 0.95


def test_the_decision_calibration_grows_with_the_group_it_decides():
    """Groups of held-out windows get surer the more windows they hold (the table's speakers are consistent), so
    the size-aware fit gives a positive size slope, and a whole speaker is decided more confidently than one window
    of the same mean; ``size_aware=False`` keeps the clip-level Platt scaling (slope 0)."""
    data = _table()
    sized = fit_gender(data)
    assert sized.decision_size_slope > 0 and sized.decision_size_max == 128   # the largest group it was fitted on
    z = np.full(16, 0.8)
    assert sized.decide(z).confidence > sized.decide(z[:1]).confidence
    blind = fit_gender(data, settings=GenderTraining(size_aware=False))
    assert blind.decision_size_slope == 0.0
    assert blind.decide(z).confidence == pytest.approx(blind.decide(z[:1]).confidence)


def test_weights_speakers_genders_sources_and_flags():
    data = _table()
    cfg = GenderTraining()
    rows = np.flatnonzero(data["split"] == "train")
    w = _weights(data, rows, cfg)
    assert w[data["speaker"][rows] == "a0"].sum() == 0.0  # strongly flagged: dropped
    src = data["source"][rows]
    total = {s: w[src == s].sum() for s in ("a", "b", "c")}
    # a source's weight grows as sqrt(its train speakers): a 10, b 4, c 2
    assert total["a"] / total["c"] == pytest.approx(np.sqrt(10 / 2))
    for s in ("a", "b"):
        g = data["gender"][rows]
        assert w[(src == s) & (g == "female")].sum() == pytest.approx(w[(src == s) & (g == "male")].sum())
    kept = _weights(data, rows, GenderTraining(strong_weight=1.0))
    assert kept[data["speaker"][rows] == "a0"].sum() > 0


def test_one_gender_left_cannot_be_fitted_and_settings_reach_the_model():
    data = _table()
    male_only = {**data, "gender": np.where(data["source"] == "a", data["gender"], "male")}
    with pytest.raises(ValueError, match="both genders"):
        fit_gender(male_only, excluded=frozenset({"a"}))
    plain = fit_gender(data, settings=GenderTraining(use_pitch=False, calibrate=False, abstain_below=0.5))
    assert plain.n_pitch == 0 and plain.window_calibration == (1.0, 0.0) and plain.abstain_below == 0.5


def test_every_window_fit_does_not_depend_on_the_seed():
    data = _table()
    few = [fit_gender(data, settings=GenderTraining(max_windows=2, seed=s)) for s in (0, 1)]
    every = [fit_gender(data, settings=GenderTraining(max_windows=None, seed=s)) for s in (0, 1)]
    x = data["emb"][:50], data["pitch"][:50]
    # a per-speaker subsample is a draw: another seed, another model
    assert not np.allclose(few[0].male_logit(*x), few[1].male_logit(*x))
    # every window, weighted per speaker: the seed has nothing left to draw
    assert np.array_equal(every[0].male_logit(*x), every[1].male_logit(*x))
    assert every[0].model_info["n_windows"] == int(np.sum(data["split"] == "train"))
