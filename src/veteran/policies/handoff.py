"""Vendor hand-off detection: what the upstream says answered, against what was asked.

A vendor may answer a request with another model than the one named (a "protective" hand-off,
a quiet downgrade) or change what serves a model name. Its answer says which model answered
(`model`; the anthropic provider keeps Anthropic's model id there, in whole answers and in every
stream chunk) and, at OpenAI, which backend configuration (`system_fingerprint`).
`HandoffWatch.observe` reads both from every answered call and returns the trajectory's
`upstream` record:

    {"model": "gpt-4o-mini", "system_fingerprint": "fp_2", "substituted": true,
     "fingerprint_changed": true, "previous_fingerprint": "fp_1"}

A **substitution** is an answer from another model than the one asked, by `substituted`'s
rule: names are compared case-insensitively after dropping any path before the last `/`
(`models/gemini-1.5-pro`, `openai/gpt-4o`); an alias suffix (`-latest`, `:latest`) means "any
snapshot", and a trailing snapshot (`-2024-08-06`, `-20241022`, `@20240620`, `-08-2024`,
`-0613`, `-002`) is a dated or numbered version of the name before it. So `gpt-4o` answered by
`gpt-4o-2024-08-06` is no substitution, `gpt-4o` answered by `gpt-4o-mini` is one, and a
pinned snapshot answered by another snapshot of the same model is one too (a pinned snapshot
answered by its bare name is not: the answer does not say which snapshot it was). A
deployment name that is not the model's (Azure) answers as a substitution on every call: name
the variant's model as the upstream does.

A **fingerprint change** is a `system_fingerprint` other than the last one seen for the same
(provider, asked model); the first one seen is not a change, and an answer without one leaves
the last one in place.

Each substitution and each change is counted (`on_count`, /metrics) every time; it is alerted
(a WARNING on the `veteran.handoff` logger, a POST of a `veteran.handoff.alert` to `[handoff]
webhook`, `on_alert`) at most once an hour per (provider, asked, answered model) or (provider,
asked, new fingerprint): a vendor that keeps substituting is counted, not paged on every call.
`fingerprint_changes = false` keeps the records and counts but sends no alert for changes.

State (the last fingerprints, when each alert last went out) is per process: every replica
learns a route's fingerprint for itself and alerts once on its own, and a change that happens
across a restart is not seen (the first fingerprint after it is not a change).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from veteran.http import post_webhook
from veteran.policy_settings import HandoffConfig

log = logging.getLogger("veteran.handoff")

ALERT_EVERY = 3600.0  # seconds between two alerts with the same key
MAX_ROUTES = 10_000  # (provider, asked model) whose last fingerprint is kept
MAX_KEYS = 10_000  # alert keys and memoised comparisons kept before the oldest are dropped

_ALIAS = re.compile(r"[-:]latest$")
_SNAPSHOT = re.compile(r"[-@](?:\d{4}-\d{2}-\d{2}|\d{2}-\d{4}|\d{8}|\d{3,4})$")

Record = dict[str, Any]


def answered_model(response: dict[str, Any]) -> tuple[str | None, str | None]:
    """(model, system_fingerprint) as the upstream's answer states them; None for a field
    that is missing, empty or not a string."""
    model = response.get("model")
    fingerprint = response.get("system_fingerprint")
    return (model if isinstance(model, str) and model else None,
            fingerprint if isinstance(fingerprint, str) and fingerprint else None)


def _split(name: str) -> tuple[str, str | None]:
    """(model, snapshot or None) of a name, normalised (see the module's docstring)."""
    name = name.lower().rsplit("/", 1)[-1]
    alias = _ALIAS.search(name)
    if alias is not None:
        return name[: alias.start()], None
    snapshot = _SNAPSHOT.search(name)
    if snapshot is not None:
        return name[: snapshot.start()], name[snapshot.start() + 1:]
    return name, None


def substituted(asked: str, answered: str) -> bool:
    """Whether `answered` is another model than `asked`: False for the same name or a
    dated/numbered snapshot of it (or of the model an alias names), True otherwise (the
    rule is in the module's docstring)."""
    if asked == answered:
        return False
    asked_model, asked_snapshot = _split(asked)
    answered_model_, answered_snapshot = _split(answered)
    if asked_model != answered_model_:
        return True
    return (asked_snapshot is not None and answered_snapshot is not None
            and asked_snapshot != answered_snapshot)


class HandoffWatch:
    """The watch of one gateway process (see the module's docstring). `settings` may be
    replaced on a reload; `on_count(record, provider, asked)` is called for every substitution
    or fingerprint change (CallMetrics.handoff), `on_alert(payload)` for every alert sent."""

    def __init__(self, settings: HandoffConfig, *,
                 on_alert: Callable[[dict[str, Any]], None] | None = None,
                 on_count: Callable[[Record, str, str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._on_alert = on_alert
        self._on_count = on_count
        self._clock = clock
        self._fingerprints: dict[tuple[str, str], str] = {}
        self._compared: dict[tuple[str, str], bool] = {}
        self._alerted: dict[tuple[str, ...], float] = {}
        self._posts: set[asyncio.Task[bool]] = set()

    def observe(self, *, provider: str, asked: str, function: str | None,
                response: dict[str, Any]) -> Record | None:
        """The `upstream` record of one answer from `provider` asked for `asked`; None when
        the watch is off or the answer names no model and no fingerprint. Counts and alerts
        a substitution or a fingerprint change."""
        if not self.settings.enabled:
            return None
        model, fingerprint = answered_model(response)
        if model is None and fingerprint is None:
            return None
        swapped = model is not None and self._substituted(asked, model)
        previous: str | None = None  # the fingerprint this one replaced
        if fingerprint is not None:
            route = (provider, asked)
            last = self._fingerprints.get(route)
            if last != fingerprint:
                if last is None and len(self._fingerprints) >= MAX_ROUTES:
                    del self._fingerprints[next(iter(self._fingerprints))]  # the oldest route
                self._fingerprints[route] = fingerprint
                previous = last
        record: Record = {"model": model, "system_fingerprint": fingerprint,
                          "substituted": swapped, "fingerprint_changed": previous is not None}
        if previous is None and not swapped:
            return record
        if previous is not None:
            record["previous_fingerprint"] = previous
        if self._on_count is not None:
            self._on_count(record, provider, asked)
        if swapped:
            assert model is not None
            self._alert("substitution", (provider, asked, model), provider=provider,
                        asked=asked, answered=model, function=function,
                        fingerprint=fingerprint, previous_fingerprint=previous)
        if previous is not None and self.settings.fingerprint_changes:
            assert fingerprint is not None
            self._alert("fingerprint_change", (provider, asked, fingerprint), provider=provider,
                        asked=asked, answered=model, function=function,
                        fingerprint=fingerprint, previous_fingerprint=previous)
        return record

    async def drain(self) -> None:
        """Wait for the webhook POSTs under way (at shutdown, in tests)."""
        while self._posts:
            await asyncio.gather(*self._posts)

    def _substituted(self, asked: str, answered: str) -> bool:
        key = (asked, answered)
        known = self._compared.get(key)
        if known is None:
            if len(self._compared) >= MAX_KEYS:
                self._compared.clear()
            known = self._compared[key] = substituted(asked, answered)
        return known

    def _alert(self, kind: str, key: tuple[str, str, str], *, provider: str, asked: str,
               answered: str | None, function: str | None, fingerprint: str | None,
               previous_fingerprint: str | None) -> None:
        """Log, POST and tell `on_alert`, unless this key alerted within `ALERT_EVERY`."""
        at = self._clock()
        full = (kind, *key)
        last = self._alerted.get(full)
        if last is not None and at - last < ALERT_EVERY:
            return
        if last is None and len(self._alerted) >= MAX_KEYS:
            self._alerted = {k: t for k, t in self._alerted.items() if at - t < ALERT_EVERY}
        self._alerted[full] = at
        if kind == "substitution":
            log.warning("hand-off: provider %s was asked for %s and %s answered (function %s)",
                        provider, asked, answered, function or "-")
        else:
            log.warning("fingerprint change: provider %s, model %s: system_fingerprint %s, "
                        "was %s (function %s)", provider, asked, fingerprint,
                        previous_fingerprint, function or "-")
        payload = {"type": "veteran.handoff.alert", "kind": kind, "provider": provider,
                   "asked": asked, "answered": answered, "function": function,
                   "fingerprint": fingerprint, "previous_fingerprint": previous_fingerprint,
                   "at": time.time()}
        if self._on_alert is not None:
            try:
                self._on_alert(payload)
            except Exception:  # an alert's listener never fails the call it watches
                log.exception("hand-off alert listener failed")
        webhook = self.settings.webhook
        if webhook is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a synchronous caller): logged only
            return
        task = loop.create_task(post_webhook(webhook, payload, log=log, what="hand-off webhook",
                                             user_agent="veteran-handoff"))
        self._posts.add(task)
        task.add_done_callback(self._posts.discard)
