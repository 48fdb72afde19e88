"""`isthmus serve events`: the public zone's event service until SIGTERM. The config file
is an EventsConfig; `--listen` and `--landing-dir` override it (the local platform gives a
file with the pseudonymous ids' check key, and those two)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import yaml

from services.public.events import app
from services.public.events.config import EventsConfig
from services.topology import Endpoint

DEFAULT_LISTEN = "127.0.0.1:50072"


def load_config(
    config_file: Path | None, listen: str | None, landing_dir: Path | None
) -> EventsConfig:
    """The file's config (defaults without one) with the command line's overrides."""
    raw = yaml.safe_load(config_file.read_text()) if config_file else None
    config = EventsConfig.model_validate(raw or {})
    server = config.server
    if listen is not None or config_file is None:
        server = server.model_copy(update={"listen": Endpoint.parse(listen or DEFAULT_LISTEN)})
    updates: dict[str, object] = {"server": server}
    if landing_dir is not None:
        updates["landing_dir"] = landing_dir
    return config.model_copy(update=updates)


def serve_events(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return app.run(load_config(args.config, args.listen, args.landing_dir))
