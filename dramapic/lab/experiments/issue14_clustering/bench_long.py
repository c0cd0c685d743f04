"""Long-input check of the share rule's cap (the 2-3 min timelines never reach it): main's bench dialogue
(lab.bench_speakers.build_dialogue: 8 train speakers, 4 f / 4 m, LibriSpeech + Emo-DB; NOT held out, the shipped
projection was fitted on them) of SECONDS, embedded once, then main's _diarize (first pass only, no refinement) with
the shipped settings and the candidates; speaker count and DER (pyannote, 0.5 s collar).
Usage: python bench_long.py SECONDS 'LABEL=JSON' ..."""
import json, os, sys, time
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np
import torch; torch.set_num_threads(1)
from pathlib import Path
from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate
from dramapic.lab.bench_speakers import build_dialogue, DEFAULT_DATA
from dramapic.analysis.embeddings import SpeakerEncoder
from dramapic.analysis.pitch import window_pitch_features
from dramapic.analysis.diarization import _diarize, to_annotation
import rescore as R
from sweep import options_for

secs = float(sys.argv[1])
t0 = time.perf_counter()
audio, segments, reference = build_dialogue(secs, Path("/work/shared/data"))
seg = np.asarray(segments, np.float64)
times, emb, region = SpeakerEncoder().embed_regions(audio, sample_rate=16000, regions=[tuple(s) for s in seg],
                                                    window_s=1.5, hop_s=0.75)
z = R.GENDER.male_logit(emb, window_pitch_features(audio, times=times, sample_rate=16000))
print(f"{len(audio)/16000:.0f} s, {len(emb)} windows, embedded in {time.perf_counter()-t0:.0f} s", flush=True)
ref = Annotation(uri="b")
for i, (a, b, s) in enumerate(reference):
    ref[Segment(a, b), i] = s
talk = {}
for a, b, s in reference:
    talk[s] = talk.get(s, 0) + b - a
print("reference talk per speaker (s):", {k: round(v) for k, v in sorted(talk.items())})
for arg in sys.argv[2:]:
    label, _, js = arg.partition("=")
    spec = json.loads(js)
    R.MODE["link"] = spec.get("link", "window")
    opt = options_for(R.Item("b", "dev_mixes", Path("b"), Path("b"), None, "all"), spec)
    lab = _diarize(seg, times, emb, region, z, opt, R.GENDER, projection=R.projection("all"))[0]
    hyp = to_annotation([t for ts in lab.turns for t in ts], uri="b")
    der = DiarizationErrorRate(collar=0.5, skip_overlap=False)(ref, hyp, uem=Timeline([Segment(0, len(audio)/16000)]))
    print(f"{label}: {len(lab.speakers)} speakers (ref {len(talk)}), DER {der:.3f}, talk {[round(s.seconds) for s in lab.speakers]}", flush=True)
