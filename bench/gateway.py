"""What the veteran gateway adds: latency and throughput over a fast fake upstream, and the
embedded local model's load time, generation speed and time to first token.

    .venv/bin/python bench/gateway.py [--duration 10] [--skip-local]

Runs the fake upstream (`veteran.testing.fake_upstream`) and `veteran serve` as subprocesses on
loopback, loads them with `wrk` directly and through the gateway, checks that every request the
gateway answered was captured, prints a table and appends a dated section to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shlex
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from veteran.testing.server import free_port, wait_http

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "RESULTS.md"
VENV_BIN = Path(sys.executable).parent
TARGETS = {"p50": 0.5, "p99": 3.0, "rps": 5000.0}
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}

TOML = """\
[server]
host = "127.0.0.1"
port = {gateway}
[capture]
durable = true
[providers.fake]
kind = "openai"
base_url = "http://127.0.0.1:{upstream}/v1"
[functions.bench.variants.a]
model = "fake/fake-model"
"""

LUA = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{{"model": "{model}", "messages": [{{"role":"user","content":"hello"}}]}}'
"""


@dataclass
class Wrk:
    """One wrk run: latency percentiles in ms, throughput, completed and failed requests."""

    p50: float
    p99: float
    rps: float
    requests: int
    failed: int


def check_post(url: str, model: str) -> None:
    """One request before load, so a broken path fails loudly rather than as wrk's non-2xx."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hello"}]}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            resp.read()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"POST {url} -> {exc.code}: {exc.read()[:500]!r}") from None


def run_wrk(url: str, script: Path, connections: int, seconds: float) -> Wrk:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script)]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout

    def latency(pct: str) -> float:
        match = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        if not match:
            raise RuntimeError(f"no {pct}% latency in wrk output:\n{out}")
        return float(match[1]) * UNITS[match[2]]

    total = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not (total and rps):
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failed = int(non2xx[1]) if non2xx else 0
    failed += sum(int(n) for n in errors.groups()) if errors else 0
    return Wrk(latency("50"), latency("99"), float(rps[1]), int(total[1]), failed)


def counted_calls(port: int) -> int | None:
    """The answered calls the gateway's `GET /metrics` counted (`veteran_requests_total`,
    status ok, summed over its series); None when it exports no such counter."""
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    found = re.findall(r'^veteran_requests_total\{[^}]*status="ok"\} (\S+)$', text, re.M)
    return int(sum(float(v) for v in found)) if found else None


def trajectory_count(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        count: int = conn.execute("SELECT count(*) FROM trajectories").fetchone()[0]
    conn.close()
    return count


def settled_count(db: Path, timeout: float = 15.0) -> int:
    """The row count once it stops changing (capture commits in batches)."""
    last, deadline = -1, time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = trajectory_count(db)
        if count == last:
            return count
        last = count
        time.sleep(1.0)
    return last


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def bench_local() -> dict[str, float]:
    """Load time, 64-token greedy tokens/s and streamed time to first token, in-process."""
    from veteran.providers.base import ModelRequest
    from veteran.providers.local import BUILTIN, LocalProvider, LocalSettings

    provider = LocalProvider("local", LocalSettings(kind="local"))
    messages = [{"role": "user", "content": "Tell a long story about a lighthouse keeper."}]

    def request(tokens: int) -> ModelRequest:
        body = {"model": BUILTIN, "messages": messages, "max_tokens": tokens, "temperature": 0}
        return ModelRequest(model=BUILTIN, body=body)

    started = time.perf_counter()
    await provider.start()
    load = time.perf_counter() - started
    try:
        await provider.complete(request(4))  # warm-up: first-call allocations are not speed
        started = time.perf_counter()
        answer = await provider.complete(request(64))
        elapsed = time.perf_counter() - started
        tokens = answer["usage"]["completion_tokens"]
        ttfts: list[float] = []
        for _ in range(3):
            started = time.perf_counter()
            # closed on break, so the generation thread stops before the next measurement
            stream = cast(AsyncGenerator[dict[str, Any], None], provider.stream(request(64)))
            async with contextlib.aclosing(stream) as chunks:
                async for chunk in chunks:
                    if any(c["delta"].get("content") for c in chunk.get("choices", [])):
                        ttfts.append(time.perf_counter() - started)
                        break
    finally:
        await provider.close()
    return {
        "load_s": load,
        "tokens": tokens,
        "tok_s": tokens / elapsed,
        "ttft_ms": statistics.median(ttfts) * 1e3,
    }


def machine(load: float) -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    mem = re.search(r"^MemTotal:\s+(\d+) kB", meminfo, re.M)
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return (
        f"{nproc} CPUs ({model[1] if model else platform.processor() or 'unknown'}), "
        f"{int(mem[1]) / 2**20 if mem else 0:.1f} GiB memory, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; 1-minute load average at start {load:.2f}"
    )


def ms(value: float) -> str:
    return f"{value:.3f} ms"


def target(value: float, key: str, unit: str = " ms", *, at_least: bool = False) -> str:
    goal = TARGETS[key]
    met = value >= goal if at_least else value <= goal
    return f"{'≥' if at_least else '≤'} {goal:,g}{unit} {'✓' if met else '✗'}"


def start_servers(
    work: Path, upstream_port: int, gateway_port: int
) -> list[subprocess.Popen[bytes]]:
    """The fake upstream and the gateway, each answering; the caller stops them."""
    (work / "veteran.toml").write_text(TOML.format(gateway=gateway_port, upstream=upstream_port))
    servers: list[subprocess.Popen[bytes]] = []
    fake = ["-m", "veteran.testing.fake_upstream", "--port", str(upstream_port)]
    servers.append(subprocess.Popen([sys.executable, *fake], stdout=subprocess.DEVNULL))
    wait_http(f"http://127.0.0.1:{upstream_port}/v1/models", servers[0], "fake upstream", 30)
    env = {k: v for k, v in os.environ.items() if k != "VETERAN_DATABASE_URL"}
    serve = [
        str(VENV_BIN / "veteran"),
        "serve",
        "--workspace",
        str(work),
        "--port",
        str(gateway_port),
    ]
    with (work / "gateway.log").open("wb") as log:
        servers.append(subprocess.Popen(serve, stdout=log, stderr=subprocess.STDOUT, env=env))
    try:
        wait_http(f"http://127.0.0.1:{gateway_port}/healthz", servers[1], "gateway", 60)
        check_post(f"http://127.0.0.1:{gateway_port}/v1/chat/completions", "bench")
    except RuntimeError:
        sys.stderr.write((work / "gateway.log").read_text()[-4000:])
        raise
    return servers


def bench_http(duration: float, warmup: float, rounds: int) -> list[tuple[str, str, str]]:
    """wrk directly and through the gateway at c=1 and c=32, interleaved for `rounds` rounds so
    each gateway figure is paired with a direct one taken moments before (the machine is noisy);
    medians are reported. Then count captured rows."""
    upstream_port, gateway_port = free_port(), free_port()
    servers: list[subprocess.Popen[bytes]] = []
    results: dict[tuple[str, int], list[Wrk]] = {}
    completed = 1  # the check_post request
    with tempfile.TemporaryDirectory(prefix="veteran-bench-") as tmp:
        work = Path(tmp)
        try:
            servers = start_servers(work, upstream_port, gateway_port)
            targets = {"direct": (upstream_port, "fake-model"), "gateway": (gateway_port, "bench")}
            for connections in (1, 32):
                for round_ in range(rounds):
                    for name, (port, model) in targets.items():
                        url = f"http://127.0.0.1:{port}/v1/chat/completions"
                        script = work / f"{name}.lua"
                        script.write_text(LUA.format(model=model))
                        print(f"wrk {name} c={connections} round {round_ + 1} ...", flush=True)
                        warm = warmup > 0 and round_ == 0
                        runs = [run_wrk(url, script, connections, warmup)] if warm else []
                        runs.append(run_wrk(url, script, connections, duration))
                        results.setdefault((name, connections), []).append(runs[-1])
                        completed += sum(r.requests for r in runs) if name == "gateway" else 0
            counted = counted_calls(gateway_port)
            db = work / "veteran.db"
            live = settled_count(db)
            stop(servers[1])
            captured = trajectory_count(db)
        finally:
            for server in reversed(servers):
                stop(server)

    def median(name: str, connections: int, field: str) -> float:
        return statistics.median(getattr(r, field) for r in results[name, connections])

    def each(values: list[float], fmt: str) -> str:
        return " / ".join(format(v, fmt) for v in values)

    added50 = [g.p50 - d.p50 for d, g in zip(results["direct", 1], results["gateway", 1],
                                             strict=True)]
    added99 = [g.p99 - d.p99 for d, g in zip(results["direct", 1], results["gateway", 1],
                                             strict=True)]
    g32_rps = [r.rps for r in results["gateway", 32]]
    p50, p99, rps = statistics.median(added50), statistics.median(added99), median(
        "gateway", 32, "rps")
    failed = sum(r.failed for (name, _), runs in results.items() if name == "gateway"
                 for r in runs)
    return [
        ("rounds (each: direct, then gateway)", str(rounds), ""),
        ("direct p50 / p99 at c=1 (median)",
         f"{ms(median('direct', 1, 'p50'))} / {ms(median('direct', 1, 'p99'))}", ""),
        ("gateway p50 / p99 at c=1 (median)",
         f"{ms(median('gateway', 1, 'p50'))} / {ms(median('gateway', 1, 'p99'))}", ""),
        ("added p50 at c=1 (median of rounds)", ms(p50), target(p50, "p50")),
        ("added p50 at c=1, each round", each(added50, ".3f") + " ms", ""),
        ("added p99 at c=1 (median of rounds)", ms(p99), target(p99, "p99")),
        ("added p99 at c=1, each round", each(added99, ".3f") + " ms", ""),
        ("direct req/s at c=32 (median)", f"{median('direct', 32, 'rps'):,.0f}", ""),
        ("gateway req/s at c=32 (median)", f"{rps:,.0f}",
         target(rps, "rps", "", at_least=True)),
        ("gateway req/s at c=32, each round", each(g32_rps, ",.0f"), ""),
        ("gateway p50 / p99 at c=32 (median)",
         f"{ms(median('gateway', 32, 'p50'))} / {ms(median('gateway', 32, 'p99'))}", ""),
        ("gateway failed requests (non-2xx, socket errors)", str(failed), "0"),
        ("requests completed through the gateway (wrk runs + 1 check)", f"{completed:,}", ""),
        ("answered calls counted on `GET /metrics` (`veteran_requests_total`)",
         "not exported" if counted is None else f"{counted:,}",
         "= completed, + up to c in flight when each wrk run stops"),
        (
            "trajectories captured (settled / after shutdown)",
            f"{live:,} / {captured:,}",
            "= completed, + up to c in flight when each wrk run stops",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark what the veteran gateway adds.")
    parser.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of warm-up before each")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved direct/gateway rounds")
    parser.add_argument("--skip-local", action="store_true", help="skip the embedded local model")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]

    rows = bench_http(args.duration, args.warmup, args.rounds)
    if not args.skip_local:
        print("local model ...", flush=True)
        local = asyncio.run(bench_local())
        rows += [
            ("local model load (`await provider.start()`)", f"{local['load_s']:.2f} s", ""),
            (
                f"local model greedy generation ({local['tokens']:.0f} tokens)",
                f"{local['tok_s']:.1f} tokens/s",
                "",
            ),
            ("local model time to first token (stream, median of 3)", ms(local["ttft_ms"]), ""),
        ]

    command = shlex.join([".venv/bin/python", "bench/gateway.py", *argv])
    section = (
        "\n".join(
            [
                f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
                "",
                f"- command: `{command}`",
                f"- machine: {machine(load)}",
                "",
                "| figure | value | target |",
                "| --- | --- | --- |",
                *(f"| {name} | {value} | {goal} |" for name, value, goal in rows),
            ]
        )
        + "\n"
    )
    print("\n" + section)
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Benchmark results\n\nAppended by `make bench` (bench/gateway.py): what the gateway "
            "adds over a fake upstream on loopback, and the embedded local model's speed.\n"
        )
    with RESULTS.open("a") as out:
        out.write("\n" + section)
    print(f"appended to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
