from __future__ import annotations

from pathlib import Path

import pytest

from helpers import SAMPLE, SHARED_DATA, need_shared_data


def pytest_collection_modifyitems(config, items):
    # tests marked shared_data are skipped, saying why, when ../shared/data is not there
    if (SHARED_DATA / "manifest.csv").is_file():
        return
    skip = pytest.mark.skip(reason=f"shared training data not found at {SHARED_DATA}")
    for item in items:
        if "shared_data" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return need_shared_data()


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """The full pipeline on the bundled sample, burned in: run once, shared by the end-to-end tests."""
    from dramapic.run import RunOptions, run

    out = tmp_path_factory.mktemp("sample-run")
    outputs = run(SAMPLE, options=RunOptions(output_dir=out))
    return outputs


