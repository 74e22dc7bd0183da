"""Teams and API keys, provider switches, and the attempts behind each trajectory.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trajectories") as batch:
        batch.add_column(sa.Column("team", sa.String(64)))
        batch.add_column(sa.Column("attempts", sa.Text()))
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("team", sa.String(64)))
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(128)),
        sa.Column("team", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("limits", sa.Text()),
        sa.Column("created_at", sa.Float(53), nullable=False),
        sa.Column("revoked_at", sa.Float(53)),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("hash", name="uq_api_keys_hash"),
    )
    op.create_table(
        "provider_switches",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("changed_at", sa.Float(53), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_provider_switches"),
    )


def downgrade() -> None:
    op.drop_table("provider_switches")
    op.drop_table("api_keys")
    with op.batch_alter_table("feedback") as batch:
        batch.drop_column("team")
    with op.batch_alter_table("trajectories") as batch:
        batch.drop_column("attempts")
        batch.drop_column("team")
