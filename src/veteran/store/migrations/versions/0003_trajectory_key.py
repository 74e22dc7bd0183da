"""Trajectories carry the id of the API key that made them (per-key spend survives a restart).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trajectories") as batch:
        batch.add_column(sa.Column("key_id", sa.String(40)))


def downgrade() -> None:
    with op.batch_alter_table("trajectories") as batch:
        batch.drop_column("key_id")
