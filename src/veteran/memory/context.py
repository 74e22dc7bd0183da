"""Context for functions: the best chunks for a request, packed under a token budget.

A function that declares `[functions.NAME.memory]` gets, before each call, a system message
holding the chunks that best match the conversation's last user message, searched in its
collections and packed best-first while they fit `max_tokens` (a chunk scored 0, the last of
every result list it was in, is left out) (counted with the embedder's
tokenizer, header lines included). Chunks below the function's `min_score` never get here: the
search leaves them out (search.py). Each chunk is shown with its source so the model can cite
it, and the trajectory records exactly which chunks it was told (`context`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from veteran.memory.types import Hit

HEADER = ("Company knowledge that may help with this request. Use it when relevant and cite "
          "sources as [n].")


@dataclass(frozen=True, slots=True)
class Context:
    message: dict[str, Any] | None  # the system message to insert, None when nothing fit
    record: dict[str, Any]  # what the trajectory keeps: chunks used, tokens, budget


def last_user_text(messages: Sequence[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content
                                if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _label(hit: Hit) -> str:
    heading = hit.chunk.metadata.get("heading")
    where = " › ".join(str(h) for h in heading) if isinstance(heading, list) and heading else ""
    page = hit.chunk.metadata.get("page")
    parts = [hit.chunk.source, where, f"page {page}" if page is not None else ""]
    return ", ".join(p for p in parts if p)


def pack(hits: Sequence[Hit], budget: int, count_tokens: Any,
         collections: Sequence[str]) -> Context:
    """The best hits (by score) that fit `budget` tokens, as one system message."""
    used: list[dict[str, Any]] = []
    lines = [HEADER]
    spent = count_tokens(HEADER)
    seen: set[str] = set()
    for hit in sorted(hits, key=lambda h: -h.score):
        if hit.chunk.id in seen or hit.score <= 0:
            continue  # a hybrid score of 0 is the last of every list it was in: no evidence
        block = f"[{len(used) + 1}] ({_label(hit)})\n{hit.chunk.text}"
        cost = count_tokens(block)
        if spent + cost > budget:
            continue  # a smaller, lower-ranked chunk may still fit
        seen.add(hit.chunk.id)
        lines.append(block)
        spent += cost
        used.append({
            "id": hit.chunk.id, "collection": hit.chunk.collection, "source": hit.chunk.source,
            "score": round(hit.score, 6), "tokens": cost,
            **({} if hit.relevance is None else {"relevance": round(hit.relevance, 6)}),
        })
    record = {"collections": list(collections), "budget": budget, "tokens": spent if used else 0,
              "chunks": used}
    if not used:
        return Context(None, record)
    return Context({"role": "system", "content": "\n\n".join(lines)}, record)
