"""The gateway: the one gRPC door. Authenticates, authorizes, rate-limits, routes by the
sensitivity declared in the protos, balances, retries and fails over, forwarding bytes as-is.

    config.py    GatewayConfig (routes, clusters, policies, callers), built from the topology
    routing.py   route table and the sensitivity rule (pure)
    balancer.py  endpoint state: power-of-two-choices, outlier ejection, circuit breaking (pure)
    auth.py      signed tokens, per-method authorization, token-bucket rate limits (pure)
    fallbacks.py named per-route answers when no cluster can (registry; the proxy knows names)
    degraded.py  ads_bid_only: AdService/Rank by bid under the shared ad policy (pure)
    discovery.py endpoints files (Ray Serve direct ingress): parse, diff, poll
    upstream.py  channels, active health checks, discovered endpoints (I/O)
    proxy.py     the transparent proxy handler (I/O)
    admin.py     GatewayAdminService
    app.py       wiring and `isthmus gateway`
"""
