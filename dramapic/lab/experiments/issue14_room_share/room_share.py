"""Any dramapic command with stage 1's training mixes sent through a room more often: ``lab.mixes.ROOM_PROBABILITY``
(p 0.3 per training mix and per clip of a reel in the shipped recipe) set to the first argument, the rooms' tail the
shipped one (``mixes.ROOM_TAIL_DB``, -14 to +6 dB against the direct sound); the draws otherwise the same.

    python room_share.py 0.6 train --data ../shared/data/manifest.csv --only stage1 --out DIR [--seed N]
"""

from __future__ import annotations

import sys

from dramapic.lab import mixes

if __name__ == "__main__":
    try:
        share = float(sys.argv[1])
    except (IndexError, ValueError):
        raise SystemExit("usage: room_share.py P DRAMAPIC-ARGUMENTS...") from None
    if not 0.0 <= share <= 1.0:
        raise SystemExit("P is a probability, 0 to 1")
    mixes.ROOM_PROBABILITY = share
    from dramapic import cli

    sys.exit(cli.main(sys.argv[2:]))
