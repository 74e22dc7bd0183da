"""Private evaluations: runs of a suite and their graded results.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eval_runs",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("suite", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("started_at", sa.Float(53), nullable=False),
        sa.Column("finished_at", sa.Float(53)),
        sa.PrimaryKeyConstraint("id", name="pk_eval_runs"),
    )
    op.create_index("ix_eval_runs_suite", "eval_runs", ["suite"])
    op.create_table(
        "eval_results",
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("sample_id", sa.String(256), nullable=False),
        sa.Column("variant", sa.String(256), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("scores", sa.Text(), nullable=False),
        sa.Column("latency_ms", sa.Float()),
        sa.Column("cost", sa.Float()),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("trajectory_id", sa.String(40)),
        sa.Column("created_at", sa.Float(53), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["eval_runs.id"], ondelete="CASCADE",
                                name="fk_eval_results_run_id_eval_runs"),
        sa.PrimaryKeyConstraint("run_id", "sample_id", "variant", "epoch",
                                name="pk_eval_results"),
    )


def downgrade() -> None:
    op.drop_table("eval_results")
    op.drop_table("eval_runs")
