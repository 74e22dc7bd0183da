"""The store's tables (SQLAlchemy Core). Changed only together with a new Alembic migration.

Request and response bodies are stored as JSON text serialised once by the gateway (orjson),
which is portable across SQLite and PostgreSQL and keeps the capture writer cheap; like every
payload column (`payload(...)`) they pass the payload codec on the way (codec.py). Times are
UNIX seconds as double precision: sortable, portable, and free to bind in bulk inserts.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from veteran.store.codec import PAYLOAD


def payload(name: str, *, nullable: bool = True) -> Column[str]:
    """A payload column: what people and models said, read and written only through the payload
    codec (codec.py). Every other column is metadata and stays plain. Text today; binary once
    payloads are encrypted (with a migration), decided here for all of them."""
    return Column(name, Text, nullable=nullable, info={PAYLOAD: True})


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    }
)

trajectories = Table(
    "trajectories",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("episode_id", String(128), nullable=False),
    Column("function", String(64)),
    Column("variant", String(64)),
    Column("provider", String(64)),
    Column("model", String(256)),
    Column("status", String(16), nullable=False),  # ok | error | incomplete
    payload("error"),
    Column("stream", Boolean, nullable=False),
    payload("request", nullable=False),
    payload("response"),
    Column("latency_ms", Float),
    Column("ttft_ms", Float),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("total_tokens", Integer),
    Column("cost", Float),
    Column("tags", Text),
    Column("created_at", Float(53), nullable=False),
    Column("format_version", Integer, nullable=False),
    Column("team", String(64)),  # the API key's team; NULL when the gateway runs without keys
    payload("attempts"),  # JSON list: every provider call made for this trajectory
    payload("context"),  # JSON: memory chunks put into the prompt, or the cache entry used
    Column("cached", Boolean, nullable=False, server_default=false()),  # semantic cache answer
    Column("key_id", String(40)),  # the API key's id (never the key); NULL without keys
    # JSON, metadata (never a detected value): the policy decisions, what the upstream said
    # answered (model, fingerprint, substitution)
    Column("policy", Text),
    Column("upstream", Text),
    # Listings page through the primary key: ids are UUIDv7 carrying created_at (store.new_id).
    # Each index costs every captured call a page write (measured: 77 µs vs 51 µs per single-row
    # commit with two more indexes), so only what feedback needs is indexed.
    Index(None, "episode_id"),
)

trajectory_tags = Table(
    "trajectory_tags",
    metadata,
    Column(
        "trajectory_id",
        String(40),
        ForeignKey("trajectories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(128), primary_key=True),
    Column("value", String(512), nullable=False),
    Index(None, "key", "value"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("trajectory_id", String(40), ForeignKey("trajectories.id", ondelete="CASCADE")),
    Column("episode_id", String(128)),
    Column("metric", String(64), nullable=False),
    payload("value", nullable=False),
    Column("source", String(128)),
    payload("comment"),
    Column("created_at", Float(53), nullable=False),
    Column("format_version", Integer, nullable=False),
    Column("team", String(64)),
    Index(None, "trajectory_id"),
    Index(None, "episode_id"),
    Index(None, "metric"),
)

# API keys: only a SHA-256 of each key is stored (keys are 256-bit random, so a fast hash is
# enough); `prefix` is the key's first characters, shown in listings to tell keys apart.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(128)),
    Column("team", String(64), nullable=False),
    Column("role", String(16), nullable=False),  # app | viewer | admin
    Column("prefix", String(16), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
    Column("limits", Text),  # JSON: per-key limits, or NULL
    Column("created_at", Float(53), nullable=False),
    Column("revoked_at", Float(53)),
)

# Providers switched off by an operator (`veteran providers disable NAME`); a running gateway
# polls this table, so the switch takes effect without a restart.
provider_switches = Table(
    "provider_switches",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("disabled", Boolean, nullable=False),
    Column("reason", Text),
    Column("changed_at", Float(53), nullable=False),
)

# Published versions of veteran.toml (`veteran reload`, promotions, SIGHUP, a changed file): every
# running gateway on the store polls the latest and swaps to it (veteran.gateway's live config).
# The text is payload: it is what the operator wrote, encrypted with the rest once that lands.
config_versions = Table(
    "config_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=True),
    Column("digest", String(64), nullable=False),
    payload("text", nullable=False),
    Column("source", String(64), nullable=False),  # reload | promote | rollback | drill | ...
    Column("created_at", Float(53), nullable=False),
)

# The audit chain (veteran.store.audit): append-only, each entry holding the hash of the one before.
# `seq` is given by the writer (last + 1), never by the database, so two writers racing for the
# same place collide on the key instead of forking the chain.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", Float(53), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(256)),
    Column("details", Text, nullable=False),  # JSON object, keys sorted
    Column("prev", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_log_action", "action"),
)

# Institutional memory (veteran.memory.store). A collection records the embedder its vectors came
# from; `generation` changes on every write so search indexes built from it know they are stale.
kb_collections = Table(
    "kb_collections",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("embedder", String(256), nullable=False),
    Column("dim", Integer, nullable=False),
    Column("chunk_tokens", Integer, nullable=False),
    Column("overlap_tokens", Integer, nullable=False),
    Column("generation", BigInteger, nullable=False),
    Column("created_at", Float(53), nullable=False),
    Column("updated_at", Float(53), nullable=False),
)

kb_documents = Table(
    "kb_documents",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "collection",
        String(128),
        ForeignKey("kb_collections.name", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("source", String(1024), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    payload("metadata", nullable=False),  # JSON object
    Column("ingested_at", Float(53), nullable=False),
    UniqueConstraint("collection", "source"),
)

# Embeddings are float32 little-endian bytes (no pgvector): search loads them into its own index.
kb_chunks = Table(
    "kb_chunks",
    metadata,
    Column("id", String(128), primary_key=True),  # f"{document_id}:{ordinal}"
    Column("collection", String(128), nullable=False),
    Column(
        "document_id",
        String(64),
        ForeignKey("kb_documents.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("ordinal", Integer, nullable=False),
    payload("text", nullable=False),
    Column("tokens", Integer, nullable=False),
    payload("metadata", nullable=False),  # JSON object
    Column("embedding", LargeBinary, nullable=False),
    Index(None, "collection", "id"),
    Index(None, "document_id"),
)

# The semantic cache (memory/cache.py): answers kept for close repeats of a request. `guard` is
# the hash of what must match exactly; `fingerprint` names the function's variants when stored.
semantic_cache = Table(
    "semantic_cache",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("function", String(64), nullable=False),
    Column("guard", String(64), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("embedding", LargeBinary, nullable=False),  # float32 little-endian
    payload("text", nullable=False),  # the conversation as embedded (`request_text`)
    payload("response", nullable=False),
    Column("trajectory_id", String(40)),
    Column("created_at", Float(53), nullable=False),
    Column("expires_at", Float(53), nullable=False),
    Index(None, "function"),
)

# Private evaluations (veteran.evals.runner): one row per run of a suite, one per graded call.
# Results are committed in batches as they finish; a resumed run skips the keys it holds.
eval_runs = Table(
    "eval_runs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("suite", String(128), nullable=False),
    Column("status", String(16), nullable=False),  # running | finished | failed
    Column("config", Text, nullable=False),  # JSON: the suite as run
    Column("started_at", Float(53), nullable=False),
    Column("finished_at", Float(53)),
    Index(None, "suite"),
)

eval_results = Table(
    "eval_results",
    metadata,
    Column("run_id", String(40), ForeignKey("eval_runs.id", ondelete="CASCADE"),
           primary_key=True),
    Column("sample_id", String(256), primary_key=True),
    Column("variant", String(256), primary_key=True),
    Column("epoch", Integer, primary_key=True),
    payload("output", nullable=False),  # JSON: text, tool_calls, error
    payload("scores", nullable=False),  # JSON: grader -> {value, passed, ...}
    Column("latency_ms", Float),
    Column("cost", Float),
    Column("cached", Boolean, nullable=False),  # answered from the eval call cache
    Column("trajectory_id", String(40)),
    Column("created_at", Float(53), nullable=False),
)

# Canaries (veteran.evals.canary): one point per (suite, variant, grader) per canary run, the
# time series a drop is judged against (its own history).
canary_points = Table(
    "canary_points",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("suite", String(128), nullable=False),
    Column("variant", String(256), nullable=False),
    Column("grader", String(128), nullable=False),
    Column("run_id", String(40), nullable=False),  # the eval run the point summarises
    Column("created_at", Float(53), nullable=False),
    Column("mean", Float(53), nullable=False),
    Column("low", Float(53), nullable=False),  # 95% interval of the mean
    Column("high", Float(53), nullable=False),
    Column("n", Integer, nullable=False),  # samples graded
    Column("baseline", Float(53)),  # the history's mean, when there was enough history
    Column("allowed_drop", Float(53)),  # the drop tolerated below the baseline
    Column("alert", Boolean, nullable=False),
    Index(None, "suite", "variant", "grader", "created_at"),
)
