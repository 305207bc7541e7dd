"""One journal of voiceprint changes (enrolments and erasures) for other workers' caches.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

Replaces the erasures-only table: workers now also rebuild their cohorts
and identification indexes in the background when another worker enrols.
Its rows are transient (minutes), so nothing is carried over.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.drop_table("voiceprint_erasures")
    op.create_table(
        "voiceprint_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("speaker_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_voiceprint_changes"),
    )


def downgrade() -> None:
    op.drop_table("voiceprint_changes")
    op.create_table(
        "voiceprint_erasures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("speaker_id", sa.String(length=255), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_voiceprint_erasures"),
    )
