"""Where each data job reads and writes, resolved from the topology's `data:` section.

Spark gets URIs; the few steps that work on files directly (publishing a snapshot, the
CURRENT pointer, the erasure rewrite of sink files) need a local path and say so clearly
when given an object-store URI.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from services.topology.model import DataSpec


class RemoteStorageNotSupported(NotImplementedError):
    """This step works on local files only; the location is an object-store URI."""


@dataclass(frozen=True, slots=True)
class Location:
    """One storage location: a URI for Spark, a path for local file work."""

    uri: str

    @classmethod
    def of(cls, text: str) -> Location:
        """A plain path (relative to the working directory) or a URI with a scheme."""
        parsed = urlparse(text)
        if parsed.scheme in ("", "file"):
            path = Path(parsed.path if parsed.scheme == "file" else text).resolve()
            return cls(path.as_uri())
        return cls(text.rstrip("/"))

    @property
    def is_local(self) -> bool:
        return self.uri.startswith("file:")

    @property
    def path(self) -> Path:
        """The local directory; raises for object storage."""
        if not self.is_local:
            raise RemoteStorageNotSupported(
                f"{self.uri}: this step needs a local directory (object storage is not built)"
            )
        return Path(urlparse(self.uri).path)

    def child(self, *parts: str) -> Location:
        return Location(self.uri.rstrip("/") + "/" + "/".join(parts))


@dataclass(frozen=True, slots=True)
class Locations:
    """Every location the data jobs use."""

    landing: Location
    events: Location  # the warehouse event table (file sink, exactly once)
    erasures: Location  # pseudonymous ids to purge, exported from the private DB
    training: Location  # training sets, one directory per version
    quarantine: Location
    sync_checkpoint: Location  # the one query that writes both events and quarantine
    features: Location

    @classmethod
    def from_spec(cls, spec: DataSpec) -> Locations:
        warehouse = Location.of(spec.warehouse_uri)
        checkpoints = Location.of(spec.checkpoint_uri)
        return cls(
            landing=Location.of(spec.landing_uri),
            events=warehouse.child("events"),
            erasures=warehouse.child("erasures"),
            training=warehouse.child("training"),
            quarantine=Location.of(spec.quarantine_uri),
            sync_checkpoint=checkpoints.child("sync_events"),
            features=Location.of(spec.features_uri),
        )

    @property
    def landing_files(self) -> str:
        """Only `date=*/hour=*/*.jsonl`: `_incoming/` (staging) and the event index are not
        input."""
        return self.landing.uri.rstrip("/") + "/date=*/hour=*/*.jsonl"
