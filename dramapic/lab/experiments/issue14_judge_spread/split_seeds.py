"""Which part of the seed spread is the window table and which the fits: the held-out models fitted with fit seed
F on the window table of table seed T (``dramapic eval --cross-corpus --seeds S`` uses T = F = S), held-out
timelines only (no dev mixes, no member check), written as the product's JSON so ``compare.py`` reads it.

    python split_seeds.py DATA WORK TABLE_SEED FIT_SEED OUT.json

WORK is the ``--work`` folder of earlier ``eval --cross-corpus`` runs (its timelines and window tables are reused).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from dramapic.config import load_pipeline
from dramapic.lab.crosscorpus import format_table, run_voice_protocol, summarize
from dramapic.lab.evaluate import _nan_to_none


def main(data: Path, work: Path, table_seed: int, fit_seed: int, out: Path) -> None:
    rows = run_voice_protocol(data=data, timelines=work / "timelines", pipeline=load_pipeline(), work=work,
                              seed=fit_seed, table_seed=table_seed)
    summary = summarize(rows)
    print(f"table seed {table_seed}, fit seed {fit_seed}")
    print(format_table(summary))
    out.write_text(json.dumps(_nan_to_none({"table_seed": table_seed, "fit_seed": fit_seed, "summary": summary,
                                            "files": [{"name": t.name, "folder": t.folder, **s.to_dict()}
                                                      for t, _, s in rows]})))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]))
