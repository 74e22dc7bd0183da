"""The canaries and the varied traffic of the leak tests (test_leaks.py).

One canary of every entity storage redaction hides, each with what must never be stored of it
(`Canary.secrets`: a password, not its URL; a private key's body lines; a JWT's payload), and
texts that carry 1 to 3 of them in prose, chat, logs, code and JSON, at the start, in the
middle and at the end, each with a marker (`req0042x`) that is not sensitive, so a test can show
that the text was stored at all.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()


_JWT_PAYLOAD = _b64({"sub": "canary-4417", "email_verified": True})
_PEM_LINES = ("MIIEowIBAAKCAQEAcanaryQ7vLm2Xp9TtYwZr3Ks8HdJfNbVgUeWqRiOaPl0",
              "Zk4nC1mTy6GhXsE2jWd9QbVrLpOaKfMzUe3TgHiYnJcBlDoWxRq5SvAt7Nmq")


@dataclass(frozen=True, slots=True)
class Canary:
    name: str
    text: str  # as it is written in a request
    secrets: tuple[str, ...]  # what must never be stored of it


def _canary(name: str, text: str, *secrets: str) -> Canary:
    return Canary(name, text, secrets or (text,))


CANARIES: tuple[Canary, ...] = (
    _canary("aws_key", "AKIAQ7CANARY4B2XJ9KM"),
    _canary("openai_key", "sk-proj-Cn4ryT0kenQ7vLm2Xp9TtYwZr3Ks8HdJfNbVgUe"),
    _canary("jwt", f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_JWT_PAYLOAD}."
            "Qm9vbXNoYWthbGFrYTk5c2lnbmF0dXJlcGFydA", _JWT_PAYLOAD),
    _canary("private_key", "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(_PEM_LINES)
            + "\n-----END RSA PRIVATE KEY-----", *_PEM_LINES),
    _canary("url_password", "postgres://svc:Hunter2Canary9@db.internal.example.com:5432/app",
            "Hunter2Canary9"),
    _canary("email", "jane.canary@globex-mail.com"),
    _canary("us_phone", "(415) 555-2671"),
    _canary("uk_phone", "+44 20 7946 0958"),
    _canary("card", "4111 1111 1111 1111"),
    _canary("iban", "DE89 3704 0044 0532 0130 00"),
    _canary("us_ssn", "536-22-8147"),
    _canary("uk_nino", "JG 10 37 52 A"),
    _canary("es_dni", "12345678Z"),
    _canary("ipv4", "198.51.100.77"),
    _canary("ipv6", "2001:db8:85a3::8a2e:370:7334"),
    _canary("customer", "Globex Corporation"),
    _canary("project", "PRJ-ORCA-417"),
)
ENTITIES = ["secret", "email", "phone", "card", "iban", "national_id", "ip", "customer",
            "project"]
DICTIONARY = ["Globex Corporation", "Initech", "Umbrella Holdings"]
PATTERN = "PRJ-[A-Z]{4}-[0-9]{3}"


def needles(canary: Canary) -> list[bytes]:
    """What a leak of `canary` looks like in a file or a response: each secret as it is, and
    JSON-escaped (a private key's new lines)."""
    found: set[bytes] = set()
    for secret in canary.secrets:
        found.add(secret.encode())
        found.add(orjson.dumps(secret)[1:-1])
    return sorted(found)


NEEDLES = {c.name: needles(c) for c in CANARIES}


def leaked(data: bytes | str) -> list[str]:
    """The canaries found in `data`."""
    raw = data.encode() if isinstance(data, str) else data
    return [name for name, found in NEEDLES.items() if any(n in raw for n in found)]


TEMPLATES = (
    "{0}",
    "{0} is what the customer wrote. Ref {m}.",
    "Hello, about ticket {m}: please check {0} and also {1}.",
    "2024-05-01T10:00:00Z WARN {m} user={0} peer={1} retry=3",
    '```python\nsettings = {{"owner": "{0}", "backup": "{1}"}}  # {m}\n```',
    '{{"ticket": "{m}", "contact": "{0}", "notes": ["{1}", "{2}"]}}',
    "{m}\n{0}\n{1}\n{2}",
    "Can you summarise this for {m}? The holder {0} paid with {1}; follow up at {2}",
)


def marker(i: int) -> str:
    return f"req{i:04d}x"


def text(i: int) -> tuple[str, list[Canary]]:
    """Request `i`'s text and the canaries in it (a different mix and context each time)."""
    template = TEMPLATES[i % len(TEMPLATES)]
    picked = [CANARIES[(i * 7 + j * 5) % len(CANARIES)] for j in range(3)]
    used = [c for j, c in enumerate(picked) if f"{{{j}}}" in template]
    return template.format(*(c.text for c in picked), m=marker(i)), used
