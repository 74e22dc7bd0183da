"""The hard negatives of the detection corpus (bench/policy_corpus.py): values that look like
an entity to a careless detector and are none (order and invoice numbers, versions, dates,
timestamps, hashes, UUIDs, Luhn-failing 16-digit numbers, prices, MAC addresses, C++ scopes,
OIDs, placeholders where a key would go, companies that are not customers). No detector should
report any of them. Dates are drawn from the seeded generator, never from today.
"""

from __future__ import annotations

import random
import string
import uuid
from datetime import datetime, timedelta

import stdnum.luhn
from faker import Faker

ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "-_"
B64 = ALNUM + "+/"
HEX = "0123456789abcdef"
UPPER = string.ascii_uppercase + string.digits


class Negatives:
    """`neg_SLOT()` fills the slot `{{SLOT}}` of a template with a value that is no entity."""

    rng: random.Random
    fake: dict[str, Faker]
    others: list[str]  # companies that are not customers

    def draw(self, alphabet: str, n: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def digits(self, n: int) -> str:
        return self.draw(string.digits, n)

    def moment(self) -> datetime:
        return datetime(2019, 1, 1) + timedelta(seconds=self.rng.randint(0, 7 * 365 * 86400))

    def neg_order(self) -> str:
        return self.rng.choice([f"ORD-{self.rng.randint(2019, 2026)}-{self.digits(6)}",
                                f"#{self.digits(7)}", f"SO{self.digits(8)}", f"A-{self.digits(5)}"])

    def neg_invoice(self) -> str:
        return self.rng.choice([f"INV-{self.digits(6)}", f"INV/{self.rng.randint(2019, 2026)}/"
                                f"{self.digits(4)}"])

    def neg_version(self) -> str:
        a, b, c = self.rng.randint(0, 12), self.rng.randint(0, 40), self.rng.randint(0, 30)
        return self.rng.choice([f"{a}.{b}.{c}", f"v{a}.{b}.{c}", f"{a}.{b}.{c}-rc.{c % 5}",
                                f"{a}.{b}", f"{a}.{b}.{c}.{self.rng.randint(256, 9999)}"])

    def neg_winver(self) -> str:
        return f"10.0.{self.rng.randint(17763, 26100)}.{self.rng.randint(256, 5000)}"

    def neg_date(self) -> str:
        day = self.moment().date()
        return self.rng.choice([day.isoformat(), day.strftime("%d/%m/%Y"),
                                day.strftime("%B %d, %Y"), day.strftime("%d.%m.%Y")])

    def neg_time(self) -> str:
        return f"{self.moment():%H:%M:%S}"

    def neg_ts(self) -> str:
        return self.moment().isoformat(timespec="seconds") + f".{self.rng.randint(0, 999):03}Z"

    def neg_clf(self) -> str:
        return self.moment().strftime("%d/%b/%Y:%H:%M:%S +0000")

    def neg_syslog(self) -> str:
        return self.moment().strftime("%b %d %H:%M:%S") + " web-01"

    def neg_epoch(self) -> str:
        return str(self.rng.randint(1_600_000_000, 1_800_000_000) * self.rng.choice([1, 1000]))

    def neg_sha(self) -> str:
        return self.draw(HEX, 40)

    def neg_sha7(self) -> str:
        return self.draw(HEX, 7)

    def neg_sha256(self) -> str:
        return self.draw(HEX, 64)

    def neg_digest(self) -> str:
        return "sha256:" + self.draw(HEX, 64)

    def neg_sri(self) -> str:
        return "sha512-" + self.draw(B64, 86) + "=="

    def neg_uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def neg_badcard(self) -> str:
        while stdnum.luhn.is_valid(number := self.rng.choice("45") + self.digits(15)):
            pass
        return self.rng.choice([number, " ".join(number[i:i + 4] for i in range(0, 16, 4))])

    def neg_last4(self) -> str:
        return self.rng.choice([f"**** **** **** {self.digits(4)}", f"xxxx-{self.digits(4)}",
                                self.digits(4)])

    def neg_expiry(self) -> str:
        return f"{self.rng.randint(1, 12):02}/{self.rng.randint(26, 33)}"

    def neg_price(self) -> str:
        amount = self.rng.randint(5, 250_000) + self.rng.randint(0, 99) / 100
        return self.rng.choice([f"${amount:,.2f}", f"€{amount:,.2f}", f"USD {amount:,.2f}",
                                f"{amount:.2f} EUR", f"£{amount:,.0f}"])

    def neg_pct(self) -> str:
        return f"{self.rng.randint(1, 99)}.{self.rng.randint(0, 9)}%"

    def neg_port(self) -> str:
        return str(self.rng.randint(1024, 65535))

    def neg_pid(self) -> str:
        return str(self.rng.randint(100, 99999))

    def neg_bytes(self) -> str:
        return str(self.rng.randint(200, 2_000_000))

    def neg_ms(self) -> str:
        return f"{self.rng.randint(1, 9000)} ms"

    def neg_lr(self) -> str:
        return self.rng.choice(["2e-5", "1e-4", "3e-4", "0.0005"])

    def neg_mac(self) -> str:
        octets = [self.draw(HEX, 2) for _ in range(6)]
        return self.rng.choice([":", "-"]).join(octets).upper()

    def neg_cxx(self) -> str:
        return self.rng.choice(["std::vector<std::string>", "Foo::bar", "ns::Client::send",
                                "std::chrono::milliseconds", "Parser::parse_line"])

    def neg_oid(self) -> str:
        return f"1.3.6.1.4.1.{self.rng.randint(300, 60000)}.{self.rng.randint(1, 9)}"

    def neg_ticket(self) -> str:
        return f"{self.rng.choice(['OPS', 'SUP', 'ENG', 'JIRA'])}-{self.rng.randint(10, 99999)}"

    def neg_tracking(self) -> str:
        return self.rng.choice(["1Z" + self.draw(UPPER, 16), "JD" + self.digits(18)])

    def neg_reqid(self) -> str:
        return "req_" + self.draw(ALNUM, 14)

    def neg_placeholder(self) -> str:
        return self.rng.choice(["sk-...", "<your-api-key>", "${OPENAI_API_KEY}", "YOUR_API_KEY",
                                "sk-ant-...", "xoxb-your-token", "AKIA****************"])

    def neg_dataurl(self) -> str:
        return "data:image/png;base64,iVBORw0KGgo" + self.draw(B64, self.rng.randint(40, 90))

    def neg_handle(self) -> str:
        return self.rng.choice(["ops-bot", "dev1", "ci", "build", "deploy", "infra"])

    def neg_other_company(self) -> str:
        return self.rng.choice(self.others)
