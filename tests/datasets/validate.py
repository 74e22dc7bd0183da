"""Checks of the OpenAI fine-tuning JSONL shapes (chat SFT, preference DPO, reinforcement RFT),
as OpenAI's own format checks describe them: what a row must hold and may hold."""

from __future__ import annotations

from typing import Any

ROLES = {"system", "developer", "user", "assistant", "tool"}
MESSAGE_KEYS = {"role", "content", "name", "tool_calls", "tool_call_id", "weight"}


def check_message(message: Any) -> None:
    assert isinstance(message, dict), f"a message must be an object: {message!r}"
    assert message.get("role") in ROLES, f"bad role: {message!r}"
    assert set(message) <= MESSAGE_KEYS, f"unknown keys: {set(message) - MESSAGE_KEYS}"
    content = message.get("content")
    if message["role"] == "assistant" and message.get("tool_calls"):
        assert content is None or isinstance(content, str)
        for call in message["tool_calls"]:
            assert call["type"] == "function" and isinstance(call["function"]["name"], str)
            assert isinstance(call["function"]["arguments"], str)
    else:
        assert isinstance(content, str | list) and content, f"no content: {message!r}"


def check_messages(messages: Any) -> None:
    assert isinstance(messages, list) and messages, "messages must be a non-empty list"
    for message in messages:
        check_message(message)


def check_tools(row: dict[str, Any]) -> None:
    for tool in row.get("tools", []):
        assert tool["type"] == "function" and isinstance(tool["function"]["name"], str)


def check_sft_row(row: dict[str, Any]) -> None:
    assert set(row) <= {"messages", "tools", "parallel_tool_calls"}, set(row)
    check_messages(row["messages"])
    assert row["messages"][-1]["role"] == "assistant", "the last message must be the answer"
    check_tools(row)


def check_dpo_row(row: dict[str, Any]) -> None:
    assert set(row) == {"input", "preferred_output", "non_preferred_output"}, set(row)
    assert set(row["input"]) <= {"messages", "tools", "parallel_tool_calls"}
    check_messages(row["input"]["messages"])
    assert row["input"]["messages"][-1]["role"] in {"user", "tool"}
    check_tools(row["input"])
    for key in ("preferred_output", "non_preferred_output"):
        output = row[key]
        assert isinstance(output, list) and len(output) == 1, key
        check_message(output[0])
        assert output[0]["role"] == "assistant"
    assert row["preferred_output"] != row["non_preferred_output"]


def check_rft_row(row: dict[str, Any]) -> None:
    check_messages(row["messages"])
    assert row["messages"][-1]["role"] in {"user", "developer"}
    assert "reference" in row and row["reference"] is not None
    check_tools(row)
