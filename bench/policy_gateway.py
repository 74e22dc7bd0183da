"""What the company's rules cost on the gateway's hot path (issue 14's cost targets).

    .venv/bin/python bench/policy_gateway.py [--duration 10] [--rounds 3] [--ttft 300]

One fake upstream and three `veteran serve` processes on loopback, each over its own SQLite
store, all sent the same 1 KB business message (an e-mail, a phone number, an AWS key and a
project code in prose; the upstream echoes it, so the answer is 1 KB too):

- `off`: redaction off (`[redact] entities = []`) and no rule;
- `default`: the default redaction (no `[redact]` table: secrets kept out of storage) and one
  regex policy (it fires on every request: `PRJ-\\d{4}` routes to the function's variant);
- `pseudo`: every structured entity pseudonymised toward the provider and kept out of storage,
  with the same regex policy.

wrk loads each at c=1 and c=32, interleaved for `--rounds` rounds with the upstream directly
(medians reported, with each round's figure). Time to first token is measured on streamed
calls of `off` and `pseudo` (an httpx client, sequential, interleaved in blocks), since
restoring placeholders in a stream must not hold it back. Appends a section to
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
from gateway import RESULTS, TOML, VENV_BIN, Wrk, machine, ms, run_wrk, stop

from veteran.testing.server import free_port, wait_http

TARGETS = {"p50": 0.5, "rps": 4000.0, "ttft": 5.0}

BASE = TOML  # bench/gateway.py's workspace: the fake upstream behind function `bench`

RULE = """
[[policies]]
name = "project-codes"
match = { regex = 'PRJ-\\d{4}', functions = ["bench"] }
action = "route"
to = "a"
"""

CONFIGS = {
    "off": '[redact]\nentities = []\nstorage = false\n',
    "default": RULE,
    "pseudo": ('[redact]\nentities = ["secret", "email", "phone", "card", "iban", '
               '"national_id", "ip"]\nstorage = true\nprovider = true\n' + RULE),
}


def message(size: int = 1024) -> str:
    """About `size` bytes of business prose with four values to find."""
    head = ("Hi team, following up on the renewal for PRJ-2291. The customer's billing contact "
            "is dana.whitfield@example-corp.com and she asked us to call +1 415 555 0132 "
            "before Friday. The staging deploy still uses AKIAIOSFODNN7EXAMPLE in its config, "
            "which we must rotate. ")
    filler = ("The quarterly numbers look steady, the support queue is shorter than last "
              "month, and the onboarding checklist was updated with the new security steps. ")
    text = head
    while len(text.encode()) < size:
        text += filler
    return text.encode()[:size].decode(errors="ignore")


def lua(model: str, text: str, stream: bool = False) -> str:
    body = orjson.dumps({"model": model, "stream": stream,
                         "messages": [{"role": "user", "content": text}]}).decode()
    return ('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = [=[{body}]=]\n")


def start(work: Path, name: str, upstream: int) -> tuple[subprocess.Popen[bytes], int]:
    folder = work / name
    folder.mkdir()
    port = free_port()
    (folder / "veteran.toml").write_text(BASE.format(gateway=port, upstream=upstream)
                                         + CONFIGS[name])
    env = {k: v for k, v in os.environ.items() if k != "VETERAN_DATABASE_URL"}
    log = (folder / "gateway.log").open("wb")
    process = subprocess.Popen([str(VENV_BIN / "veteran"), "serve", "--workspace", str(folder),
                                "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                               env=env)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", process, f"gateway {name}", 90)
    except RuntimeError:
        sys.stderr.write((folder / "gateway.log").read_text()[-4000:])
        raise
    return process, port


async def ttft(port: int, text: str, n: int) -> list[float]:
    """Milliseconds to the first content chunk of `n` sequential streamed calls."""
    body = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": text}]}
    out: list[float] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        for _ in range(n):
            began = time.perf_counter()
            first: float | None = None
            async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                response.raise_for_status()
                async for line in response.aiter_lines():
                    if first is None and line.startswith("data: {") and '"content":"' in line:
                        first = (time.perf_counter() - began) * 1000
            if first is None:
                raise RuntimeError("a stream carried no content")
            out.append(first)
    return out


def check(port: int, text: str, name: str) -> dict[str, str]:
    """One call before load: it must answer, and say which rules applied."""
    response = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=30,
                          json={"model": "bench", "messages": [{"role": "user", "content": text}]})
    response.raise_for_status()
    answer = response.json()["choices"][0]["message"]["content"]
    if "dana.whitfield@example-corp.com" not in answer:
        raise RuntimeError(f"{name}: the app did not get its values back: {answer[:200]}")
    return {"policy": response.headers.get("x-veteran-policy", "(none)")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up, round 1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ttft", type=int, default=300, help="streamed calls per config")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    text = message()
    results: dict[tuple[str, int], list[Wrk]] = {}
    headers: dict[str, dict[str, str]] = {}
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="veteran-bench-policy-") as tmp:
        work = Path(tmp)
        try:
            upstream = free_port()
            fake = [sys.executable, "-m", "veteran.testing.fake_upstream", "--port",
                    str(upstream)]
            processes.append(subprocess.Popen(fake, stdout=subprocess.DEVNULL))
            wait_http(f"http://127.0.0.1:{upstream}/v1/models", processes[0], "upstream", 30)
            ports = {"direct": upstream}
            for name in CONFIGS:
                process, ports[name] = start(work, name, upstream)
                processes.append(process)
                headers[name] = check(ports[name], text, name)
            for connections in (1, 32):
                for round_ in range(args.rounds):
                    for name, port in ports.items():
                        script = work / f"{name}.lua"
                        script.write_text(lua("fake-model" if name == "direct" else "bench",
                                              text))
                        url = f"http://127.0.0.1:{port}/v1/chat/completions"
                        print(f"wrk {name} c={connections} round {round_ + 1} ...", flush=True)
                        if round_ == 0 and args.warmup > 0:
                            run_wrk(url, script, connections, args.warmup)
                        results.setdefault((name, connections), []).append(
                            run_wrk(url, script, connections, args.duration))
            print("time to first token ...", flush=True)
            firsts: dict[str, list[float]] = {"off": [], "pseudo": []}
            block = max(1, args.ttft // 10)
            for _ in range(10):
                for name in firsts:
                    firsts[name] += asyncio.run(ttft(ports[name], text, block))
        finally:
            for process in reversed(processes):
                stop(process)

    def med(name: str, c: int, field: str) -> float:
        return statistics.median(getattr(r, field) for r in results[name, c])

    def added(name: str) -> list[float]:
        return [g.p50 - d.p50 for d, g in zip(results["direct", 1], results[name, 1],
                                              strict=True)]

    def goal(value: float, key: str, at_least: bool = False) -> str:
        met = value >= TARGETS[key] if at_least else value <= TARGETS[key]
        sign = "≥" if at_least else "≤"
        return f"{sign} {TARGETS[key]:,g} {'✓' if met else '✗'}"

    rows: list[tuple[str, str, str]] = [
        ("message", f"{len(text.encode())} bytes, echoed back", ""),
        ("rounds (each: direct, off, default, pseudo)", str(args.rounds), ""),
    ]
    for name in CONFIGS:
        extra = added(name)
        p50 = statistics.median(extra)
        rows.append((f"{name}: x-veteran-policy", f"`{headers[name]['policy']}`", ""))
        rows.append((f"{name}: added p50 at c=1 (each round)",
                     f"{ms(p50)} ({' / '.join(f'{v:.3f}' for v in extra)})",
                     goal(p50, "p50") + " ms" if name == "default" else ""))
        rows.append((f"{name}: req/s at c=32 (each round)",
                     f"{med(name, 32, 'rps'):,.0f} ("
                     + " / ".join(f"{r.rps:,.0f}" for r in results[name, 32]) + ")",
                     goal(med(name, 32, "rps"), "rps", at_least=True)
                     if name == "default" else ""))
    for name in ("default", "pseudo"):
        rows.append((f"{name} / off: p50 at c=1, req/s at c=32",
                     f"{med(name, 1, 'p50') / med('off', 1, 'p50'):.3f}, "
                     f"{med(name, 32, 'rps') / med('off', 32, 'rps'):.3f}", ""))
    failed = sum(r.failed for runs in results.values() for r in runs)
    rows.append(("failed requests (non-2xx, socket errors)", str(failed), "0"))
    off_ttft, pseudo_ttft = (statistics.median(firsts["off"]),
                             statistics.median(firsts["pseudo"]))
    rows.append(("time to first token, streamed (median): off / pseudo",
                 f"{ms(off_ttft)} / {ms(pseudo_ttft)} ({len(firsts['off'])} calls each)", ""))
    rows.append(("time to first token: pseudo − off", ms(pseudo_ttft - off_ttft),
                 goal(pseudo_ttft - off_ttft, "ttft") + " ms"))
    command = shlex.join([".venv/bin/python", "bench/policy_gateway.py", *argv])
    section = "\n".join([
        f"## Policies on the hot path (issue 14): {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "",
        f"- command: `{command}`", f"- machine: {machine(load)}", "",
        "| figure | value | target |", "| --- | --- | --- |",
        *(f"| {a} | {b} | {c} |" for a, b, c in rows)]) + "\n"
    print("\n" + section)
    with RESULTS.open("a") as out:
        out.write("\n" + section)
    print(f"appended to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
