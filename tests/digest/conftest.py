"""A warehouse built for real (hand-made SES JSON -> raw.ses_events -> dbt through transform), once per
worker, copied per test so each test starts from the same marts."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from digest_scenario import ROUTES_YAML, DigestEnv, make_settings, scenario_events
from ses_events import load


@pytest.fixture(scope="module")
def built_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bouncehouse.transform import transform

    home = tmp_path_factory.mktemp("digest-build")
    path = home / "warehouse.duckdb"
    load(path, scenario_events())
    transform(make_settings(home, path))
    return path


@pytest.fixture
def digest_env(built_warehouse: Path, tmp_path: Path) -> DigestEnv:
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(built_warehouse, path)
    (tmp_path / "routes.yml").write_text(ROUTES_YAML)
    return DigestEnv(home=tmp_path, settings=make_settings(tmp_path, path))


@pytest.fixture
def custom_smtp() -> Iterator[Any]:
    """Start an aiosmtpd server on loopback with the given handler; returns its SmtpSettings."""
    from aiosmtpd.controller import Controller
    from bouncehouse.digest import SmtpSettings

    controllers = []

    def start(handler: Any) -> SmtpSettings:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        controllers.append(controller)
        return SmtpSettings(host="127.0.0.1", port=port, timeout=1.0)

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Debian's headless Chromium, installed with apt-get the first time a session needs it.

    Only the layout test needs a browser, so `make install` does not install it. The lock keeps the
    two xdist workers from running apt-get at once.
    """
    import subprocess

    from filelock import FileLock

    with FileLock(str(tmp_path_factory.getbasetemp().parent / "chromium-install.lock")):
        found = shutil.which("chromium")
        if found:
            return found
        install = ["apt-get", "install", "-y", "-q", "chromium"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=True)
            subprocess.run(install, env=env, capture_output=True, check=True)
        found = shutil.which("chromium")
        assert found, "apt-get installed chromium but it is not on PATH"
        return found
