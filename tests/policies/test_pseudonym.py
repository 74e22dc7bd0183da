"""Pseudonymisation: stable placeholders per episode, and a request's values revealed only to it.

The isolation tests replay the failures of LiteLLM's `output_parse_pii` (issue 14516, PR 19950:
one token table shared across requests unmasks stale or wrong values; issue 31959: per-message
counters give one value two tokens and two values one token) and LLM Guard's shared `Vault`
(issue 131: not thread-safe; PR 82: two anonymisations before a deanonymisation mix up values).
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import threading
from collections.abc import Iterable
from typing import Any

import orjson
import pytest

from tests.conftest import in_threads
from veteran.policies.entities import Finding
from veteran.policies.pseudonym import Masking, Vault, Vaults, entity_tag
from veteran.policies.walk import JsonText, map_request, request_texts, unescaped

ALICE = "alice@example.com"
BOB = "bob@example.org"
PHONE = "+44 20 7946 0958"
GLOBEX = "Globex"
ENTITIES = {ALICE: "email", BOB: "email", PHONE: "phone", GLOBEX: "customer"}


def findings(text: str, values: dict[str, str] = ENTITIES) -> list[Finding]:
    """Hand-made detector: every occurrence of the given values, sorted."""
    found = []
    for value, entity in values.items():
        at = text.find(value)
        while at >= 0:
            found.append(Finding(entity, at, at + len(value), value))
            at = text.find(value, at + len(value))
    return sorted(found, key=lambda f: f.start)


def mask(masking: Masking, text: str, values: dict[str, str] = ENTITIES) -> str:
    return masking.mask(text, findings(text, values))


# --- Vault and Vaults ---------------------------------------------------------------------


def test_the_same_value_gets_the_same_placeholder_and_counters_are_per_entity() -> None:
    vault = Vault()
    assert vault.placeholder("email", ALICE) == "<EMAIL_1>"
    assert vault.placeholder("email", BOB) == "<EMAIL_2>"
    assert vault.placeholder("phone", PHONE) == "<PHONE_1>"
    assert vault.placeholder("customer", GLOBEX) == "<CUSTOMER_1>"
    assert vault.placeholder("email", ALICE) == "<EMAIL_1>"
    assert vault.placeholder("email", "Alice@example.com") == "<EMAIL_3>"  # values are exact


def test_entity_names_become_placeholder_names_the_reveal_pattern_matches() -> None:
    assert entity_tag("credit-card") == "CREDIT_CARD"
    assert entity_tag("us_ssn") == "US_SSN"
    assert entity_tag("2fa") == "ENTITY_2FA"
    vault = Vault()
    masking = Masking(vault)
    masked = masking.mask("code 123456", [Finding("2fa code", 5, 11, "123456")])
    assert masked == "code <ENTITY_2FA_CODE_1>"
    assert masking.reveal().text(masked) == "code 123456"


def test_placeholders_are_stable_across_the_requests_of_an_episode() -> None:
    vaults = Vaults()
    first = Masking(vaults.get("key-1", "ep-1"))
    assert mask(first, f"mail {ALICE}") == "mail <EMAIL_1>"
    second = Masking(vaults.get("key-1", "ep-1"))
    assert mask(second, f"mail {BOB} and {ALICE}") == "mail <EMAIL_2> and <EMAIL_1>"


def test_episodes_and_scopes_have_independent_vaults() -> None:
    vaults = Vaults()
    one = vaults.get("key-1", "ep-1")
    assert vaults.get("key-1", "ep-1") is one
    assert vaults.get("key-1", "ep-2") is not one
    assert vaults.get("key-2", "ep-1") is not one
    assert vaults.get("", "ep-1") is not one
    one.placeholder("email", ALICE)
    assert vaults.get("key-2", "ep-1").placeholder("email", BOB) == "<EMAIL_1>"
    assert len(vaults) == 4


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_vault_expires_ttl_seconds_after_its_last_use() -> None:
    clock = Clock()
    vaults = Vaults(ttl=60.0, clock=clock)
    kept = vaults.get("k", "kept")
    dropped = vaults.get("k", "dropped")
    clock.now += 59.0
    assert vaults.get("k", "kept") is kept  # used again: its hour starts over
    clock.now += 59.0
    assert vaults.get("k", "kept") is kept
    assert vaults.get("k", "dropped") is not dropped  # unused for 118 s: a fresh vault
    clock.now += 60.0
    fresh = vaults.get("k", "kept")
    assert fresh is not kept
    assert fresh.placeholder("email", BOB) == "<EMAIL_1>"
    assert len(vaults) == 1


def test_the_least_recently_used_vault_goes_first_beyond_max_episodes() -> None:
    vaults = Vaults(max_episodes=3)
    a, b, c = (vaults.get("k", e) for e in "abc")
    assert vaults.get("k", "a") is a  # a is now the most recent, b the least
    vaults.get("k", "d")
    assert len(vaults) == 3
    assert vaults.get("k", "a") is a and vaults.get("k", "c") is c
    assert vaults.get("k", "b") is not b


def test_vaults_refuse_nonsense_bounds() -> None:
    with pytest.raises(ValueError):
        Vaults(max_episodes=0)
    with pytest.raises(ValueError):
        Vaults(ttl=0)


# --- Masking --------------------------------------------------------------------------------


def test_masking_replaces_spans_and_counts_occurrences() -> None:
    masking = Masking(Vault())
    assert not masking.masked and masking.counts == {}
    text = f"{ALICE} at {GLOBEX}, copy {ALICE}; call {PHONE}"
    masked = mask(masking, text)
    assert masked == "<EMAIL_1> at <CUSTOMER_1>, copy <EMAIL_1>; call <PHONE_1>"
    assert masking.masked
    assert masking.counts == {"email": 2, "customer": 1, "phone": 1}
    assert masking.reveal().text(masked) == text
    assert mask(masking, "nothing here") == "nothing here"


def test_overlapping_or_unsorted_findings_are_merged_never_skipped() -> None:
    masking = Masking(Vault())
    text = "id 12345678 and x@y.z"
    unsorted = [Finding("email", 16, 21, "x@y.z"), Finding("number", 3, 11, "12345678"),
                Finding("phone", 5, 11, "345678"), Finding("empty", 2, 2, "")]
    masked = masking.mask(text, unsorted)
    assert masked == "id <NUMBER_1> and <EMAIL_1>"
    assert masking.reveal().text(masked) == text


def test_the_same_value_in_several_messages_of_one_request_gets_one_placeholder() -> None:
    """LiteLLM 31959: counters restarted per message gave one person two tokens and two people
    one token, so unmasking restored the wrong person."""
    masking = Masking(Vault())
    body = {"messages": [{"role": "user", "content": f"I am {ALICE}"},
                         {"role": "assistant", "content": "Noted."},
                         {"role": "user", "content": f"my colleague is {BOB}, not {ALICE}"}]}
    masked = map_request(body, lambda t: mask(masking, t))
    assert list(request_texts(masked)) == [
        "I am <EMAIL_1>", "Noted.", "my colleague is <EMAIL_2>, not <EMAIL_1>"]
    reveal = masking.reveal()
    assert reveal.text("<EMAIL_2> wrote to <EMAIL_1>") == f"{BOB} wrote to {ALICE}"


# --- Isolation ----------------------------------------------------------------------------


def test_a_request_never_reveals_another_requests_placeholder() -> None:
    """LiteLLM 14516 / PR 19950: a shared token table unmasked values of other requests."""
    vaults = Vaults()
    a = Masking(vaults.get("k", "ep"))
    assert mask(a, f"write to {ALICE}") == "write to <EMAIL_1>"
    b = Masking(vaults.get("k", "ep"))
    assert mask(b, f"write to {BOB}") == "write to <EMAIL_2>"
    answer = "Sent to <EMAIL_2>; <EMAIL_1> was not asked for"
    assert b.reveal().text(answer) == f"Sent to {BOB}; <EMAIL_1> was not asked for"
    assert a.reveal().text(answer) == f"Sent to <EMAIL_2>; {ALICE} was not asked for"


def test_a_placeholder_in_the_prompt_of_a_later_request_stays_literal() -> None:
    vaults = Vaults()
    a = Masking(vaults.get("k", "ep"))
    mask(a, f"I am {ALICE}")
    b = Masking(vaults.get("k", "ep"))
    prompt = "What does <EMAIL_1> stand for? Repeat it."
    assert mask(b, prompt) == prompt
    assert not b.masked
    reveal = b.reveal()
    assert reveal.text("It stands for <EMAIL_1>.") == "It stands for <EMAIL_1>."
    completion = {"choices": [{"index": 0, "message": {"role": "assistant",
                                                       "content": "<EMAIL_1>"}}]}
    assert reveal.response(completion) == completion


def test_a_user_typed_placeholder_with_no_value_in_the_request_stays_literal() -> None:
    masking = Masking(Vaults().get("k", "fresh"))
    assert mask(masking, "echo <EMAIL_1> and <PHONE_1>") == "echo <EMAIL_1> and <PHONE_1>"
    assert masking.reveal().text("<EMAIL_1> <PHONE_1>") == "<EMAIL_1> <PHONE_1>"


def test_two_maskings_before_either_reveal_keep_their_own_values() -> None:
    """LLM Guard PR 82: two anonymisations before the deanonymisation mixed the vault up."""
    vault = Vault()
    a, b = Masking(vault), Masking(vault)
    text_a = f"user {ALICE}, phone {PHONE}"
    text_b = f"user {BOB}, phone {PHONE}, copy {ALICE}"
    masked_a, masked_b = mask(a, text_a), mask(b, text_b)
    assert masked_a == "user <EMAIL_1>, phone <PHONE_1>"
    assert masked_b == "user <EMAIL_2>, phone <PHONE_1>, copy <EMAIL_1>"
    assert b.reveal().text(masked_b) == text_b
    assert a.reveal().text(masked_a) == text_a
    assert a.reveal().text(masked_b) == f"user <EMAIL_2>, phone {PHONE}, copy {ALICE}"


def test_other_episodes_and_scopes_numbering_the_same_never_cross() -> None:
    vaults = Vaults()
    mine = Masking(vaults.get("key-1", "ep"))
    theirs = Masking(vaults.get("key-2", "ep"))  # the same episode id, guessed by another key
    other = Masking(vaults.get("key-1", "ep-2"))
    assert mask(mine, ALICE) == mask(theirs, BOB) == mask(other, PHONE, {PHONE: "email"})
    assert mine.reveal().text("<EMAIL_1>") == ALICE
    assert theirs.reveal().text("<EMAIL_1>") == BOB
    assert other.reveal().text("<EMAIL_1>") == PHONE


def test_a_reveal_is_a_snapshot_of_what_was_masked_when_it_was_made() -> None:
    masking = Masking(Vault())
    mask(masking, ALICE)
    early = masking.reveal()
    mask(masking, BOB)
    assert early.text("<EMAIL_1> <EMAIL_2>") == f"{ALICE} <EMAIL_2>"
    assert masking.reveal().text("<EMAIL_1> <EMAIL_2>") == f"{ALICE} {BOB}"


def test_garbled_placeholders_stay_as_the_model_wrote_them() -> None:
    masking = Masking(Vault())
    mask(masking, ALICE)
    text = "<EMAIL_ 1> <email_1> <EMAIL_1 <EMAIL1> EMAIL_1> <<EMAIL_1>>"
    assert masking.reveal().text(text) == (
        f"<EMAIL_ 1> <email_1> <EMAIL_1 <EMAIL1> EMAIL_1> <{ALICE}>")


def test_response_reveals_content_refusal_and_tool_arguments_of_every_choice() -> None:
    masking = Masking(Vault())
    mask(masking, f"{ALICE} {PHONE}")
    completion = {"id": "x", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "to <EMAIL_1>",
                                 "refusal": None}},
        {"index": 1, "message": {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c", "type": "function", "function": {
                "name": "call", "arguments": '{"n": "<PHONE_1>", "m": "<EMAIL_9>"}'}}]}},
        {"index": 2, "message": {"role": "assistant", "content": None,
                                 "refusal": "not <PHONE_1>"}},
    ]}
    before = copy.deepcopy(completion)
    revealed = masking.reveal().response(completion)
    assert completion == before
    assert revealed["choices"][0]["message"]["content"] == f"to {ALICE}"
    assert revealed["choices"][1]["message"]["tool_calls"][0]["function"]["arguments"] == (
        f'{{"n": "{PHONE}", "m": "<EMAIL_9>"}}')
    assert revealed["choices"][2]["message"]["refusal"] == f"not {PHONE}"


# --- Concurrency --------------------------------------------------------------------------

POOL = {f"user{i}@example.com": "email" for i in range(40)} | {
    f"+1 415 555 {i:04d}": "phone" for i in range(20)}


def test_threads_sharing_a_vault_get_one_mapping_and_reveal_only_their_own() -> None:
    """LLM Guard 131: its vault is an unsynchronised list shared by every request."""
    vault = Vault()
    barrier = threading.Barrier(16)
    seen: list[dict[str, str]] = []
    failures: list[str] = []
    everything = "|".join(f"<EMAIL_{i}>|<PHONE_{i}>" for i in range(1, 41))

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        mine: dict[str, str] = {}
        barrier.wait()
        for _ in range(100):
            values = rng.sample(sorted(POOL), 5)
            masking = Masking(vault)
            text = " | ".join(values)
            masked = mask(masking, text, POOL)
            reveal = masking.reveal()
            if reveal.text(masked) != text:
                failures.append(f"{text!r} -> {masked!r} -> {reveal.text(masked)!r}")
            for value, placeholder in zip(values, masked.split(" | "), strict=True):
                mine[value] = placeholder
            # Every placeholder of the vault in one text: only this request's come back.
            restored = set(reveal.text(everything).split("|")) - set(everything.split("|"))
            if restored != set(values):
                failures.append(f"revealed {restored - set(values)}")
        seen.append(mine)

    assert in_threads(worker, 16) == []
    assert failures == []
    merged: dict[str, str] = {}
    for mine in seen:
        for value, placeholder in mine.items():
            assert merged.setdefault(value, placeholder) == placeholder  # one mapping for all
    assert len(set(merged.values())) == len(merged)  # and no placeholder for two values
    assert {p for p in merged.values() if p.startswith("<PHONE_")} == {
        f"<PHONE_{i}>" for i in range(1, 21)}


def test_concurrent_tasks_reveal_only_their_own_values() -> None:
    vault = Vault()

    async def request(value: str) -> tuple[str, str]:
        masking = Masking(vault)
        masked = mask(masking, f"send to {value}", {value: "email"})
        await asyncio.sleep(0)  # the other requests mask in between
        reveal = masking.reveal()
        return masked, reveal.text("to <EMAIL_1> <EMAIL_2> <EMAIL_3> <EMAIL_4> <EMAIL_5>")

    async def main() -> list[tuple[str, str]]:
        return await asyncio.gather(*(request(v) for v in [ALICE, BOB, ALICE, "c@d.e", BOB]))

    results = asyncio.run(main())
    placeholders = {ALICE: "<EMAIL_1>", BOB: "<EMAIL_2>", "c@d.e": "<EMAIL_3>"}
    for value, (masked, revealed) in zip([ALICE, BOB, ALICE, "c@d.e", BOB], results, strict=True):
        assert masked == f"send to {placeholders[value]}"
        expected = "to <EMAIL_1> <EMAIL_2> <EMAIL_3> <EMAIL_4> <EMAIL_5>".replace(
            placeholders[value], value)
        assert revealed == expected


# --- Streams ------------------------------------------------------------------------------

# Texts the model streams back, for a request whose placeholders are <EMAIL_2>, <PHONE_1> and
# <CUSTOMER_1> (<EMAIL_1> is another request's in the same episode).
SLOTS: dict[tuple[int, str | int], str] = {
    (0, "content"): "Mail <EMAIL_2> or call <PHONE_1>; é😀 <b>x</b> <EMAIL_1> <CUSTOMER_1>!",
    (0, 0): '{"to": "<EMAIL_2>", "org": "<CUSTOMER_1>", "cc": "<EMAIL_1>"}',
    (0, 1): '{"phone":"<PHONE_1>"}<',
    (1, "content"): "<CUSTOMER_1><<EMAIL_2>> <PHONE_1><PHONE_1",
}


def stream_masking() -> Masking:
    vault = Vault()
    mask(Masking(vault), ALICE)  # another request of the episode took <EMAIL_1>
    masking = Masking(vault)
    assert mask(masking, f"{BOB} {PHONE} {GLOBEX}") == "<EMAIL_2> <PHONE_1> <CUSTOMER_1>"
    return masking


def revealed_slots(masking: Masking) -> dict[tuple[int, str | int], str]:
    reveal = masking.reveal()
    return {slot: reveal.text(text) for slot, text in SLOTS.items()}


def held_tail(text: str, placeholders: Iterable[str]) -> str:
    """The longest end of `text` that is a proper beginning of one of `placeholders`."""
    for length in range(len(text), 0, -1):
        if any(len(p) > length and p.startswith(text[-length:]) for p in placeholders):
            return text[-length:]
    return ""


def slot_chunk(slot: tuple[int, str | int], text: str) -> dict[str, Any]:
    choice, field = slot
    delta: dict[str, Any] = (
        {"content": text} if field == "content"
        else {"tool_calls": [{"index": field, "function": {"arguments": text}}]})
    return {"id": "chatcmpl-9", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": choice, "delta": delta, "finish_reason": None}]}


def emitted(chunk: dict[str, Any] | None) -> dict[tuple[int, str | int], str]:
    """The texts a chunk carries, by slot."""
    out: dict[tuple[int, str | int], str] = {}
    for choice in (chunk or {}).get("choices", []):
        delta = choice.get("delta") or {}
        if delta.get("content"):
            out[(choice["index"], "content")] = delta["content"]
        for call in delta.get("tool_calls") or []:
            key = (choice["index"], call["index"])
            out[key] = out.get(key, "") + call["function"]["arguments"]
    return out


def run_stream(masking: Masking, cuts: tuple[int, ...]) -> None:
    """Streams every slot cut at `cuts` (clipped to its length), interleaved across slots and
    choices, and checks what comes out after each chunk and at the end."""
    reveal = masking.reveal()
    ours = reveal.placeholders
    stream = reveal.stream()
    done = {slot: "" for slot in SLOTS}  # what went in
    out = {slot: "" for slot in SLOTS}  # what came out
    pieces = {slot: [text[a:b] for a, b in zip((0, *cuts), (*cuts, len(text)), strict=True)]
              for slot, text in SLOTS.items()}
    first = {"id": "chatcmpl-9", "choices": [{"index": i, "delta": {"role": "assistant"},
                                              "finish_reason": None} for i in (0, 1)]}
    assert stream.chunk(first) is first
    for round_ in range(len(cuts) + 1):
        for slot in SLOTS:
            piece = pieces[slot][round_]
            held_before = held_tail(done[slot], ours)
            chunk = slot_chunk(slot, piece)
            before = copy.deepcopy(chunk)
            result = stream.chunk(chunk)
            assert chunk == before
            for key, text in emitted(result).items():
                out[key] += text
            done[slot] += piece
            # Everything but a tail that could still become one of ours is out, revealed.
            sent = done[slot][: len(done[slot]) - len(held_tail(done[slot], ours))]
            assert out[slot] == reveal.text(sent), (slot, cuts)
            if "<" not in piece and not held_before:
                assert result is chunk  # the fast path copies nothing
    for choice in (0, 1):
        finish = {"id": "chatcmpl-9", "choices": [
            {"index": choice, "delta": {}, "finish_reason": "stop"}]}
        for key, text in emitted(stream.chunk(finish)).items():
            out[key] += text
    usage = {"id": "chatcmpl-9", "choices": [], "usage": {"total_tokens": 9}}
    assert stream.chunk(usage) is usage
    assert stream.flush() is None
    assert out == revealed_slots(masking), cuts


def test_a_stream_cut_in_two_at_every_offset_reveals_everything() -> None:
    masking = stream_masking()
    longest = max(map(len, SLOTS.values()))
    for cut in range(longest + 1):
        run_stream(masking, (cut,))


@pytest.mark.slow
def test_a_stream_cut_in_three_at_every_pair_of_offsets_reveals_everything() -> None:
    masking = stream_masking()
    longest = max(map(len, SLOTS.values()))
    for first in range(longest + 1):
        for second in range(first, longest + 1):
            run_stream(masking, (first, second))


def test_a_stream_cut_in_three_around_each_placeholder() -> None:
    """The fast subset of the every-pair test: both cuts inside or next to a placeholder."""
    masking = stream_masking()
    text = SLOTS[(0, "content")]
    for placeholder in ("<EMAIL_2>", "<PHONE_1>", "<CUSTOMER_1>"):
        at = text.index(placeholder)
        span = range(at - 1, at + len(placeholder) + 2)
        for first in span:
            for second in span:
                if first <= second:
                    run_stream(masking, (first, second))


def test_a_one_character_at_a_time_stream_reveals_everything() -> None:
    masking = stream_masking()
    run_stream(masking, tuple(range(1, max(map(len, SLOTS.values())))))


def test_held_text_goes_out_with_the_finishing_chunk() -> None:
    masking = stream_masking()
    stream = masking.reveal().stream()
    out = stream.chunk(slot_chunk((0, "content"), "write to <EMA"))
    assert out["choices"][0]["delta"]["content"] == "write to "
    out = stream.chunk(slot_chunk((0, 3), '{"to": "<PHO'))
    assert out["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] == '{"to": "'
    finish = {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}],
              "usage": {"total_tokens": 5}}
    released = stream.chunk(finish)
    assert finish == {"id": "c", "choices": [{"index": 0, "delta": {},
                                              "finish_reason": "length"}],
                      "usage": {"total_tokens": 5}}
    choice = released["choices"][0]
    assert choice["finish_reason"] == "length" and released["usage"] == {"total_tokens": 5}
    assert choice["delta"]["content"] == "<EMA"
    assert choice["delta"]["tool_calls"] == [{"index": 3, "function": {"arguments": "<PHO"}}]
    assert stream.flush() is None


def test_a_finishing_chunk_that_completes_a_placeholder_reveals_it() -> None:
    stream = stream_masking().reveal().stream()
    assert emitted(stream.chunk(slot_chunk((0, "content"), "to <EMAIL_"))) == {
        (0, "content"): "to "}
    finish = {"choices": [{"index": 0, "delta": {"content": "2>"}, "finish_reason": "stop"}]}
    assert emitted(stream.chunk(finish)) == {(0, "content"): BOB}
    assert stream.flush() is None


def test_held_text_of_a_stream_cut_short_comes_from_flush() -> None:
    stream = stream_masking().reveal().stream()
    first = stream.chunk({"id": "chatcmpl-7", "model": "m", "object": "chat.completion.chunk",
                          "created": 1, "choices": [
                              {"index": 1, "delta": {"content": "hi <CUST"},
                               "finish_reason": None}]})
    assert first["choices"][0]["delta"]["content"] == "hi "
    stream.chunk({"id": "chatcmpl-7", "choices": [
        {"index": 0, "delta": {"refusal": "no <PHONE_"}, "finish_reason": None}]})
    assert stream.flush() == {
        "id": "chatcmpl-7", "choices": [
            {"index": 0, "delta": {"refusal": "<PHONE_"}, "finish_reason": None},
            {"index": 1, "delta": {"content": "<CUST"}, "finish_reason": None}]}
    assert stream.flush() is None


def test_a_tail_that_cannot_become_one_of_ours_is_not_held() -> None:
    stream = stream_masking().reveal().stream()
    for text in ("a <b", "x <EMAIL_1", "<<EMAIL_2>>", "<EMAIL_2>", "< ", "<PHONE_12"):
        out = stream.chunk(slot_chunk((0, "content"), text))
        assert out["choices"][0]["delta"]["content"] == masking_free(text)
    assert stream.flush() is None


def masking_free(text: str) -> str:
    return text.replace("<EMAIL_2>", BOB)


def test_a_stream_of_a_request_that_masked_nothing_passes_untouched() -> None:
    stream = Masking(Vault()).reveal().stream()
    chunk = slot_chunk((0, "content"), "<EMAIL_1> <EMA")
    assert stream.chunk(chunk) is chunk
    assert stream.flush() is None


def test_a_stream_never_reveals_another_requests_placeholder() -> None:
    vault = Vault()
    a, b = Masking(vault), Masking(vault)
    mask(a, ALICE)
    mask(b, BOB)
    stream = b.reveal().stream()
    texts = ["<EMAIL_", "1> and <EMAIL_", "2>"]
    out = "".join(emitted(stream.chunk(slot_chunk((0, "content"), t))).get((0, "content"), "")
                  for t in texts)
    assert out == f"<EMAIL_1> and {BOB}"


# --- Values inside JSON -------------------------------------------------------------------

ACCOUNT = "CORP\\jsmith"  # a backslash
NAMED = '"Ann" <ann@x.com>'  # quotes
KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nVTLw==\n-----END RSA PRIVATE KEY-----"
ESCAPING = {ACCOUNT: "account", NAMED: "contact", KEY: "secret"}


def json_findings(text: str) -> list[Finding]:
    """Hand-made detector over JSON: each value of ESCAPING, as the JSON writes it."""
    return findings(text, {orjson.dumps(v).decode()[1:-1]: e for v, e in ESCAPING.items()})


def test_a_value_masked_in_json_is_the_string_the_json_holds() -> None:
    vault = Vault()
    plain = Masking(vault)
    assert mask(plain, f"as {ACCOUNT} for {NAMED}", ESCAPING) == "as <ACCOUNT_1> for <CONTACT_1>"
    masking = Masking(vault)
    arguments = JsonText(orjson.dumps({"as": ACCOUNT, "to": NAMED, "key": KEY}).decode())
    masked = masking.mask(arguments, json_findings(arguments))
    assert type(masked) is str
    assert orjson.loads(masked) == {"as": "<ACCOUNT_1>", "to": "<CONTACT_1>",
                                    "key": "<SECRET_1>"}  # one value, one placeholder
    revealed = masking.reveal().text(JsonText('{"a": "<ACCOUNT_1> <CONTACT_1> <SECRET_1>"}'))
    assert orjson.loads(revealed) == {"a": f"{ACCOUNT} {NAMED} {KEY}"}
    assert masking.reveal().text("<SECRET_1>") == KEY  # real newlines in plain text


def test_a_span_that_is_not_a_json_strings_content_keeps_its_text() -> None:
    masking = Masking(Vault())
    text = JsonText('{"a": "x\\\\", "b": "y"}')  # a span across a quote, one cut after "\"
    masked = masking.mask(text, [Finding("thing", 7, 9, text[7:9]),
                                 Finding("other", 10, 17, text[10:17])])
    reveal = masking.reveal()
    assert reveal.text(masked) == text


def test_reveal_escapes_values_in_json_text_only() -> None:
    masking = Masking(Vault())
    mask(masking, f"{ACCOUNT} {NAMED} {KEY}", ESCAPING)
    reveal = masking.reveal()
    said = "<ACCOUNT_1> <CONTACT_1> <SECRET_1> <EMAIL_9>"
    assert reveal.text(said) == f"{ACCOUNT} {NAMED} {KEY} <EMAIL_9>"
    escaped = orjson.dumps(f"{ACCOUNT} {NAMED} {KEY} <EMAIL_9>").decode()[1:-1]
    assert reveal.json(said) == escaped
    assert reveal.text(JsonText(said)) == escaped
    assert reveal.json("nothing here") == "nothing here"


def test_a_response_reveals_into_arguments_that_stay_json() -> None:
    masking = Masking(Vault())
    mask(masking, f"{ACCOUNT} {NAMED} {KEY}", ESCAPING)
    arguments = '{"to": ["<ACCOUNT_1>", "<CONTACT_1>"], "key": "<SECRET_1>", "é": "Zo\\u00eb"}'
    completion = {"choices": [{"index": 0, "message": {
        "role": "assistant", "content": "for <CONTACT_1>", "function_call": {
            "name": "f", "arguments": arguments}, "tool_calls": [{
                "id": "c", "type": "function", "function": {"name": "f",
                                                            "arguments": arguments}}]}}]}
    message = masking.reveal().response(completion)["choices"][0]["message"]
    assert message["content"] == f"for {NAMED}"
    expected = {"to": [ACCOUNT, NAMED], "key": KEY, "é": "Zoë"}
    for revealed in (message["tool_calls"][0]["function"]["arguments"],
                     message["function_call"]["arguments"]):
        assert type(revealed) is str and orjson.loads(revealed) == expected


def test_streamed_arguments_stay_json_cut_at_every_offset() -> None:
    masking = Masking(Vault())
    mask(masking, f"{ACCOUNT} {NAMED} {KEY}", ESCAPING)
    arguments = '{"to": ["<ACCOUNT_1>", "<CONTACT_1>"], "key": "<SECRET_1>"}'
    content = "for <CONTACT_1> as <ACCOUNT_1>"
    for cut in range(len(arguments) + 1):
        stream = masking.reveal().stream()
        out: dict[tuple[int, str | int], str] = {(0, "content"): "", (0, 0): "", (0, "f"): ""}
        for a, b in ((0, cut), (cut, len(arguments))):
            for slot, text in (((0, "content"), content), ((0, 0), arguments)):
                for key, piece in emitted(stream.chunk(slot_chunk(slot, text[a:b]))).items():
                    out[key] += piece
            legacy = stream.chunk({"choices": [{"index": 0, "delta": {
                "function_call": {"arguments": arguments[a:b]}}, "finish_reason": None}]})
            out[(0, "f")] += legacy["choices"][0]["delta"]["function_call"]["arguments"]
        finish = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        last = stream.chunk(finish)["choices"][0]["delta"]
        out[(0, "f")] += (last.get("function_call") or {}).get("arguments", "")
        for key, piece in emitted({"choices": [{"index": 0, "delta": last}]}).items():
            out[key] += piece
        assert out[(0, "content")] == f"for {NAMED} as {ACCOUNT}", cut
        for key in ((0, 0), (0, "f")):
            assert orjson.loads(out[key]) == {"to": [ACCOUNT, NAMED], "key": KEY}, (cut, key)


def test_json_escapes_in_a_request_round_trip_through_masking_and_reveal() -> None:
    """The walk and the masking together: a tool call's arguments with \\u escapes and values
    JSON must escape reach the provider as the same JSON with placeholders, and come back."""
    values = {"Zoë Ågren": "customer", ACCOUNT: "account", KEY: "secret"}
    arguments = json.dumps({"who": "Zoë Ågren", "as": ACCOUNT, "key": KEY, "n": 1})
    assert "\\u00eb" in arguments
    body = {"messages": [{"role": "assistant", "content": None, "tool_calls": [{
        "id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}]}]}
    masking = Masking(Vault())

    def hide(text: str) -> str:
        escaped = {orjson.dumps(v).decode()[1:-1]: e for v, e in values.items()}
        return masking.mask(text, findings(text, escaped if isinstance(text, JsonText)
                                           else values))

    sent = map_request(body, hide)["messages"][0]["tool_calls"][0]["function"]["arguments"]
    assert type(sent) is str
    assert orjson.loads(sent) == {"who": "<CUSTOMER_1>", "as": "<ACCOUNT_1>",
                                  "key": "<SECRET_1>", "n": 1}
    back = masking.reveal().response({"choices": [{"index": 0, "message": {
        "role": "assistant", "tool_calls": [{"id": "c", "type": "function",
                                             "function": {"name": "f", "arguments": sent}}]}}]})
    assert orjson.loads(back["choices"][0]["message"]["tool_calls"][0]["function"][
        "arguments"]) == json.loads(arguments)
    assert list(request_texts(body)) == [JsonText(unescaped(arguments))]
