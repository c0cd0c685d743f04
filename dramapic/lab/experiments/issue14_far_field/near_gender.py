"""Any dramapic command with the gender model fitted on the near-room window table, as dramapic did until 2026-12-06
(``voice_windows.GENDER_ROOMS`` set to ``NEAR_ROOMS``): the baseline rows of the far-room judge in RESULTS.md.

    python near_gender.py eval --cross-corpus --data ../shared/data --mixes ../shared/data/dev_mixes --seeds 0 \
        --rooms far --timelines T --work W --json OUT
"""

from __future__ import annotations

import sys

from dramapic.lab import voice_windows

voice_windows.GENDER_ROOMS = voice_windows.NEAR_ROOMS  # read at call time by train and the cross-corpus protocol
from dramapic import cli  # noqa: E402

sys.exit(cli.main(sys.argv[1:]))
