"""The entity values of the detection corpus (bench/policy_corpus.py), each with its gold span.

Values come from Faker (names, addresses, companies, card numbers, IBANs, several countries'
national ids) and are checked with python-stdnum and phonenumbers before use, so every gold
card passes Luhn, every IBAN its checksum, every id its country's check and every phone number
`phonenumbers.is_valid_number`. Secrets are random strings in each vendor's published format;
JWTs carry a real base64url JSON header and payload. A gold span is the value only: the
password of a URL, the key of `AccountKey=...`, the whole block of a PEM key.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple

import phonenumbers
import stdnum.de.idnr
import stdnum.iban
import stdnum.ie.pps
import stdnum.luhn
import stdnum.us.ssn
from faker import Faker
from policy_negatives import ALNUM, B64, HEX, UPPER, URLSAFE, Negatives

LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pl_PL", "nl_BE",
           "fi_FI", "sv_SE")
# The company's lists (its people directory, its CRM's addresses) hold 340 of the corpus's 400
# people and 340 of its 400 addresses: a dictionary finds only what the company knows.
PEOPLE, KNOWN = 400, 340
PASSWORD = ALNUM + "!*-_.~"
CODENAMES = ("Bluebird", "Nightjar", "Kestrel", "Halcyon", "Osprey", "Marlin", "Tamarind",
             "Quokka", "Zephyrine", "Corvina")


class Span(NamedTuple):
    entity: str
    start: int
    end: int
    kind: str  # which sort of the entity: the secret's vendor, the id's country, the locale



def fakers(seed: int) -> dict[str, Faker]:
    made = {}
    for i, locale in enumerate(LOCALES):
        fake = Faker(locale)
        fake.seed_instance(seed * 100 + i)
        made[locale] = fake
    return made


def people(seed: int) -> list[tuple[str, str]]:
    """(name, locale) of the corpus's people; the first KNOWN are in the company's list."""
    by_locale, rng = fakers(seed + 1), random.Random(seed)
    names: dict[str, str] = {}
    while len(names) < PEOPLE:
        locale = rng.choice(LOCALES[:7])
        fake = by_locale[locale]
        names.setdefault(f"{fake.first_name()} {fake.last_name()}", locale)
    return list(names.items())


def addresses(seed: int) -> list[tuple[str, str]]:
    """(address on one line, locale); the first KNOWN are in the company's CRM."""
    by_locale, rng = fakers(seed + 3), random.Random(seed + 3)
    places: dict[str, str] = {}
    while len(places) < PEOPLE:
        locale = rng.choice(["en_US", "en_US", "en_GB", "de_DE"])
        fake = by_locale[locale]
        if locale == "en_US":
            place = f"{fake.street_address()}, {fake.city()}, {fake.state_abbr()} {fake.zipcode()}"
        elif locale == "en_GB":
            place = f"{fake.street_address()}, {fake.city()} {fake.postcode()}"
        else:
            place = f"{fake.street_address()}, {fake.postcode()} {fake.city()}"
        places.setdefault(place.replace("\n", ", "), locale)
    return list(places.items())


def companies(seed: int) -> tuple[list[str], list[str]]:
    """(customers, other companies): disjoint lists of company names."""
    fake = Faker("en_US")
    fake.seed_instance(seed + 2)
    names = list(dict.fromkeys(fake.company() for _ in range(400)))
    return names[:150], names[150:300]


class Values(Negatives):
    """Fills the templates' slots: entity values with their spans, and hard negatives."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.fake = fakers(seed)
        self.people = people(seed)
        self.addresses = addresses(seed)
        self.customers, self.others = companies(seed)
        self.person: str | None = None  # the last person named, for e-mails made from the name
        self.secrets: dict[str, Callable[[], str]] = {
            "aws_access_key": lambda: self.rng.choice(["AKIA", "ASIA"]) + self.draw(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16),
            "aws_secret_key": lambda: self.draw(B64, 40),
            "github": lambda: self.rng.choice(["ghp_", "gho_", "ghs_", "ghu_"]) + self.draw(
                ALNUM, 36),
            "github_fine_grained": lambda: "github_pat_11" + self.draw(UPPER, 20) + "_"
            + self.draw(ALNUM, 59),
            "gitlab": lambda: "glpat-" + self.draw(URLSAFE, 20),
            "slack": lambda: self.rng.choice(["xoxb-", "xoxp-"]) + self.draw(string.digits, 12)
            + "-" + self.draw(string.digits, 13) + "-" + self.draw(ALNUM, 24),
            "slack_webhook": lambda: "https://hooks.slack.com/services/T" + self.draw(UPPER, 8)
            + "/B" + self.draw(UPPER, 10) + "/" + self.draw(ALNUM, 24),
            "stripe": lambda: self.rng.choice(["sk_live_", "rk_live_"]) + self.draw(
                ALNUM, self.rng.choice([24, 34, 99])),
            "openai": lambda: self.rng.choice([
                "sk-proj-" + self.draw(URLSAFE, 74) + "T3BlbkFJ" + self.draw(URLSAFE, 74),
                "sk-" + self.draw(ALNUM, 20) + "T3BlbkFJ" + self.draw(ALNUM, 20)]),
            "anthropic": lambda: "sk-ant-api03-" + self.draw(URLSAFE, 93) + "AA",
            "google": lambda: "AIza" + self.draw(URLSAFE, 35),
            "huggingface": lambda: "hf_" + self.draw(string.ascii_letters, 34),
            "jwt": self.jwt,
            "private_key": self.pem,
            "sendgrid": lambda: "SG." + self.draw(URLSAFE, 22) + "." + self.draw(URLSAFE, 43),
            "twilio": lambda: "SK" + self.draw(HEX, 32),
            "npm": lambda: "npm_" + self.draw(ALNUM, 36),
            "pypi": lambda: "pypi-AgEIcHlwaS5vcmc" + self.draw(URLSAFE, self.rng.randint(70, 150)),
            "azure_storage": lambda: self.draw(B64, 86) + "==",
            "mailchimp": lambda: self.draw(HEX, 32) + f"-us{self.rng.randint(1, 21)}",
            "discord": lambda: self.rng.choice("MNO") + self.draw(URLSAFE, 23) + "."
            + self.draw(URLSAFE, 6) + "." + self.draw(URLSAFE, 27),
            "square": lambda: self.rng.choice([
                "sq0atp-" + self.draw(URLSAFE, 22), "sq0csp-" + self.draw(URLSAFE, 43)]),
        }
        # `{{secret}}` alone (a bearer token, a key pasted in chat): the kinds whose format alone
        # says "secret"; keys that need their context, webhooks and PEM blocks have own slots.
        self.bare_secrets = [k for k in self.secrets if k not in (
            "aws_secret_key", "azure_storage", "npm", "private_key", "slack_webhook")]
        self.env_names = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY",
                          "github": "GITHUB_TOKEN", "stripe": "STRIPE_SECRET_KEY",
                          "aws_access_key": "AWS_ACCESS_KEY_ID", "google": "GOOGLE_API_KEY",
                          "aws_secret_key": "AWS_SECRET_ACCESS_KEY", "slack": "SLACK_TOKEN",
                          "huggingface": "HF_TOKEN", "sendgrid": "SENDGRID_API_KEY",
                          "gitlab": "GITLAB_TOKEN", "jwt": "SERVICE_JWT"}
        self.ids: dict[str, tuple[Callable[[], str], tuple[str, ...]]] = {
            "us_ssn": (self.fake["en_US"].ssn, ("SSN", "social security number", "SSN#")),
            "gb_nino": (self.nino, ("NI number", "National Insurance number", "NINO")),
            "es_dni": (self.fake["es_ES"].nif, ("DNI", "NIF")),
            "es_nie": (self.fake["es_ES"].nie, ("NIE",)),
            "fr_nir": (self.fake["fr_FR"].ssn, ("NIR", "numéro de sécurité sociale")),
            "it_cf": (self.fake["it_IT"].ssn, ("codice fiscale", "CF")),
            "nl_bsn": (self.fake["nl_NL"].ssn, ("BSN", "burgerservicenummer")),
            "pl_pesel": (lambda: self.fake["pl_PL"].pesel(self.birth()), ("PESEL",)),
            "de_idnr": (self.idnr, ("Steuer-ID", "Steueridentifikationsnummer", "IdNr")),
            "be_nn": (self.be_nn, ("rijksregisternummer", "numéro national")),
            "fi_hetu": (self.hetu, ("henkilötunnus", "HETU")),
            "se_pnr": (self.personnummer, ("personnummer",)),
            "ie_pps": (self.pps, ("PPS number", "PPSN")),
        }

    # -- entity values -------------------------------------------------------------------------

    def fill(self, slot: str, arg: str | None) -> tuple[str, Span | None]:
        """The slot's text and, for an entity, its span (offsets within that text)."""
        entity = ENTITY_SLOTS.get(slot)
        if entity is None:
            return getattr(self, f"neg_{slot}")(), None
        text, kind, start, end = getattr(self, f"ent_{slot}")(arg)
        return text, Span(entity, start, end, kind)

    @staticmethod
    def whole(value: str, kind: str) -> tuple[str, str, int, int]:
        return value, kind, 0, len(value)

    def ent_person(self, _: str | None) -> tuple[str, str, int, int]:
        name, locale = self.rng.choice(self.people)
        self.person = name
        return self.whole(name, locale)

    def ent_email(self, _: str | None) -> tuple[str, str, int, int]:
        fake = self.fake["en_US"]
        if self.person and self.rng.random() < 0.5:
            first, _, last = self.person.partition(" ")
            local = self.rng.choice([f"{first}.{last}", f"{first[0]}{last}", first]).lower()
            local = re.sub(r"[^a-z0-9.]", "", local.encode("ascii", "ignore").decode()) or "info"
            domain = fake.domain_name()
        else:
            local = self.rng.choice([fake.user_name(), fake.user_name() + "+" + fake.word(),
                                     fake.first_name().lower() + "." + fake.last_name().lower()])
            domain = self.rng.choice([fake.free_email_domain(), fake.domain_name(),
                                      "mail." + fake.domain_name(), fake.domain_name(2)])
        value = f"{local}@{domain}"
        return self.whole(value.upper() if self.rng.random() < 0.03 else value, "email")

    def ent_phone(self, _: str | None) -> tuple[str, str, int, int]:
        if self.rng.random() < 0.55:
            region, locale = "US", "en_US"
        else:
            region, locale = self.rng.choice([("GB", "en_GB"), ("DE", "de_DE"), ("FR", "fr_FR"),
                                              ("ES", "es_ES"), ("IT", "it_IT"), ("NL", "nl_NL")])
        while True:
            raw = self.fake[locale].phone_number()
            try:
                number = phonenumbers.parse(raw, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number) and "x" not in raw.lower():
                break
        national = str(number.national_number)
        if region == "US":
            a, b, c = national[:3], national[3:6], national[6:]
            value = self.rng.choice([f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"{a}.{b}.{c}",
                                     f"+1 {a}-{b}-{c}", f"+1 ({a}) {b}-{c}", f"+1{a}{b}{c}"])
        else:
            form = self.rng.choice([phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                                    phonenumbers.PhoneNumberFormat.E164])
            value = phonenumbers.format_number(number, form)
        return self.whole(value, region.lower())

    def ent_card(self, _: str | None) -> tuple[str, str, int, int]:
        kind = self.rng.choice(["visa16", "mastercard", "amex", "discover", "jcb16"])
        while not stdnum.luhn.is_valid(number := self.fake["en_US"].credit_card_number(kind)):
            pass
        groups = [4, 6, 5] if len(number) == 15 else [4] * (len(number) // 4)
        parts, at = [], 0
        for size in groups:
            parts.append(number[at:at + size])
            at += size
        value = self.rng.choice([number, " ".join(parts), "-".join(parts), " ".join(parts)])
        return self.whole(value, kind)

    def ent_iban(self, _: str | None) -> tuple[str, str, int, int]:
        locale = self.rng.choice(["de_DE", "fr_FR", "en_GB", "es_ES", "it_IT", "nl_NL", "nl_BE",
                                  "pl_PL", "fi_FI"])
        value = self.fake[locale].iban()
        assert stdnum.iban.is_valid(value), value
        if self.rng.random() < 0.5:
            value = stdnum.iban.format(value)
        return self.whole(value, value[:2].lower())

    def ent_nid(self, _: str | None) -> tuple[str, str, int, int]:
        kind = self.rng.choice(list(self.ids))
        make, labels = self.ids[kind]
        value = make()
        label = self.rng.choice(labels)
        text = f"{label} {value}" if self.rng.random() < 0.6 else f"{label}: {value}"
        return text, kind, len(text) - len(value), len(text)

    def ent_nid_value(self, _: str | None) -> tuple[str, str, int, int]:
        kind = self.rng.choice(list(self.ids))
        return self.whole(self.ids[kind][0](), kind)

    def ent_ssn(self, _: str | None) -> tuple[str, str, int, int]:
        while not stdnum.us.ssn.is_valid(value := self.fake["en_US"].ssn()):
            pass
        return self.whole(value, "us_ssn")

    def ent_nino(self, _: str | None) -> tuple[str, str, int, int]:
        return self.whole(self.nino(), "gb_nino")

    def nino(self) -> str:
        """A UK National Insurance number that HMRC's rules allow (python-stdnum has none)."""
        while True:
            prefix = self.draw("ABCEGHJKLMNOPRSTWXYZ", 1) + self.draw("ABCEGHJKLMNPRSTWXYZ", 1)
            if prefix not in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):
                break
        digits, suffix = self.digits(6), self.rng.choice("ABCD")
        if self.rng.random() < 0.5:
            return f"{prefix} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}"
        return f"{prefix}{digits}{suffix}"

    # Faker's Belgian, Finnish and Swedish ids and its dates count back from today: these are
    # made here from a drawn birth date so that the corpus does not change from day to day.
    def birth(self) -> datetime:
        return datetime(1940, 1, 1) + timedelta(days=self.rng.randint(0, 65 * 365))

    def be_nn(self) -> str:
        born, serial = self.birth(), self.rng.randint(1, 997)
        body = f"{born:%y%m%d}{serial:03}"
        check = 97 - int(("2" if born.year >= 2000 else "") + body) % 97
        if self.rng.random() < 0.5:
            return f"{body}{check:02}"
        return f"{born:%y.%m.%d}-{serial:03}.{check:02}"

    def hetu(self) -> str:
        born, serial = self.birth(), self.rng.randint(2, 899)
        check = "0123456789ABCDEFHJKLMNPRSTUVWXY"[int(f"{born:%d%m%y}{serial:03}") % 31]
        return f"{born:%d%m%y}{'A' if born.year >= 2000 else '-'}{serial:03}{check}"

    def personnummer(self) -> str:
        born, serial = self.birth(), self.rng.randint(1, 999)
        digits = f"{born:%y%m%d}{serial:03}"
        return f"{born:%y%m%d}-{serial:03}{stdnum.luhn.calc_check_digit(digits)}"

    def pps(self) -> str:
        digits, suffix = self.digits(7), self.rng.choice(["", "", "A"])
        return next(f"{digits}{letter}{suffix}" for letter in string.ascii_uppercase
                    if stdnum.ie.pps.is_valid(f"{digits}{letter}{suffix}"))

    def idnr(self) -> str:
        while not stdnum.de.idnr.is_valid(value := str(self.rng.randint(1, 9)) + self.digits(10)):
            pass
        return value

    def ent_ip(self, _: str | None) -> tuple[str, str, int, int]:
        fake = self.fake["en_US"]
        if self.rng.random() < 0.15:
            return self.ent_ipv6(None)
        return self.whole(self.rng.choice([fake.ipv4_public, fake.ipv4_private])(), "ipv4")

    def ent_ipv6(self, _: str | None) -> tuple[str, str, int, int]:
        value = self.fake["en_US"].ipv6()
        if self.rng.random() < 0.5:
            value = value.replace(":0:", "::", 1) if ":0:" in value else value
        return self.whole(value, "ipv6")

    def ent_secret(self, kind: str | None) -> tuple[str, str, int, int]:
        kind = kind or self.rng.choice(self.bare_secrets)
        return self.whole(self.secrets[kind](), kind)

    def ent_env_secret(self, _: str | None) -> tuple[str, str, int, int]:
        kind = self.rng.choice(list(self.env_names))
        value = self.secrets[kind]()
        text = f"{self.env_names[kind]}={value}"
        return text, kind, len(text) - len(value), len(text)

    def ent_db_url(self, _: str | None) -> tuple[str, str, int, int]:
        scheme, port = self.rng.choice([("postgres", 5432), ("postgresql", 5432),
                                        ("mysql", 3306), ("mongodb", 27017), ("redis", 6379),
                                        ("amqp", 5672), ("https", 443)])
        user = self.rng.choice(["app", "admin", "svc_billing", "deploy", "root", "etl"])
        password = self.rng.choice([self.draw(PASSWORD, self.rng.randint(10, 24)),
                                    self.fake["en_US"].word() + str(self.rng.randint(10, 9999))
                                    + self.rng.choice("!*.")])
        head = f"{scheme}://{user}:"
        host = self.rng.choice(["db.internal", "db-primary", "cache", "mq.internal",
                                "prod-db.eu-west-1.rds.amazonaws.com"])
        text = f"{head}{password}@{host}:{port}/{self.rng.choice(['app', 'main', 'billing'])}"
        return text, "url_password", len(head), len(head) + len(password)

    def ent_address(self, _: str | None) -> tuple[str, str, int, int]:
        return self.whole(*self.rng.choice(self.addresses))

    def ent_customer(self, _: str | None) -> tuple[str, str, int, int]:
        return self.whole(self.rng.choice(self.customers), "dictionary")

    def ent_codename(self, _: str | None) -> tuple[str, str, int, int]:
        return self.whole(self.rng.choice(CODENAMES), "dictionary")

    def ent_project(self, _: str | None) -> tuple[str, str, int, int]:
        return self.whole(f"PRJ-{self.digits(4)}", "pattern")

    def jwt(self) -> str:
        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).decode().rstrip("=")

        alg = self.rng.choice(["HS256", "RS256", "ES256"])
        header = json.dumps({"alg": alg, "typ": "JWT"}, separators=(",", ":"))
        claims = {"sub": str(self.rng.randint(10**5, 10**9)), "iat": 1_700_000_000
                  + self.rng.randint(0, 10**8), "scope": self.rng.choice(["read", "admin"])}
        size = {"HS256": 32, "RS256": 256, "ES256": 64}[alg]
        signature = bytes(self.rng.getrandbits(8) for _ in range(size))
        return ".".join([b64(header.encode()), b64(json.dumps(claims).encode()), b64(signature)])

    def pem(self) -> str:
        label = self.rng.choice(["RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY",
                                 "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY"])
        body = base64.b64encode(bytes(self.rng.getrandbits(8) for _ in range(
            self.rng.randint(120, 1200)))).decode()
        lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"])


ENTITY_SLOTS = {"person": "person", "email": "email", "phone": "phone", "card": "card",
                "iban": "iban", "nid": "national_id", "nid_value": "national_id",
                "ssn": "national_id", "nino": "national_id", "ip": "ip", "ipv6": "ip",
                "secret": "secret", "env_secret": "secret", "db_url": "secret",
                "address": "address", "customer": "customer", "codename": "project",
                "project": "project"}
