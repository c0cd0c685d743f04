"""Far rooms for the gender model alone: the cross-corpus protocol with each fold's gender model fitted on the
far-room window table (``far_field_rooms.patch``'s, kept by an earlier ``dramapic eval --cross-corpus --work``) and
its speaker projection on the shipped near-room table (the one under ``--work``).

    python gender_only.py FAR_TABLE.npz -- eval --cross-corpus --data ../shared/data --mixes ../shared/data/dev_mixes \
        --seeds 0 --timelines T --work W --json OUT
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from dramapic import cli
from dramapic.lab import crosscorpus
from dramapic.lab.gender_fit import GenderTraining, fit_gender
from dramapic.lab.voice_windows import _read_cached

far = _read_cached(Path(sys.argv[1]))
if far is None:
    sys.exit(f"cannot read {sys.argv[1]}")
near_fit = crosscorpus.fit_voice_models


def fit_voice_models(table, excluded, *, seed=0, copies=2, gender=True, speakers=True):
    near = near_fit(table, excluded, seed=seed, copies=copies, gender=False, speakers=speakers)
    model = fit_gender(far, excluded=excluded, settings=GenderTraining(seed=seed)) if gender else None
    return dataclasses.replace(near, gender_model=model)


crosscorpus.fit_voice_models = fit_voice_models
sys.exit(cli.main(sys.argv[sys.argv.index("--") + 1:]))
