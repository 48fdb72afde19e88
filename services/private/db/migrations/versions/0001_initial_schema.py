"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-22 01:45:18.476542
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
        "audit_log",
        sa.Column("audit_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("caller", sa.String(length=128), nullable=False),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("unified_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("audit_id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_unified_id", ["unified_id"], unique=False)

    op.create_table(
        "data_keys",
        sa.Column("unified_id", sa.String(length=64), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("master_key_id", sa.String(length=16), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("unified_id", name=op.f("pk_data_keys")),
    )
    op.create_table(
        "erasures",
        sa.Column("erasure_id", sa.String(length=40), nullable=False),
        sa.Column("unified_id", sa.String(length=64), nullable=False),
        sa.Column("pseudonymous_id", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("caller", sa.String(length=128), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("erasure_id", name=op.f("pk_erasures")),
        sa.UniqueConstraint("unified_id", name=op.f("uq_erasures_unified_id")),
    )
    op.create_table(
        "identity_merges",
        sa.Column("merge_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("from_id", sa.String(length=64), nullable=False),
        sa.Column("into_id", sa.String(length=64), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("merge_id", name=op.f("pk_identity_merges")),
    )
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("request_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("unified_id", sa.String(length=64), nullable=False),
        sa.Column("currency_code", sa.String(length=3), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("line_items", sa.JSON(), nullable=False),
        sa.Column("attribution", sa.JSON(), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "refunded_minor >= 0 AND refunded_minor <= total_minor",
            name=op.f("ck_orders_refund_bounds"),
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_orders")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_orders_idempotency_key")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_unified_id"), ["unified_id"], unique=False)

    op.create_table(
        "profiles",
        sa.Column("unified_id", sa.String(length=64), nullable=False),
        sa.Column("pii_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("language_code", sa.String(length=35), nullable=False),
        sa.Column("region_code", sa.String(length=2), nullable=False),
        sa.Column("consents", sa.JSON(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("unified_id", name=op.f("pk_profiles")),
    )
    op.create_table(
        "unified_ids",
        sa.Column("unified_id", sa.String(length=64), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("merged_into", sa.String(length=64), nullable=True),
        sa.Column("erased_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("unified_id", name=op.f("pk_unified_ids")),
    )
    op.create_table(
        "identities",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("unified_id", sa.String(length=64), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["unified_id"],
            ["unified_ids.unified_id"],
            name=op.f("fk_identities_unified_id_unified_ids"),
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_identities")),
    )
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.create_index("ix_identities_unified_id", ["unified_id"], unique=False)

    op.create_table(
        "refunds",
        sa.Column("refund_id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("request_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_refunds_positive_amount")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.order_id"], name=op.f("fk_refunds_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("refund_id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("order_id", "idempotency_key", name="uq_refunds_order_key"),
    )


def downgrade() -> None:
    op.drop_table("refunds")
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_index("ix_identities_unified_id")

    op.drop_table("identities")
    op.drop_table("unified_ids")
    op.drop_table("profiles")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_unified_id"))

    op.drop_table("orders")
    op.drop_table("identity_merges")
    op.drop_table("erasures")
    op.drop_table("data_keys")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_unified_id")

    op.drop_table("audit_log")
