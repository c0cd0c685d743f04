"""Any dramapic command with stage 1's training rooms set to the near or the distant tail (``lab.mixes``' rooms, p
0.3 on a training mix and per clip of a reel; the draws otherwise the same, so the mixes differ only in those rooms'
level):

- far: the reverberant tail of the gender model's distant rooms (``voice_windows.FAR_ROOMS``, -14 to +6 dB against
  the direct sound), the shipped recipe since 2026-12-07 (``mixes.ROOM_TAIL_DB``);
- near: -14 to -4 dB (``voice_windows.NEAR_ROOMS``), the recipe shipped until then.

    python stage1_far.py near train --data ../shared/data/manifest.csv --only stage1 --out DIR

``stage1_members.py`` trains with the same rooms (:func:`use_rooms`).
"""

from __future__ import annotations

import sys

from dramapic.lab import mixes, voice_windows

TAIL_DB = {"near": voice_windows.NEAR_ROOMS.tail_db, "far": voice_windows.FAR_ROOMS.tail_db}


def use_rooms(rooms: str) -> None:
    """From now on ``lab.mixes`` draws its rooms with the tail of ``rooms`` ("near" or "far")."""
    mixes.ROOM_TAIL_DB = TAIL_DB[rooms]


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TAIL_DB:
        raise SystemExit("usage: stage1_far.py near|far DRAMAPIC-ARGUMENTS...")
    use_rooms(sys.argv[1])
    from dramapic import cli

    sys.exit(cli.main(sys.argv[2:]))
