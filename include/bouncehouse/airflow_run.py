"""``make run`` and ``make airflow``: the whole job through Airflow itself, on a fresh machine.

``python -m bouncehouse.airflow_run`` prepares the project-local Airflow home (migrates its metadata
database only when needed, creates the one-slot DuckDB pool), generates demo data when the default
source is still empty, runs ``airflow dags test`` on each DAG in order (ingest, transform, digest,
prune) and prints a short summary read from the warehouse. Every ``BOUNCEHOUSE_*`` variable reaches the
DAGs unchanged. A failed DAG run exits non-zero with one line saying which and where its log is.

``python -m bouncehouse.airflow_run --standalone`` prepares the same home, unpauses the project's DAGs
and starts ``airflow standalone`` (API server and UI on 127.0.0.1:8080, scheduler, dag-processor,
triggerer).
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bouncehouse.config import Settings, home_dir, load_settings, parse_true_false
from bouncehouse.errors import BouncehouseError

log = logging.getLogger("bouncehouse.airflow_run")

# bouncehouse_ses_sync runs after each transform (and before the digest, which shows SES's figures).
DAG_ORDER = (
    "bouncehouse_ingest",
    "bouncehouse_transform",
    "bouncehouse_ses_sync",
    "bouncehouse_digest",
    "bouncehouse_prune",
)
DEMO_MESSAGES = 3000
DEMO_DAYS = 3
DEMO_SEED = 7


def repo_root(env: Mapping[str, str] | None = None) -> Path:
    """The checkout: BOUNCEHOUSE_HOME when it holds the DAGs, else the folder above ``include/``."""
    home = home_dir(env)
    if home is not None and (home / "dags").is_dir():
        return home.resolve()
    return Path(__file__).resolve().parents[2]


def airflow_env(
    base: Mapping[str, str] | None = None, root: Path | None = None, *, fail_fast: bool = True
) -> dict[str, str]:
    """The environment for every Airflow command: a project-local home, our DAGs, no examples.

    Values already set (by the Makefile, compose or the user) win.
    """
    env = dict(os.environ if base is None else base)
    root = root or repo_root(env)
    env.setdefault("AIRFLOW_HOME", str(root / ".airflow"))
    env.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(root / "dags"))
    env.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(root / "plugins"))
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    env.setdefault("BOUNCEHOUSE_HOME", str(root))
    # `airflow standalone` starts its components as `airflow ...` by name: put this venv's bin first.
    bin_dir = str(Path(sys.executable).parent)
    if env.get("PATH", "").split(os.pathsep)[0] != bin_dir:
        env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    # BOUNCEHOUSE_ENGINE=spark builds from the lake: ingest writes one under data/ unless told where.
    if (
        env.get("BOUNCEHOUSE_ENGINE", "").strip().lower() == "spark"
        and not env.get("BOUNCEHOUSE_LAKE", "").strip()
    ):
        env["BOUNCEHOUSE_LAKE"] = str(root / "data" / "lake")
    # Cosmos would otherwise try to report usage to a third party on every task.
    env.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
    # Cosmos keeps dbt's partial-parse file between tasks in its cache dir (/tmp/cosmos by default, shared
    # by every checkout and Airflow home on the machine, each overwriting the others' file): one per home.
    env.setdefault("AIRFLOW__COSMOS__CACHE_DIR", str(Path(env["AIRFLOW_HOME"]) / "cosmos"))
    # `airflow dags test` runs every task in one process: a failure should end the run now rather than
    # wait out retry delays (the scheduler keeps the DAGs' retries; export BOUNCEHOUSE_RETRIES to change).
    if fail_fast:
        env.setdefault("BOUNCEHOUSE_RETRIES", "0")
    return env


def _apply_env(env: Mapping[str, str]) -> None:
    """Airflow reads its configuration when first imported: set the home before that."""
    for key in (
        "AIRFLOW_HOME",
        "AIRFLOW__CORE__DAGS_FOLDER",
        "AIRFLOW__CORE__PLUGINS_FOLDER",
        "AIRFLOW__CORE__LOAD_EXAMPLES",
    ):
        os.environ[key] = env[key]


def prepare_airflow(env: Mapping[str, str]) -> dict[str, Any]:
    """Migrate the metadata database if it is not at Airflow's head revision; create the pool."""
    _apply_env(env)
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    from airflow.models.pool import Pool
    from airflow.utils import db

    from bouncehouse import orchestration

    started = time.monotonic()
    try:
        db.check_migrations(timeout=0)
        migrated = False
    except TimeoutError:
        log.info("migrating the Airflow metadata database in %s", env["AIRFLOW_HOME"])
        db.upgradedb()
        migrated = True
    Pool.create_or_update_pool(
        orchestration.POOL,
        slots=orchestration.POOL_SLOTS,
        description=orchestration.POOL_DESCRIPTION,
        include_deferred=False,
    )
    # A new metadata database has no dbt listing cached yet (an older one has, from its DAG parses).
    listed = list_dbt_project(env) if migrated else None
    log.info(
        "Airflow home %s ready (migrated: %s, pool %s with %d slot, dbt project listed: %s) in %.1fs",
        env["AIRFLOW_HOME"], migrated, orchestration.POOL, orchestration.POOL_SLOTS, listed,
        time.monotonic() - started,
    )  # fmt: skip
    return {"migrated": migrated, "dbt_project_listed": listed}


def list_dbt_project(env: Mapping[str, str]) -> bool:
    """Parse the transform DAG once with no import timeout, so Cosmos lists the dbt project (``dbt ls``)
    into its cache (an Airflow Variable) here. Otherwise the first parse of a new home runs ``dbt ls``
    inside Airflow's 30 s DAG import timeout, which a busy machine exceeds: the transform DAG then shows
    as an import error. Later parses read the cache. A DAG that does not import is left for the DAG run
    (or the UI's import errors) to report."""
    code = (
        "import sys; from airflow.dag_processing.dagbag import DagBag; "
        "sys.exit(1 if DagBag(dag_folder=sys.argv[1]).import_errors else 0)"
    )
    transform = Path(env["AIRFLOW__CORE__DAGS_FOLDER"]) / "bouncehouse_transform.py"
    completed = subprocess.run(
        [sys.executable, "-c", code, str(transform)],
        env={**env, "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return completed.returncode == 0


def source_is_empty(settings: Settings) -> bool:
    path = Path(settings.source.removeprefix("file://"))
    return not path.exists() or not any(p.is_file() for p in path.rglob("*"))


def ensure_demo_data(settings: Settings, now: datetime | None = None) -> dict[str, Any] | None:
    """Generate demo data only when the source is the default one and holds nothing yet (contract)."""
    if not settings.source_is_default or not source_is_empty(settings):
        return None
    from bouncehouse.demo import generate

    end = now or settings.now()
    start = end - timedelta(days=DEMO_DAYS)
    log.info(
        "default source %s is empty: generating %d demo messages over %d days",
        settings.source,
        DEMO_MESSAGES,
        DEMO_DAYS,
    )
    return generate(
        Path(settings.source), messages=DEMO_MESSAGES, start=start, days=DEMO_DAYS, seed=DEMO_SEED
    )


@dataclass
class DagRunResult:
    dag_id: str
    ok: bool
    seconds: float
    log_file: Path


def run_dag(dag_id: str, env: Mapping[str, str], log_dir: Path) -> DagRunResult:
    """``airflow dags test <dag_id>``: one real DAG run, in process, its output kept in a log file."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"{dag_id}.log"
    airflow = Path(sys.executable).with_name("airflow")
    command = [str(airflow) if airflow.exists() else "airflow", "dags", "test", dag_id]
    started = time.monotonic()
    with log_file.open("w") as out:
        completed = subprocess.run(command, env=dict(env), stdout=out, stderr=subprocess.STDOUT, check=False)
    seconds = time.monotonic() - started
    # `airflow dags test` exits non-zero when the DAG run ends failed.
    return DagRunResult(dag_id=dag_id, ok=completed.returncode == 0, seconds=seconds, log_file=log_file)


def summarise(settings: Settings) -> dict[str, Any]:
    """What the run left in the warehouse, read-only: loaded events, statuses, suppressions, digests."""
    from bouncehouse import warehouse

    with warehouse.reader(settings) as con:

        def scalar(sql: str) -> Any:
            return con.execute(sql).fetchone()[0]

        def pairs(sql: str) -> dict[str, int]:
            return {str(k): int(v) for k, v in con.execute(sql).fetchall()}

        summary: dict[str, Any] = {
            "objects_loaded": scalar("select count(*) from raw.ingested_objects"),
            "events_loaded": scalar("select count(*) from raw.ses_events"),
            "rejected_records": scalar("select count(*) from raw.rejected_records"),
            "statuses": pairs(
                "select final_status, count(*) from message_status group by 1 order by 2 desc, 1"
            ),
            "suppressions": pairs(
                "select reason, count(*) from suppression_list group by 1 order by 2 desc, 1"
            ),
            "digests": [
                {"route": r, "day": str(d), "transport": t, "ref": m, "state": s}
                for r, d, t, m, s in con.execute(
                    "select route, digest_day, transport, message_ref, state from ops.digest_log"
                    " order by digest_day desc, route"
                ).fetchall()
            ],
            "pruned_messages": scalar("select count(*) from raw.pruned_messages"),
        }
    return summary


def print_summary(summary: Mapping[str, Any], settings: Settings, results: Sequence[DagRunResult]) -> None:
    lines = ["", "Bouncehouse run (through Airflow: airflow dags test)"]
    lines.append("  DAG runs:      " + ", ".join(f"{r.dag_id} ok {r.seconds:.0f}s" for r in results))
    lines.append(f"  source:        {settings.source}")
    lines.append(f"  warehouse:     {settings.warehouse}")
    lines.append(
        f"  events loaded: {summary['events_loaded']} from {summary['objects_loaded']} objects"
        f" ({summary['rejected_records']} records rejected)"
    )
    statuses = summary["statuses"]
    lines.append(
        f"  statuses:      {sum(statuses.values())} recipients: "
        + ", ".join(f"{k} {v}" for k, v in statuses.items())
    )
    suppressions = summary["suppressions"]
    lines.append(
        f"  suppressions:  {sum(suppressions.values())}"
        + (": " + ", ".join(f"{k} {v}" for k, v in suppressions.items()) if suppressions else "")
    )
    digests = summary["digests"]
    where = settings.outbox if settings.digest_transport == "outbox" else settings.digest_transport
    lines.append(f"  digests:       {len(digests)} logged ({settings.digest_transport} -> {where})")
    for digest in digests[:10]:
        lines.append(
            f"                 {digest['day']} {digest['route']} ({digest['state']}): "
            f"{digest['ref'] or digest['transport']}"
        )
    lines.append(f"  pruned:        {summary['pruned_messages']} messages")
    print("\n".join(lines), flush=True)


def run(env: MutableMapping[str, str] | None = None) -> int:
    env = airflow_env(env)
    settings = load_settings(env=env)
    prepare_airflow(env)
    demo = ensure_demo_data(settings)
    if demo is not None:
        log.info("demo data: %s", demo)
    log_dir = Path(env["AIRFLOW_HOME"]) / "logs" / "make-run"
    results: list[DagRunResult] = []
    for dag_id in DAG_ORDER:
        log.info("airflow dags test %s ...", dag_id)
        result = run_dag(dag_id, env, log_dir)
        results.append(result)
        if not result.ok:
            tail = result.log_file.read_text(errors="replace").splitlines()[-25:]
            print("\n".join(tail), file=sys.stderr)
            print(
                f"make run: DAG {dag_id} failed after {result.seconds:.0f}s; full log: {result.log_file}",
                file=sys.stderr,
            )
            return 1
        log.info("%s succeeded in %.1fs", dag_id, result.seconds)
    print_summary(summarise(settings), settings, results)
    return 0


def standalone_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``airflow_env`` for a live Airflow: the UI on loopback, the admin login, and the DAGs unpaused as
    they are first seen, so triggering ingest runs transform through its Asset without a click on each
    DAG (Airflow's default pauses new DAGs). Values already set win."""
    env = airflow_env(base, fail_fast=False)
    env.setdefault("AIRFLOW__API__HOST", "127.0.0.1")
    env.setdefault("AIRFLOW__API__PORT", "8080")
    # Tasks reach the execution API at the base URL; Airflow's fallback is localhost:8080 whatever the port.
    env.setdefault(
        "AIRFLOW__API__BASE_URL", f"http://{env['AIRFLOW__API__HOST']}:{env['AIRFLOW__API__PORT']}"
    )
    env.setdefault("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
    env.setdefault("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "False")
    return env


def unpause_dags(env: Mapping[str, str]) -> list[str]:
    """Unpause the project's DAGs that the metadata database holds paused (an Airflow home from before
    they started unpaused, or a DAG paused by hand); returns their ids. Nothing is unpaused when the
    operator asked for paused DAGs (``AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True``). DAGs the
    database does not hold yet are created unpaused when first parsed (``standalone_env``)."""
    name = "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"
    if parse_true_false(name, env.get(name), default=True):
        return []
    _apply_env(env)
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        paused = session.scalars(
            select(DagModel).where(DagModel.dag_id.in_(DAG_ORDER), DagModel.is_paused.is_(True))
        ).all()
        for dag in paused:
            dag.is_paused = False
        unpaused = sorted(dag.dag_id for dag in paused)
    if unpaused:
        log.info("unpaused %s (paused in %s)", ", ".join(unpaused), env["AIRFLOW_HOME"])
    return unpaused


def prepare_standalone(env: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Everything ``make airflow`` does before ``airflow standalone``: check the settings, prepare the
    home, unpause the DAGs. Returns the environment to start Airflow with."""
    env = standalone_env(env)
    load_settings(env=env)  # bad configuration fails here, with one line, not inside the UI
    prepare_airflow(env)
    unpause_dags(env)
    return env


def standalone(env: MutableMapping[str, str] | None = None) -> int:
    """``airflow standalone`` bound to loopback. Log in as ``admin``: Airflow's simple auth manager
    generates the password, prints it and keeps it in ``$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated``."""
    env = prepare_standalone(env)
    passwords = Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
    print(
        f"Airflow UI: http://{env['AIRFLOW__API__HOST']}:{env['AIRFLOW__API__PORT']}  "
        f"user admin, password in {passwords} (also printed below). Ctrl-C stops it.",
        flush=True,
    )
    airflow = Path(sys.executable).with_name("airflow")
    return subprocess.call([str(airflow) if airflow.exists() else "airflow", "standalone"], env=dict(env))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bouncehouse.airflow_run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--standalone", action="store_true", help="start the Airflow UI and scheduler instead"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        return standalone() if args.standalone else run()
    except BouncehouseError as exc:
        print(f"make run: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
