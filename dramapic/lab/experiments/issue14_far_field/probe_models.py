"""probe.py with another models folder: ``python probe_models.py MODELS -- --data ... --work ...`` (MODELS: a full
copy of ``models/`` whose manifest lists the files it holds)."""

from __future__ import annotations

import sys
from pathlib import Path

from dramapic import resources

models = Path(sys.argv[1])
resources.models_dir = lambda: models
sys.argv = [sys.argv[0]] + sys.argv[sys.argv.index("--") + 1:]
sys.path.insert(0, str(Path(__file__).parent))
import probe  # noqa: E402

probe.main()
