"""Leave-one-folder-out choice of the shift on grid.jsonl: pick on five folders (among points whose dev-mix stage-1
accuracy and voice F1 are not lower than the unshifted and whose song check stays <= 1 %), score the sixth.

    python lofo.py grid.jsonl
"""
import json, sys
rows=[json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]
folders=['cv','emodb','libri','mixed','nemo','ravdess']
base=[r for r in rows if r['bias']==[0,0,0,0] and r.get('penalty',20)==20][0]
ok=lambda r: r['dev_acc']>=base['dev_acc']-1e-9 and r['dev_f1v']>=base['dev_f1v']-1e-9 and r['song_voice_%']<=1.0
cands=[r for r in rows if ok(r)]
print(len(rows),'points,',len(cands),'pass the dev/song guard')
def pooled(r, fs):
    a=sum(r['xcn_'+f][0] for f in fs); b=sum(r['xcn_'+f][1] for f in fs); return a/b
tot=[0,0]; totb=[0,0]
for h in folders:
    rest=[f for f in folders if f!=h]
    best=max(cands, key=lambda r: pooled(r, rest))
    print(f"{h:8s} pick {best['bias']} pen {best.get('penalty',20)}: held-out acc {best['xcacc_'+h]:.4f} rec {best['xcrec_'+h]:.4f}  (base {base['xcacc_'+h]:.4f} rec {base['xcrec_'+h]:.4f})")
    tot[0]+=best['xcn_'+h][0]; tot[1]+=best['xcn_'+h][1]; totb[0]+=base['xcn_'+h][0]; totb[1]+=base['xcn_'+h][1]
print('LOFO pooled', round(tot[0]/tot[1],4), 'base', round(totb[0]/totb[1],4))
best=max(cands, key=lambda r: pooled(r, folders))
print('all-folder pick', best['bias'], best.get('penalty',20), {k:best[k] for k in ('dev_acc','dev_f1v','xc_acc','xc_f1v','xc_recv','song_voice_%')})
for r in sorted(cands, key=lambda r:-pooled(r,folders))[:8]:
    print(r['bias'], r.get('penalty',20), {k:r[k] for k in ('dev_acc','dev_f1v','xc_acc','xc_f1v','xc_recv','song_voice_%')})
