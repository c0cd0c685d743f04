"""Held-out fits on several augmentation draws at once: the window tables of several seeds joined (the clean
windows once, every table's augmented windows), as a table built with ``copies = len(SEEDS)`` would hold them;
then the protocol as in ``run.py`` (gender on every window, projection calibration pooled over REPEATS splits).

    python union.py DATA WORK SEEDS REPEATS OUT.json [PIPELINE.yaml] [gender-only | clean-weighted]
    # SEEDS e.g. 0,1 (the first seed's clean windows kept); PIPELINE '-' for the default one; with gender-only the
    # speaker projection is fitted on the first seed's table alone (one augmented copy), the gender model on all;
    # with clean-weighted the projection counts every clean window once per joined table
    # (fit_projection's clean_repeats), so clean and augmented windows weigh as with one copy
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from dramapic.config import load_pipeline
from dramapic.lab import crosscorpus
from dramapic.lab.evaluate import _nan_to_none
from dramapic.lab.gender_fit import GenderTraining, fit_gender
from dramapic.lab.train_speakers import fit_projection
from dramapic.lab.voice_windows import build_window_table


def joined(data: Path, work: Path, seeds: list[int]) -> dict[str, np.ndarray]:
    tables = [build_window_table(manifest_csv=data / "manifest.csv", seed=s, cache=work) for s in seeds]
    first = tables[0]
    for other in tables[1:]:
        assert np.array_equal(other["clip_path"], first["clip_path"]), "tables over different clips"
    per_window = [k for k, v in first.items() if not k.startswith("clip_") and len(v) == len(first["clip"])]
    parts = [first] + [{k: t[k][t["condition"] == "aug"] for k in per_window} for t in tables[1:]]
    out = {k: np.concatenate([p[k] for p in parts]) for k in per_window}
    out.update({k: v for k, v in first.items() if k not in per_window})
    return out


def main(data: Path, work: Path, seeds: list[int], repeats: int, out: Path, pipeline: Path | None = None,
         variant: str = "") -> None:
    table = joined(data, work, seeds)
    projection_table = joined(data, work, seeds[:1]) if variant == "gender-only" else table
    # the product's clean weighting (the same rows, in the same order, as the first runs' repeated table)
    clean_repeats = len(seeds) if variant == "clean-weighted" else 1
    print(f"joined tables of seeds {seeds}: {len(table['clip'])} windows")

    def fit(_table, excluded, *, seed=0, **_):
        gender = fit_gender(table, excluded=excluded, settings=GenderTraining(seed=seed, max_windows=None))
        projection = fit_projection(projection_table, excluded=excluded, seed=seed, repeats=repeats,
                                    clean_repeats=clean_repeats)[0]
        return crosscorpus.VoiceModels(excluded=excluded, gender_model=gender, projection=projection)

    crosscorpus.fit_voice_models = fit  # the protocol's fit_fn looks it up at call time
    rows = crosscorpus.run_voice_protocol(data=data, timelines=work / "timelines", pipeline=load_pipeline(pipeline),
                                          work=work, dev_mixes=data / "dev_mixes", seed=seeds[0])
    summary = crosscorpus.summarize(rows)
    print(f"tables {seeds} {variant}, repeats {repeats}, pipeline {pipeline or 'default'}")
    print(crosscorpus.format_table(summary))
    out.write_text(json.dumps(_nan_to_none({"seeds": seeds, "repeats": repeats, "variant": variant, "summary": summary,
                                            "files": [{"name": t.name, "folder": t.folder, **s.to_dict()}
                                                      for t, _, s in rows]})))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), [int(s) for s in sys.argv[3].split(",")], int(sys.argv[4]),
         Path(sys.argv[5]), Path(sys.argv[6]) if len(sys.argv) > 6 and sys.argv[6] != "-" else None,
         sys.argv[7] if len(sys.argv) > 7 else "")
