"""`veteran policy`: the company's rules as veteran.toml states them (`list`), and what they
would do to a request (`test`, the same answer as `POST /v1/policy/test`)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click
import orjson
from rich.console import Console

from veteran.cli.options import CONTEXT, workspace_option
from veteran.cli.store import open_store
from veteran.config import Config
from veteran.gateway import explain_policy, running
from veteran.policies import read_terms
from veteran.policy_settings import PolicyRule, RedactConfig
from veteran.terminal import Grid
from veteran.workspace import Workspace


@click.group(name="policy", context_settings=CONTEXT)
def policy() -> None:
    """The company's rules: redaction, [[policies]], and what they do to a request."""


def _echo_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _match(rule: PolicyRule) -> str:
    """A rule's match in one line, criteria in the order veteran.toml names them."""
    match, parts = rule.match, []
    for name in ("entities", "keywords", "teams", "keys", "functions"):
        if values := getattr(match, name):
            parts.append(f"{name}={','.join(values)}")
    if match.regex is not None:
        parts.append(f"regex=/{match.regex}/")
    if match.tags:
        parts.append("tags=" + ",".join(f"{k}={v}" for k, v in match.tags.items()))
    if match.classifier is not None:
        parts.append(f"classifier={match.classifier} says {match.label}")
    return "; ".join(parts)


def _target(rule: PolicyRule) -> str:
    if rule.action == "refuse":
        return rule.reason or ""
    if rule.action == "redact":
        return ",".join(rule.entities or rule.match.entities) or "every entity found"
    note = f" (note: {rule.note})" if rule.note else ""
    return f"{rule.to}{note}"


def _redaction(settings: RedactConfig, source: str) -> dict[str, Any]:
    return {"entities": list(settings.entities), "storage": settings.storage,
            "provider": settings.provider, "source": source}


def listing(config: Config, *, terms: bool = False) -> dict[str, Any]:
    """What `veteran policy list --json` prints."""
    functions = {name: _redaction(config.redaction(name),
                                  f"[functions.{name}.redact]" if fn.redact else "[redact]")
                 for name, fn in config.functions.items()}
    dictionaries = {}
    for name, dictionary in config.dictionaries.items():
        found = read_terms(name, dictionary, config.folder)
        dictionaries[name] = {"entity": dictionary.entity, "terms": len(found),
                              "file": dictionary.file,
                              "case_sensitive": dictionary.case_sensitive,
                              **({"values": found} if terms else {})}
    patterns = {name: {"entity": p.entity, **({"regex": p.regex} if terms else {})}
                for name, p in config.patterns.items()}
    return {
        "policies": [rule.model_dump(exclude_none=True, exclude_defaults=True)
                     for rule in config.policies],
        "redaction": {"default": _redaction(config.redact, "[redact]"), "functions": functions},
        "dictionaries": dictionaries,
        "patterns": patterns,
        "handoff": {"enabled": config.handoff.enabled,
                    "fingerprint_changes": config.handoff.fingerprint_changes,
                    "webhook": config.handoff.webhook is not None},
    }


def _yes(value: bool) -> str:
    return "yes" if value else "no"


@policy.command(name="list")
@workspace_option
@click.option("--terms", is_flag=True,
              help="Also print the dictionaries' terms and the patterns' expressions.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def list_command(workspace: str | None, terms: bool, as_json: bool) -> None:
    """The rules and the redaction in force.

    The [[policies]] rules of veteran.toml in the order they are read; the redaction of the
    workspace ([redact]) and of each function; the dictionaries and patterns (their terms
    counted, not shown, unless --terms); the hand-off watch."""
    config = Workspace.resolve(workspace).load_config()
    found = listing(config, terms=terms)
    if as_json:
        _echo_json(found)
        return
    console = Console()
    if config.policies:
        rules = Grid("#", "rule", "match", "action", "target", ids={"rule", "action"},
                     right={"#"}, title="rules, read in this order")
        for i, rule in enumerate(config.policies, 1):
            rules.add_row(str(i), rule.name, _match(rule), rule.action, _target(rule))
        console.print(rules)
    else:
        click.echo("no [[policies]] rules")
    redaction = Grid("function", "entities", "storage", "provider", "set by",
                     ids={"function"}, title="redaction in force")
    for name, row in [("(default)", found["redaction"]["default"]),
                      *found["redaction"]["functions"].items()]:
        redaction.add_row(name, ", ".join(row["entities"]) or "-", _yes(row["storage"]),
                          _yes(row["provider"]), row["source"])
    console.print(redaction)
    if config.dictionaries:
        words = Grid("dictionary", "entity", "terms", "file", "case",
                     *(["values"] if terms else []), ids={"dictionary", "entity"},
                     right={"terms"}, title="dictionaries")
        for name, row in found["dictionaries"].items():
            cells = [name, row["entity"], str(row["terms"]), row["file"] or "-",
                     "sensitive" if row["case_sensitive"] else "ignored"]
            words.add_row(*cells, *([", ".join(row["values"])] if terms else []))
        console.print(words)
    if config.patterns:
        shapes = Grid("pattern", "entity", *(["regex"] if terms else []),
                      ids={"pattern", "entity"}, title="patterns")
        for name, row in found["patterns"].items():
            shapes.add_row(name, row["entity"], *([row["regex"]] if terms else []))
        console.print(shapes)
    handoff = found["handoff"]
    click.echo("hand-off watch: " + ("on" if handoff["enabled"] else "off")
               + f", fingerprint changes {'on' if handoff['fingerprint_changes'] else 'off'}"
               + f", webhook {'set' if handoff['webhook'] else 'not set'}")


def _tags(pairs: tuple[str, ...]) -> dict[str, str]:
    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--tag")
        tags[key] = value
    return tags


def _check_model(config: Config, model: str | None) -> None:
    if model is None:
        if not config.functions:
            raise click.UsageError("veteran.toml has no functions: give --function "
                                   "PROVIDER/MODEL")
        return
    if "/" not in model and model not in config.functions:
        known = ", ".join(config.functions) or "none"
        raise click.BadParameter(f"no function {model!r} (veteran.toml has {known})",
                                 param_hint="--function")


@policy.command(name="test")
@workspace_option
@click.argument("text")
@click.option("--function", "function", default=None,
              help="The function the request is for, or PROVIDER/MODEL (default: the first "
                   "function of veteran.toml).")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE",
              help="A tag the request carries, as x-veteran-tags sends it (repeatable).")
@click.option("--team", default=None, help="The team of the key that sends it.")
@click.option("--key-id", default=None, help="The id of the key that sends it "
                                              "(`veteran keys list`).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def test_command(workspace: str | None, text: str, function: str | None, tags: tuple[str, ...],
                 team: str | None, key_id: str | None, as_json: bool) -> None:
    """What the rules would do to TEXT.

    TEXT is sent as one user message (`-`: read it from stdin), as POST /v1/policy/test does:
    printed are what is found, the rules that fire in order (the x-veteran-policy header), the
    route, what the provider would see and what would be stored. No model is called except a
    rule's classifier; nothing else is stored."""
    if text == "-":
        text = sys.stdin.read()
    if not text.strip():
        raise click.BadParameter("the text is empty", param_hint="TEXT")
    asked = _tags(tags)
    ws, store = open_store(workspace)
    try:
        config = ws.load_config()
        _check_model(config, function)

        async def run() -> dict[str, Any]:
            async with running(config, store, ws) as gateway:
                return await explain_policy(gateway, text=text, model=function, tags=asked,
                                            team=team, key_id=key_id)

        found = asyncio.run(run())
    finally:
        store.close()
    if as_json:
        _echo_json(found)
        return
    _print_explained(found)


def _print_explained(found: dict[str, Any]) -> None:
    console = Console()
    if found["findings"]:
        findings = Grid("entity", "detail", "value", ids={"entity"}, title="found")
        for f in found["findings"]:
            findings.add_row(f["entity"], f["detail"] or "-", f["text"])
        console.print(findings)
    else:
        click.echo("found: nothing")
    if found["decisions"]:
        decisions = Grid("rule", "action", "target", "why", ids={"rule", "action"},
                         title="rules that fired, in order")
        for d in found["decisions"]:
            target = d.get("to") or d.get("reason") or ""
            if entities := d.get("entities"):
                named = (", ".join(f"{k} {n}" for k, n in entities.items())
                         if isinstance(entities, dict) else ", ".join(entities))
                target += f": {named}" if target else named
            why = orjson.dumps(d["why"]).decode() if d.get("why") else "-"
            decisions.add_row(d["rule"], d["action"], target or "-", why)
        console.print(decisions)
    click.echo(f"x-veteran-policy: {found['header'] or '(none: no rule fired)'}")
    if found["refused"] is not None:
        click.echo(f"refused (403): {found['refused']}")
        return
    route = found["route"]
    variant = f" (variant {route['variant']})" if route.get("variant") else ""
    click.echo(f"route: {route['provider']}/{route['model']}{variant}")
    click.echo("the provider would see:")
    _echo_json((found["provider_sees"] or {}).get("messages"))
    click.echo("stored:")
    _echo_json((found["stored"] or {}).get("messages"))
