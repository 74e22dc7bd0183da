"""The MiniLM encoder on ONNX Runtime: the same network and weights as transformers' `AutoModel`,
run by a runtime made for inference (fused attention and layer-norm kernels, no autograd or
Python dispatch per operator). On these 2-core machines one short text embeds in about 4 ms
instead of about 11 ms with eager torch (bench/classifier.py), with the same vectors (largest
difference in the hidden states about 2e-6).

The graph is exported from the installed model folder once per process (about a second, with
torch's TorchScript-based exporter: the dynamo exporter needs `onnxscript` and takes far longer)
and kept in memory only: nothing is written to disk, so there is no cache to go stale when the
model package changes. One `InferenceSession` per (folder, threads) is shared by every embedder
of the process; ONNX Runtime allows concurrent `run` calls on one session.
"""

from __future__ import annotations

import importlib
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
_graphs: dict[Path, bytes] = {}
_sessions: dict[tuple[Path, int], Any] = {}


def export_encoder(folder: Path) -> bytes:
    """The encoder in `folder` (a Hugging Face BERT-style folder) as an ONNX graph whose output
    is the last hidden state, with batch and sequence length left free."""
    import torch
    from transformers import AutoModel

    logging = importlib.import_module("transformers.utils.logging")
    bars = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()  # no "Loading weights" bar in a command's output
    try:
        model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    finally:
        if bars:
            logging.enable_progress_bar()

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


def encoder_session(folder: Path, threads: int) -> Any:
    """The process's ONNX Runtime session for the encoder in `folder`, on `threads` threads."""
    key = (folder.resolve(), threads)
    with _lock:
        if (session := _sessions.get(key)) is not None:
            return session
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise VeteranError(f"the MiniLM embedder needs onnxruntime ({exc}); "
                               "run `pip install onnxruntime`") from exc
        graph = _graphs.get(key[0])
        if graph is None:
            graph = _graphs[key[0]] = export_encoder(folder)
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


def hidden_states(session: Any, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]
                  ) -> npt.NDArray[np.float32]:
    """The last hidden state, `(batch, tokens, dim)`, for token ids and their attention mask."""
    out = session.run(None, {"input_ids": ids, "attention_mask": mask,
                             "token_type_ids": np.zeros_like(ids)})[0]
    return np.asarray(out, dtype=np.float32)
