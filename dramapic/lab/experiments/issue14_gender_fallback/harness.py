"""The product's cross-corpus protocol (stage 2) over several seeds, memoised, for gender-policy and diarization
variants.

On top of ``../issue14_reseg_iter/harness.py``'s memo (stage 1's segments, every ``embed_regions`` and
``window_pitch_features`` call, keyed by the audio's sha1 and the exact arguments) this memoises the held-out fits
on disk per (excluded sources, seed, copies), so that a variant over seeds 0-2 costs about 45 s a seed once the
memo is full. The product code runs unchanged on top; a variant (``variants.py``) patches one function.

    python harness.py DATA WORK CACHE OUT SEEDS base fallback_pool ...

WORK is the ``--work`` folder of ``dramapic eval --cross-corpus`` (timelines + two-copy window tables of the seeds).
Never run two at once (two cores).
"""
from __future__ import annotations

import importlib.util
import json
import pickle
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("reseg_iter_harness", HERE.parent / "issue14_reseg_iter" / "harness.py")
memo = importlib.util.module_from_spec(_spec)  # the sibling experiment's memo (same file name as this one)
_spec.loader.exec_module(memo)

import dramapic.lab.crosscorpus as cc
from dramapic.config import load_pipeline
from dramapic.lab.voice_windows import SHIPPED_COPIES


#: the hash (``memo._sha`` of the file's text) of ``dramapic/lab/train_speakers.py`` as it was from 9b4e18f to
#: 41ccb99, the plain LDA whose fits the first runs' combined files hold
FIRST_PROJECTION_CODE = "be6de23d89b1"


def stored(path: Path, compute):
    """``compute()``'s value, pickled at ``path`` the first time (written whole or not at all) and read back after."""
    if path.exists():
        return pickle.loads(path.read_bytes())
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".tmp").write_bytes(pickle.dumps(value))
    path.with_suffix(".tmp").replace(path)
    return value


def install(cache: Path) -> None:
    memo.install(cache)  # its in-process fit memo is replaced by this one on disk (it predates ``copies``)

    def fit_voice_models(table, excluded, *, seed=0, copies=SHIPPED_COPIES):
        # the projection and the gender model are memoised apart, each keyed by the source of the code that fits
        # it, so a gender change refits the gender models only (files of the first runs hold both: reused)
        import dramapic.analysis.gender as gender_mod
        import dramapic.lab.gender_fit as gender_fit_mod
        import dramapic.lab.train_speakers as speakers_mod
        from dramapic.lab.gender_fit import GenderTraining, fit_gender
        from dramapic.lab.train_speakers import fit_projection

        stem = f"{'-'.join(sorted(excluded)) or 'none'}_s{seed}_c{copies}"
        both = cache / "fits" / f"{stem}.pkl"
        settings = GenderTraining(seed=seed)
        code = memo._sha(Path(gender_mod.__file__).read_text(), Path(gender_fit_mod.__file__).read_text(),
                         repr(settings))[:12]
        proj_code = memo._sha(Path(speakers_mod.__file__).read_text())[:12]
        if both.exists() and proj_code == FIRST_PROJECTION_CODE \
                and not (cache / "fits" / "projection" / f"{stem}_{proj_code}.pkl").exists():
            old = pickle.loads(both.read_bytes())  # the first runs' files: reuse their projection ...
            stored(cache / "fits" / "projection" / f"{stem}_{proj_code}.pkl", lambda: old.projection)
            # ... only while the projection code is the one that fitted them (a new fit must never get an old one)
        projection = stored(cache / "fits" / "projection" / f"{stem}_{proj_code}.pkl",
                            lambda: fit_projection(table, excluded=excluded, seed=seed, clean_repeats=copies)[0])
        gender_model = stored(cache / "fits" / "gender" / f"{stem}_{code}.pkl",
                              lambda: fit_gender(table, excluded=excluded, settings=settings))
        return cc.VoiceModels(excluded=excluded, gender_model=gender_model, projection=projection)

    cc.fit_voice_models = fit_voice_models


def main(argv: list[str]) -> None:
    from variants import VARIANTS

    data, work, cache, out = map(Path, argv[:4])
    seeds = [int(s) for s in argv[4].split(",")]
    install(cache)
    out.mkdir(parents=True, exist_ok=True)
    base = load_pipeline(None)
    for name in argv[5:]:
        for seed in seeds:
            target = out / f"{name}_s{seed}.json"
            if target.exists():
                continue
            pipeline = base
            undos = []
            for part in name.split("+"):
                if "=" in part:
                    key, value = part.split("=")
                    pipeline = pipeline.replace(**{key.replace(".", "__"): float(value)})
                else:
                    undos.append(VARIANTS[part]())
            try:
                rows = cc.run_voice_protocol(data=data, timelines=work / "timelines", pipeline=pipeline, work=work,
                                             dev_mixes=data / "dev_mixes", seed=seed)
            finally:
                for u in undos:
                    u()
            summary = cc.summarize(rows)
            print(name, "seed", seed)
            print(cc.format_table(summary), flush=True)
            target.write_text(json.dumps({"seed": seed, "summary": summary, "files": [
                {"name": t.name, "folder": t.folder, "speakers_pred": s.speakers_pred,
                 "speakers_ref": s.speakers_ref, "der": s.der, "speaker_count_error": s.speaker_count_error,
                 "gender_error": s.gender_error, "abstention": s.abstention,
                 "female_share_error": s.female_share_error, "female_share_pred": s.female_share_pred,
                 "female_share_ref": s.female_share_ref} for t, _, s in rows]}, default=float))


if __name__ == "__main__":
    main(sys.argv[1:])
