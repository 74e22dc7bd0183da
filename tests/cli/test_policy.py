"""`veteran policy list` and `veteran policy test`: the rules in order, the redaction in force,
dictionaries counted (not shown), and what the rules do to a text."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from tests.conftest import write_workspace
from veteran.cli import cli, main
from veteran.store import Store, TrajectoryFilter
from veteran.workspace import Workspace

CONFIG = """
[providers.vendor]
kind = "mock"
[providers.onprem]
kind = "mock"

[functions.support]
[functions.support.variants.vendor]
model = "vendor/gpt-x"
[functions.support.variants.onprem]
model = "onprem/assistant"
weight = 0
[functions.support.redact]
provider = true
entities = ["email", "customer"]

[functions.notes]
[functions.notes.variants.a]
model = "vendor/gpt-x"

[teams.legal]

[redact]
entities = ["secret", "email"]

[dictionaries.customers]
entity = "customer"
terms = ["Globex Corp", "Initech"]
file = "customers.txt"

[patterns.orders]
entity = "order_id"
regex = "ORD-[0-9]{{6}}"

[[policies]]
name = "no-secrets"
match = {{ entities = ["secret"] }}
action = "refuse"
reason = "Credentials never leave the company."

[[policies]]
name = "orders-hidden"
match = {{ entities = ["order_id"], functions = ["support"] }}
action = "redact"

[[policies]]
name = "vip-onprem"
match = {{ tags = {{ tier = "vip" }}, functions = ["support"] }}
action = "route"
to = "onprem"

[[policies]]
name = "legal-handoff"
match = {{ teams = ["legal"], keywords = ["contract"] }}
action = "handoff"
to = "onprem/assistant"
note = "Answered in-house: legal work stays on the company's model."
"""
SECRET = "AKIAZ3MX7Q2L9VBN4T6R"  # the shape of an AWS access key id
REFUSED = "refused by the company's rule 'no-secrets': Credentials never leave the company."


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "customers.txt").write_text("# key accounts\nVandelay Industries\n\n"
                                                   "Hooli\n", encoding="utf-8")
    return write_workspace(tmp_path / "ws", CONFIG.format())


def run(ws: Workspace, *args: str, stdin: str | None = None) -> str:
    result = CliRunner(env={"COLUMNS": "250"}).invoke(  # tables one row a line
        cli, ["policy", *args, "-w", str(ws.path)], input=stdin, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_list_shows_the_rules_in_order_and_counts_terms_without_showing_them(
        ws: Workspace) -> None:
    out = run(ws, "list")
    names = ["no-secrets", "orders-hidden", "vip-onprem", "legal-handoff"]
    assert [out.index(n) for n in names] == sorted(out.index(n) for n in names)
    assert "Credentials never leave the company." in out
    assert "functions=support; tags=tier=vip" in out
    assert "classifier" not in out
    for term in ("Globex Corp", "Initech", "Vandelay", "Hooli", "ORD-"):
        assert term not in out
    assert "customers" in out and "customer" in out and "orders" in out
    assert "hand-off watch: on, fingerprint changes on, webhook not set" in out

    shown = run(ws, "list", "--terms")
    for term in ("Globex Corp", "Initech", "Vandelay Industries", "Hooli", "ORD-[0-9]{6}"):
        assert term in shown
    assert "key accounts" not in shown  # a comment of the file


def test_list_json_has_the_redaction_of_each_function(ws: Workspace) -> None:
    found = orjson.loads(run(ws, "list", "--json"))
    assert [r["name"] for r in found["policies"]] == [
        "no-secrets", "orders-hidden", "vip-onprem", "legal-handoff"]
    assert found["policies"][0] == {"name": "no-secrets", "action": "refuse",
                                    "match": {"entities": ["secret"]},
                                    "reason": "Credentials never leave the company."}
    assert found["policies"][2]["match"] == {"tags": {"tier": "vip"}, "functions": ["support"]}
    redaction = found["redaction"]
    assert redaction["default"] == {"entities": ["secret", "email"], "storage": True,
                                    "provider": False, "source": "[redact]"}
    assert redaction["functions"]["support"] == {
        "entities": ["email", "customer"], "storage": True, "provider": True,
        "source": "[functions.support.redact]"}
    assert redaction["functions"]["notes"]["source"] == "[redact]"
    assert found["dictionaries"] == {"customers": {
        "entity": "customer", "terms": 4, "file": "customers.txt", "case_sensitive": False}}
    assert found["patterns"] == {"orders": {"entity": "order_id"}}
    with_terms = orjson.loads(run(ws, "list", "--json", "--terms"))
    assert with_terms["dictionaries"]["customers"]["values"] == [
        "Globex Corp", "Initech", "Vandelay Industries", "Hooli"]
    assert with_terms["patterns"]["orders"]["regex"] == "ORD-[0-9]{6}"


def test_list_without_rules(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", "[providers.m]\nkind = \"mock\"\n")
    out = run(ws, "list")
    assert "no [[policies]] rules" in out
    assert "(default)" in out and "secret" in out


def explain(ws: Workspace, text: str, *args: str) -> dict[str, object]:
    found: dict[str, object] = orjson.loads(run(ws, "test", text, "--json", *args))
    return found


def test_test_shows_findings_decisions_and_what_the_provider_sees(ws: Workspace) -> None:
    text = "Ask jane.doe@example.com whether Initech paid ORD-123456."
    found = explain(ws, text, "--function", "support")
    entities = {(f["entity"], f["text"]) for f in found["findings"]}  # type: ignore[attr-defined]
    assert {("email", "jane.doe@example.com"), ("customer", "Initech"),
            ("order_id", "ORD-123456")} <= entities
    assert found["header"] == "orders-hidden=redact, redact=redact:provider"
    assert found["refused"] is None
    assert found["route"] == {"provider": "vendor", "model": "gpt-x", "variant": "vendor"}
    sees = found["provider_sees"]["messages"][-1]["content"]  # type: ignore[index]
    assert sees == "Ask <EMAIL_1> whether <CUSTOMER_1> paid <ORDER_ID_1>."
    stored = found["stored"]["messages"][-1]["content"]  # type: ignore[index]
    assert "jane.doe@example.com" not in stored and "Initech" not in stored

    out = run(ws, "test", text, "--function", "support")
    assert "x-veteran-policy: orders-hidden=redact, redact=redact:provider" in out
    assert "route: vendor/gpt-x (variant vendor)" in out
    assert "Ask <EMAIL_1> whether <CUSTOMER_1> paid <ORDER_ID_1>." in out


def test_tags_team_and_key_are_what_the_rules_see(ws: Workspace) -> None:
    vip = explain(ws, "Where is my parcel?", "--function", "support", "--tag", "tier=vip")
    assert vip["header"] == "vip-onprem=route:onprem"
    assert vip["route"] == {"provider": "onprem", "model": "assistant", "variant": "onprem"}
    plain = explain(ws, "Where is my parcel?", "--function", "support", "--tag", "tier=gold")
    assert plain["header"] is None and plain["decisions"] == []
    legal = explain(ws, "Review this contract clause.", "--function", "notes",
                    "--team", "legal", "--key-id", "k1")
    assert legal["header"] == "legal-handoff=handoff:onprem/assistant"
    assert legal["decisions"][0]["note"] == (  # type: ignore[index]
        "Answered in-house: legal work stays on the company's model.")
    assert explain(ws, "Review this contract clause.", "--function", "notes")["header"] is None


def test_a_refusal_is_shown_with_its_reason(ws: Workspace) -> None:
    found = explain(ws, f"our key is {SECRET}", "--function", "notes")
    assert found["header"] == "no-secrets=refuse, redact=redact:storage"  # [redact]: secrets
    assert found["refused"] == REFUSED
    assert found["route"] is None and found["provider_sees"] is None
    assert SECRET not in orjson.dumps(found["stored"]).decode()
    out = run(ws, "test", f"our key is {SECRET}")  # the first function: support
    assert f"refused (403): {REFUSED}" in out


def test_the_text_from_stdin(ws: Workspace) -> None:
    found = orjson.loads(run(ws, "test", "-", "--json", stdin="mail jane@example.com\n"))
    assert [f["entity"] for f in found["findings"]] == ["email"]
    assert found["route"]["variant"] == "vendor"  # the first function of veteran.toml


def test_nothing_is_stored_but_what_a_classifier_would_be_asked(ws: Workspace) -> None:
    run(ws, "test", "Ask jane.doe@example.com", "--function", "support")
    store = Store.open(ws.database_url(ws.load_config()))
    try:
        assert store.count(TrajectoryFilter()) == 0
    finally:
        store.close()


@pytest.mark.parametrize(("args", "message"), [
    (["hello", "--function", "nope"], "no function 'nope' (veteran.toml has support, notes)"),
    (["hello", "--function", "nowhere/x"], "unknown model 'nowhere/x'"),
    (["hello", "--tag", "novalue"], "'novalue' is not KEY=VALUE"),
    (["   "], "the text is empty"),
])
def test_bad_input_exits_2_with_a_clear_message(
        ws: Workspace, args: list[str], message: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["veteran", "policy", "test", *args, "-w", str(ws.path)])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
