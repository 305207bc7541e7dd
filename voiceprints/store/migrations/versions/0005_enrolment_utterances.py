"""Per-utterance enrolment embeddings, encrypted like voiceprints.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Self-calibration (``ivr calibrate --from-enrolments``) and the population
statistics of score normalisation need each enrolment utterance's embedding,
not only their mean. Existing voiceprints get no rows (their utterances are
gone); they keep working, and count once re-enrolled.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "enrolment_utterances",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("voiceprint_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["voiceprint_id"], ["voiceprints.id"], name="fk_enrolment_utterances_voiceprint_id_voiceprints",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_enrolment_utterances"),
        sa.UniqueConstraint("voiceprint_id", "position", name="uq_enrolment_utterances_voiceprint_id_position"),
    )


def downgrade() -> None:
    op.drop_table("enrolment_utterances")
