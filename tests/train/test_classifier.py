"""The `classifier` recipe: MiniLM embeddings plus a trained head, refusing free text, one head
per field of JSON answers, reproducible; and the model it makes served by the `local` provider
behind a real gateway on loopback, called with the official OpenAI SDK."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from safetensors.numpy import load_file

from tests.conftest import serve, write_workspace
from veteran.datasets.types import Example
from veteran.memory.embed import MINILM, MINILM_INT8, MiniLMEmbedder
from veteran.models import MANIFEST
from veteran.testing.embedder import HashEmbedder
from veteran.train.recipes._hf import RecipeError
from veteran.train.recipes.classifier import ClassifierRecipe
from veteran.train.types import Progress, TrainJob

TOPICS = {
    "billing": [
        "I was charged twice on my credit card", "my invoice total looks wrong",
        "please refund the duplicate payment", "why did my subscription price go up",
        "I need a copy of last month's receipt", "the payment failed but money left my account",
        "cancel the automatic renewal charge", "there is an unknown fee on my bill",
        "can I pay by bank transfer instead", "the discount code was not applied to my total",
        "you billed me after I cancelled", "update the card you charge each month"],
    "technical": [
        "the app crashes when I open settings", "I get error 500 on the dashboard",
        "the page will not load in my browser", "sync between my phone and laptop stopped",
        "the export button does nothing", "login screen freezes after the update",
        "the API returns a timeout", "notifications stopped arriving on Android",
        "the video player shows a black screen", "uploading a file fails halfway",
        "search results are empty even for exact names", "the desktop client uses all my CPU"],
    "shipping": [
        "my package has not arrived yet", "the tracking number does not work",
        "the parcel was delivered to the wrong address", "how long does delivery to Canada take",
        "the box arrived damaged", "can I change the delivery address of my order",
        "the courier left without ringing", "my order is stuck in customs",
        "do you ship to post office boxes", "express shipping took a week",
        "one item is missing from the delivery", "when will my order be dispatched"],
    "account": [
        "I forgot my password", "how do I change the email on my profile",
        "please delete my account and my data", "I cannot verify my phone number",
        "add a second user to our team workspace", "my account was locked after failed logins",
        "how do I turn on two factor authentication", "change the name shown on my profile",
        "merge my two accounts into one", "I want to download all my personal data",
        "someone else logged into my account", "transfer ownership of the workspace"],
}
FRAMES = ["{t}.", "Hi, {t}, can you help?", "Hello team - {t}!", "{t}. Thanks in advance.",
          "Urgent: {t}", "Quick question: {t}?"]
MODEL_ID = "triage-classifier-0a1b2c"


def tickets(seed: int = 0) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """72 training tickets and 36 held out; held-out tickets are about topics never trained on."""
    rng = random.Random(seed)
    train, held_out = [], []
    for label, topics in TOPICS.items():
        for i, topic in enumerate(topics):
            rows = [(frame.format(t=topic), label) for frame in rng.sample(FRAMES, 3)]
            if i % 4 == 3:
                held_out.extend(rows)
            else:
                train.extend(rows[:2])
    return train, held_out


def example(n: int, text: str, answer: str | None, **completion: Any) -> Example:
    return Example(id=f"0190{n:08d}", episode_id=f"e{n}",
                   prompt=[{"role": "system", "content": "Route the ticket."},
                           {"role": "user", "content": text}],
                   completion={"role": "assistant", "content": answer, **completion})


def job(tmp_path: Path, train: list[Example], eval: list[Example] | None = None,
        **params: Any) -> TrainJob:
    return TrainJob("triage", "classifier", train, eval or [], tmp_path / "out",
                    tmp_path / "checkpoints", params=params, seed=7)


def labelled(rows: list[tuple[str, str]], start: int = 0) -> list[Example]:
    return [example(start + i, text, label) for i, (text, label) in enumerate(rows)]


def fields_of(text: str, label: str) -> str:
    return json.dumps({"queue": label, "priority": "high" if "Urgent" in text else "normal"})


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def test_learns_the_labels_and_generalises(tmp_path: Path, minilm: MiniLMEmbedder) -> None:
    train, held_out = tickets()
    seen: list[Progress] = []
    spec = job(tmp_path, labelled(train), labelled(held_out, 1000))
    spec.progress = seen.append
    result = ClassifierRecipe(minilm).train(spec)
    assert result.kind == "classifier"
    assert result.base_model == MINILM
    assert result.metrics["train_accuracy"] >= 0.95
    assert result.metrics["eval_accuracy"] >= 0.85  # 36 tickets on topics never trained on
    assert result.metrics["examples"] == 72
    assert result.params["l2"] == 0.001
    assert [p.step for p in seen] == [1, 2] and seen[-1].total == 2
    spec_json = orjson.loads((tmp_path / "out" / "classifier.json").read_bytes())
    assert spec_json["version"] == 1
    assert spec_json["embedder"] == {"name": MINILM, "dim": 384}
    assert spec_json["input"] == "last-user-message"
    assert spec_json["heads"] == [{"field": None, "labels": list(TOPICS)}]
    weights = load_file(str(tmp_path / "out" / "classifier.safetensors"))
    assert weights["heads.0.weight"].shape == (4, 384)


@pytest.mark.parametrize(("param", "name"), [(None, MINILM_INT8), ("minilm", MINILM)])
def test_the_embedder_is_minilm_int8_unless_asked_for_the_float_one(
        tmp_path: Path, param: str | None, name: str) -> None:
    train, held_out = tickets()
    params = {} if param is None else {"embedder": param}
    result = ClassifierRecipe().train(job(tmp_path, labelled(train), labelled(held_out, 1000),
                                          **params))
    assert result.base_model == name and result.params["embedder"] == (param or "minilm-int8")
    assert result.metrics["eval_accuracy"] >= 0.85
    spec_json = orjson.loads((tmp_path / "out" / "classifier.json").read_bytes())
    assert spec_json["embedder"] == {"name": name, "dim": 384}


def test_the_same_seed_gives_the_same_weights(tmp_path: Path, minilm: MiniLMEmbedder) -> None:
    train, _ = tickets()
    for name in ("a", "b"):
        ClassifierRecipe(minilm).train(job(tmp_path / name, labelled(train)))
    a = load_file(str(tmp_path / "a" / "out" / "classifier.safetensors"))
    b = load_file(str(tmp_path / "b" / "out" / "classifier.safetensors"))
    assert a.keys() == b.keys()
    assert all((a[k] == b[k]).all() for k in a)


def test_json_answers_get_one_head_per_field(tmp_path: Path, minilm: MiniLMEmbedder) -> None:
    train, held_out = tickets()
    as_fields = [example(i, t, fields_of(t, label)) for i, (t, label) in enumerate(train)]
    held = [example(1000 + i, t, fields_of(t, label)) for i, (t, label) in enumerate(held_out)]
    result = ClassifierRecipe(minilm).train(job(tmp_path, as_fields, held))
    spec_json = orjson.loads((tmp_path / "out" / "classifier.json").read_bytes())
    assert spec_json["output"] == "json"
    assert [h["field"] for h in spec_json["heads"]] == ["queue", "priority"]
    assert spec_json["json_separators"] == [", ", ": "]
    assert result.metrics["train_accuracy"] >= 0.95
    assert result.metrics["eval_accuracy.queue"] >= 0.85
    assert result.metrics["eval_accuracy.priority"] >= 0.85
    assert result.metrics["eval_accuracy"] <= result.metrics["eval_accuracy.queue"]


def test_free_text_is_refused(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    answers = [example(i, f"question {i}", f"A long and different answer number {i}.")
               for i in range(80)]
    with pytest.raises(RecipeError, match="80 distinct answers"):
        ClassifierRecipe(embedder).train(job(tmp_path, answers))
    mostly_once = [example(i, f"q {i}", "yes" if i < 6 else f"reply {i}") for i in range(12)]
    with pytest.raises(RecipeError, match="appear only once"):
        ClassifierRecipe(embedder).train(job(tmp_path, mostly_once))
    assert embedder.calls == 0  # refused before anything is embedded


def test_unusable_data_and_params_are_refused(tmp_path: Path) -> None:
    recipe = ClassifierRecipe(HashEmbedder())
    calls = [example(i, "hi", None, tool_calls=[{"id": "1", "type": "function"}])
             for i in range(4)]
    with pytest.raises(RecipeError, match="tool calls"):
        recipe.train(job(tmp_path, calls))
    with pytest.raises(RecipeError, match="same answer"):
        recipe.train(job(tmp_path, [example(i, f"t {i}", "billing") for i in range(5)]))
    with pytest.raises(RecipeError, match="no parameter 'epochs'"):
        recipe.train(job(tmp_path, [example(0, "a", "x")], epochs=2))
    with pytest.raises(RecipeError, match="class_weight"):
        recipe.train(job(tmp_path, [example(0, "a", "x")], class_weight="heavy"))


def test_check_refuses_the_same_before_anything_is_embedded_or_written(
        tmp_path: Path) -> None:
    embedder = HashEmbedder()
    recipe = ClassifierRecipe(embedder)
    with pytest.raises(RecipeError, match="same answer"):
        recipe.check(job(tmp_path, [example(i, f"t {i}", "billing") for i in range(5)]))
    with pytest.raises(RecipeError, match="no parameter 'epochs'"):
        recipe.check(job(tmp_path, [example(0, "a", "x")], epochs=2))
    rows = [example(i, f"t {i}", "billing" if i % 2 else "sales") for i in range(6)]
    with pytest.raises(RecipeError, match="eval example .* no user message"):
        recipe.check(job(tmp_path, rows, eval=[example(9, "", "sales")]))
    recipe.check(job(tmp_path, rows))  # fit to train
    assert embedder.calls == 0 and list(tmp_path.iterdir()) == []


# Served: `model="triage"` routed to the variant `local/MODEL_ID`.


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, minilm: MiniLMEmbedder
            ) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("served")
    ws = write_workspace(root / "ws", f"""
        [providers.local]
        kind = "local"
        preload = false
        paths = {{ "{MODEL_ID}" = "models/{MODEL_ID}" }}

        [functions.triage]
        system = "Route the ticket to a queue."
        [functions.triage.variants.{MODEL_ID}]
        model = "local/{MODEL_ID}"
    """)
    folder = ws.path / "models" / MODEL_ID
    train, _ = tickets()
    # The recipe's default: the int8 encoder, which the provider loads again by its name.
    ClassifierRecipe().train(TrainJob("triage", "classifier", labelled(train), [], folder,
                                      root / "checkpoints"))
    (folder / MANIFEST).write_bytes(orjson.dumps({
        "version": 1, "id": MODEL_ID, "function": "triage", "recipe": "classifier",
        "kind": "classifier", "base_model": MINILM_INT8}))
    with serve(ws) as server:
        yield server


@pytest.fixture
def client(gateway: Any) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0) as c:
        yield c


def test_served_through_the_gateway(gateway: Any, client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="triage", messages=[{"role": "user", "content": "My card was charged twice!"}])
    answer = raw.parse()
    assert answer.choices[0].message.content == "billing"
    assert raw.headers["x-veteran-variant"] == MODEL_ID
    stored = httpx.get(f"{gateway.url}/v1/trajectories/{raw.headers['x-veteran-trajectory-id']}"
                       ).json()
    assert stored["function"] == "triage"
    assert stored["provider"] == "local" and stored["model"] == MODEL_ID
    assert stored["request"]["messages"][0] == {"role": "system",
                                                "content": "Route the ticket to a queue."}
    assert stored["response"]["choices"][0]["message"]["content"] == "billing"
    assert stored["usage"]["prompt_tokens"] > 0

    stream = client.chat.completions.create(
        model="triage", stream=True,
        messages=[{"role": "user", "content": "The tracking link for my parcel is broken"}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "shipping"
