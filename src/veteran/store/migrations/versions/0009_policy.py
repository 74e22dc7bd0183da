"""The policy decisions applied to each trajectory, and what its upstream said answered.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trajectories") as batch:
        batch.add_column(sa.Column("policy", sa.Text()))
        batch.add_column(sa.Column("upstream", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("trajectories") as batch:
        batch.drop_column("upstream")
        batch.drop_column("policy")
