"""The MiniLM encoder on ONNX Runtime: the same network and weights as transformers' `AutoModel`,
run by a runtime made for inference (fused attention and layer-norm kernels, no autograd or
Python dispatch per operator). On these 2-core machines one short text embeds in about 4 ms
instead of about 11 ms with eager torch (bench/classifier.py), with the same vectors (largest
difference in the hidden states about 2e-6).

The graph is exported from the installed model folder once per process (about a second, with
torch's TorchScript-based exporter: the dynamo exporter needs `onnxscript` and takes far longer)
and kept in memory only: nothing is written to disk, so there is no cache to go stale when the
model package changes. One `InferenceSession` per (folder, threads, flavour) is shared by every
embedder of the process; ONNX Runtime allows concurrent `run` calls on one session.

The int8 flavour (ONNX Runtime's dynamic quantization: int8 weights, activations quantized per
call) embeds about 2.4 times faster again (1.8 ms against 4.3 ms for a ticket), but its vectors
are not the float ones (cosine 0.9 to 1.0 to them): it is a different embedder, named apart,
and used where speed matters more than matching stored vectors (the `classifier` recipe, whose
head is trained and served on the same flavour).
"""

from __future__ import annotations

import importlib
import logging
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from veteran.errors import VeteranError

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17

_lock = threading.Lock()
_graphs: dict[tuple[Path, bool], bytes] = {}
_sessions: dict[tuple[Path, int, bool], Any] = {}


def export_encoder(folder: Path) -> bytes:
    """The encoder in `folder` (a Hugging Face BERT-style folder) as an ONNX graph whose output
    is the last hidden state, with batch and sequence length left free."""
    import torch
    from transformers import AutoModel

    hf_logging = importlib.import_module("transformers.utils.logging")
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar in a command's output
    try:
        model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    finally:
        if bars:
            hf_logging.enable_progress_bar()

    class Encoder(torch.nn.Module):
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
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        return path.read_bytes()


def quantize(graph: bytes) -> bytes:
    """`graph` with int8 weights (ONNX Runtime's dynamic quantization)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "encoder.onnx", Path(tmp) / "encoder-int8.onnx"
        source.write_bytes(graph)
        logging.disable(logging.WARNING)  # its advice to pre-process the graph first, on root
        try:
            quantize_dynamic(source, target, weight_type=QuantType.QInt8)
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
        graph = _graph(key[0], int8)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads sleep instead of spinning: the gateway's event loop and the local
        # model share these cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = _sessions[key] = ort.InferenceSession(
            graph, options, providers=["CPUExecutionProvider"])
        return session


def _graph(folder: Path, int8: bool) -> bytes:  # called with the lock held
    if (graph := _graphs.get((folder, int8))) is None:
        graph = _graphs[folder, int8] = (quantize(_graph(folder, False)) if int8
                                         else export_encoder(folder))
    return graph


def hidden_states(session: Any, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]
                  ) -> npt.NDArray[np.float32]:
    """The last hidden state, `(batch, tokens, dim)`, for token ids and their attention mask."""
    out = session.run(None, {"input_ids": ids, "attention_mask": mask,
                             "token_type_ids": np.zeros_like(ids)})[0]
    return np.asarray(out, dtype=np.float32)
