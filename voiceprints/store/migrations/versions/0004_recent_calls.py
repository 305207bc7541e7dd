"""Embeddings of recent calls, so a call found to be fraud can be put on the watchlist.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "recent_calls",
        sa.Column("call_id", sa.String(length=64), nullable=False),
        sa.Column("model_id", sa.String(length=128), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("net_speech_s", sa.Float(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("call_id", name="pk_recent_calls"),
    )
    op.create_index("ix_recent_calls_at", "recent_calls", ["at"])


def downgrade() -> None:
    op.drop_index("ix_recent_calls_at", table_name="recent_calls")
    op.drop_table("recent_calls")
