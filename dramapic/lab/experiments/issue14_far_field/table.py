import json, sys, collections
rows=[json.loads(l) for l in open(sys.argv[1])]
by=collections.defaultdict(list)
for r in rows: by[r['condition']].append(r)
print("| condition | files | count exact | female-share err pts, mean (max) | unknown % of voice, mean (max) |")
print("|---|---|---|---|---|")
for c,rs in by.items():
    ok=sum(r['speakers']==r['true_speakers'] for r in rs)
    fe=[abs((r['female'] if r['female'] is not None else 0)-r['true_female'])*100 for r in rs]
    un=[(r['unknown'] or 0)*100 for r in rs]
    print(f"| {c} | {len(rs)} | {ok} of {len(rs)} | {sum(fe)/len(fe):.1f} ({max(fe):.1f}) | {sum(un)/len(un):.1f} ({max(un):.1f}) |")
