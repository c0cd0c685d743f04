"""The lab's clip readers on a data folder that lacks a clip its manifests list."""

from __future__ import annotations

import numpy as np
import pytest

from dramapic.errors import InputError
from dramapic.lab import data


@pytest.mark.parametrize("read", [data._load, data.load_audio,
                                  lambda p: data._load_piece(p, 160, np.random.default_rng(0))])
def test_a_missing_clip_is_one_input_error_naming_its_path(tmp_path, read):
    # was libsndfile's "Error opening ...: System error." (a traceback from the gender trainer's own reads) or,
    # through the ffmpeg fallback, "NAME.opus is not a media file ffmpeg can read" without the folder
    clip = tmp_path / "clips" / "song" / "gone.opus"
    with pytest.raises(InputError) as caught:
        read(clip)
    assert str(caught.value) == f"clip listed in the manifest not found: {clip}"


def test_bench_speakers_names_a_missing_clip_as_the_trainers_do(tmp_path):
    from dramapic.lab import bench_speakers

    speaker = next(iter(bench_speakers.SPEAKERS))
    (tmp_path / "manifest.csv").write_text(f"path,label,speaker\nclips/{speaker}.opus,voice,{speaker}\n")
    with pytest.raises(InputError) as caught:
        bench_speakers._load_speakers(tmp_path)
    assert str(caught.value) == f"clip listed in the manifest not found: {tmp_path / 'clips' / speaker}.opus"


def test_a_manifest_saved_with_a_byte_order_mark_reads_as_one_without(tmp_path):
    # Excel's "CSV UTF-8" and Notepad put a BOM first: its first column was "\ufeffpath", and the manifest "has no
    # rows with a 'path' column"
    text = "path,split,label\nclips/a.opus,train,voice\n"
    plain, marked = tmp_path / "plain.csv", tmp_path / "marked.csv"
    plain.write_text(text, encoding="utf-8")
    marked.write_text(text, encoding="utf-8-sig")
    assert data.read_manifest(marked, columns=("path", "split")) == data.read_manifest(plain) \
        == [{"path": "clips/a.opus", "split": "train", "label": "voice"}]
