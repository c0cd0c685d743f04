"""Check that crosscorpus.rescore with the shipped models reproduces the shipped end-to-end result."""
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")
sys.path.insert(0, "/work/exp14")
import crosscorpus as cc  # noqa: E402
from dramapic.analysis import _stage2_models, speaker_settings  # noqa: E402
from dramapic.config import load_pipeline  # noqa: E402


def main(names):
    pipe = load_pipeline(None)
    _, shipped = _stage2_models(pipe.stage2.gender_model)
    options, projection = speaker_settings(pipe)
    tls = {f"{t.folder}/{t.name}": t for t in cc.timelines([*cc.SOURCES, "mixed", "dev_mixes"])}
    for n in names:
        tl = tls[n]
        clock = time.perf_counter()
        res = cc.rescore(tl, p_female_fn=lambda e, p: shipped.predict_proba(e)[:, 0], projection=projection,
                         options=options)
        el = time.perf_counter() - clock
        ref = tl.shipped_result()
        a = [(round(s["start"], 3), round(s["end"], 3), s["label"], s["gender"], s["speaker"]) for s in res["segments"]]
        b = [(round(s["start"], 3), round(s["end"], 3), s["label"], s["gender"], s["speaker"]) for s in ref["segments"]]
        same = a == b
        diff = sum(x != y for x, y in zip(a, b)) + abs(len(a) - len(b))
        r = tl.reference()
        s1, s2 = cc.score(res, r), cc.score(ref, r)
        print(f"{n}: {len(a)} vs {len(b)} segments, identical={same} (differing rows {diff}), rescore {el:.2f} s; "
              f"gender err {s1['gender_error']:.4f} vs {s2['gender_error']:.4f}, DER {s1['der']:.4f} vs {s2['der']:.4f}, "
              f"speakers {s1['speakers_pred']} vs {s2['speakers_pred']}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
