"""``python -m bouncehouse transform``: ``dbt build`` of the dbt project in ``dbt/`` on the warehouse.

dbt runs in this process through its programmatic entry point (``dbtRunner``). "Now" reaches the models
as ``settings.now()`` in the environment variable ``BOUNCEHOUSE_DBT_AS_OF`` (read by the ``as_of()``
macro when the model runs), not as a ``--vars`` value: dbt re-parses the whole project whenever its
command-line vars change, which would be every hourly run. The warehouse path reaches
``dbt/profiles.yml`` through ``BOUNCEHOUSE_WAREHOUSE`` (the same profile the Airflow DAG gives Cosmos).
A failing model or test raises TransformError naming the node; after a clean build the analysts'
snapshot (``<name>.snapshot.duckdb``) is published.

The hourly build runs the models and their data tests. dbt's unit tests check the models' SQL on fixed
fixtures, not the data, so they run only on request (``with_unit_tests``, ``transform --with-unit-tests``;
the test suite does), as dbt advises for production.

With ``BOUNCEHOUSE_ENGINE=spark`` the build runs on Spark instead (dbt target ``spark``, from the lake:
``bouncehouse.spark``), and its models are then copied into the warehouse, so what reads the warehouse
reads Spark's results.

Each warehouse gets its own dbt target and log folders under ``dbt/target/runs/`` and ``dbt/logs/``, so
builds of different warehouses (parallel tests, a second environment) never share dbt's state files
(``partial_parse.msgpack`` among them: the next run parses only the files that changed).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from bouncehouse import warehouse
from bouncehouse.config import Settings, dbt_project_dir
from bouncehouse.errors import TransformError

log = logging.getLogger(__name__)

# dbt unit tests of an incremental model read the model's own columns from the warehouse, so on a
# fresh warehouse these tables are first created empty (`dbt run --empty`) before a build with unit tests.
INCREMENTAL_MODELS = (
    "stg_ses__rejects",
    "stg_ses__rendering_failures",
    "int_recipient_events_unioned",
    "int_recipient_events_classified",
    "message_status",
)
WAREHOUSE_ENV = "BOUNCEHOUSE_WAREHOUSE"
AS_OF_ENV = "BOUNCEHOUSE_DBT_AS_OF"
_FAILED_STATUSES = ("error", "fail", "runtime error")
# The dbt/profiles.yml target of each BOUNCEHOUSE_ENGINE.
DBT_TARGETS = {"duckdb": "dev", "spark": "spark"}


def _run_paths(project: Path, warehouse_path: Path, engine: str = "duckdb") -> tuple[Path, Path]:
    """dbt's target and log folders for one warehouse (a short hash of its path keeps them apart) and engine."""
    digest = hashlib.sha1(str(warehouse_path).encode()).hexdigest()[:10]
    name = f"{warehouse_path.stem}-{digest}" + ("" if engine == "duckdb" else f"-{engine}")
    return project / "target" / "runs" / name, project / "logs" / name


def dbt_env(settings: Settings, path: Path) -> dict[str, str]:
    """What dbt reads from the environment: the warehouse (profiles.yml) and "now" (the as_of() macro)."""
    return {WAREHOUSE_ENV: str(path), AS_OF_ENV: settings.now().isoformat(sep=" ")}


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _invoke(args: list[str]) -> Any:
    from dbt.cli.main import dbtRunner

    try:
        return dbtRunner().invoke(args)
    finally:
        _release_duckdb()


def _release_duckdb() -> None:
    """Close the DuckDB instance dbt-duckdb keeps open for the life of the process.

    Left open, it would hold the warehouse's write lock after dbt is done (no other process could load
    or prune) and clash with read-only connections opened in this process.
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
        if env is not None:
            try:
                env.close()
            except Exception as exc:  # closing is best effort; the next open starts afresh
                log.debug("closing dbt's DuckDB environment: %s", exc)


def _node_results(result: Any) -> list[Any]:
    return list(getattr(getattr(result, "result", None), "results", None) or [])


def _first_line(text: Any) -> str:
    """The line that says what went wrong (dbt's messages open with "Runtime Error in model x")."""
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    telling = [line for line in lines if not re.match(r"^\w+ Error in \w+ ", line)]
    return (telling or lines or ["no message"])[0]


def _failure_line(command: str, result: Any) -> str:
    """One line naming the failing node (or dbt's own error when no node ran)."""
    for node_result in _node_results(result):
        status = str(getattr(node_result, "status", "")).lower()
        if status in _FAILED_STATUSES:
            node = node_result.node
            kind = str(getattr(node, "resource_type", "node")).lower().replace("nodetype.", "")
            failures = getattr(node_result, "failures", None)
            extra = f" ({failures} failing rows)" if failures else ""
            return (
                f"dbt {command} failed at {kind} {node.unique_id}{extra}: {_first_line(node_result.message)}"
            )
    lines = [
        line.strip() for line in str(getattr(result, "exception", None) or "").splitlines() if line.strip()
    ]
    return f"dbt {command} failed: {': '.join(lines[:3]) or 'see dbt/logs'}"


def _is_lock_failure(result: Any) -> bool:
    texts = [str(getattr(result, "exception", "") or "")]
    texts += [str(getattr(r, "message", "") or "") for r in _node_results(result)]
    return any(warehouse.is_lock_error(text) for text in texts)


def _run_dbt(
    command: list[str], settings: Settings, extra: list[str], target_path: Path | None = None
) -> Any:
    """Run one dbt command on the warehouse, retrying while another process holds its lock."""
    # Creates the raw schema dbt reads as sources (and waits for the lock like every writer).
    path = warehouse.prepare(settings).resolve()
    project = dbt_project_dir()
    run_target_path, log_path = _run_paths(project, path, settings.engine)
    target_path = target_path or run_target_path
    name = " ".join(command)
    args = [
        *command,
        "--project-dir", str(project),
        "--profiles-dir", str(project),
        "--target-path", str(target_path),
        "--log-path", str(log_path),
        "--target", DBT_TARGETS[settings.engine],
        "--quiet",
        "--no-use-colors",
        *extra,
    ]  # fmt: skip
    with _environment(dbt_env(settings, path)):
        for _attempt in warehouse.lock_retries(path, settings.lock_timeout, who=f"dbt {name}"):
            result = _invoke(args)
            if result.success or not _is_lock_failure(result):
                return result
    raise AssertionError("unreachable: lock_retries raises when it gives up")


def _main_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The tables dbt built in the main schema."""
    rows = con.execute("select table_name from information_schema.tables where table_schema = 'main'")
    return {name for (name,) in rows.fetchall()}


def _missing_tables(settings: Settings, names: tuple[str, ...]) -> list[str]:
    with warehouse.writer(settings) as con:
        present = _main_tables(con)
    return [name for name in names if name not in present]


def _mart_rows(settings: Settings) -> dict[str, int | None]:
    with warehouse.writer(settings) as con:
        present = _main_tables(con)
        return {
            mart: con.execute(f"select count(*) from main.{mart}").fetchone()[0] if mart in present else None
            for mart in warehouse.MARTS
        }


def _build_on_spark(settings: Settings, extra: list[str], *, with_unit_tests: bool) -> Any:
    """``dbt build`` on Spark (target spark) from the lake, then its models copied into the warehouse.

    Every model is a table rebuilt from the lake (no incremental state: see bouncehouse.spark)."""
    from bouncehouse import spark

    folder = spark.lake_folder(settings)
    session = spark.session(settings)
    spark.register_lake(session, folder)
    if with_unit_tests:
        # The unit tests of the incremental models read those models' columns (as on a fresh DuckDB warehouse).
        selected = " ".join(f"+{name}" for name in INCREMENTAL_MODELS)
        empty = _run_dbt(["run"], settings, ["--empty", "--select", selected])
        if not empty.success:
            raise TransformError(_failure_line("run --empty", empty))
    result = _run_dbt(["build"], settings, extra)
    if not result.success:
        raise TransformError(_failure_line("build", result))
    for node_result in _node_results(result):  # what ran, for the Airflow task's log
        log.info(
            "dbt: %s %s in %.1fs",
            node_result.node.unique_id, node_result.status, node_result.execution_time or 0.0,
        )  # fmt: skip
    exported = spark.export_marts(session, settings)
    log.info("transform: Spark's models copied into %s: %s", settings.warehouse, exported)
    return result


def transform(
    settings: Settings,
    *,
    full_refresh: bool = False,
    select: str | None = None,
    with_unit_tests: bool = False,
) -> dict[str, Any]:
    """``dbt build`` (seeds, models, data tests) with ``as_of = settings.now()``; then the snapshot.

    ``select`` is a dbt selection (``--select``), e.g. ``"+message_status"``. ``with_unit_tests`` adds
    dbt's unit tests (the models' SQL on fixed fixtures), left out of the hourly build. Returns counts:
    models, seeds, tests passed/failed (unit tests included), unit tests run, rows in the three marts,
    seconds. Raises TransformError on any failure.
    """
    started = time.monotonic()
    extra = ["--full-refresh"] if full_refresh else []
    if select:
        extra += ["--select", *select.split()]
    if not with_unit_tests:
        extra += ["--exclude-resource-type", "unit_test"]
    log.info(
        "transform: dbt build as of %s%s%s",
        settings.now().isoformat(sep=" "),
        " (full refresh)" if full_refresh else "",
        " with unit tests" if with_unit_tests else "",
    )
    if settings.engine == "spark":
        result = _build_on_spark(settings, extra, with_unit_tests=with_unit_tests)
    else:
        if with_unit_tests and _missing_tables(settings, INCREMENTAL_MODELS):
            log.info(
                "transform: first build on %s: creating the incremental models empty first",
                settings.warehouse,
            )
            empty = _run_dbt(["run"], settings, ["--empty", "--select", "+config.materialized:incremental"])
            if not empty.success:
                raise TransformError(_failure_line("run --empty", empty))
        result = _run_dbt(["build"], settings, extra)
        if not result.success:
            raise TransformError(_failure_line("build", result))

    counts: dict[str, Any] = {
        "models": 0,
        "seeds": 0,
        "tests_passed": 0,
        "tests_failed": 0,
        "tests_warned": 0,
        "unit_tests": 0,
    }
    for node_result in _node_results(result):
        kind = str(node_result.node.resource_type).lower().replace("nodetype.", "")
        status = str(node_result.status).lower()
        if kind == "model" and status == "success":
            counts["models"] += 1
        elif kind == "seed" and status == "success":
            counts["seeds"] += 1
        elif kind in ("test", "unit_test"):
            key = {"pass": "tests_passed", "warn": "tests_warned"}.get(status, "tests_failed")
            if status != "skipped":
                counts[key] += 1
                counts["unit_tests"] += kind == "unit_test"
    counts["rows"] = _mart_rows(settings)
    snapshot = warehouse.publish(settings)
    counts["engine"] = settings.engine
    counts["as_of"] = settings.now().isoformat(sep=" ")
    counts["snapshot"] = str(snapshot)
    counts["seconds"] = round(time.monotonic() - started, 2)
    log.info(
        "transform: %d models, %d seeds, %d tests passed, %d failed; rows %s; %.1fs",
        counts["models"], counts["seeds"], counts["tests_passed"], counts["tests_failed"], counts["rows"], counts["seconds"],
    )  # fmt: skip
    return counts


def build_docs(settings: Settings) -> dict[str, Any]:
    """``dbt docs generate`` into ``dbt/target`` (index.html, manifest.json, catalog.json)."""
    started = time.monotonic()
    target = dbt_project_dir() / "target"
    result = _run_dbt(["docs", "generate"], settings, [], target_path=target)
    if not result.success:
        raise TransformError(_failure_line("docs generate", result))
    index = target / "index.html"
    counts = {
        "index": str(index),
        "built_at": datetime.now().isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - started, 2),
    }
    log.info("docs: %s in %.1fs", index, counts["seconds"])
    return counts
