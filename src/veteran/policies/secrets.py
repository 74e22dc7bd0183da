"""Secrets in known formats: detect-secrets' own patterns, read from the installed package, and
the vendor formats it lacks.

From detect-secrets (every `RegexBasedDetector` plugin but `IPPublicDetector`, whose addresses
are the `ip` entity): AWS access keys, Artifactory, Azure storage keys, URL credentials, Cloudant,
Discord, GitHub, GitLab, IBM Cloud IAM and COS HMAC keys, JWTs, Mailchimp, npm, OpenAI's
`T3BlbkFJ` keys, private-key blocks, PyPI, SendGrid, Slack, SoftLayer, Square, Stripe, Telegram
and Twilio. Added here: OpenAI `sk-`/`sk-proj-`, Anthropic `sk-ant-`, Google `AIza`, Hugging
Face `hf_`, GitHub fine-grained `github_pat_`, npm `npm_`, Square `sq0atp-`, Azure
`SharedAccessKey=`, an AWS secret key assigned to its usual name, every PEM private-key block,
and a password in any URL (`scheme://user:password@host`, RFC 3986's userinfo, wider than
detect-secrets' basic-auth class). A JWT counts only when its header decodes to a JSON object.
No entropy-only detection: a random-looking string is not reported for looking random.

The value reported is the secret itself: a password, not its URL; the key assigned, not the
assignment; a private key from `-----BEGIN` to its `-----END ...-----` line; a token to its last
character (detect-secrets' Stripe pattern stops at 24).

Cost: one Hyperscan scan of every rule at once says which rules may match a text, and only
those run in `re`, over the whole text (prefilter.py: a 1 KB message with an AWS key 3.8 us,
without any secret 1.9 us). Where the prefilter steps aside (a text that is not ASCII, no
hyperscan), every rule has literals one of which each of its matches holds (`_TRIGGERS`, or a
cheap `finder` regex); one Aho-Corasick pass finds them, and a rule's regex runs only on the
lines around them. The automaton is ahocorasick-rs's DFA: 5 ns a character where
pyahocorasick's `iter` took 28 (a 1 KB text with an AWS key: 8.6 us; without secrets 5).
detect-secrets itself is imported on the first `Secrets()` (about 0.3 s: it brings
`requests`), not with this module.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import orjson
from ahocorasick_rs import AhoCorasick, Implementation

from veteran.policies.entities import Finding
from veteran.policies.prefilter import build

# A line window reaches this far around a trigger (a minified file is one long line).
_BEFORE, _AFTER = 512, 4096
_TOKEN_TAIL = re.compile(r"[A-Za-z0-9_-]+")
_JWT_TAIL = re.compile(r"\.?[A-Za-z0-9_-]*")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_PUTTY_END = re.compile(r"Private-MAC: *[0-9a-fA-F]+")
# A key cut short (a stream cut, a truncated log): its body lines, as far as they go.
_KEY_BODY = re.compile(r"""(?:\r?\n(?:[A-Za-z0-9+/]{16,}={0,2}|[A-Za-z0-9+/]+={0,2}\Z
  |(?:Proc-Type|DEK-Info|Comment):[^\r\n]*|(?=\r?\n[A-Za-z0-9+/]{16,})))*""", re.VERBOSE)
_LONG_VALUE = re.compile(r"[A-Za-z0-9_/+=-]{24}")  # what keyword-assignment rules capture
# detect-secrets' keyword rules (Cloudant, IBM, SoftLayer) end in this assignment, then the
# captured value, a class of letters, digits, `_` or `-` repeated 24 times or more: such a rule
# runs only on a line where `_ASSIGNED` finds a keyword assigned a value that long (1 line in 3
# of those with a long value, in the corpus).
_ASSIGNMENT = r"""(?:"|\'|)(?:\]|)(?: *)(?:=|:|:=|=>| +|::)(?: *)(?:"|\'|)("""
_WORD = "(?:key|pwd|pw|password|pass|token)"
_KEYWORD = re.compile(rf"(?:\(\?:{_WORD}(?:\|{_WORD})*\)|key\))$")  # ends in one of _WORD
_VALUE = re.compile(r"\[(?:a-z|A-Z|0-9|a-f|_|\\-)+\]\{([0-9]+)\}")
_ASSIGNED = re.compile(_WORD + r"""["']?\]?\ *(?:=|:|:=|=>|\ +|::)
                           \ *["']?[a-z0-9_-]{24}""", re.IGNORECASE | re.VERBOSE)

_KEYWORDS = ("key", "pw", "pass", "token", "secret")
# Literals one of which is in every match of a detect-secrets plugin's patterns (by class). A
# plugin missing here (a newer detect-secrets) runs on every text: correct, only slower, and
# tests/policies/test_detect.py names it.
_TRIGGERS: dict[str, tuple[str, ...]] = {
    "ArtifactoryDetector": ("AKC", *(f"AP{c}" for c in "0123456789ABCDEF")),
    "AWSKeyDetector": ("A3T", "ABIA", "ACCA", "AKIA", "ASIA", "aws"),
    "AzureStorageKeyDetector": ("AccountKey=",),
    "BasicAuthDetector": ("://",),
    "CloudantDetector": (*_KEYWORDS, "cloudant"),
    "GitHubTokenDetector": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
    "GitLabTokenDetector": ("glpat-", "gldt-", "glft-", "glsoat-", "glrt-", "GR1348941",
                            "glcbt-", "glimt-", "glptt-", "glagent-", "gloas-"),
    "IbmCloudIamDetector": _KEYWORDS,
    "IbmCosHmacDetector": _KEYWORDS,
    "JwtTokenDetector": ("eyJ",),
    "MailchimpDetector": ("-us",),
    "NpmDetector": (":_authToken=",),
    "OpenAIDetector": ("T3BlbkFJ",),
    "PrivateKeyDetector": ("PRIVATE KEY", "PuTTY-User-Key-File-2"),
    "PypiTokenDetector": ("pypi-",),
    "SendGridDetector": ("SG.",),
    "SlackDetector": ("xox", "hooks.slack.com"),
    "SoftlayerDetector": (*_KEYWORDS, "softlayer"),
    "SquareOAuthDetector": ("sq0csp-",),
    "StripeDetector": ("k_live_",),
    "TwilioKeyDetector": ("AC", "SK"),
}
# Plugins without a literal: a regex cheap to run on the whole text (it starts with a literal)
# finds their lines.
_FINDERS: dict[str, str] = {
    "DiscordBotTokenDetector": r"\.[A-Za-z0-9_-]{6}\.",
    "TelegramBotTokenDetector": r":[0-9A-Za-z_-]{35}",
}
_SKIPPED = {"IPPublicDetector"}  # the `ip` entity
# Plugins whose first group is the secret (the rest is its keyword or URL).
_GROUP_IS_SECRET = {"AWSKeyDetector", "BasicAuthDetector", "CloudantDetector",
                    "IbmCloudIamDetector", "IbmCosHmacDetector", "NpmDetector",
                    "SoftlayerDetector"}
_DETAILS = {"Basic Auth Credentials": "url_password", "JSON Web Token": "jwt",
            "AWS Access Key": "aws_access_key"}

# (detail, regex, the group that is the secret, triggers): the formats detect-secrets lacks.
_OWN: tuple[tuple[str, str, int, tuple[str, ...]], ...] = (
    ("openai_api_key", r"(?<![\w-])sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
     0, ("sk-",)),
    ("anthropic_api_key", r"(?<![\w-])sk-ant-[A-Za-z0-9_-]{32,}", 0, ("sk-ant-",)),
    ("google_api_key", r"AIza[0-9A-Za-z_-]{35}", 0, ("AIza",)),
    ("huggingface_token", r"(?<![\w-])hf_[A-Za-z0-9]{30,40}(?![A-Za-z0-9])", 0, ("hf_",)),
    ("github_token", r"github_pat_[A-Za-z0-9_]{22,}", 0, ("github_pat_",)),
    ("npm_token", r"(?<![\w-])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])", 0, ("npm_",)),
    ("square_access_token", r"sq0atp-[0-9A-Za-z_-]{22}", 0, ("sq0atp-",)),
    ("azure_shared_access_key", r"SharedAccessKey=([A-Za-z0-9+/]{42,43}=)", 1,
     ("SharedAccessKey=",)),
    ("aws_secret_key", r"(?i:(?:aws_?)?secret_?(?:access_?)?key)[\"']?\s*[:=]\s*[\"']?"
     r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])", 1, ("secret", "Secret", "SECRET")),
    ("private_key", r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----", 0, ("PRIVATE KEY",)),
    ("url_password", r"[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#\[\]@]+:([^\s/?#\[\]@]+)@", 1,
     ("://",)),
)


@dataclass(frozen=True, slots=True, eq=False)  # hashed by identity: sets of rules are hot
class _Rule:
    detail: str
    pattern: re.Pattern[str]
    group: int  # 0: the whole match is the secret, 1: its first group
    gate: re.Pattern[str] | None  # runs only on a line where this finds something


def _gate(pattern: re.Pattern[str]) -> re.Pattern[str] | None:
    """A keyword assignment's gate (`_ASSIGNED` when its source shows the shape it checks, else
    `_LONG_VALUE`); None for the other rules."""
    if not (pattern.groups and pattern.flags & re.IGNORECASE):
        return None
    before, assignment, after = pattern.pattern.partition(_ASSIGNMENT)
    value = _VALUE.match(after)
    if assignment and _KEYWORD.search(before) and value and int(value.group(1)) >= 24:
        return _ASSIGNED
    return _LONG_VALUE


def _cased(words: tuple[str, ...]) -> set[str]:
    return {v for w in words for v in (w, w.lower(), w.upper(), w.capitalize())}


def _triggers(pattern: re.Pattern[str], words: tuple[str, ...]) -> set[str]:
    """The literals that wake one of a plugin's patterns: the pattern itself when it is a plain
    string (`BEGIN RSA PRIVATE KEY`), else those of its plugin's literals written in it, else
    all of them; in every case when the pattern ignores case."""
    source = pattern.pattern
    if re.escape(source).replace("\\ ", " ") == source:
        words = (source,)
    else:
        folded = source.lower() if pattern.flags & re.IGNORECASE else source
        words = tuple(w for w in words if w in folded) or words
    return _cased(words) if pattern.flags & re.IGNORECASE else set(words)


def _detail(secret_type: str) -> str:
    return _DETAILS.get(secret_type) or re.sub(r"[^a-z0-9]+", "_", secret_type.lower()).strip("_")


def _plugins() -> Iterator[tuple[str, str, tuple[re.Pattern[str], ...]]]:
    """detect-secrets' regex plugins: (class name, secret type, patterns)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.base import RegexBasedDetector

    plugins: dict[str, type] = get_mapping_from_secret_type_to_class()
    for secret_type, cls in sorted(plugins.items()):
        if not issubclass(cls, RegexBasedDetector) or cls.__name__ in _SKIPPED:
            continue
        patterns = vars(cls).get("denylist", ())
        if isinstance(patterns, tuple | list) and patterns:
            yield cls.__name__, secret_type, tuple(patterns)


class Secrets:
    """Finds secrets in a text; built once (`secrets()`), safe to share between threads."""

    def __init__(self, *, prefilter: bool = True) -> None:
        self._triggered: dict[str, list[_Rule]] = {}  # trigger -> the rules it wakes
        self._found_by: list[tuple[re.Pattern[str], list[_Rule]]] = []
        self._always: list[_Rule] = []
        self.plugins: list[str] = []  # the detect-secrets classes in use
        for name, secret_type, patterns in _plugins():
            self.plugins.append(name)
            rules = [_Rule(_detail(secret_type), p,
                           1 if p.groups and name in _GROUP_IS_SECRET else 0, _gate(p))
                     for p in patterns]
            if name in _FINDERS:
                self._found_by.append((re.compile(_FINDERS[name]), rules))
            elif name in _TRIGGERS:
                for rule in rules:
                    for word in _triggers(rule.pattern, _TRIGGERS[name]):
                        self._triggered.setdefault(word, []).append(rule)
            else:
                self._always.extend(rules)
        for detail, regex, group, words in _OWN:
            rule = _Rule(detail, re.compile(regex), group,
                         _LONG_VALUE if detail == "aws_secret_key" else None)
            for word in words:
                self._triggered.setdefault(word, []).append(rule)
        self._woken = list(self._triggered.values())  # by the automaton's pattern index
        self._automaton = AhoCorasick(list(self._triggered), implementation=Implementation.DFA)
        every = [*(r for rs in self._woken for r in rs), *(r for _, rs in self._found_by
                                                            for r in rs), *self._always]
        self._rules = list(dict.fromkeys(every))  # each once, in a fixed order
        self._prefilter = build([rule.pattern for rule in self._rules]) if prefilter else None

    @property
    def prefiltered(self) -> bool:
        """Whether Hyperscan tells which rules to run (prefilter.py); else the literals do."""
        return self._prefilter is not None

    def find(self, text: str) -> list[Finding]:
        """Every secret in `text` (may overlap: the detector settles them)."""
        if self._prefilter is not None and (woken := self._prefilter.matched(text)) is not None:
            return [f for index in woken for f in _findings(self._rules[index], text)]
        return self._find_by_literals(text)

    def _find_by_literals(self, text: str) -> list[Finding]:
        """`find` without the prefilter: the rules whose literals the text holds, each on the
        lines around them."""
        hits = self._automaton.find_matches_as_indexes(text, overlapping=True)
        windows: dict[tuple[int, int], set[_Rule]] = {}
        if len(text) <= _BEFORE and "\n" not in text:  # one line, every window the whole text
            woken = {rule for index, _, _ in hits for rule in self._woken[index]}
            woken.update(rule for finder, rules in self._found_by if finder.search(text)
                         for rule in rules)
            if woken:
                windows[0, len(text)] = woken
        else:
            for index, start, _ in hits:
                windows.setdefault(_line(text, start), set()).update(self._woken[index])
            for finder, rules in self._found_by:
                for m in finder.finditer(text):
                    windows.setdefault(_line(text, m.start()), set()).update(rules)
        found: list[Finding] = []
        for (lo, hi), woken in windows.items():
            opened: dict[re.Pattern[str], bool] = {}
            for rule in woken:
                if (gate := rule.gate) is not None:
                    if (open_ := opened.get(gate)) is None:
                        open_ = opened[gate] = gate.search(text, lo, hi) is not None
                    if not open_:
                        continue
                found += _findings(rule, text, lo, hi)
        for rule in self._always:
            found += _findings(rule, text)
        return found


def _line(text: str, at: int) -> tuple[int, int]:
    """The line holding `at`, at most _BEFORE before it and _AFTER after it."""
    lo = text.rfind("\n", max(0, at - _BEFORE), at) + 1 or max(0, at - _BEFORE)
    hi = text.find("\n", at, at + _AFTER)
    return lo, (hi if hi != -1 else min(len(text), at + _AFTER))


def _findings(rule: _Rule, text: str, lo: int = 0, hi: int | None = None) -> Iterator[Finding]:
    """The secrets `rule` finds in `text[lo:hi]`."""
    for m in rule.pattern.finditer(text, lo, len(text) if hi is None else hi):
        if finding := _finding(rule, text, m):
            yield finding


def _finding(rule: _Rule, text: str, m: re.Match[str]) -> Finding | None:
    start, end = m.span(rule.group)
    if start == end:
        return None
    if rule.detail == "jwt":
        end = _JWT_TAIL.match(text, end).end()  # type: ignore[union-attr]
        end -= text[end - 1] == "."
        if not _jwt_header(text[start:end]):
            return None
    elif rule.detail == "private_key":
        start, end = _key_block(text, start, end)
    elif rule.group == 0 and text[end - 1].isalnum():
        tail = _TOKEN_TAIL.match(text, end)
        end = tail.end() if tail else end
    return Finding("secret", start, end, text[start:end], rule.detail)


def _jwt_header(token: str) -> bool:
    """The token's first part decodes (base64url) to a JSON object, as a JWT's header does."""
    head = token.split(".", 1)[0]
    try:
        header = orjson.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (binascii.Error, orjson.JSONDecodeError, ValueError):
        return False
    return isinstance(header, dict)


def _key_block(text: str, start: int, end: int) -> tuple[int, int]:
    """A private key's whole block: its `-----BEGIN` line to its END line (or PuTTY's MAC)."""
    while start > 0 and text[start - 1] == "-":
        start -= 1
    closing = _PUTTY_END if text.startswith("PuTTY", start) else _PEM_END
    block = closing.search(text, end, end + 16_384)
    if block is not None:
        return start, block.end()
    line_end = text.find("\n", end)
    if line_end == -1:
        return start, len(text)
    body = _KEY_BODY.match(text, line_end)  # always matches (maybe nothing)
    return start, body.end() if body else line_end


@cache
def secrets() -> Secrets:
    """The one `Secrets` (its patterns compiled once per process)."""
    return Secrets()
