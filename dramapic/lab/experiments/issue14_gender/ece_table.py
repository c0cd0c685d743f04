"""Per-source window-level ECE: shipped model vs the new model (fitted without the source), raw and calibrated.

``python ece_table.py`` -> results/ece_by_source.md
"""
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore")
sys.path.insert(0, "/work/exp14")
import crosscorpus as cc  # noqa: E402
import experiments as ex  # noqa: E402
from train_gender import GenderTraining  # noqa: E402


def main():
    from dramapic.analysis import _stage2_models
    from dramapic.config import load_pipeline

    _, shipped = _stage2_models(load_pipeline(None).stage2.gender_model)
    models = ex.fit_all(GenderTraining(C=0.1))
    acc = {}
    for key, (tl, diar, ref) in ex.diarizations().items():
        truth = cc.window_truth({"windows": {"times": diar.times}}, ref)
        m = truth >= 0
        model = models[ex.exclusion(tl)]
        raw = ex._with(model, window_calibration=(1.0, 0.0))
        p = {"shipped": shipped.predict_proba(diar.emb)[:, 0],
             "new, raw": raw.predict_proba(diar.emb, diar.pitch)[:, 0],
             "new, calibrated": model.predict_proba(diar.emb, diar.pitch)[:, 0]}
        for name, v in p.items():
            d = acc.setdefault(tl.folder, {}).setdefault(name, ([], []))
            d[0].append(v[m])
            d[1].append(truth[m])
    lines = ["| set | windows | shipped ECE | new raw ECE | new calibrated ECE | shipped window err % | new window err % |",
             "|---|---|---|---|---|---|---|"]
    for folder, d in acc.items():
        row = [cc.SHORT.get(folder, folder)]
        y = np.concatenate(d["shipped"][1])
        row.append(str(len(y)))
        for name in ("shipped", "new, raw", "new, calibrated"):
            row.append(f"{cc.ece(np.concatenate(d[name][0]), y)[0]:.3f}")
        for name in ("shipped", "new, raw"):
            p = np.concatenate(d[name][0])
            row.append(f"{100 * np.mean((p >= 0.5) != (y == 1)):.1f}")
        lines.append("| " + " | ".join(row) + " |")
    text = "**Window-level ECE per set (10 bins; new model fitted without the set's sources)**\n\n" + "\n".join(lines)
    (ex.OUT / "ece_by_source.md").write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
