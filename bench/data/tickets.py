"""The shipped company task for the learning-curve benchmark: route support tickets to billing,
technical, account or shipping.

`generate(n, seed)` draws tickets from the same company's traffic as the shipped eval set
(`src/veteran/evals/data/tickets.jsonl`, which the benchmark holds out): the same kinds of
problem, written in several ways, with names, numbers, plans and countries drawn at random, and
about one ticket in ten ambiguous (two queues' words in one ticket; the label is where the
company routes it). Deterministic from the seed.

`TEACHER_RULES` script the "teacher": a stand-in for a frontier model where none is configured,
the mock provider's ordered keyword rules (first match wins). It routes clear tickets right and
stumbles on some ambiguous ones, as a strong general model without the company's conventions
does.
"""

from __future__ import annotations

import random

LABELS = ("billing", "technical", "account", "shipping")
# The climb's passes over the data per number of trajectories: small sets get more.
SFT_EPOCHS = {50: 8, 200: 3, 1000: 1}
GREETINGS = ("", "Hi, ", "Hi there, ", "Hello team, ", "Hey, ", "Dear support, ", "Good morning, ",
             "Urgent: ", "Hello, ", "Good afternoon, ")
CLOSINGS = ("", " Thanks.", " Thank you!", " Cheers,", " Please help.", " Any update appreciated.",
            " Regards, Sam", " Kind regards.", " Thanks in advance!")
PLANS = ("Basic", "Pro", "Team", "Enterprise")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
COUNTRIES = ("Japan", "Brazil", "Germany", "Canada", "France", "Australia", "Mexico", "India")
PAGES = ("billing", "projects", "reports", "search", "settings", "profile")
BROWSERS = ("Firefox", "Safari", "Chrome", "Edge")
DEVICES = ("Android", "iOS", "my iPad", "Windows")
ERRORS = ("502", "500", "E1042", "ERR_TIMEOUT", "0x80040154", "403")

CORES: dict[str, list[str]] = {
    "billing": [
        "Please send me a VAT invoice for order #{order}.",
        "Could I get an invoice with our VAT number for order #{order}?",
        "I need to change the credit card used for billing.",
        "How do I update the payment card on file?",
        "I was charged twice for my {plan} subscription this month.",
        "There are two identical charges for {plan} on my card.",
        "My invoice for {month} shows the wrong amount.",
        "The {month} invoice total doesn't match my plan.",
        "There is an unexpected charge of ${amount} on my statement.",
        "Why did my bill go up after the {plan} upgrade?",
        "Can I get a refund for the {plan} plan? I cancelled last week.",
        "I'd like my money back for the {plan} plan, I cancelled it.",
        "The payment with my card ending {card} was declined but money left my account.",
        "Do you offer annual billing with a discount for {plan}?",
        "Please switch our payment method to bank transfer.",
    ],
    "technical": [
        "I get error {error} whenever I try to export a report.",
        "Exporting a report fails with error {error}.",
        "Notifications are not arriving on {device} after the last update.",
        "Push notifications stopped on {device}.",
        "Sync between the desktop app and phone stopped working.",
        "My phone and desktop no longer sync.",
        "The API returns a {error} error on the {page} endpoint since this morning.",
        "The app crashes when I open the {page} page.",
        "The {page} page freezes and then closes the app.",
        "The dashboard is very slow to load, it takes over {secs} seconds.",
        "The {page} button does nothing in {browser}.",
        "Uploads time out for files larger than {size} MB.",
        "Search returns no results even for exact project names.",
        "The webhook to our server stopped firing yesterday.",
        "Charts on the {page} page render blank in {browser}.",
    ],
    "account": [
        "Can you merge my two accounts into one?",
        "I have two logins, please combine them into one account.",
        "How do I change the email address on my account?",
        "I want to update the email I sign in with.",
        "I can't log in; the password reset email never arrives.",
        "The reset-password link never reaches my inbox.",
        "My account was locked after too many sign-in attempts.",
        "Please delete my account and all my data.",
        "Two-factor authentication codes are rejected when I sign in.",
        "I want to add a teammate to my {plan} workspace.",
        "How do I invite a colleague to our {plan} workspace?",
        "I need to transfer ownership of the workspace to a colleague.",
        "How can I change my username?",
        "I lost my phone and can't get past two-factor authentication.",
        "Please remove a former employee from our workspace.",
    ],
    "shipping": [
        "Can I change the delivery address for order #{order}?",
        "Please ship order #{order} to my office instead.",
        "Do you ship to {country}? The checkout won't accept my address.",
        "Is delivery to {country} possible?",
        "How long does express delivery take to {country}?",
        "I received the wrong item in my parcel.",
        "The box had someone else's product in it.",
        "My order #{order} has not arrived yet, it's been {days} days.",
        "Order #{order} is {days} days late.",
        "The courier says delivered but I never got the package.",
        "The package arrived damaged; the box was crushed.",
        "My parcel came torn open and the item is broken.",
        "The tracking number for order #{order} doesn't work.",
        "Tracking for order #{order} hasn't updated in a week.",
        "Can I pick up order #{order} at a depot instead of home delivery?",
    ],
}

# Ambiguous: another queue's words in the ticket; the label is the company's routing.
AMBIGUOUS: dict[str, list[str]] = {
    "billing": [
        "I cancelled my account but you still charged me ${amount}.",
        "I was charged for express delivery but my order #{order} still hasn't shipped.",
        "The shipping fee on order #{order} was charged twice.",
    ],
    "technical": [
        "The app crashes when I try to update my payment card.",
        "The invoice page shows error {error} when I open it.",
    ],
    "account": [
        "After the update I'm locked out of my account and the login page shows error {error}.",
        "I can't log in to download my invoice for {month}.",
    ],
    "shipping": [
        "The tracking page throws error {error} for order #{order}.",
        "My account shows order #{order} delivered but nothing arrived.",
    ],
}

# The teacher: ordered (pattern, label) rules, first match on the ticket wins.
TEACHER_RULES: dict[str, str] = {
    r"\berror\b|crash|freez|api |sync|notification|slow to load|does nothing|time out|"
    r"webhook|render|search returns": "technical",
    r"invoice|charge|refund|bill|payment|card|money|discount|bank transfer": "billing",
    r"ship|deliver|parcel|package|courier|tracking|order #|box|depot": "shipping",
    r"account|log ?in|password|sign in|two-factor|teammate|colleague|workspace|username|email|"
    r"employee": "account",
}


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        order=rng.randint(10000, 99999), plan=rng.choice(PLANS), month=rng.choice(MONTHS),
        amount=rng.randint(9, 499), card=rng.randint(1000, 9999), error=rng.choice(ERRORS),
        device=rng.choice(DEVICES), page=rng.choice(PAGES), secs=rng.randint(20, 90),
        browser=rng.choice(BROWSERS), size=rng.choice((50, 100, 200, 500)),
        country=rng.choice(COUNTRIES), days=rng.randint(5, 30),
    )


def generate(n: int, seed: int = 0) -> list[dict[str, object]]:
    """`n` labelled tickets: {"id", "input", "target", "metadata": {"ambiguous": bool}}."""
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for i in range(n):
        label = rng.choice(LABELS)
        ambiguous = rng.random() < 0.1
        core = _fill(rng.choice((AMBIGUOUS if ambiguous else CORES)[label]), rng)
        text = f"{rng.choice(GREETINGS)}{core}{rng.choice(CLOSINGS)}"
        rows.append({"id": f"g{seed}-{i:05d}", "input": text, "target": label,
                     "metadata": {"ambiguous": ambiguous}})
    return rows
