from __future__ import annotations

from pathlib import Path

import pytest

from helpers import SAMPLE, SHARED_DATA, ffmpeg_builds, need_shared_data


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


@pytest.fixture(params=ffmpeg_builds())
def chosen_build(request, monkeypatch) -> str:
    """Each ffmpeg build chosen as a user would ($DRAMAPIC_FFMPEG; the ffprobe beside it, or none and the banner),
    the cached lookups cleared before and after."""
    from dramapic import media

    monkeypatch.setenv(media.FFMPEG_ENV, request.param)
    monkeypatch.delenv(media.FFPROBE_ENV, raising=False)
    media.ffmpeg_exe.cache_clear()
    media.ffprobe_exe.cache_clear()
    yield request.param
    media.ffmpeg_exe.cache_clear()
    media.ffprobe_exe.cache_clear()
