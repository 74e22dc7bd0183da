"""kill -9 at scale: 50 repetitions of `veteran.testing.crash.crash_once` (200 concurrent
streamed requests, SIGKILL once 60 have completed), appended to bench/RESULTS.md.

    .venv/bin/python bench/durability.py [--repetitions 50] [--concurrency 200]
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from veteran.testing.crash import crash_once
from veteran.testing.fake_upstream import FakeUpstream
from veteran.testing.server import free_port

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repetitions", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--kill-after", type=int, default=60)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    results = []
    started = time.monotonic()
    with FakeUpstream() as upstream, tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repetitions):
            result = crash_once(Path(tmp) / f"ws{i}", upstream.url, port=free_port(),
                                concurrency=args.concurrency, kill_after=args.kill_after)
            results.append(result)
            print(f"{i + 1:3d}: {result}", flush=True)
    elapsed = time.monotonic() - started
    completed = [r.completed for r in results]
    missing = sum(len(r.missing) for r in results)
    rows = [
        ("repetitions", f"{len(results)}"),
        ("concurrent streamed requests per repetition", f"{args.concurrency}"),
        ("responses received in full before the kill (median, min-max)",
         f"{statistics.median(completed):.0f} ({min(completed)}-{max(completed)})"),
        ("of those, trajectories missing after the kill", f"{missing}"),
        ("databases failing `PRAGMA integrity_check`",
         f"{sum(r.integrity != 'ok' for r in results)}"),
        ("databases that failed to reopen", f"{sum(not r.reopened for r in results)}"),
        ("wall time", f"{elapsed:.0f} s"),
    ]
    command = shlex.join([".venv/bin/python", "bench/durability.py", *argv])
    section = "\n".join([
        f"## kill -9 durability, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "",
        f"- command: `{command}`",
        "- durable mode, SQLite (WAL, synchronous=NORMAL), gateway and fake upstream on loopback",
        "", "| figure | value |", "| --- | --- |",
        *(f"| {name} | {value} |" for name, value in rows),
    ]) + "\n"
    print("\n" + section)
    with RESULTS.open("a") as out:
        out.write("\n" + section)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
