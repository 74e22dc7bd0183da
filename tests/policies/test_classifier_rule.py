"""The classifier rule, measured: a company's own "confidential" / "public" classifier, trained
by the loop on its labelled trajectories, keeps confidential support work away from the vendor.

1. 200 short business texts (half confidential: deals, pay, unreleased products, disputes,
   credentials, restructuring; half public: opening hours, delivery, products, returns), made
   from seeded templates, go through a real gateway on loopback (the official openai SDK) to the
   function `sensitivity`, answered by a keyword-rule "teacher" (the mock provider) that is
   often wrong; a reviewer's label arrives through POST /v1/feedback (`sensitivity`, a label
   metric), and nothing else: no demonstration corrects the teacher's wrong answers.
2. The real `classifier` recipe (MiniLM int8 embeddings, a logistic head) trains on the labels
   alone (`label="sensitivity"`, `veteran train --label sensitivity`: the label is the answer
   learnt, whatever the teacher said) with `train_model` (what `veteran train` runs) and is
   promoted (served as `local/MODEL_ID`).
3. The rule `confidential-local` routes `support` calls the classifier labels confidential to
   the variant `local`; 60 held-out texts from other templates go through the gateway (most
   in-process, some through the official SDK on loopback). Every call the classifier labels
   confidential is answered by `local` and discloses it; the vendor never sees those texts.
   Precision and recall of the routing against the gold labels are printed and held >= 0.9.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import openai
import orjson
import pytest

from tests.conftest import in_process, serve, write_workspace
from veteran.datasets import Filters
from veteran.models import Registry
from veteran.store import Store
from veteran.testing.fake_upstream import FakeUpstream
from veteran.testing.server import ServerThread
from veteran.train import train_model
from veteran.train.promote import promote
from veteran.workspace import Workspace

pytestmark = pytest.mark.slow  # trains a classifier (MiniLM embeddings of 200 texts)

CONFIDENTIAL, PUBLIC = "confidential", "public"
RULE = "confidential-local"

# Slot values shared by both classes, so no single name gives a class away.
SLOTS: dict[str, list[str]] = {
    "company": ["Northwind", "Globex", "Initech", "Umbrella Labs", "Vandelay Industries",
                "Stark Logistics", "Acme Retail", "Hooli", "Wayne Foods", "Tyrell Systems"],
    "person": ["Maria", "Tom", "Priya", "Jonas", "Aiko", "Liam", "Fatima", "Carlos", "Eva",
               "Noah"],
    "amount": ["$45,000", "$120,000", "$2.3 million", "$18 per share", "$310,000", "$75,000",
               "$4.8 million", "$95,000"],
    "quarter": ["Q1", "Q2", "Q3", "Q4", "March", "the autumn", "next spring", "June"],
    "city": ["Lyon", "Denver", "Osaka", "Leeds", "Porto", "Austin", "Gdansk", "Melbourne"],
    "product": ["kettle", "hiking backpack", "desk lamp", "coffee grinder", "rain jacket",
                "standing desk", "smart thermostat", "wireless speaker", "yoga mat",
                "air fryer"],
    "pct": ["8%", "12%", "15%", "20%", "5%", "30%"],
}
OPENERS = ["", "Hi, ", "Hello team, ", "Quick one: ", "Hey, ", "Good morning. ", "FYI: "]
CLOSERS = ["", " Thanks.", " Thanks in advance!", " Cheers.", " Let me know.", " Regards."]

# Training templates: what the company has already seen and labelled.
TRAIN = {
    CONFIDENTIAL: [
        "Draft the term sheet for our acquisition of {company} at {amount} before the board "
        "vote.",
        "Keep the merger talks with {company} quiet; due diligence closes in {quarter}.",
        "Summarise the data room findings on {company} for the deal team.",
        "{person}'s salary goes up to {amount} next year; update the compensation band.",
        "List everyone in engineering paid above {amount} for the retention bonus review.",
        "Prepare the executive payroll and bonus figures for {quarter}.",
        "The unannounced {product} line launches in {quarter}; do not share the roadmap.",
        "Write internal notes on the secret prototype before the embargo lifts in {quarter}.",
        "Outline our settlement offer of {amount} in the lawsuit with {company}.",
        "Counsel says the litigation hold on {person}'s mailbox stays until the trial.",
        "Rotate the production database admin passwords and root SSH keys by {quarter}.",
        "Who has access to the vault with the payment processor credentials?",
        "The board approved cutting {pct} of staff in {city}; it is not public yet.",
        "Our unpublished {quarter} revenue forecast misses guidance by {pct}.",
    ],
    PUBLIC: [
        "What time does your {city} store open on Sundays?",
        "Are you open on public holidays in {city}?",
        "How long does standard shipping to {city} take?",
        "Do you offer free delivery on orders over {amount}?",
        "Is the {product} available in blue?",
        "Does the {product} come with a warranty card in the box?",
        "What are the dimensions of the {product}?",
        "How do I return a {product} I bought online?",
        "Can I pay with PayPal or Apple Pay?",
        "Can I buy a gift card for a friend in {city}?",
        "My {product} order has not arrived yet, can you check the tracking?",
        "Do you have the {product} in stock at the {city} branch?",
        "How do I sign up for your newsletter?",
        "Is there a student discount on the {product}?",
    ],
}
# Held-out templates: new wording the classifier never saw, on the same kinds of business.
HELD_OUT = {
    CONFIDENTIAL: [
        "Before anything is announced, model the synergies if we buy {company} for {amount}.",
        "HR needs the pay rise letter for {person}: the new base will be {amount}.",
        "Should we accept {company}'s proposal to settle the patent dispute for {amount}?",
        "The launch date of the new {product} is still under NDA; brief the sales leads "
        "internally.",
        "Send me the names of employees affected by the restructuring in {city}.",
        "Change the shared admin password for the finance servers and tell nobody by email.",
        "Investors must not hear about the {pct} drop in {quarter} margins before the call.",
        "Prepare a confidential memo on {person}'s severance package.",
        "Which law firm is handling the {company} arbitration, and what is our exposure?",
        "Forward the private board minutes about the {company} takeover bid.",
        "Draft talking points for closing the {city} office before the staff are told.",
        "What bonus pool did the compensation committee approve for {person}'s team?",
    ],
    PUBLIC: [
        "Do you deliver to {city} on Saturdays?",
        "What's the price of the {product} in your online shop?",
        "When is your customer service phone line staffed?",
        "Is there parking near your {city} shop?",
        "Can I exchange a {product} that is the wrong size?",
        "Where can I find the user manual for the {product}?",
        "Which colours does the {product} come in?",
        "Do you ship internationally, for example to {city}?",
        "How many days do I have to send back an unwanted {product}?",
        "Are your {city} opening hours different in {quarter}?",
        # Public, in words the confidential texts use too:
        "How do I reset my password for your online shop?",
        "Where can I read the annual report you published in {quarter}?",
        "Are you hiring sales staff in {city}, and how do I apply?",
    ],
}
# The teacher: a keyword-rule stand-in for a big model labelling texts, right about half the
# confidential ones only; the reviewer's labels are what is learnt.
TEACHER_RULES = {r"acquisition|merger|lawsuit|salary|payroll": CONFIDENTIAL, r".": PUBLIC}


@dataclass(frozen=True)
class Text:
    text: str
    label: str


def texts(templates: dict[str, list[str]], per_label: int, seed: int) -> list[Text]:
    """`per_label` distinct texts of each label from `templates`, every template used about
    as often, with seeded slot values, openers and closers; shuffled."""
    rng = random.Random(seed)
    out: list[Text] = []
    for label, frames in templates.items():
        made: set[str] = set()
        i = 0
        while len(made) < per_label:
            frame = frames[i % len(frames)]
            i += 1
            body = frame.format(**{k: rng.choice(v) for k, v in SLOTS.items()})
            text = rng.choice(OPENERS) + body + rng.choice(CLOSERS)
            if text not in made:
                made.add(text)
                out.append(Text(text, label))
    rng.shuffle(out)
    return out


def test_the_texts_are_seeded_balanced_and_held_out_apart() -> None:
    train, held = texts(TRAIN, 100, seed=1), texts(HELD_OUT, 30, seed=2)
    assert train == texts(TRAIN, 100, seed=1)
    assert len(train) == 200 and len(held) == 60
    assert sum(t.label == CONFIDENTIAL for t in train) == 100
    assert sum(t.label == CONFIDENTIAL for t in held) == 30
    assert not {t.text for t in train} & {t.text for t in held}


CONFIG = """
[providers.teacher]
kind = "mock"
rules = {rules}

[providers.vendor]
kind = "openai"
base_url = "{vendor}"
[providers.vendor.retry]
max_retries = 0

[providers.onprem]
kind = "mock"
reply = "answered on the company's own model"

[providers.local]
kind = "local"
preload = false

[functions.sensitivity]
system = "Is this text confidential or public? Answer with one word."
[functions.sensitivity.variants.teacher]
model = "teacher/labeller"

[functions.support]
system = "You answer the company's support and business questions."
[functions.support.variants.vendor]
model = "vendor/gpt-x"
weight = 1.0
[functions.support.variants.local]
model = "onprem/assistant"
weight = 0.0

[metrics.sensitivity]
type = "label"
labels = ["confidential", "public"]
"""
POLICY = """
[[policies]]
name = "{rule}"
action = "route"
to = "local"
match = {{ classifier = "local/{model}", label = "confidential", functions = ["support"] }}
"""


def toml_table(rules: dict[str, str]) -> str:
    return "{ " + ", ".join(f'"{k}" = "{v}"' for k, v in rules.items()) + " }"


def capture(server: ServerThread, training: list[Text]) -> int:
    """Each text to `sensitivity` through the official SDK, and the reviewer's label through
    POST /v1/feedback (nothing else). How many of the teacher's answers the label contradicts."""
    wrong = 0
    with openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0) as client, \
            httpx.Client(base_url=server.url, timeout=20) as http:
        for item in training:
            raw = client.chat.completions.with_raw_response.create(
                model="sensitivity", messages=[{"role": "user", "content": item.text}])
            wrong += raw.parse().choices[0].message.content != item.label
            http.post("/v1/feedback", json={
                "trajectory_id": raw.headers["x-veteran-trajectory-id"],
                "metric": "sensitivity", "value": item.label, "source": "reviewer",
            }).raise_for_status()
    return wrong


@dataclass
class Trained:
    ws: Workspace
    vendor: FakeUpstream
    model: str
    teacher_wrong: int  # training texts whose label contradicts the teacher's answer
    metrics: dict[str, float]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    """The loop, run once: capture, feedback, training, promotion, the rule written."""
    root = tmp_path_factory.mktemp("classifier-rule")
    with FakeUpstream() as vendor:
        ws = write_workspace(root / "ws", CONFIG.format(rules=toml_table(TEACHER_RULES),
                                                        vendor=vendor.url))
        with serve(ws) as server:
            teacher_wrong = capture(server, texts(TRAIN, 100, seed=1))
        config = ws.load_config()
        store = Store.open(ws.database_url(config))
        try:
            record = train_model(ws, config, store, "sensitivity", "classifier",
                                 filters=Filters(label="sensitivity"), params={}, seed=0,
                                 split={"train": 1.0})
            promote(ws, config, store, "sensitivity", record.id, weight=0.1, skip_gate=True)
        finally:
            store.close()
        with ws.config_path.open("a", encoding="utf-8") as f:
            f.write(POLICY.format(rule=RULE, model=record.id))
        yield Trained(ws, vendor, record.id, teacher_wrong, dict(record.metrics))


def test_the_loop_trained_on_the_reviewed_labels(trained: Trained) -> None:
    record = Registry(trained.ws.path).get(trained.model)
    assert record.kind == "classifier"
    assert 30 <= trained.teacher_wrong <= 70  # the teacher alone would not do
    assert record.lineage.dataset["filters"]["label"] == "sensitivity"
    counts = record.lineage.dataset["counts"]
    assert counts["read"] == 200 and counts["without_target"] == 0
    assert record.metrics["examples"] == counts["kept"] >= 195  # near-copies are kept once
    # What was learnt is the reviewer's label of each text, never the teacher's answer.
    gold = {t.text: t.label for t in texts(TRAIN, 100, seed=1)}
    learnt = [orjson.loads(line)["messages"] for line in
              (Registry(trained.ws.path).path(trained.model) / "dataset" / "train.jsonl")
              .read_bytes().splitlines()]
    assert len(learnt) == counts["kept"]
    assert all(m[-1]["content"] == gold[m[-2]["content"]] for m in learnt)
    assert record.metrics["train_accuracy"] >= 0.95


@dataclass(frozen=True)
class Routed:
    text: Text
    variant: str | None
    header: str | None
    trajectory: str


async def _in_process(ws: Workspace, held: list[Text]) -> list[Routed]:
    """The held-out texts through the gateway's ASGI app in this process."""
    async with in_process(ws, timeout=60) as (http, _):
        out = []
        for item in held:
            response = await http.post("/v1/chat/completions", json={
                "model": "support", "messages": [{"role": "user", "content": item.text}]})
            assert response.status_code == 200, response.text
            out.append(Routed(item, response.headers.get("x-veteran-variant"),
                              response.headers.get("x-veteran-policy"),
                              response.headers["x-veteran-trajectory-id"]))
        return out


def _through_sdk(server: ServerThread, held: list[Text]) -> list[Routed]:
    out = []
    with openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0) as client:
        for item in held:
            raw = client.chat.completions.with_raw_response.create(
                model="support", messages=[{"role": "user", "content": item.text}])
            raw.parse()
            out.append(Routed(item, raw.headers.get("x-veteran-variant"),
                              raw.headers.get("x-veteran-policy"),
                              raw.headers["x-veteran-trajectory-id"]))
    return out


def test_held_out_confidential_texts_are_answered_by_the_local_variant(
        trained: Trained) -> None:
    held = texts(HELD_OUT, 30, seed=2)
    sdk_part, in_process_part = held[:12], held[12:]
    routed = asyncio.run(_in_process(trained.ws, in_process_part))
    with serve(trained.ws) as server, httpx.Client(base_url=server.url, timeout=20) as http:
        routed += _through_sdk(server, sdk_part)
        stored = {r.trajectory: http.get(f"/v1/trajectories/{r.trajectory}").json()
                  for r in routed}
        classified = http.get("/v1/trajectories", params={"limit": 200}).json()["data"]
    for r in routed:
        record = stored[r.trajectory]
        if r.variant == "local":
            assert r.header == f"{RULE}=route:local"
            assert record["policy"] == [{"rule": RULE, "action": "route", "to": "local",
                                         "why": {"functions": True,
                                                 "classifier": CONFIDENTIAL}}]
            assert record["response"]["choices"][0]["message"]["content"] == (
                "answered on the company's own model")
        else:
            assert r.variant == "vendor" and r.header is None and record["policy"] is None
    # The vendor saw every text routed to it and none of the others.
    seen = {m["content"] for body in trained.vendor.requests for m in body["messages"]
            if m["role"] == "user"}
    assert {r.text.text for r in routed if r.variant == "vendor"} <= seen
    assert not {r.text.text for r in routed if r.variant == "local"} & seen
    # The classifier's own calls went through the call path too: captured, tagged with the rule.
    asked = [t for t in classified if t["tags"].get("policy_rule") == RULE]
    assert len(asked) >= len(routed)

    local = {r.text.text for r in routed if r.variant == "local"}
    gold = {r.text.text for r in routed if r.text.label == CONFIDENTIAL}
    hits = len(local & gold)
    precision = hits / len(local) if local else 0.0
    recall = hits / len(gold)
    print(f"\nclassifier rule on {len(routed)} held-out texts ({len(gold)} confidential): "
          f"precision {precision:.3f}, recall {recall:.3f} "
          f"(routed {len(local)}, {len(local - gold)} public routed local, "
          f"{len(gold - local)} confidential sent to the vendor)")
    assert recall >= 0.9
    assert precision >= 0.9
