"""Build the memory benchmark's labelled set and semantic-cache stream (bench/data/memory/).

    .venv/bin/python bench/data/build_memory_set.py [--out bench/data/memory]

Deterministic (fixed seed, no network, no model): the same files every run, which a test
checks. How the set is made and what each query kind tests: bench/data/memory/README.md.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory_material import (  # noqa: E402
    ARTICLES,
    FAMILIES,
    FAMILY_PREFIXES,
    FAULTS,
    FIRST_NAMES,
    LAST_NAMES,
    ROLES,
    SITES,
    TEAMS,
    Fault,
)

SEED = 4471
OUT = Path(__file__).resolve().parent / "memory"
MODELS_PER_FAMILY = 8
PEOPLE = 150
INCIDENTS = 200
KEYWORD_QUERIES = 110
MIXED_QUERIES = 100
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
CHANNELS = ("help-it", "ops-floor", "people-ops", "quality", "field-service", "facilities")


@dataclass(frozen=True)
class Product:
    family: str
    kind: str
    model: str
    part: str
    predecessor: str
    errors: dict[str, str]  # fault key -> error code


class Numbers:
    """Unique digit strings: no number means two things anywhere in the set, so a query's
    number points at exactly the passages meant."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def draw(self, digits: int) -> str:
        while True:
            value = str(self.rng.randrange(10 ** (digits - 1), 10**digits))
            if value not in self.used:
                self.used.add(value)
                return value


def words(text: str) -> int:
    return len(text.split())


def make_products(rng: random.Random, numbers: Numbers) -> list[Product]:
    products = []
    for family in FAMILIES:
        for _ in range(MODELS_PER_FAMILY):
            prefix = rng.choice(FAMILY_PREFIXES)
            errors = {fault.key: f"E-{numbers.draw(4)}" for fault in FAULTS}
            products.append(Product(
                family.name, family.kind, f"{prefix}-{numbers.draw(4)}",
                f"{numbers.draw(3)}-{numbers.draw(6)}", f"{rng.choice(FAMILY_PREFIXES)}-"
                f"{numbers.draw(4)}", errors))
    return products


CLOSINGS = (
    "If the fault returns within a day, open a ticket with Field Service and attach the event "
    "history export.",
    "Units under warranty can be exchanged at the {site} depot; quote the serial number from "
    "the rating plate.",
    "Technicians record the action taken in the maintenance history of the asset.",
    "The same code is raised on every hardware revision of this model.",
    "Escalate to the {site} applications engineers if two corrective attempts fail.",
)


def fault_passage(rng: random.Random, product: Product, fault: Fault) -> str:
    err = product.errors[fault.key]
    desc = rng.choice(fault.descriptions)
    name = f"{product.family} {product.model} {product.kind}"
    intro = rng.choice((
        f"{err} on the {name}: {desc}.",
        f"{name}, fault {err}. Meaning: {desc}.",
        f"When a {product.model} ({product.family} {product.kind}) reports {err}, {desc}.",
        f"Fault code {err} ({name}) indicates that {desc}.",
    ))
    closing = rng.choice(CLOSINGS).format(site=rng.choice(SITES))
    return (f"{intro} Cause: {rng.choice(fault.causes)} Remedy: {rng.choice(fault.fixes)} "
            f"{closing}")


def spec_passage(rng: random.Random, product: Product, spec: str) -> str:
    lo = rng.choice((1, 2, 5, 10, 20))
    hi = lo * rng.choice((10, 20, 50, 100))
    return (
        f"{product.family} {product.model} {product.kind}, part number {product.part}. "
        f"{spec.format(lo=lo, hi=hi)} It runs from 24 V DC, is sealed to "
        f"IP{rng.choice((65, 66, 67, 68))} and operates in ambient temperatures from "
        f"-{rng.choice((10, 20, 25, 40))} to {rng.choice((50, 55, 60, 70))} °C. It was "
        f"introduced in {rng.randrange(2012, 2026)} as the successor to the "
        f"{product.predecessor}; spare parts and mounting kits are listed in the service "
        f"portal under the same part number."
    )


def person_passage(rng: random.Random, first: str, last: str, ext: str) -> str:
    role, duty = rng.choice(ROLES)
    site = rng.choice(SITES)
    return (
        f"{first} {last} is the {role} at the {site} site, part of the {rng.choice(TEAMS)} "
        f"team. {first} {duty}. Phone extension {ext}; desk in building "
        f"{rng.choice('ABCDEFG')}, reachable on the #{rng.choice(CHANNELS)} channel. Usual "
        f"hours are {rng.choice((7, 8, 9))}:00 to {rng.choice((15, 16, 17))}:30, and cover is "
        f"arranged through the {site} front office when {first} is away."
    )


def incident_passage(rng: random.Random, inc: str, product: Product, fault: Fault) -> str:
    day = f"{rng.randrange(1, 29)} {rng.choice(MONTHS)} {rng.randrange(2022, 2027)}"
    return (
        f"{inc}, {day}, {rng.choice(SITES)} plant. The {product.family} {product.model} "
        f"{product.kind} on line {rng.randrange(1, 12)} reported {product.errors[fault.key]}: "
        f"{rng.choice(fault.descriptions)}. Action: {fault.fixes[1]} Downtime was "
        f"{rng.randrange(1, 9)} hours; {rng.choice(TEAMS)} closed the ticket after a "
        f"follow-up check the next shift."
    )


def article_passage(rng: random.Random, title: str, text: str) -> str:
    return (f"{title}. {text} Owner: {rng.choice(TEAMS)}. Last reviewed "
            f"{rng.choice(MONTHS)} {rng.randrange(2023, 2027)}; questions go to the "
            f"#{rng.choice(CHANNELS)} channel. It applies at all {len(SITES)} sites unless a "
            f"local agreement says otherwise.")


def build_set(rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    numbers = Numbers(rng)
    products = make_products(rng, numbers)
    spec_of = {f.name: f.spec for f in FAMILIES}
    faults = {f.key: f for f in FAULTS}
    passages: list[dict[str, Any]] = []

    def add(text: str, topic: str, **fields: str) -> int:
        passages.append({"text": text, "topic": topic, **fields})
        return len(passages) - 1

    fault_at: dict[tuple[str, str], int] = {}
    spec_at: dict[str, int] = {}
    for product in products:
        spec_at[product.model] = add(spec_passage(rng, product, spec_of[product.family]), "spec",
                                     product=product.model)
        for fault in FAULTS:
            fault_at[product.model, fault.key] = add(
                fault_passage(rng, product, fault), "fault", product=product.model,
                fault=fault.key)

    people: list[tuple[str, str, str, int]] = []
    names = [(f, s) for f in FIRST_NAMES for s in LAST_NAMES]
    for first, last in rng.sample(names, PEOPLE):
        ext = numbers.draw(5)
        people.append((first, last, ext, add(person_passage(rng, first, last, ext), "person")))

    incidents_of: dict[tuple[str, str], list[int]] = {}
    incidents: list[tuple[str, int]] = []
    by_model = {p.model: p for p in products}
    while len(incidents) < INCIDENTS:
        product, fault = rng.choice(products), rng.choice(FAULTS)
        if len(incidents_of.get((product.model, fault.key), [])) >= 2:
            continue
        inc = f"INC-{numbers.draw(5)}"
        at = add(incident_passage(rng, inc, product, fault), "incident", product=product.model,
                 fault=fault.key)
        incidents_of.setdefault((product.model, fault.key), []).append(at)
        incidents.append((inc, at))

    article_at = [add(article_passage(rng, a.title, a.text), "policy") for a in ARTICLES]

    queries: list[dict[str, Any]] = []

    def ask(query: str, kind: str, relevant: Sequence[int]) -> None:
        queries.append({"query": query, "kind": kind, "relevant": list(relevant)})

    # keyword: the answer hinges on one rare exact token (a code, a name, a number)
    pairs = list(fault_at)
    for i in range(KEYWORD_QUERIES):
        slot = i % 5
        if slot in (0, 1):
            model, key = rng.choice(pairs)
            err = by_model[model].errors[key]
            template = rng.choice(("What does {} mean?", "error {}", "meaning of fault {}",
                                   "{} fault code"))
            ask(template.format(err), "keyword",
                [fault_at[model, key], *incidents_of.get((model, key), [])])
        elif slot == 2:
            product = rng.choice(products)
            if rng.random() < 0.5:
                ask(f"part number {product.part}", "keyword", [spec_at[product.model]])
            else:
                ask(f"What replaced the {product.predecessor}?", "keyword",
                    [spec_at[product.model]])
        elif slot == 3:
            first, last, ext, at = rng.choice(people)
            template = rng.choice(("Who is {first} {last}?", "{first} {last} contact",
                                   "whose phone extension is {ext}?"))
            ask(template.format(first=first, last=last, ext=ext), "keyword", [at])
        else:
            inc, at = rng.choice(incidents)
            ask(rng.choice(("{}", "what happened in {}?", "summary of {}")).format(inc),
                "keyword", [at])

    # paraphrase: meaning only, no shared content word
    for article, at in zip(ARTICLES, article_at, strict=True):
        for question in article.questions:
            ask(question, "paraphrase", [at])

    # mixed: the model code narrows to one instrument, the paraphrased symptom to one fault
    with_incidents = [p for p in pairs if p in incidents_of]
    for i in range(MIXED_QUERIES):
        model, key = rng.choice(with_incidents if i % 3 == 0 else pairs)
        symptom = rng.choice(faults[key].questions)
        template = rng.choice(("My {m} {s}.", "The {m} {s}, what now?",
                               "Why is it that our {m} {s}?", "{m} {s}"))
        ask(template.format(m=model, s=symptom), "mixed",
            [fault_at[model, key], *incidents_of.get((model, key), [])])

    return finalise(rng, passages, queries)


def finalise(rng: random.Random, passages: list[dict[str, Any]],
             queries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Shuffle, so ids and file order say nothing about topic, then number everything."""
    order = list(range(len(passages)))
    rng.shuffle(order)
    new_id = {old: f"p{new:05d}" for new, old in enumerate(order)}
    out_passages = [{"id": new_id[old], **passages[old]} for old in order]
    rng.shuffle(queries)
    out_queries = [
        {"id": f"q{i:04d}", "query": q["query"], "kind": q["kind"],
         "relevant": sorted(new_id[r] for r in q["relevant"])}
        for i, q in enumerate(queries)
    ]
    return out_passages, out_queries


# ---- the semantic-cache stream -------------------------------------------------------------

COUNTRIES = ("Norway", "Portugal", "Canada", "Japan", "Kenya", "Chile", "Poland", "Ireland",
             "Mexico", "Vietnam", "Austria", "Morocco", "Finland", "Peru")
GROUPS = ("employees", "contractors", "interns", "visitors", "temporary staff", "auditors",
          "new hires", "managers", "suppliers", "consultants")
ITEMS = ("taxi fares", "hotel minibar charges", "client dinners", "airport lounge passes",
         "train tickets", "gym memberships", "parking fees", "mobile roaming charges",
         "conference tickets", "laundry costs", "rental cars", "home office chairs")
CACHE_ROLES = tuple(role for role, _ in ROLES)
# How often each family seeds the stream: more of those whose near-misses carry no digit
# (another site, group or item; a negation or antonym), which only the embedding can tell.
WEIGHTS = {"error": 1.0, "temperature": 1.5, "accessories": 1.5, "person": 2.0, "leave": 0.7,
           "convert": 0.7, "shipping": 1.5, "ticket": 0.5, "firmware": 0.7, "vpn": 1.5,
           "expenses": 2.0}

# family -> variant -> phrasings; a variant changes what is asked (negation, antonym, ...)
PHRASINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "error": {"": ("What does error {err} mean on the {model}?",
                   "Explain fault code {err} on my {model}.",
                   "My {model} is showing {err}. What does that mean?")},
    "temperature": {
        "max": ("What is the maximum operating temperature of the {model}?",
                "How hot can the {model} get before it is outside its rated range?",
                "What's the upper ambient limit for the {model}?"),
        "min": ("What is the minimum operating temperature of the {model}?",
                "How cold can the {model} get before it is outside its rated range?",
                "What's the lower ambient limit for the {model}?")},
    "accessories": {
        "yes": ("Which accessories are compatible with the {model}?",
                "What add-ons work with the {model}?",
                "List the accessories I can use with a {model}."),
        "no": ("Which accessories are not compatible with the {model}?",
               "What add-ons don't work with the {model}?",
               "List the accessories I cannot use with a {model}.")},
    "person": {"": ("Who is the {role} at the {site} site?",
                    "Which person is our {role} in {site}?",
                    "Tell me who the {role} for {site} is.")},
    "leave": {"": ("How many vacation days do employees get after {years} years of service?",
                   "After {years} years at the company, what is the annual leave entitlement?",
                   "What's the holiday allowance for someone with {years} years of service?")},
    "convert": {
        "eur": ("Convert {amount} euros to US dollars.", "How much is {amount} EUR in USD?",
                "What is {amount} euros in dollars?"),
        "usd": ("Convert {amount} US dollars to euros.", "How much is {amount} USD in EUR?",
                "What is {amount} dollars in euros?")},
    "shipping": {
        "standard": ("How long does standard shipping to {country} take?",
                     "What's the standard delivery time to {country}?",
                     "How many days does a normal parcel take to reach {country}?"),
        "express": ("How long does express shipping to {country} take?",
                    "What's the express delivery time to {country}?",
                    "How many days does an expedited parcel take to reach {country}?")},
    "ticket": {"": ("What is the status of ticket {inc}?", "Any update on {inc}?",
                    "Where are we with incident {inc}?")},
    "firmware": {"": ("Is firmware {fw} safe to install on the {model}?",
                      "Can I upgrade the {model} to firmware {fw}?",
                      "Should I put firmware {fw} on my {model}?")},
    "vpn": {"": ("Can {group} use the VPN from home?",
                 "Are {group} allowed to connect to the VPN remotely?",
                 "Is remote VPN access available to {group}?")},
    "expenses": {
        "yes": ("Are {item} reimbursable?", "Can I expense {item}?",
                "Will the company pay me back for {item}?"),
        "no": ("Which {item} are not reimbursable?", "Which {item} can't I expense?",
               "Which {item} will the company not pay me back for?")},
}


@dataclass(frozen=True)
class Intent:
    family: str
    variant: str
    slots: tuple[tuple[str, str], ...]

    def text(self, phrasing: int) -> str:
        return PHRASINGS[self.family][self.variant][phrasing].format(**dict(self.slots))


def fill(rng: random.Random, family: str, product: Product) -> dict[str, str]:
    if family == "error":
        return {"err": rng.choice(list(product.errors.values())), "model": product.model}
    if family in ("temperature", "accessories"):
        return {"model": product.model}
    if family == "firmware":
        return {"fw": f"{rng.randrange(3, 6)}.{rng.randrange(0, 10)}", "model": product.model}
    if family == "person":
        return {"role": rng.choice(CACHE_ROLES), "site": rng.choice(SITES)}
    if family == "leave":
        return {"years": str(rng.randrange(1, 31))}
    if family == "convert":
        return {"amount": str(rng.choice((1, 5, 10, 25)) * rng.choice((4, 15, 30, 60, 120, 480)))}
    if family == "shipping":
        return {"country": rng.choice(COUNTRIES)}
    if family == "ticket":
        return {"inc": f"INC-{rng.randrange(30000, 30400)}"}
    if family == "vpn":
        return {"group": rng.choice(GROUPS)}
    return {"item": rng.choice(ITEMS)}


def intents(rng: random.Random, products: Sequence[Product],
            families: Sequence[str] = tuple(PHRASINGS)) -> Iterator[Intent]:
    """Random requests of these families, with their slots filled."""
    weights = [WEIGHTS[f] for f in families]
    while True:
        family = rng.choices(families, weights)[0]
        variant = rng.choice(list(PHRASINGS[family]))
        slots = fill(rng, family, rng.choice(products))
        yield Intent(family, variant, tuple(sorted(slots.items())))


def neighbour(rng: random.Random, intent: Intent, fresh: Intent) -> tuple[Intent, str]:
    """A request close to `intent` that asks something else: another variant (negation,
    antonym, direction) or one slot taken from `fresh`, a random request of the same family."""
    variants = [v for v in PHRASINGS[intent.family] if v != intent.variant]
    mine, theirs = dict(intent.slots), dict(fresh.slots)
    changed = [k for k in mine if mine[k] != theirs[k]]
    if variants and (not changed or rng.random() < 0.6):
        kind = {"temperature": "antonym", "accessories": "negation", "expenses": "negation",
                "convert": "direction", "shipping": "option"}[intent.family]
        return Intent(intent.family, rng.choice(variants), intent.slots), kind
    if not changed:
        return intent, "same"
    key = rng.choice(changed)
    mine[key] = theirs[key]
    kind = {"err": "code", "model": "code", "inc": "code", "fw": "number", "years": "number",
            "amount": "number", "role": "entity", "site": "entity", "country": "entity",
            "group": "entity", "item": "entity"}[key]
    return Intent(intent.family, intent.variant, tuple(sorted(mine.items()))), kind


def build_stream(rng: random.Random, seeds: int = 200) -> list[dict[str, Any]]:
    products = make_products(rng, Numbers(rng))
    source = intents(rng, products)
    same_family = {f: intents(rng, products, (f,)) for f in PHRASINGS}
    events: list[tuple[float, Intent, int, str]] = []
    seen: set[Intent] = set()
    made = 0
    while made < seeds:
        intent = next(source)
        if intent in seen:
            continue
        seen.add(intent)
        made += 1
        at = rng.random()
        first, other = rng.sample(range(3), 2)
        events.append((at, intent, first, "new"))
        if rng.random() < 0.7:
            events.append((at + rng.uniform(0.005, 0.3), intent, other, "paraphrase"))
        for _ in range(rng.choice((2, 2, 3))):
            for _ in range(10):  # a request not asked before, or it would be a paraphrase
                fresh = next(f for f in same_family[intent.family] if f.variant == intent.variant)
                near, kind = neighbour(rng, intent, fresh)
                if near not in seen:
                    seen.add(near)
                    events.append((at + rng.uniform(-0.1, 0.3), near, rng.randrange(3), kind))
                    break
    events.sort(key=lambda e: e[0])
    first_id: dict[Intent, str] = {}
    stream: list[dict[str, Any]] = []
    for i, (_, intent, phrasing, kind) in enumerate(events):
        rid = f"r{i:04d}"
        earlier = first_id.get(intent)
        stream.append({"id": rid, "request": intent.text(phrasing), "paraphrase_of": earlier,
                       "change": "paraphrase" if earlier else kind,
                       "intent": f"{intent.family}/{intent.variant}/"
                                 + ",".join(v for _, v in intent.slots)})
        first_id.setdefault(intent, rid)
    return stream


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def build(out: Path) -> None:
    passages, queries = build_set(random.Random(SEED))
    stream = build_stream(random.Random(SEED + 1))
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "passages.jsonl", passages)
    write_jsonl(out / "queries.jsonl", queries)
    write_jsonl(out / "cache_stream.jsonl", stream)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build bench/data/memory/ (deterministic).")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    build(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
