"""The company's rules on every call: the `CallHook` that applies `veteran.policies`.

For each call (before the provider sees it):
- detect, in every message part, the entities the function's redaction and the rules need;
- read the rules (`[[policies]]`, in order): refuse (403, the reason told), route or hand off
  to a named variant or PROVIDER/MODEL, redact more;
- pseudonymise what the provider sees (`provider = true`, or a redact rule): stable
  placeholders per episode and key (`Vaults`), and the answer on its way to the caller gets
  back this request's values only (`Call.outbound`);
- keep the values out of what is stored (`storage = true`): the request now, the answer, the
  error and the attempts when the trajectory is sealed, whatever the call's end.

Every decision is disclosed: `x-veteran-policy` on the response, `policy` on the trajectory,
`veteran_policy_decisions_total` in /metrics. There is no silent mode. After an answer, what the
upstream says answered is recorded and watched (`HandoffWatch`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from veteran.config import Config
from veteran.errors import PolicyRefused, UpstreamError
from veteran.gateway.call import Call, Outbound, OutboundStream
from veteran.gateway.resilience import UPSTREAM_FAILURES
from veteran.policies import (
    Decision,
    Detector,
    Finding,
    HandoffWatch,
    Masking,
    Rules,
    Subject,
    Vault,
    Vaults,
    map_request,
    map_response,
    request_texts,
)
from veteran.policy_settings import PolicyRule

if TYPE_CHECKING:
    from veteran.gateway.core import Gateway

HEADER = "x-veteran-policy"
REDACT_RULE = "redact"  # the name [redact] settings are disclosed under


@dataclass(frozen=True, slots=True)
class Plan:
    """What one function's calls detect and hide (from its redaction and the rules)."""

    detect: frozenset[str] | None  # None: every entity the detector knows
    storage: frozenset[str]  # kept out of what is stored
    provider: frozenset[str]  # what the provider sees as placeholders


@dataclass(slots=True)
class State:
    """The hook's state for one call (`Call.policy`)."""

    plan: Plan
    storage: frozenset[str]  # entities kept out of storage for this call
    masking: Masking | None = None  # this request's placeholders, once it has any
    # What `before` found, by text, and the texts it masked with nothing left to hide: `seal`
    # reads the stored request (the body the provider got, resilience.py) without detecting
    # those again.
    found: dict[str, list[Finding]] = field(default_factory=dict)
    clean: set[str] = field(default_factory=set)
    counted: bool = True  # in /metrics (not for `explain`, which applies nothing)
    decisions: list[dict[str, Any]] = field(default_factory=list)


class PolicyHook:
    """`Gateway.hooks`' first hook: installed by every gateway, following its reloads."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway
        self.vaults = Vaults()
        self.watch = HandoffWatch(gateway.config.handoff, on_count=gateway.metrics.handoff)
        self._configure(gateway.config)
        gateway.reconfigured.append(self._configure)

    def _configure(self, config: Config) -> None:
        self._config = config
        self.detector = Detector.for_config(config)
        self.rules = Rules(config.policies)
        self.watch.settings = config.handoff
        self._plans: dict[str | None, Plan] = {}

    def plan(self, function: str | None) -> Plan:
        plan = self._plans.get(function)
        if plan is None:
            settings = self._config.redaction(function)
            provider = frozenset(settings.entities) if settings.provider else frozenset()
            storage = frozenset(settings.entities) if settings.storage else frozenset()
            wanted = storage | provider | self.rules.entities()
            plan = self._plans[function] = Plan(
                None if self.rules.redacts_all() else wanted, storage, provider)
        return plan

    # CallHook

    async def before(self, call: Call, *, counted: bool = True) -> None:
        record = call.record
        plan = self.plan(record.function)
        state = call.policy = State(plan, plan.storage, counted=counted)
        if not call.rules:  # the rules' own classifier call: only storage redaction applies
            return
        found = state.found = self._find(request_texts(call.body), plan.detect)
        decisions: list[Decision] = []
        if self.rules:
            texts = list(found)
            subject = Subject(
                text="\n".join(texts), findings=[f for fs in found.values() for f in fs],
                last_user=_last_user(call.body), tags=record.tags, team=record.team,
                key_id=record.key_id, function=record.function)
            decisions = await self.rules.decide(subject, self._classify)
        provider = set(plan.provider)
        note: str | None = None
        for decision in decisions:
            if counted:
                self._gateway.metrics.policy(decision.rule, decision.action)
            state.decisions.append(decision.record())
            if decision.action == "refuse":
                record.policy = state.decisions
                raise PolicyRefused(decision.rule, decision.reason or "",
                                    {HEADER: header(record.policy) or "",
                                     "x-veteran-trajectory-id": record.id})
            if decision.action in ("route", "handoff") and decision.to is not None:
                call.route = self._gateway.router.reroute(call.route, decision.to)
                note = decision.note
            elif decision.action == "redact":
                provider |= set(decision.entities)
        state.storage = storage = plan.storage | frozenset(provider)
        if provider and _any(found, provider):
            masking = state.masking = Masking(self._vault(call))
            mask = _masker(masking, found, provider)
            if storage <= provider:  # what the provider sees may be stored as it is

                def mask_clean(text: str) -> str:
                    masked = mask(text)
                    state.clean.add(masked)
                    return masked

                call.body = map_request(call.body, mask_clean)
            else:
                call.body = map_request(call.body, mask)
            call.outbound = masking.reveal()
            self._disclose(state, "provider", masking.counts)
        if counts := _count(found, storage - provider):  # hidden from storage only
            self._disclose(state, "storage", counts)  # `seal` hides them; told now for streams
        if note is not None:
            call.outbound = Noted(call.outbound, note)
        record.policy = state.decisions or None

    async def after(self, call: Call, response: dict[str, Any]) -> None:
        record = call.record
        if record.provider is None or record.model is None:
            return
        record.upstream = self.watch.observe(provider=record.provider, asked=record.model,
                                             function=record.function, response=response)

    def seal(self, call: Call) -> None:
        record = call.record
        state = call.policy if isinstance(call.policy, State) else None
        storage = state.storage if state is not None else self.plan(record.function).storage
        if not storage:
            return
        masking = Masking(self._vault(call))  # the episode's placeholders, counted afresh
        hide = self._hider(masking, storage, state)
        # The request as the provider got it (or as the caller sent it, when no provider was
        # called): with the system prompt, few-shot examples and memory put in.
        record.request = map_request(record.request, hide)
        if record.response is not None:
            record.response = map_response(record.response, hide)
        if record.error:
            record.error = hide(record.error)
        if record.attempts:
            record.attempts = [{**a, "error": hide(a["error"])} if a.get("error") else a
                               for a in record.attempts]
        if masking.masked:  # the whole count replaces what `before` could tell of the request
            decisions = state.decisions if state is not None else []
            entry = next((d for d in decisions if d["rule"] == REDACT_RULE
                          and d.get("to") == "storage"), None)
            if entry is None:
                self._disclose_into(decisions, "storage", masking.counts,
                                    counted=state is None or state.counted)
            else:
                entry["entities"] = dict(masking.counts)
            record.policy = decisions

    def stored_text(self, call: Call, text: str) -> str:
        """`text` as the store may keep it beside `call`'s trajectory (an evaluation's input,
        reference and grader reasons): what the call's storage redaction hides, replaced by the
        episode's placeholders, those its trajectory has."""
        state = call.policy if isinstance(call.policy, State) else None
        storage = state.storage if state is not None else self.plan(call.record.function).storage
        if not storage or not text:
            return text
        return self._hider(Masking(self._vault(call)), storage)(text)

    async def explain(self, call: Call) -> dict[str, Any]:
        """What the rules do to `call` without calling its model or storing anything (but a
        rule's classifier, which is called and captured as usual): `veteran policy test`,
        `POST /v1/policy/test`."""
        refused: str | None = None
        try:
            await self.before(call, counted=False)
        except PolicyRefused as exc:
            refused = exc.message
        if refused is None:  # what the call path would store: the body the provider gets
            call.record.request = call.route.upstream_body(call.body)
        self.seal(call)
        state = call.policy if isinstance(call.policy, State) else None
        findings = [{"entity": f.entity, "detail": f.detail, "text": f.text}
                    for fs in (state.found.values() if state is not None else ()) for f in fs]
        return {"findings": findings, "decisions": call.record.policy or [],
                "header": header(call.record.policy), "refused": refused,
                "route": None if refused else {"provider": call.route.provider.name,
                                               "model": call.route.model,
                                               "variant": call.route.variant},
                "provider_sees": None if refused else call.route.upstream_body(call.body),
                "stored": call.record.request}

    # Helpers

    def _find(self, texts: Iterable[str], entities: frozenset[str] | None
              ) -> dict[str, list[Finding]]:
        """Findings by text (a text met twice is read once); texts without any are kept, so
        the rules read every part."""
        if entities is not None and not entities:
            return {text: [] for text in texts}
        find = self.detector.find
        return {text: find(text, entities) for text in texts}

    def _hider(self, masking: Masking, entities: frozenset[str], state: State | None = None
               ) -> Callable[[str], str]:
        """Hides `entities` in a text with `masking`; texts `state` already read are not read
        again."""
        find = self.detector.find
        found = state.found if state is not None else {}
        clean = state.clean if state is not None else set()

        def hide(text: str) -> str:
            if text in clean:
                return text
            known = found.get(text)
            findings = (find(text, entities) if known is None
                        else [f for f in known if f.entity in entities])
            return masking.mask(text, findings) if findings else text

        return hide

    def _vault(self, call: Call) -> Vault:
        """The episode's placeholders, for the caller's key only."""
        return self.vaults.get(call.record.key_id or "", call.record.episode_id)

    def _disclose(self, state: State, where: str, counts: dict[str, int]) -> None:
        self._disclose_into(state.decisions, where, counts, counted=state.counted)

    def _disclose_into(self, decisions: list[dict[str, Any]], where: str,
                       counts: dict[str, int], *, counted: bool) -> None:
        decisions.append({"rule": REDACT_RULE, "action": "redact", "to": where,
                          "entities": dict(counts)})
        if counted:
            self._gateway.metrics.policy(REDACT_RULE, "redact")

    async def _classify(self, rule: PolicyRule, model: str, text: str) -> str:
        """Ask a rule's classifier, through the one call path (captured, sealed, tagged with
        the rule). A classifier that cannot answer fails the call: work a rule may keep from a
        vendor is never sent on a guess."""
        gateway = self._gateway
        body = {"model": model, "messages": [{"role": "user", "content": text}]}
        call = gateway.prepare(body, tags={"policy_rule": rule.name}, recall=False)
        call.rules = False
        try:
            answer = await gateway.call(call)
        except UPSTREAM_FAILURES as exc:
            raise UpstreamError(f"the classifier of rule {rule.name!r} ({model}) could not "
                                f"answer: {exc.message}") from None
        choices = answer.response.get("choices") or [{}]
        return str((choices[0].get("message") or {}).get("content") or "")


def header(decisions: list[dict[str, Any]] | None) -> str | None:
    """The `x-veteran-policy` value: `rule=action[:target]`, comma-separated, in order."""
    if not decisions:
        return None
    return ", ".join(d["rule"] + "=" + d["action"] + (f":{d['to']}" if d.get("to") else "")
                     for d in decisions)


class Noted:
    """A hand-off's note added to the answer the caller gets (after any placeholders are
    restored); the stored answer is the model's own, and the trajectory's `policy` holds the
    note."""

    def __init__(self, inner: Outbound | None, note: str) -> None:
        self._inner = inner
        self._note = note

    def response(self, completion: dict[str, Any]) -> dict[str, Any]:
        if self._inner is not None:
            completion = self._inner.response(completion)
        choices = []
        for choice in completion.get("choices") or ():
            message = dict(choice.get("message") or {})
            message["content"] = _with_note(message.get("content"), self._note)
            choices.append({**choice, "message": message})
        return {**completion, "choices": choices}

    def stream(self) -> OutboundStream:
        return _NotedStream(self._inner.stream() if self._inner is not None else None,
                            self._note)


class _NotedStream:
    """The note goes out with each choice's finishing chunk."""

    def __init__(self, inner: OutboundStream | None, note: str) -> None:
        self._inner = inner
        self._note = note

    def chunk(self, chunk: dict[str, Any]) -> dict[str, Any]:
        if self._inner is not None:
            chunk = self._inner.chunk(chunk)
        choices = chunk.get("choices")
        if not choices or not any(c.get("finish_reason") for c in choices):
            return chunk
        out = []
        for choice in choices:
            if choice.get("finish_reason"):
                delta = dict(choice.get("delta") or {})
                delta["content"] = (delta.get("content") or "") + "\n\n" + self._note
                choice = {**choice, "delta": delta}
            out.append(choice)
        return {**chunk, "choices": out}

    def flush(self) -> dict[str, Any] | None:
        return self._inner.flush() if self._inner is not None else None


def _with_note(content: Any, note: str) -> Any:
    if content is None:
        return note
    if isinstance(content, str):
        return f"{content}\n\n{note}" if content else note
    return content  # a structured content (parts) is left as the model gave it


def _masker(masking: Masking, found: dict[str, list[Finding]], entities: frozenset[str] | set[str]
            ) -> Callable[[str], str]:
    def mask(text: str) -> str:
        findings = [f for f in found.get(text, ()) if f.entity in entities]
        return masking.mask(text, findings) if findings else text

    return mask


def _any(found: dict[str, list[Finding]], entities: frozenset[str] | set[str]) -> bool:
    return any(f.entity in entities for fs in found.values() for f in fs)


def _count(found: dict[str, list[Finding]], entities: frozenset[str] | set[str]
           ) -> dict[str, int]:
    counts: dict[str, int] = {}
    for findings in found.values():
        for f in findings:
            if f.entity in entities:
                counts[f.entity] = counts.get(f.entity, 0) + 1
    return counts


def _last_user(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or ()):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "\n".join(p.get("text", "") for p in content
                                 if isinstance(p, dict) and p.get("type") == "text")
    return ""
