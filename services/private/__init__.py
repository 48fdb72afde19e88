"""The private zone: the services that hold personal data, orders and money.

config.py   PrivateZoneConfig: database URL, key material references, server settings
keys.py     key derivation, keyed identifier hashing, envelope encryption (AES-GCM)
money.py    ISO 4217 currencies and amount rules (pure)
db/         SQLAlchemy engine (SQLite WAL or PostgreSQL), tables, Alembic migrations
orders/     OrderService: exactly-once placement and refunds
profile/    ProfileService: identity resolution, encrypted profiles, erasure, audit
"""
