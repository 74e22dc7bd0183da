"""Canaries: the time series of a suite re-run against production variants.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "canary_points",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("suite", sa.String(128), nullable=False),
        sa.Column("variant", sa.String(256), nullable=False),
        sa.Column("grader", sa.String(128), nullable=False),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("created_at", sa.Float(53), nullable=False),
        sa.Column("mean", sa.Float(53), nullable=False),
        sa.Column("low", sa.Float(53), nullable=False),
        sa.Column("high", sa.Float(53), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("baseline", sa.Float(53)),
        sa.Column("allowed_drop", sa.Float(53)),
        sa.Column("alert", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_canary_points"),
    )
    op.create_index("ix_canary_points_suite_variant_grader_created_at", "canary_points",
                    ["suite", "variant", "grader", "created_at"])


def downgrade() -> None:
    op.drop_table("canary_points")
