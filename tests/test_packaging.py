"""The wheel: built from a copy of the project, it holds what an installed dramapic runs on and nothing more."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import REPO


def _wheel_names(src: Path, out: Path) -> set[str]:
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(src)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        # pip builds in an isolated environment, so it must find hatchling on an index: offline, it cannot
        if "hatchling" in done.stderr and ("No matching distribution" in done.stderr or "connection" in done.stderr):
            pytest.skip(f"pip cannot get the build backend (hatchling) here: {done.stderr.strip().splitlines()[-1]}")
        pytest.fail(f"pip wheel failed:\n{done.stderr}")
    with zipfile.ZipFile(next(out.glob("dramapic-*.whl"))) as wheel:
        return set(wheel.namelist())


def test_the_wheel_carries_the_models_and_pipelines_but_not_a_killed_trainings_leftovers(tmp_path: Path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", ".gitignore"):
        shutil.copy2(REPO / name, src / name)
    for name in ("dramapic", "models", "pipelines"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # what a `dramapic train` killed outright leaves in models/: its staging folder (a copy of the manifest and of
    # the files trained so far, removed only by the next training) and a manifest cut short under its .part name
    staging = src / "models" / ".staging-4242-abcd"
    staging.mkdir()
    shutil.copy2(src / "models" / "manifest.json", staging / "manifest.json")
    (src / "models" / "manifest.json.part").write_text('{"models": [', encoding="utf-8")
    names = _wheel_names(src, tmp_path / "wheel")

    # they were force-included with the rest of models/, where no exclusion applies: into every wheel built
    assert not [n for n in names if ".staging-" in n or n.endswith(".part")]
    manifest = json.loads((REPO / "models" / "manifest.json").read_text(encoding="utf-8"))
    listed = {f"dramapic/_data/models/{f['path']}" for m in manifest["models"] for f in m["files"]}
    assert listed | {"dramapic/_data/models/manifest.json"} <= names
    assert {f"dramapic/_data/pipelines/{p.name}" for p in (REPO / "pipelines").glob("*.yaml")} <= names
    assert {f"dramapic/fonts/{p.name}" for p in (REPO / "dramapic" / "fonts").glob("*.ttf")} <= names
    assert not [n for n in names if n.startswith(("tests/", "samples/", "dramapic/lab/experiments/"))
                or n.endswith(".pyc")]
