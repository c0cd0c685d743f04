"""The table and the leave-one-folder-out choice of speakers.gender_resegment_weight over reseg.py's runs in OUT.

    python lofo_reseg.py OUT

Only weights whose dev mixes stay within the issue's "no worse than at issue time" (DER <= 0.150, >= 14 of 20
counts) and whose abstention stays <= 5 % are candidates; ties go to the weight nearer the former 0.3.
"""
import glob
import json
import sys

runs = {float(f.rsplit("_", 1)[1][:-5]): json.load(open(f))["summary"]
        for f in glob.glob(f"{sys.argv[1]}/gender_resegment_weight_*.json")}
folders = ["cv", "emodb", "libri", "mixed", "nemo", "ravdess"]
S = {w: {s["set"]: s for s in summary} for w, summary in runs.items()}
print("weight  DER     gender %  abstain %  fse    count  | dev DER  gender %  count")
for w in sorted(S):
    m, d = S[w]["mean (held-out)"], S[w]["dev_mixes"]
    print(f"{w:<7} {m['der']:.4f}  {m['gender_error'] * 100:5.2f}     {m['abstention'] * 100:4.1f}       "
          f"{m['female_share_error']:5.2f}  {m['count_exact']:.3f}  | {d['der']:.4f}   {d['gender_error'] * 100:4.1f}"
          f"      {d['count_exact']:.2f}")
ok = [w for w in S if S[w]["dev_mixes"]["der"] <= 0.150 and S[w]["dev_mixes"]["count_exact"] >= 0.7
      and S[w]["mean (held-out)"]["abstention"] <= 0.05]
for key in ("der", "gender_error"):
    picks, held = [], []
    for h in folders:
        rest = [f for f in folders if f != h]
        w = min(ok, key=lambda w: (round(sum(S[w][f][key] for f in rest) / 5, 4), abs(w - 0.3)))
        picks.append(w)
        held.append((S[w][h]["der"], S[w][h]["gender_error"], S[w][h]["count_exact"]))
    n = len(folders)
    print(f"LOFO on {key}: picks {picks}; held-out mean DER {sum(x[0] for x in held) / n:.4f}, "
          f"gender {100 * sum(x[1] for x in held) / n:.2f} %, count {sum(x[2] for x in held) / n:.3f}")
