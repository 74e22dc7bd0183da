"""The MiniLM encoder graph that ships with veteran: weights read from the model package, no torch
needed, and the same network as a fresh export from torch."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from veteran.errors import VeteranError
from veteran.memory import onnx as encoder
from veteran.memory.embed import MiniLMEmbedder, minilm_dir

TEXTS = ["Refund please.", "My parcel never arrived and the tracking page shows nothing " * 3,
         "naïve café"]


def test_the_shipped_graph_carries_no_weights_and_matches_the_installed_model() -> None:
    assert encoder.SHIPPED.stat().st_size < 1_000_000  # the weights stay in the model package
    assert encoder.shipped_graph(minilm_dir()) == encoder.SHIPPED.read_bytes()


def test_the_embedder_runs_without_torch_or_transformers() -> None:
    script = textwrap.dedent("""
        import sys
        for name in ("torch", "transformers"):
            sys.modules[name] = None  # any import of them now fails
        from veteran.memory.embed import MiniLMEmbedder
        texts = sys.argv[1:]
        for int8 in (False, True):
            vectors = MiniLMEmbedder(int8=int8).embed(texts)
            sys.stdout.buffer.write(vectors.astype("<f4").tobytes())
    """)
    done = subprocess.run([sys.executable, "-c", script, *TEXTS], capture_output=True, timeout=240,
                          env={**os.environ, "PYTHONWARNINGS": "error"}, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    got = np.frombuffer(done.stdout, dtype="<f4").reshape(2, len(TEXTS), 384)
    # The same vectors as in this process, for the float and the int8 flavour alike.
    assert np.abs(got[0] - MiniLMEmbedder().embed(TEXTS)).max() < 1e-6
    assert np.abs(got[1] - MiniLMEmbedder(int8=True).embed(TEXTS)).max() < 1e-6


def test_a_process_embeds_with_the_shipped_graph_without_importing_onnx() -> None:
    # `import onnx` alone took 0.5 s of a 1.5 s `veteran kb search` (issue 13): the shipped
    # graph's metadata is read from its protobuf fields instead.
    script = textwrap.dedent("""
        import sys
        sys.modules["onnx"] = None  # any import of it now fails
        from veteran.memory.embed import MiniLMEmbedder
        vectors = MiniLMEmbedder().embed(sys.argv[1:])
        sys.stdout.buffer.write(vectors.astype("<f4").tobytes())
    """)
    done = subprocess.run([sys.executable, "-c", script, *TEXTS], capture_output=True, timeout=240,
                          env={**os.environ, "PYTHONWARNINGS": "error"}, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    got = np.frombuffer(done.stdout, dtype="<f4").reshape(len(TEXTS), 384)
    assert np.abs(got - MiniLMEmbedder().embed(TEXTS)).max() < 1e-6


def test_metadata_reads_what_onnx_reads() -> None:
    import onnx

    graph = encoder.SHIPPED.read_bytes()
    expected = {p.key: p.value for p in onnx.load_model_from_string(graph).metadata_props}
    assert encoder.metadata(graph) == expected and encoder.LAYOUT in expected
    model = onnx.load_model_from_string(graph)
    model.metadata_props.add(key="second", value="näive " * 100)  # a multi-byte length
    assert encoder.metadata(model.SerializeToString()) == {**expected, "second": "näive " * 100}
    with pytest.raises(ValueError, match="past the end"):
        encoder.metadata(graph[:-10])


def test_the_shipped_graph_is_torchs_export_of_the_installed_model() -> None:
    pytest.importorskip("torch")
    fresh = encoder.weightless(encoder.export_encoder(minilm_dir()), minilm_dir())
    assert fresh == encoder.SHIPPED.read_bytes(), (
        "export_encoder or the model changed: regenerate the graph with "
        "`python -m veteran.memory.onnx`")


@pytest.fixture(scope="module")
def relaid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the model whose weights file has the same tensors at other offsets (a longer,
    space-padded header, as safetensors allows)."""
    folder = tmp_path_factory.mktemp("relaid") / "model"
    shutil.copytree(minilm_dir(), folder, ignore=shutil.ignore_patterns(encoder.WEIGHTS))
    raw = (minilm_dir() / encoder.WEIGHTS).read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    header = raw[8:8 + size] + b" " * 8
    (folder / encoder.WEIGHTS).write_bytes(struct.pack("<Q", len(header)) + header
                                           + raw[8 + size:])
    return folder


def test_weights_laid_out_otherwise_are_never_read_through_the_shipped_graph(
        relaid: Path) -> None:
    assert encoder.shipped_graph(relaid) is None


def test_weights_laid_out_otherwise_are_exported_from_torch(relaid: Path) -> None:
    pytest.importorskip("torch")
    vectors = MiniLMEmbedder(relaid).embed(TEXTS)
    assert np.abs(vectors - MiniLMEmbedder().embed(TEXTS)).max() < 1e-5


def test_without_torch_weights_laid_out_otherwise_name_the_local_extra(
        relaid: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setattr(encoder, "_graphs", {})  # nothing exported earlier in this process
    monkeypatch.setattr(encoder, "_sessions", {})
    with pytest.raises(VeteranError, match=r"pip install 'veteran\[local\]'"):
        MiniLMEmbedder(relaid).embed(TEXTS)
