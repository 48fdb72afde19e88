"""The server foundation every isthmus service is built on.

config.py       ServerConfig / TelemetryConfig / CallerPolicy (validated)
server.py       create_server(config, bindings) -> (server, port); serve() with graceful stop
interceptor.py  the one interceptor: span, caller identity, domain error -> gRPC status
errors.py       domain errors, each naming its status; to_status() is the only mapping
identity.py     who is calling (client certificate or gateway header)
telemetry.py    OpenTelemetry spans and rpc.server.call.duration
"""
