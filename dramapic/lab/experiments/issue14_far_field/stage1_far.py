"""Any dramapic command with stage 1's training rooms reaching distant microphones: ``lab.mixes``' rooms (p 0.3 on a
training mix, and per clip of a reel) drawn with the reverberant tail -14 to +6 dB against the direct sound instead of
-14 to -4 (the draws otherwise the same, so the mixes differ only in those rooms' level).

    python stage1_far.py train --data ../shared/data/manifest.csv --only stage1 --out DIR
"""

from __future__ import annotations

import sys

from dramapic.lab import data, mixes

TAIL_DB = (-14.0, 6.0)


def far_room_impulse(rng, **kwargs):
    return data.room_impulse(rng, tail_db=TAIL_DB, **kwargs)


mixes.room_impulse = far_room_impulse  # mixes imported the name: its rooms now reach distant microphones
from dramapic import cli  # noqa: E402

sys.exit(cli.main(sys.argv[1:]))
