"""Published versions of veteran.toml (`config_versions`): the channel by which every running
gateway on a store follows a config change (`veteran reload`, a promotion or rollback, SIGHUP, an
edited file), as they follow provider switches. The store keeps the text, not a parsed config:
each gateway validates it itself before swapping (veteran.gateway's live config).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from veteran.store.audit import append
from veteran.store.codec import codec_for
from veteran.store.schema import config_versions
from veteran.types import now


@dataclass(frozen=True, slots=True)
class ConfigVersion:
    version: int
    digest: str  # SHA-256 of the text
    text: str
    source: str
    created_at: float


def config_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ConfigVersions:
    """The `config_versions` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.codec = codec_for(engine)

    def publish(self, text: str, source: str, *, actor: str | None = None
                ) -> tuple[ConfigVersion, bool]:
        """Make `text` the latest version: (that version, whether it is new). Publishing the
        text that is already the latest adds nothing. A new version is on the audit chain,
        with `actor` (default: this process's user and host) and `source`."""
        digest = config_digest(text)
        with self.engine.begin() as conn:
            latest = conn.execute(
                select(config_versions).order_by(config_versions.c.version.desc()).limit(1)
            ).first()
            if latest is not None and latest.digest == digest:
                return self._version(latest), False
            created = now()
            version = conn.execute(config_versions.insert().values(
                digest=digest, text=self.codec.encode(text), source=source[:64],
                created_at=created,
            )).inserted_primary_key
            assert version is not None
            append(conn, actor=actor, action="config.publish",
                   target=f"version {int(version[0])}",
                   details={"source": source[:64], "digest": digest})
        return ConfigVersion(int(version[0]), digest, text, source[:64], created), True

    def head(self) -> tuple[int, str] | None:
        """(version, digest) of the latest: what a running gateway polls (cheap)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(config_versions.c.version, config_versions.c.digest)
                .order_by(config_versions.c.version.desc()).limit(1)
            ).first()
        return None if row is None else (int(row.version), str(row.digest))

    def get(self, version: int) -> ConfigVersion | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(config_versions).where(config_versions.c.version == version)
            ).first()
        return None if row is None else self._version(row)

    def _version(self, row: Any) -> ConfigVersion:
        return ConfigVersion(int(row.version), row.digest, self.codec.decode(row.text),
                             row.source, row.created_at)
