"""The event service's config model: the file's values, the command line's overrides, and
a clear error for what it does not know."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.public.events.config import EventsConfig
from services.public.events.main import DEFAULT_LISTEN, load_config

pytestmark = pytest.mark.unit


def test_without_a_file_it_listens_on_loopback_and_lands_under_var() -> None:
    config = load_config(None, None, None)
    listen = config.server.listen
    assert f"{listen.host}:{listen.port}" == DEFAULT_LISTEN
    assert config.landing_dir == Path("var/public/landing")


def test_the_command_line_overrides_the_file(tmp_path: Path) -> None:
    file = tmp_path / "events.yaml"
    file.write_text(
        "landing_dir: /data/landing\nwriter_threads: 2\n"
        "server: {listen: {host: 127.0.0.1, port: 7000}}\n"
    )
    from_file = load_config(file, None, None)
    assert (from_file.landing_dir, from_file.writer_threads) == (Path("/data/landing"), 2)
    assert from_file.server.listen.port == 7000
    overridden = load_config(file, "127.0.0.1:7001", tmp_path / "l")
    assert (overridden.server.listen.port, overridden.landing_dir) == (7001, tmp_path / "l")
    assert overridden.writer_threads == 2


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ({"landing": "/x"}, "landing"),  # a typo of landing_dir
        ({"writer_threads": 0}, "writer_threads"),
        ({"server": {"tls": {"enabled": "perhaps"}}}, "server.tls.enabled"),
    ],
)
def test_a_bad_file_is_refused_naming_the_key(doc: dict[str, object], where: str) -> None:
    with pytest.raises(ValidationError) as caught:
        EventsConfig.model_validate(doc)
    assert where in str(caught.value).replace("\n  ", ".").replace("\n", " ")
