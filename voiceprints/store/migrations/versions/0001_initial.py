"""Initial schema: speakers, encrypted voiceprints, calibrations.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Types are spelled out here rather than imported from ``models`` so that this
revision keeps describing the schema it created after the models move on.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "speakers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_speakers"),
        sa.UniqueConstraint("external_id", name="uq_speakers_external_id"),
    )
    op.create_table(
        "voiceprints",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("speaker_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(length=128), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("utterance_count", sa.Integer(), nullable=False),
        sa.Column("net_speech_s", sa.Float(), nullable=False),
        sa.Column("quality", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["speaker_id"], ["speakers.id"], name="fk_voiceprints_speaker_id_speakers", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_voiceprints"),
        sa.UniqueConstraint("speaker_id", "model_id", name="uq_voiceprints_speaker_id_model_id"),
    )
    op.create_index("ix_voiceprints_model_id", "voiceprints", ["model_id"], unique=False)
    op.create_table(
        "calibrations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_id", sa.String(length=128), nullable=False),
        sa.Column("normalisation", sa.String(length=32), nullable=False),
        sa.Column("accept_threshold", sa.Float(), nullable=False),
        sa.Column("reject_threshold", sa.Float(), nullable=False),
        sa.Column("target_far", sa.Float(), nullable=False),
        sa.Column("target_frr", sa.Float(), nullable=False),
        sa.Column("n_target", sa.Integer(), nullable=False),
        sa.Column("n_nontarget", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_calibrations"),
        sa.UniqueConstraint("model_id", "normalisation", name="uq_calibrations_model_id_normalisation"),
    )


def downgrade() -> None:
    op.drop_table("calibrations")
    op.drop_index("ix_voiceprints_model_id", table_name="voiceprints")
    op.drop_table("voiceprints")
    op.drop_table("speakers")
