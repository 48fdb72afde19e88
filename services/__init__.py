"""isthmus services: the gateway, the private- and public-zone servers and what they share.

Layout:
    contract/  the API contract read from the compiled protos (sensitivity, PII, idempotency)
    topology/  the one validated model of zones, services, endpoints and TLS material
    core/      the server foundation every service is built on (bootstrap, errors, telemetry)
    adpolicy/  ad decision rules: the ranking service and the gateway's degraded answer share them
    cli.py     the `isthmus` command
"""
