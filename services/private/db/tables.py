"""The private zone's tables (SQLAlchemy Core). Times are integer microseconds since the epoch
(UTC), so SQLite and PostgreSQL store and compare them identically. Migrations in
`migrations/versions` must produce exactly this schema (a test compares them)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# ---- orders -------------------------------------------------------------------------------
orders = Table(
    "orders",
    metadata,
    Column("order_id", String(40), primary_key=True),
    # Exactly-once: one order per key, whatever the concurrency.
    Column("idempotency_key", String(128), nullable=False, unique=True),
    # Keyed digest of the PlaceOrder request, to tell a replay from a conflicting reuse.
    Column("request_fingerprint", String(64), nullable=False),
    Column("unified_id", String(64), nullable=False, index=True),
    Column("currency_code", String(3), nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("refunded_minor", BigInteger, nullable=False),
    Column("status", String(40), nullable=False),
    Column("line_items", JSON, nullable=False),
    Column("attribution", JSON, nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    CheckConstraint("refunded_minor >= 0 AND refunded_minor <= total_minor", name="refund_bounds"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("refund_id", String(40), primary_key=True),
    Column("order_id", String(40), ForeignKey("orders.order_id"), nullable=False),
    Column("idempotency_key", String(128), nullable=False),
    Column("request_fingerprint", String(64), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("reason", String(500), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    UniqueConstraint("order_id", "idempotency_key", name="uq_refunds_order_key"),
    CheckConstraint("amount_minor > 0", name="positive_amount"),
)

# ---- identity and profiles ----------------------------------------------------------------
unified_ids = Table(
    "unified_ids",
    metadata,
    Column("unified_id", String(64), primary_key=True),
    Column("created_us", BigInteger, nullable=False),
    # Set when this id was merged into another (the survivor); lookups follow it.
    Column("merged_into", String(64), nullable=True),
    Column("erased_us", BigInteger, nullable=True),
)

identities = Table(
    "identities",
    metadata,
    # HMAC of kind + normalised identifier; the identifier itself is never stored.
    Column("id_hash", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("unified_id", String(64), ForeignKey("unified_ids.unified_id"), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Index("ix_identities_unified_id", "unified_id"),
)

identity_merges = Table(
    "identity_merges",
    metadata,
    Column("merge_id", Integer, primary_key=True, autoincrement=True),
    Column("from_id", String(64), nullable=False),
    Column("into_id", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
)

data_keys = Table(
    "data_keys",
    metadata,
    Column("unified_id", String(64), primary_key=True),
    # The person's AES-256 data key, encrypted by the master key. Deleting it shreds them.
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("master_key_id", String(16), nullable=False),
    Column("created_us", BigInteger, nullable=False),
)

profiles = Table(
    "profiles",
    metadata,
    Column("unified_id", String(64), primary_key=True),
    # AES-GCM ciphertext of the PII fields (names, e-mail, phone, birth date).
    Column("pii_ciphertext", LargeBinary, nullable=True),
    Column("language_code", String(35), nullable=False),
    Column("region_code", String(2), nullable=False),
    Column("consents", JSON, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)

erasures = Table(
    "erasures",
    metadata,
    Column("erasure_id", String(40), primary_key=True),
    Column("unified_id", String(64), nullable=False, unique=True),
    # The pseudonymous id, so public-zone data (events, features) can be purged downstream.
    Column("pseudonymous_id", String(40), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("caller", String(128), nullable=False),
    Column("created_us", BigInteger, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("audit_id", Integer, primary_key=True, autoincrement=True),
    Column("at_us", BigInteger, nullable=False),
    Column("caller", String(128), nullable=False),
    Column("method", String(64), nullable=False),
    Column("unified_id", String(64), nullable=False),
    # read | write | erase; never the values read or written.
    Column("action", String(8), nullable=False),
    Index("ix_audit_log_unified_id", "unified_id"),
)
