"""The semantic cache, and what each trajectory was told (memory context) or answered from.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trajectories") as batch:
        batch.add_column(sa.Column("context", sa.Text()))
        batch.add_column(
            sa.Column("cached", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "semantic_cache",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("function", sa.String(64), nullable=False),
        sa.Column("guard", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("trajectory_id", sa.String(40)),
        sa.Column("created_at", sa.Float(53), nullable=False),
        sa.Column("expires_at", sa.Float(53), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_semantic_cache"),
    )
    op.create_index("ix_semantic_cache_function", "semantic_cache", ["function"])


def downgrade() -> None:
    op.drop_table("semantic_cache")
    with op.batch_alter_table("trajectories") as batch:
        batch.drop_column("cached")
        batch.drop_column("context")
