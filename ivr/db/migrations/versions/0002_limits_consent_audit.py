"""attempt limits, consent events, voiceprint use and the audit log

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02 00:00:00
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "limit_subjects",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lock_reason", sa.String(length=200), nullable=True),
        sa.Column("reset_after_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('identity', 'caller')", name=op.f("ck_limit_subjects_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_limit_subjects")),
        sa.UniqueConstraint("kind", "subject", name=op.f("uq_limit_subjects_kind_subject")),
    )
    op.create_table(
        "limit_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=8), nullable=False),
        sa.Column("factor", sa.String(length=8), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("event IN ('attempt', 'failure', 'success')", name=op.f("ck_limit_events_event")),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["limit_subjects.id"],
            name=op.f("fk_limit_events_subject_id_limit_subjects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_limit_events")),
    )
    op.create_index("ix_limit_events_subject_id_at", "limit_events", ["subject_id", "at"])
    op.create_table(
        "consent_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("identity", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("policy_version", sa.String(length=32), nullable=True),
        sa.Column("voiceprint_deleted", sa.Boolean(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('granted', 'opted_out', 'expired')", name=op.f("ck_consent_events_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_events")),
    )
    op.create_index(op.f("ix_consent_events_identity"), "consent_events", ["identity"])
    op.create_table(
        "voiceprint_use",
        sa.Column("identity", sa.String(length=64), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("identity", name=op.f("pk_voiceprint_use")),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("call_id", sa.String(length=64), nullable=True),
        sa.Column("flow", sa.String(length=16), nullable=False),
        sa.Column("identity", sa.String(length=64), nullable=True),
        sa.Column("caller_hash", sa.String(length=64), nullable=True),
        sa.Column("factors", sa.JSON(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=True),
        sa.Column("rule", sa.String(length=64), nullable=True),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("locked_out", sa.Boolean(), nullable=False),
        sa.Column("policy_version", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(op.f("ix_audit_events_at"), "audit_events", ["at"])
    op.create_index(op.f("ix_audit_events_identity"), "audit_events", ["identity"])


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_events_identity"), table_name="audit_events")
    op.drop_index(op.f("ix_audit_events_at"), table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_table("voiceprint_use")
    op.drop_index(op.f("ix_consent_events_identity"), table_name="consent_events")
    op.drop_table("consent_events")
    op.drop_index("ix_limit_events_subject_id_at", table_name="limit_events")
    op.drop_table("limit_events")
    op.drop_table("limit_subjects")
