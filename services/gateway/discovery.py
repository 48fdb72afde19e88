"""Endpoints discovered from a file, for upstreams whose replicas come and go (Ray Serve direct
ingress: each replica listens on its own gRPC port and autoscaling adds and removes them).

Whoever scales the replicas (the public zone's Serve controller) writes, atomically
(temp file + rename), a JSON file:

    {"service": "ads-a", "generation": 42, "updated_unix_s": 1767000000.5,
     "endpoints": [{"host": "127.0.0.1", "port": 40001, "id": "<replica id>"}]}

- `service` must equal the cluster's name (guards against a file meant for another cluster);
- `generation` must increase with every write; a file with a lower generation than the one in
  force is stale and ignored (a controller that restarts must not go back: use e.g. time_ns);
- `endpoints` may be empty (the service has no replica: calls fail over to the next cluster);
- unknown keys are ignored, so the writer can add fields without breaking older gateways.

The gateway polls the file (stat first; read only when mtime, size or inode changed). A missing,
unreadable or invalid file keeps the last good set; the problem is logged once, and its end too.
Parsing and diffing are pure; `FileEndpointSource.poll` is the only I/O.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.topology.model import Endpoint

log = logging.getLogger(__name__)


class DiscoveredEndpoint(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    host: str = Field(min_length=1, description="IP address or DNS name of the replica.")
    port: int = Field(ge=1, le=65535, description="The replica's gRPC port.")
    id: str = Field(default="", description="Replica id, for logs only.")

    @property
    def address(self) -> str:
        return Endpoint(host=self.host, port=self.port).address


class EndpointsFile(BaseModel):
    """The file's schema. Written by a program, read by another: unknown keys are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    service: str = Field(description="The cluster (topology service) name.")
    generation: int = Field(ge=0, description="Increases with every write.")
    updated_unix_s: float = Field(description="When the writer produced this set.")
    endpoints: list[DiscoveredEndpoint] = Field(description="Replicas that should take traffic.")

    def addresses(self) -> list[str]:
        """Addresses in file order, without duplicates."""
        return list(dict.fromkeys(e.address for e in self.endpoints))


def parse_endpoints_file(data: bytes, service: str) -> EndpointsFile:
    """The file's content, validated; ValueError naming the problem (never echoing values
    beyond field names: the file is ours, but the habit is cheap)."""
    try:
        parsed = EndpointsFile.model_validate(json.loads(data))
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON (line {exc.lineno}, column {exc.colno})") from None
    except ValidationError as exc:
        where = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(where) from None
    if parsed.service != service:
        raise ValueError(f"file is for service {parsed.service!r}, not {service!r}")
    for endpoint in parsed.endpoints:
        Endpoint(host=endpoint.host, port=endpoint.port)  # same host rules as the topology
    return parsed


def diff(current: list[str], wanted: list[str]) -> tuple[list[str], list[str]]:
    """(to add, to remove), each in a stable order."""
    have, want = set(current), set(wanted)
    return [a for a in wanted if a not in have], [a for a in current if a not in want]


@dataclass
class FileEndpointSource:
    """One cluster's endpoints file and what the gateway last took from it."""

    path: Path
    service: str
    generation: int | None = None
    _signature: tuple[int, int, int] | None = None
    _problem: str | None = field(default=None, repr=False)

    def poll(self) -> list[str] | None:
        """The new address list when the file changed to a valid, newer set; None when there
        is nothing new (unchanged, stale, missing or invalid: the last good set stays)."""
        try:
            stat = os.stat(self.path)
            signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            if signature == self._signature:
                return None
            data = self.path.read_bytes()
        except OSError as exc:
            self._report(f"cannot read it ({exc.strerror})")
            return None
        self._signature = signature
        try:
            parsed = parse_endpoints_file(data, self.service)
        except ValueError as exc:
            self._report(f"invalid: {exc}")
            return None
        if self.generation is not None and parsed.generation < self.generation:
            self._report(
                f"generation {parsed.generation} is older than the one in force "
                f"({self.generation}); ignored"
            )
            return None
        self._recovered()
        if parsed.generation == self.generation:
            return None  # rewritten, same generation: nothing new
        self.generation = parsed.generation
        log.info(
            "endpoints file %s: generation %d, %d endpoint(s)",
            self.path,
            parsed.generation,
            len(parsed.endpoints),
        )
        return parsed.addresses()

    def _report(self, problem: str) -> None:
        if problem != self._problem:
            kept = "none yet" if self.generation is None else f"generation {self.generation}"
            log.warning(
                "endpoints file %s for %s: %s; keeping the last good set (%s)",
                self.path,
                self.service,
                problem,
                kept,
            )
        self._problem = problem

    def _recovered(self) -> None:
        if self._problem is not None:
            log.warning("endpoints file %s for %s is valid again", self.path, self.service)
        self._problem = None
