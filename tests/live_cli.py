"""`veteran` with the test stand-in for the "local" kind installed (FakeLocal in
tests/train/test_promote.py: the mock provider with local's `paths`), for tests that run veteran
commands as processes: `python -m tests.live_cli serve ...`, from the repository root."""

from __future__ import annotations

from importlib.metadata import EntryPoint

from veteran.cli import main as veteran
from veteran.providers import registry


def main() -> None:
    registry._entry_points()["local"] = EntryPoint(
        "local", "tests.train.test_promote:FakeLocal", registry.GROUP)
    veteran()


if __name__ == "__main__":
    main()
