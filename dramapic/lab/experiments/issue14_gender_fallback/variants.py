"""Gender-policy variants for ``harness.py``: each patches one function and returns its undo.

``sizeaware`` is the plain product code path (the name only keeps its outputs apart from ``base``, which ran with
the clip-level decision calibration before the size-aware fit existed); ``abstainXX`` runs the product's policy
with ``abstain_below`` = 0.XX instead of the model's 0.9; ``agreeXX`` with ``agree_min`` = 0.XX instead of 0.8.
"""
from __future__ import annotations

import dramapic.analysis.diarization as diar


def base():
    return lambda: None


def _model_setting(field: str, value: float):
    real = diar.decide_turns

    def patched(model, **kw):
        saved = getattr(model, field)
        setattr(model, field, value)
        try:
            return real(model, **kw)
        finally:
            setattr(model, field, saved)

    diar.decide_turns = patched

    def undo():
        diar.decide_turns = real
    return undo


def _voice_gate(threshold: float):
    """Gender None on the turns of a voice segment whose stage-1 voice score is below ``threshold`` (stage 1
    unsure it is voice at all: a female/male call there is a guess about something that may be a song)."""
    import dataclasses

    from dramapic.analysis import analyze
    real = analyze.refine_voice

    def patched(audio, segments, **kw):
        merged, speakers = real(audio, segments, **kw)
        return [dataclasses.replace(s, gender=None) if s.label == "voice" and s.scores.get("voice", 1.0) < threshold
                else s for s in merged], speakers

    analyze.refine_voice = patched

    def undo():
        analyze.refine_voice = real
    return undo


def _cluster_merge(threshold: float):
    from cluster_merge import variant
    return variant(threshold)


def _file_centre(alpha: float):
    """Cluster on per-recording centred embeddings (``../issue14_same_gender_merges``): subtract ``alpha`` x the
    talk-weighted mean window, a bed shared by every window of a scene pulling them all together, then renormalise;
    the stopping distance stays the projection's calibrated one."""
    import numpy as np

    from dramapic.analysis.embeddings import l2
    real = diar.cluster_windows

    def patched(*, embeddings, weights, **kw):
        w = np.asarray(weights, dtype=np.float64)
        mean = (embeddings * w[:, None]).sum(axis=0) / max(w.sum(), 1e-9)
        return real(embeddings=l2(embeddings - alpha * mean), weights=weights, **kw)

    diar.cluster_windows = patched

    def undo():
        diar.cluster_windows = real
    return undo


VARIANTS = {"base": base,
            **{f"centre{int(a * 100)}": (lambda a=a: _file_centre(a)) for a in (0.2, 0.35)}, "sizeaware": base, "sizecap": base,
            **{f"clustermerge{int(t * 100)}": (lambda t=t: _cluster_merge(t)) for t in (0.5, 0.7, 0.9)},
            **{f"abstain{int(v * 100)}": (lambda v=v: _model_setting("abstain_below", v))
               for v in (0.8, 0.85, 0.95, 0.97)},
            **{f"voicegate{int(v * 100)}": (lambda v=v: _voice_gate(v)) for v in (0.55, 0.6, 0.65, 0.7, 0.8)},
            **{f"override{int(v * 100)}": (lambda v=v: _model_setting("override_p", v)) for v in (0.6, 0.7, 0.9)},
            **{f"agree{int(v * 100)}": (lambda v=v: _model_setting("agree_min", v)) for v in (0.5, 0.6, 0.7, 0.9)}}
