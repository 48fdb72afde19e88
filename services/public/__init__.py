"""The public zone: services that may run in public clouds (no personal data)."""
