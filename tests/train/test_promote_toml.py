"""What promotion writes into veteran.toml keeps each comment with its own section.

The commented veteran.toml that `veteran init` writes introduces each section with comments
after a blank line (`# --- Functions: ...`), which tomlkit keeps at the end of the section
before: appending there put `paths` under the Functions header and the new variant under the
Metrics header.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import tomlkit

from tests.conftest import register_model
from veteran.store import Store
from veteran.tomledit import add_entry, remove_entry
from veteran.train.promote import promote, rollback
from veteran.workspace import init_workspace


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path}/veteran.db")
    yield opened
    opened.close()


def _following(lines: list[str], start: str) -> list[str]:
    at = next(i for i, line in enumerate(lines) if line.startswith(start))
    return lines[at:]


def test_promote_writes_paths_and_the_variant_under_their_own_sections(
        tmp_path: Path, store: Store) -> None:
    ws = init_workspace(tmp_path / "ws")
    original = ws.config_path.read_text(encoding="utf-8")
    record = register_model(ws, function="chat")
    promote(ws, ws.load_config(), store, "chat", record.id, weight=0.1, skip_gate=True)
    lines = ws.config_path.read_text(encoding="utf-8").splitlines()
    # `paths` right below the local provider's own settings, before the commented examples of
    # other providers and the Functions header.
    after = _following(lines, "max_new_tokens = 256")
    assert after[1] == f'paths = {{{record.id} = "models/{record.id}"}}'
    assert after[2:4] == ["", "# Any OpenAI-compatible endpoint: OpenAI, Azure, vLLM, Ollama, "
                          "llama.cpp server..."]
    # The new variant follows the variant before it; the Metrics header still introduces
    # [metrics.resolved].
    after = _following(lines, f"[functions.chat.variants.{record.id}]")
    assert after[1] == f'model = "local/{record.id}"'
    assert after[3:6] == ["", "# " + "-" * 87, "# Metrics: the outcomes feedback can report, "
                          "at any time later (POST /v1/feedback)."]
    assert after[6:8] == ["", "[metrics.resolved]"]
    before = lines[:lines.index(f"[functions.chat.variants.{record.id}]")]
    assert before[-2:] == ["# read_timeout = 60                         # this variant's own "
                           "timeouts, in seconds", ""]
    # And rollback gives back the file as it was (the restored weight written as `1`).
    rollback(ws, "chat")
    restored = original.replace("weight = 1.0\n", "weight = 1\n")
    assert ws.config_path.read_text(encoding="utf-8") == restored


DOC = """\
[a]
x = 1  # a's own
# a's commented option

# --- b: introduces [b]
[b]
y = 2

# --- c: introduces [c.d]
[c.d]
z = 3
"""


def test_add_and_remove_entry_keep_a_section_introduction_before_its_section() -> None:
    doc = tomlkit.parse(DOC)
    add_entry(doc["a"], "w", 4)
    text = tomlkit.dumps(doc)
    assert "# a's commented option\nw = 4\n\n# --- b: introduces [b]\n[b]\n" in text
    add_entry(doc["b"], "t", {"k": 1})
    text = tomlkit.dumps(doc)
    assert "y = 2\n\n[b.t]\nk = 1\n\n# --- c: introduces [c.d]\n[c.d]\n" in text
    remove_entry(doc["b"], "t")
    remove_entry(doc["a"], "w")
    assert tomlkit.dumps(doc) == DOC
    # A table removed from between two others leaves the next one's introduction before it
    # (and no comment is ever dropped: which table "# q's" speaks of is a guess).
    doc = tomlkit.parse("[v.p]\nm = 1\n\n# q's\n[v.q]\nm = 2\n\n# r's\n[v.r]\nm = 3\n")
    remove_entry(doc["v"], "q")
    assert tomlkit.dumps(doc) == "[v.p]\nm = 1\n\n# q's\n\n# r's\n[v.r]\nm = 3\n"
