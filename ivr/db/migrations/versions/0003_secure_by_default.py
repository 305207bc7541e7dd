"""secure by default: escalating locks, withheld/trunk limits, auth leases, sealed audit chain, code send caps

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 00:00:00
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

GENESIS_MAC = "0" * 64


def upgrade() -> None:
    with op.batch_alter_table("limit_subjects") as batch:
        batch.add_column(sa.Column("lockouts", sa.Integer(), nullable=False, server_default="0"))
        batch.drop_constraint(op.f("ck_limit_subjects_kind"), type_="check")
        batch.create_check_constraint("kind", "kind IN ('identity', 'caller', 'withheld', 'trunk')")
    op.create_table(
        "auth_leases",
        sa.Column("identity", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("identity", name=op.f("pk_auth_leases")),
    )
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("identity_digest", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("prev_mac", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("mac", sa.String(length=64), nullable=True))
    chain = op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("head_mac", sa.String(length=64), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain")),
    )
    op.bulk_insert(chain, [{"id": 1, "head_mac": GENESIS_MAC, "length": 0}])
    op.create_table(
        "otp_sends",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("channel IN ('sms', 'voice', 'email')", name=op.f("ck_otp_sends_channel")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_otp_sends_customer_id_customers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_otp_sends")),
    )
    op.create_index(op.f("ix_otp_sends_customer_id"), "otp_sends", ["customer_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_otp_sends_customer_id"), table_name="otp_sends")
    op.drop_table("otp_sends")
    op.drop_table("audit_chain")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("mac")
        batch.drop_column("prev_mac")
        batch.drop_column("identity_digest")
    op.drop_table("auth_leases")
    with op.batch_alter_table("limit_subjects") as batch:
        batch.drop_constraint(op.f("ck_limit_subjects_kind"), type_="check")
        batch.create_check_constraint("kind", "kind IN ('identity', 'caller')")
        batch.drop_column("lockouts")
