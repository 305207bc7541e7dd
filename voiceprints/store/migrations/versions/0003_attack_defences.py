"""Defences against replayed, synthetic and known-fraudster voices (issue 8).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

Digit templates for the liveness challenge and fingerprints of earlier
authentication recordings (both encrypted, both deleted with their speaker),
the fraudster watchlist (encrypted voiceprints apart from enrolled speakers)
and the digit strings recently asked of each account.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "digit_templates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("speaker_id", sa.Integer(), nullable=False),
        sa.Column("feature_version", sa.String(length=32), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("template_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["speaker_id"], ["speakers.id"], name="fk_digit_templates_speaker_id_speakers", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_digit_templates"),
        sa.UniqueConstraint("speaker_id", name="uq_digit_templates_speaker_id"),
    )
    op.create_table(
        "replay_fingerprints",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("speaker_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["speaker_id"], ["speakers.id"], name="fk_replay_fingerprints_speaker_id_speakers", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_replay_fingerprints"),
    )
    op.create_index("ix_replay_fingerprints_speaker_id", "replay_fingerprints", ["speaker_id"], unique=False)
    op.create_index("ix_replay_fingerprints_created_at", "replay_fingerprints", ["created_at"], unique=False)
    op.create_table(
        "watchlist_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("model_id", sa.String(length=128), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("net_speech_s", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_watchlist_entries"),
        sa.UniqueConstraint("name", "model_id", name="uq_watchlist_entries_name_model_id"),
    )
    op.create_index("ix_watchlist_entries_model_id", "watchlist_entries", ["model_id"], unique=False)
    op.create_index("ix_watchlist_entries_expires_at", "watchlist_entries", ["expires_at"], unique=False)
    op.create_table(
        "liveness_challenges",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account", sa.String(length=255), nullable=False),
        sa.Column("digits", sa.String(length=16), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_liveness_challenges"),
    )
    op.create_index("ix_liveness_challenges_account", "liveness_challenges", ["account"], unique=False)
    op.create_index("ix_liveness_challenges_issued_at", "liveness_challenges", ["issued_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_liveness_challenges_issued_at", table_name="liveness_challenges")
    op.drop_index("ix_liveness_challenges_account", table_name="liveness_challenges")
    op.drop_table("liveness_challenges")
    op.drop_index("ix_watchlist_entries_expires_at", table_name="watchlist_entries")
    op.drop_index("ix_watchlist_entries_model_id", table_name="watchlist_entries")
    op.drop_table("watchlist_entries")
    op.drop_index("ix_replay_fingerprints_created_at", table_name="replay_fingerprints")
    op.drop_index("ix_replay_fingerprints_speaker_id", table_name="replay_fingerprints")
    op.drop_table("replay_fingerprints")
    op.drop_table("digit_templates")
