"""One product cross-corpus run (dramapic eval --cross-corpus's stage-2 part, without the stage-1 member check) per
speakers setting, everything else the default pipeline; 3.3 min a run on 2 cores once WORK holds the window table
and the timelines. Never two at once (thread oversubscription slows both tenfold).

    python reseg.py ../shared/data WORK OUT gender_resegment_weight=0.1 gender_resegment_weight=0.2 switch_penalty=0.1
    python lofo_reseg.py OUT
"""
import json
import sys
from pathlib import Path

from dramapic.config import load_pipeline
from dramapic.lab.crosscorpus import format_table, run_voice_protocol, summarize

data, work, out = map(Path, sys.argv[1:4])
out.mkdir(parents=True, exist_ok=True)
base = load_pipeline(None)
for spec in sys.argv[4:]:
    key, value = spec.split("=")
    target = out / f"{key}_{value}.json"
    if target.exists():
        continue
    pipeline = base.replace(**{f"speakers__{key}": float(value)})
    rows = run_voice_protocol(data=data, timelines=work / "timelines", pipeline=pipeline, work=work,
                              dev_mixes=data / "dev_mixes")
    summary = summarize(rows)
    print(spec)
    print(format_table(summary), flush=True)
    target.write_text(json.dumps({"summary": summary, "files": [
        {"name": t.name, "pred": s.speakers_pred, "ref": s.speakers_ref, "der": s.der} for t, _, s in rows]},
        default=float))
