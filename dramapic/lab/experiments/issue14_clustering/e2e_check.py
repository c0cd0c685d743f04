"""Full product path with a candidate setting: main's dramapic.analysis.analyze with a copy of
pipelines/default.yaml whose speakers: section gets the overrides (shipped projection), against the re-scorer
with the same setting and the same (shipped) projection. Usage: python e2e_check.py 'OVERRIDES_JSON' FILE..."""
import json, os, sys, time
from pathlib import Path
os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch; torch.set_num_threads(1)
import yaml
from dramapic.analysis.analyze import analyze
from dramapic.config import load_pipeline, default_pipeline_path
import rescore as R
from sweep import options_for

spec = json.loads(sys.argv[1])
raw = yaml.safe_load(default_pipeline_path().read_text())
opt = options_for(R.Item("x", "dev_mixes", Path("x"), Path("x"), None, "all"), spec)  # shipped projection
if spec.get("p_same", 0.5) != 0.5 or "thr_mult" in spec:
    raw["speakers"]["cluster_threshold"] = opt.cluster_threshold
for k in ("gender_link_confidence", "gender_link_min_s", "min_speaker_share",
          "max_small_speaker_s", "cluster_fine_threshold"):
    raw["speakers"][k] = getattr(opt, k)
yml = R.HERE / "cache" / "candidate.yaml"
yml.write_text(yaml.safe_dump(raw))
pipe = load_pipeline(yml)
print("speakers:", {k: getattr(pipe.speakers, k) for k in ("cluster_threshold", "gender_link_confidence",
      "gender_link_min_s", "min_speaker_share", "max_small_speaker_s")}, flush=True)
items = {i.name: i for i in R.items(dev=True) + R.sample_items()}
for f in sys.argv[2:]:
    name = Path(f).name.split(".")[0]
    t0 = time.perf_counter()
    res = analyze(Path(f), pipe)
    it = items[name]
    it = R.Item(it.name, it.folder, it.cache, it.audio, it.labels, "all")
    mine = R.score(it, opt, refine=True)
    if it.labels is None:
        print(f"{name}: product {len(res.summary.speakers)} speakers | re-scorer {mine} ({time.perf_counter()-t0:.0f} s)", flush=True)
    else:
        s = R.score_result(res, R.load_reference(it.labels))
        print(f"{name}: product DER {s.der:.4f} count {s.speakers_pred}/{s.speakers_ref} | re-scorer DER {mine.der:.4f} "
              f"count {mine.speakers_pred}/{mine.speakers_ref} ({time.perf_counter()-t0:.0f} s)", flush=True)
