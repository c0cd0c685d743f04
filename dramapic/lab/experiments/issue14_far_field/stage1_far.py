"""Any dramapic command with stage 1's training rooms reaching distant microphones: ``lab.mixes``' rooms (p 0.3 on a
training mix, and per clip of a reel) drawn with the reverberant tail of the gender model's distant rooms
(``voice_windows.FAR_ROOMS``: -14 to +6 dB against the direct sound) instead of -14 to -4 (the draws otherwise the
same, so the mixes differ only in those rooms' level).

    python stage1_far.py train --data ../shared/data/manifest.csv --only stage1 --out DIR

``stage1_members.py`` trains with the same rooms (:func:`use_far_rooms`).
"""

from __future__ import annotations

import sys

from dramapic.lab import data, mixes, voice_windows

TAIL_DB = voice_windows.FAR_ROOMS.tail_db


def far_room_impulse(rng, **kwargs):
    return data.room_impulse(rng, tail_db=TAIL_DB, **kwargs)


def use_far_rooms() -> None:
    """From now on ``lab.mixes`` draws its rooms with :data:`TAIL_DB` (it imported ``room_impulse`` by name)."""
    mixes.room_impulse = far_room_impulse


if __name__ == "__main__":
    use_far_rooms()
    from dramapic import cli

    sys.exit(cli.main(sys.argv[1:]))
