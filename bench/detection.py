"""Detection quality and cost (issue 14): veteran's detector against Presidio, scrubadub and
detect-secrets on the labelled corpus (bench/policy_corpus.py), in one run.

    .venv/bin/python bench/detection.py [--json] [--no-append] [--failures FILE] [--n 3000]
                                        [--heldout SEED ...]

The shipped corpus is seed 14; veteran's detector is also scored on the corpus of a held-out
seed (15 unless --heldout says otherwise): the same templates with other names and numbers, so
a detector tuned to the shipped texts' values shows it there.

Scoring, per entity: a predicted span is a true positive when it covers at least half of a
gold span of the same entity (overlap >= 50% of the gold span's length); precision counts
predictions, recall counts gold spans (a gold span is found when some prediction covers half of
it). F2 weighs recall twice as much as precision: a missed secret costs more than a redacted
order number. Only the entities each detector claims are scored for it ("-" elsewhere); the
"structured, all" row counts every structured gold span, claimed or not. A detector's own
types with no counterpart here (Presidio's DATE_TIME, URL, US_DRIVER_LICENSE...) are dropped,
neither right nor wrong.

Throughput: the corpus's UTF-8 bytes over the wall time of one detector's pass over every text
in this one process; veteran's is the best of 3 passes (the issue's target: >= 10 MB/s per
core), the others' a single pass. The same over the process's CPU time is shown beside it: on
a busy machine the wall figure falls and that one does not. veteran's validators remember their
answers (policies/memo.py: a chat resends its history every turn); the timed passes start with
those memos cleared, as if every value were new, and the note says what a warm pass makes.

The comparators, as configured here:
- Presidio's analyzer with its default recognizer registry. Its NLP engine needs a spaCy
  pipeline and spaCy's trained pipelines are not on PyPI, so the engine wraps `spacy.blank("en")`
  (a tokenizer, no NER): every pattern recognizer runs, and PERSON/LOCATION, which come from
  spaCy's NER, are not claimed. tldextract (its e-mail check) is kept on its bundled suffix list.
- scrubadub's default `Scrubber` (locale en_US); overlapping finds it merges are unmerged.
- detect-secrets' regex plugins, each pattern run over the whole text (its ad-hoc `scan_line`
  adds the entropy plugins, which flag almost every word, and reports a capture group, not the
  key); a "BEGIN ... PRIVATE KEY" match is extended to its END line, as the gold is the block.
Company dictionaries and patterns (customers, code names, people, PRJ-dddd) are veteran's only.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shlex
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from policy_corpus import ENTITIES, STRUCTURED, Sample, Span, company, generate  # noqa: E402

RESULTS = HERE / "RESULTS.md"
TARGET_RECALL, TARGET_PRECISION, TARGET_MB_S = 0.99, 0.97, 10.0
Found = tuple[str, int, int]  # (entity, start, end) as a detector reports it, in our names
Find = Callable[[str], list[Found]]


@dataclass
class Tally:
    gold: int = 0
    found: int = 0  # gold spans covered
    predicted: int = 0
    right: int = 0  # predictions that cover a gold span

    @property
    def precision(self) -> float:
        return self.right / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.gold if self.gold else 1.0

    @property
    def f2(self) -> float:
        p, r = self.precision, self.recall
        return 5 * p * r / (4 * p + r) if p + r else 0.0

    def add(self, other: Tally) -> None:
        self.gold += other.gold
        self.found += other.found
        self.predicted += other.predicted
        self.right += other.right


@dataclass
class Run:
    name: str
    claims: frozenset[str]
    note: str
    mb_s: float = 0.0  # by wall time, the target's measure
    cpu_mb_s: float = 0.0  # by this process's CPU time: what other load on the machine leaves
    tallies: dict[str, Tally] = field(default_factory=dict)
    kinds: dict[str, Tally] = field(default_factory=dict)  # "entity/kind": gold and found only
    misses: list[tuple[Sample, Span]] = field(default_factory=list)
    wrong: list[tuple[Sample, Found]] = field(default_factory=list)


def covers(found: Found, gold: Span) -> bool:
    overlap = min(found[2], gold.end) - max(found[1], gold.start)
    return found[0] == gold.entity and overlap * 2 >= gold.end - gold.start


def score(run: Run, samples: Sequence[Sample], predictions: Sequence[list[Found]]) -> None:
    tallies = {entity: Tally() for entity in ENTITIES}
    for sample, found in zip(samples, predictions, strict=True):
        found = [f for f in found if f[0] in run.claims]
        for gold in sample.spans:
            tally = tallies[gold.entity]
            kind = run.kinds.setdefault(f"{gold.entity}/{gold.kind}", Tally())
            tally.gold += 1
            kind.gold += 1
            if any(covers(f, gold) for f in found):
                tally.found += 1
                kind.found += 1
            elif gold.entity in run.claims:
                run.misses.append((sample, gold))
        for f in found:
            tally = tallies[f[0]]
            tally.predicted += 1
            if any(covers(f, gold) for gold in sample.spans):
                tally.right += 1
            else:
                run.wrong.append((sample, f))
    run.tallies = tallies


def forget() -> int:
    """Clear what veteran's validators memoised (policies/memo.py), so that every timed pass
    meets the corpus's values for the first time; the number of memos cleared."""
    try:
        from veteran.policies.memo import Memoised
    except ImportError:
        return 0
    memos = [obj for obj in gc.get_objects() if isinstance(obj, Memoised)]
    for memo in memos:
        memo.clear()
    return len(memos)


def timed(run: Run, find: Find, samples: Sequence[Sample], repeat: int,
          before: Callable[[], object] = lambda: None) -> list[list[Found]]:
    """Every text's finds; sets the run's MB/s from the best of `repeat` passes, each after
    `before()`."""
    size = sum(len(sample.text.encode()) for sample in samples)
    wall = cpu = float("inf")
    predictions: list[list[Found]] = []
    for _ in range(repeat):
        before()
        started, used = time.perf_counter(), time.process_time()
        predictions = [find(sample.text) for sample in samples]
        wall = min(wall, time.perf_counter() - started)
        cpu = min(cpu, time.process_time() - used)
    run.mb_s, run.cpu_mb_s = size / wall / 1e6, size / max(cpu, 1e-9) / 1e6
    return predictions


# -- the detectors -----------------------------------------------------------------------------

def veteran(seed: int) -> tuple[Find, frozenset[str], str]:
    from veteran.policies.detect import Detector
    from veteran.policy_settings import DictionaryConfig, PatternConfig

    config = company(seed)
    detector = Detector(
        dictionaries={k: DictionaryConfig(**v) for k, v in config["dictionaries"].items()},
        patterns={k: PatternConfig(**v) for k, v in config["patterns"].items()})

    def find(text: str) -> list[Found]:
        return [(f.entity, f.start, f.end) for f in detector.find(text)]

    return find, frozenset(detector.entities()), "company dictionaries and pattern configured"


PRESIDIO = {"EMAIL_ADDRESS": "email", "PHONE_NUMBER": "phone", "CREDIT_CARD": "card",
            "IBAN_CODE": "iban", "IP_ADDRESS": "ip", "US_SSN": "national_id",
            "UK_NINO": "national_id", "ES_NIF": "national_id", "ES_NIE": "national_id",
            "IT_FISCAL_CODE": "national_id", "PL_PESEL": "national_id",
            "FI_PERSONAL_IDENTITY_CODE": "national_id", "PERSON": "person",
            "LOCATION": "address"}


def presidio() -> tuple[Find, frozenset[str], str]:
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")  # its bundled list, offline
    import spacy
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    class BlankSpacy(SpacyNlpEngine):
        """spaCy's tokenizer without a trained pipeline (none installs from PyPI)."""

        def __init__(self) -> None:
            super().__init__(models=[{"lang_code": "en", "model_name": "blank:en"}])

        def load(self) -> None:
            self.nlp = {"en": spacy.blank("en")}  # type: ignore[assignment]

    engine = BlankSpacy()
    engine.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(nlp_engine=engine, languages=["en"])
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])
    types = {PRESIDIO[t] for r in registry.recognizers for t in r.supported_entities
             if t in PRESIDIO and t not in ("PERSON", "LOCATION")}

    def find(text: str) -> list[Found]:
        return [(PRESIDIO[r.entity_type], r.start, r.end)
                for r in analyzer.analyze(text=text, language="en")
                if r.entity_type in PRESIDIO]

    return find, frozenset(types), f"presidio-analyzer {version('presidio-analyzer')}, " \
        f"spaCy {version('spacy')} with spacy.blank('en'), default registry"


SCRUBADUB = {"email": "email", "phone": "phone", "credit_card": "card",
             "social_security_number": "national_id", "national_insurance_number": "national_id",
             "credential": "secret"}


def scrubadub_() -> tuple[Find, frozenset[str], str]:
    import scrubadub

    scrubber = scrubadub.Scrubber(locale="en_US")
    types = {SCRUBADUB[name] for name in scrubber._detectors if name in SCRUBADUB}  # noqa: SLF001

    def find(text: str) -> list[Found]:
        found: list[Found] = []
        for filth in scrubber.iter_filth(text):
            for part in getattr(filth, "filths", None) or [filth]:
                if part.type in SCRUBADUB:
                    found.append((SCRUBADUB[part.type], part.beg, part.end))
        return found

    return find, frozenset(types), f"scrubadub {scrubadub.__version__}, default detectors"


def detect_secrets() -> tuple[Find, frozenset[str], str]:
    from detect_secrets.__version__ import VERSION
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.base import RegexBasedDetector

    mapping: dict[str, type[Any]] = get_mapping_from_secret_type_to_class()
    patterns: list[re.Pattern[str]] = [
        pattern for plugin in mapping.values()
        if issubclass(plugin, RegexBasedDetector) and plugin.__name__ != "IPPublicDetector"
        for pattern in plugin.denylist]  # type: ignore[attr-defined]  # a class attribute
    end = re.compile(r"-----END [A-Z ]*PRIVATE KEY-----")

    def find(text: str) -> list[Found]:
        found: list[Found] = []
        for pattern in patterns:
            for match in pattern.finditer(text):
                start, stop = match.span()
                if "PRIVATE KEY" in match.group(0) and (tail := end.search(text, stop)):
                    start = start - 5 if text[max(0, start - 5):start] == "-----" else start
                    stop = tail.end()
                found.append(("secret", start, stop))
        return found

    return find, frozenset({"secret"}), f"detect-secrets {VERSION}, regex plugins"


# -- the report --------------------------------------------------------------------------------

def cell(run: Run, entity: str) -> str:
    if entity not in run.claims:
        return "-"
    return figures(run.tallies[entity])


def figures(tally: Tally) -> str:
    """P / R / F2; precision is "n/a" where nothing was predicted."""
    precision = f"{tally.precision:.3f}" if tally.predicted else "n/a"
    return f"{precision} / {tally.recall:.3f} / {tally.f2 if tally.predicted else 0.0:.3f}"


def structured(run: Run) -> Tally:
    total = Tally()
    for entity in STRUCTURED:
        tally = run.tallies[entity]
        total.add(tally if entity in run.claims else Tally(gold=tally.gold))
    return total


def table(runs: Sequence[Run], samples: Sequence[Sample]) -> list[str]:
    gold = Counter(span.entity for sample in samples for span in sample.spans)
    lines = ["| entity | gold | " + " | ".join(f"{r.name} P / R / F2" for r in runs) + " |",
             "| --- | ---: | " + " | ".join("---" for _ in runs) + " |"]
    for entity in ENTITIES:
        lines.append(f"| {entity} | {gold[entity]} | "
                     + " | ".join(cell(run, entity) for run in runs) + " |")
    totals = [structured(run) for run in runs]
    lines.append("| structured, all | " + str(sum(gold[e] for e in STRUCTURED)) + " | "
                 + " | ".join(figures(t) for t in totals)
                 + " |")
    lines.append("| throughput (wall; CPU time) | | "
                 + " | ".join(f"{r.mb_s:.3g} MB/s; {r.cpu_mb_s:.3g}" for r in runs) + " |")
    return lines


def below_target(run: Run) -> list[str]:
    flags = []
    for entity in STRUCTURED:
        tally = run.tallies[entity]
        if tally.recall < TARGET_RECALL or tally.precision < TARGET_PRECISION:
            flags.append(f"{entity}: P {tally.precision:.3f} R {tally.recall:.3f} "
                         f"(target P >= {TARGET_PRECISION}, R >= {TARGET_RECALL})")
    if run.mb_s < TARGET_MB_S:
        flags.append(f"throughput {run.mb_s:.2f} MB/s (target >= {TARGET_MB_S:g})")
    return flags


def missed_kinds(run: Run) -> list[str]:
    return [f"{name} {t.found}/{t.gold}" for name, t in sorted(run.kinds.items())
            if t.found < t.gold and name.split("/")[0] in run.claims]


def excerpt(text: str, start: int, end: int, width: int = 70) -> str:
    left, right = max(0, start - width), min(len(text), end + width)
    return (text[left:start] + "⟦" + text[start:end] + "⟧" + text[end:right]).replace("\n", "⏎")


def failures(run: Run, path: Path, limit: int = 30) -> None:
    lines = [f"# {run.name}'s detector on the corpus: misses and false finds",
             f"(bench/detection.py, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; ⟦⟧ marks the span; "
             f"first {limit} of each entity)", ""]
    for entity in ENTITIES:
        misses = [(s, g) for s, g in run.misses if g.entity == entity]
        wrong = [(s, f) for s, f in run.wrong if f[0] == entity]
        if not misses and not wrong:
            continue
        lines += [f"## {entity}: {len(misses)} missed, {len(wrong)} false", ""]
        lines += [f"- miss #{s.id} ({s.register}, {g.kind}): `{excerpt(s.text, g.start, g.end)}`"
                  for s, g in misses[:limit]]
        lines += [f"- false #{s.id} ({s.register}): `{excerpt(s.text, f[1], f[2])}`"
                  for s, f in wrong[:limit]]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def as_json(runs: Sequence[Run], samples: Sequence[Sample]) -> dict[str, Any]:
    return {
        "texts": len(samples), "bytes": sum(len(s.text.encode()) for s in samples),
        "rule": "a prediction is right when it covers >= 50% of a gold span of its entity",
        "detectors": {run.name: {
            "note": run.note, "mb_s": round(run.mb_s, 3), "cpu_mb_s": round(run.cpu_mb_s, 3),
            "below_target": below_target(run),
            "entities": {e: {"gold": t.gold, "found": t.found, "predicted": t.predicted,
                             "right": t.right, "precision": round(t.precision, 4),
                             "recall": round(t.recall, 4), "f2": round(t.f2, 4)}
                         for e, t in run.tallies.items() if e in run.claims},
            "missed_kinds": missed_kinds(run)} for run in runs},
    }


def heldout_line(seed: int, run: Run) -> str:
    short = [f"{entity} {figures(tally)}" for entity, tally in run.tallies.items()
             if entity in STRUCTURED and (tally.precision < 1 or tally.recall < 1)]
    total = structured(run)
    flags = [flag for flag in below_target(run) if not flag.startswith("throughput")]
    return (f"- veteran on seed {seed} (held out: the same templates, other values): structured "
            f"{figures(total)}; below 1.000: {', '.join(short) or 'none'}; below target: "
            f"{'; '.join(flags) or 'none'}")


def section(argv: Sequence[str], runs: Sequence[Run], samples: Sequence[Sample],
            heldout: Sequence[tuple[int, Run]] = ()) -> str:
    sys.path.insert(0, str(HERE))
    from gateway import machine

    command = shlex.join([".venv/bin/python", "bench/detection.py", *argv])
    size = sum(len(s.text.encode()) for s in samples)
    ours = [run for run in runs if run.name == "veteran"]
    flags = below_target(ours[0]) if ours else ["veteran's detector did not run"]
    return "\n".join([
        f"## Detection (issue 14), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "",
        f"- command: `{command}`",
        f"- machine: {machine(os.getloadavg()[0])}",
        f"- corpus: bench/policy_corpus.py, {len(samples):,} texts, {size / 1e6:.2f} MB; "
        "a prediction is right when it covers >= 50% of a gold span of its entity",
        *(f"- {run.name}: {run.note}" for run in runs),
        "- person and address: veteran finds them from the company's lists (its people directory "
        "and CRM addresses, policy_corpus.company()), which hold 340 of the corpus's 400 people "
        "and 340 of its 400 addresses; their recall is that coverage, the rest are never found",
        "", *table(runs, samples), "",
        f"- veteran, below target: {'; '.join(flags) if flags else 'none'}",
        *(f"- veteran, kinds with misses: {', '.join(missed_kinds(run)) or 'none'}"
          for run in ours),
        *(heldout_line(seed, run) for seed, run in heldout),
    ]) + "\n"


DETECTORS: dict[str, Callable[[], tuple[Find, frozenset[str], str]]] = {
    "presidio": presidio, "scrubadub": scrubadub_, "detect-secrets": detect_secrets}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Detection quality and throughput.")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--no-append", action="store_true", help="do not touch RESULTS.md")
    parser.add_argument("--failures", type=Path, help="write veteran's misses and false finds")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--only", choices=["veteran", *DETECTORS], action="append",
                        help="run only these detectors (repeatable; veteran always runs)")
    parser.add_argument("--heldout", type=int, action="append",
                        help="also score veteran on the corpus of this seed (default: 15)")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    samples = generate(args.seed, args.n)
    log = sys.stderr if args.json else sys.stdout
    runs = []
    for name, make in [("veteran", lambda: veteran(args.seed)), *DETECTORS.items()]:
        if args.only and name != "veteran" and name not in args.only:
            continue
        print(f"{name} ...", file=log, flush=True)
        try:
            detector, claims_, note_ = make()  # type: ignore[no-untyped-call]
        except Exception as error:  # a comparator that cannot run is reported, not fatal
            print(f"{name} cannot run: {error!r}", file=log)
            continue
        run = Run(name, claims_, note_)
        predictions = timed(run, detector, samples, 3 if name == "veteran" else 1,
                            forget if name == "veteran" else lambda: None)
        if name == "veteran":  # and once more with the memos of the last pass kept
            warm = Run("warm", claims_, "")
            timed(warm, detector, samples, 1)
            run.note += (f"; memos cleared before each timed pass ({forget()} memos); a pass "
                         f"with the last pass's memos kept: {warm.mb_s:.3g} MB/s wall")
        score(run, samples, predictions)
        runs.append(run)
    heldout = []
    for seed in [] if not runs or runs[0].name != "veteran" else args.heldout or [15]:
        print(f"veteran on seed {seed} ...", file=log, flush=True)
        other = generate(seed, args.n)
        detector, claims, note = veteran(seed)
        run = Run(f"veteran, seed {seed}", claims, note)
        score(run, other, timed(run, detector, other, 1))
        heldout.append((seed, run))
    if args.failures and runs and runs[0].name == "veteran":
        failures(runs[0], args.failures)
        for seed, run in heldout:
            failures(run, args.failures.with_suffix(f".seed{seed}{args.failures.suffix}"))
    if args.json:
        figures_ = as_json(runs, samples)
        figures_["heldout"] = {seed: as_json([run], [])["detectors"][run.name]
                               for seed, run in heldout}
        print(json.dumps(figures_, indent=2))
    text = section(argv, runs, samples, heldout)
    print(text, file=log)
    if not args.no_append:
        with RESULTS.open("a") as out:
            out.write("\n" + text)
        print(f"appended to {RESULTS}", file=log)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
