"""`veteran kb`: add, promote, list, remove and search from the command line."""

from __future__ import annotations

import re
import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from veteran.cli import cli
from veteran.config import Config
from veteran.errors import VeteranError
from veteran.memory.types import Embedder
from veteran.store import Store, new_id
from veteran.testing.embedder import HashEmbedder
from veteran.types import TrajectoryRecord

CONFIG = """
[providers.m]
kind = "mock"
[functions.support.variants.a]
model = "m/echo"
[metrics.resolved]
type = "boolean"
[memory]
chunk_tokens = 60
overlap_tokens = 10
"""


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "veteran.toml").write_text(CONFIG)
    monkeypatch.setenv("VETERAN_WORKSPACE", str(ws))
    monkeypatch.delenv("VETERAN_DATABASE_URL", raising=False)
    embedders: list[HashEmbedder] = []

    def embedder(config: Config) -> Embedder:
        assert config.memory.chunk_tokens == 60
        embedders.append(HashEmbedder())
        return embedders[-1]

    monkeypatch.setattr("veteran.cli.kb._embedder", embedder)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "refunds.md").write_text(
        "# Refunds\n\nRefunds take five business days after approval.\n"
    )
    (docs / "cards.md").write_text("# Cards\n\nWe accept Visa and Mastercard only.\n")
    (docs / "faq.jsonl").write_text(
        '{"body": "Passwords reset from the login page.", "topic": "account"}\n'
    )
    return ws


def kb(*args: str) -> Result:
    result = CliRunner().invoke(cli, ["kb", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def fails(*args: str) -> str:
    """What the user is told: a VeteranError's message (`main` prints it), or click's usage
    error."""
    result = CliRunner().invoke(cli, ["kb", *args])
    if isinstance(result.exception, VeteranError):
        return result.exception.message
    assert result.exit_code == 2, result.output
    return result.output


def test_add_list_search_remove(workspace: Path) -> None:
    docs = workspace.parent / "docs"
    out = kb("add", "handbook", str(docs), "--text-field", "body", "--json").output
    report = orjson.loads(out)
    assert (report["added"], report["unchanged"], report["chunks"]) == (3, 0, 3)
    again = kb("add", "handbook", str(docs), "--text-field", "body").output
    assert "0 added, 0 updated, 3 unchanged, 0 deleted; 0 chunks written" in again

    listed = orjson.loads(kb("list", "--json").output)["data"]
    assert [(c["name"], c["documents"], c["chunks"], c["chunk_tokens"], c["overlap_tokens"])
            for c in listed] == [("handbook", 3, 3, 60, 10)]
    assert "handbook" in kb("list").output
    sources = [d["source"] for d in orjson.loads(kb("list", "handbook", "--json").output)["data"]]
    assert sources == ["docs/cards.md", "docs/faq.jsonl", "docs/refunds.md"]

    hits = orjson.loads(
        kb("search", "handbook", "how many days for refunds", "--k", "2", "--json").output
    )["data"]
    assert hits[0]["source"] == "docs/refunds.md"
    assert "five business days" in hits[0]["text"]
    filtered = orjson.loads(kb("search", "handbook", "login page reset", "--mode", "bm25",
                               "--filter", "topic=account", "--json").output)["data"]
    assert [h["source"] for h in filtered] == ["docs/faq.jsonl"]
    shown = kb("search", "handbook", "Visa cards").output
    assert "docs/cards.md (Cards)" in shown and "We accept Visa" in shown

    assert "removed 1 document" in kb("remove", "handbook", "docs/cards.md").output
    assert "docs/cards.md" not in kb("list", "handbook").output
    assert "no document 'docs/cards.md'" in fails("remove", "handbook", "docs/cards.md")
    assert "removed collection handbook" in kb("remove", "handbook").output
    assert "no collection 'handbook'" in fails("list", "handbook")


def test_search_shows_scores_and_leaves_out_chunks_under_min_score(workspace: Path) -> None:
    kb("add", "handbook", str(workspace.parent / "docs"), "--text-field", "body")
    found = orjson.loads(kb("search", "handbook", "refunds", "--min-score", "0",
                            "--json").output)
    assert found["min_score"] == 0 and len(found["data"]) == 3  # every chunk ranks
    for hit in found["data"]:
        assert hit["relevance"] == max(hit["similarity"], hit["keywords"])
    best = found["data"][0]
    assert best["source"] == "docs/refunds.md" and best["keywords"] == 1.0
    # By default [memory] min_score (0.25) holds: only the chunk about refunds is left.
    default = orjson.loads(kb("search", "handbook", "refunds", "--json").output)
    assert default["min_score"] == 0.25
    assert [h["source"] for h in default["data"]] == ["docs/refunds.md"]
    assert all(h["relevance"] >= 0.25 for h in default["data"])
    shown = kb("search", "handbook", "refunds", "--min-score", "0").output
    assert re.search(r"docs/refunds.md \(Refunds\)  score [\d.]+  similarity [\d.]+  "
                     r"keywords 1\.000", shown)
    # bm25 mode embeds nothing: there is no similarity to show.
    assert "similarity -  keywords 1.000" in kb("search", "handbook", "refunds", "--mode",
                                                 "bm25").output
    # Nothing reaches it: nothing is shown, and stderr says why.
    nothing = kb("search", "handbook", "zebra kangaroo", "--min-score", "0.9")
    assert nothing.stdout == ""
    assert "no chunk of handbook reaches min score 0.9" in nothing.stderr
    assert "--min-score" in fails("search", "handbook", "x", "--min-score", "1.5")


def test_a_second_search_reads_the_cached_index_and_embeds_only_when_needed(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb("add", "handbook", str(workspace.parent / "docs"), "--text-field", "body")
    made: list[HashEmbedder] = []

    def embedder(config: Config) -> Embedder:
        made.append(HashEmbedder())
        return made[-1]

    monkeypatch.setattr("veteran.cli.kb._embedder", embedder)
    first = kb("search", "handbook", "refunds", "--json").output
    saved = list((workspace / "memory" / "handbook").iterdir())
    assert len(saved) == 1 and (saved[0] / "manifest.json").is_file()
    stamps = {p: p.stat().st_mtime_ns for p in saved[0].rglob("*")}

    def rebuild(*args: object, **kwargs: object) -> None:
        raise AssertionError("the index was rebuilt from the store")

    # Each command makes its own index, as a new process does: this one loads the saved files.
    monkeypatch.setattr("veteran.memory.index.BuiltIndex.build", rebuild)
    assert kb("search", "handbook", "refunds", "--json").output == first
    assert {p: p.stat().st_mtime_ns for p in saved[0].rglob("*")} == stamps
    assert [e.calls for e in made] == [1, 1]  # one query embedded per search
    kb("search", "handbook", "refunds", "--mode", "bm25")
    assert made[-1].calls == 0  # keywords alone: the embedder is never run


def test_options_are_checked(workspace: Path) -> None:
    docs = workspace.parent / "docs"
    assert "--overlap" in fails("add", "h", str(docs), "--chunk-tokens", "20", "--overlap", "15")
    assert "nothere.md: no such file or folder" in fails("add", "h", str(docs / "nothere.md"))
    assert "docs/faq.jsonl:1: the record has no 'nope' field" in fails(
        "add", "h", str(docs), "--text-field", "nope"
    )


def test_promote_by_feedback(workspace: Path) -> None:
    store = Store.open(f"sqlite:///{workspace / 'veteran.db'}")
    now = time.time()
    store.insert(
        TrajectoryRecord(
            id=f"t{i}", episode_id=new_id(), created_at=now + i, function="support",
            variant="a", provider="m", model="echo",
            request={"messages": [{"role": "user", "content": f"question {i}"}]},
            response={"choices": [{"message": {"role": "assistant", "content": f"answer {i}"}}]},
        )
        for i in range(4)
    )
    store.add_feedback(metric="resolved", value=True, trajectory_id="t1")
    store.add_feedback(metric="resolved", value=True, trajectory_id="t2")
    store.add_feedback(metric="resolved", value=False, trajectory_id="t3")
    store.close()

    assert "choose trajectories" in fails("promote", "answers")
    report = orjson.loads(kb("promote", "answers", "--metric", "resolved", "--value", "true",
                             "--json").output)
    assert report["added"] == 2
    data = orjson.loads(kb("list", "answers", "--json").output)["data"]
    assert sorted(d["source"] for d in data) == ["trajectory:t1", "trajectory:t2"]
    kb("promote", "answers", "--trajectory", "t0")
    assert len(orjson.loads(kb("list", "answers", "--json").output)["data"]) == 3
    assert "no trajectory 'zzz'" in fails("promote", "answers", "--trajectory", "zzz")
