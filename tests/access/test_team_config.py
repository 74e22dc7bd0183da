"""`[teams.NAME]` tables: validated like every other setting, errors naming the key."""

from __future__ import annotations

import pytest

from veteran.config import parse_config
from veteran.errors import ConfigError


def test_team_limits_are_read() -> None:
    config = parse_config({"teams": {"support": {"requests_per_minute": 60,
                                                 "spend_per_day": 2.5}}})
    team = config.teams["support"]
    assert (team.requests_per_minute, team.tokens_per_minute, team.spend_per_day) == (
        60, None, 2.5
    )


@pytest.mark.parametrize(
    ("teams", "key"),
    [
        ({"support": {"requests_per_minute": 0}}, "teams.support.requests_per_minute"),
        ({"support": {"tokens_per_minute": -5}}, "teams.support.tokens_per_minute"),
        ({"support": {"spend_per_day": 0}}, "teams.support.spend_per_day"),
        ({"support": {"rpm": 5}}, "teams.support.rpm"),
        ({"bad team": {}}, "teams.bad team"),
    ],
)
def test_bad_team_tables_name_the_key(teams: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"teams": teams})
    assert caught.value.key == key
