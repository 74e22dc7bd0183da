"""Trajectories, their tags, and feedback.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trajectories",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("episode_id", sa.String(128), nullable=False),
        sa.Column("function", sa.String(64)),
        sa.Column("variant", sa.String(64)),
        sa.Column("provider", sa.String(64)),
        sa.Column("model", sa.String(256)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("response", sa.Text()),
        sa.Column("latency_ms", sa.Float()),
        sa.Column("ttft_ms", sa.Float()),
        sa.Column("prompt_tokens", sa.Integer()),
        sa.Column("completion_tokens", sa.Integer()),
        sa.Column("total_tokens", sa.Integer()),
        sa.Column("cost", sa.Float()),
        sa.Column("tags", sa.Text()),
        sa.Column("created_at", sa.Float(53), nullable=False),
        sa.Column("format_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_trajectories"),
    )
    op.create_index("ix_trajectories_episode_id", "trajectories", ["episode_id"])
    op.create_table(
        "trajectory_tags",
        sa.Column("trajectory_id", sa.String(40), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.String(512), nullable=False),
        sa.ForeignKeyConstraint(
            ["trajectory_id"], ["trajectories.id"],
            name="fk_trajectory_tags_trajectory_id_trajectories", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("trajectory_id", "key", name="pk_trajectory_tags"),
    )
    op.create_index("ix_trajectory_tags_key_value", "trajectory_tags", ["key", "value"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("trajectory_id", sa.String(40)),
        sa.Column("episode_id", sa.String(128)),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("source", sa.String(128)),
        sa.Column("comment", sa.Text()),
        sa.Column("created_at", sa.Float(53), nullable=False),
        sa.Column("format_version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["trajectory_id"], ["trajectories.id"],
            name="fk_feedback_trajectory_id_trajectories", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
    )
    op.create_index("ix_feedback_trajectory_id", "feedback", ["trajectory_id"])
    op.create_index("ix_feedback_episode_id", "feedback", ["episode_id"])
    op.create_index("ix_feedback_metric", "feedback", ["metric"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("trajectory_tags")
    op.drop_table("trajectories")
