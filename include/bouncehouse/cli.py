"""``python -m bouncehouse <command>``: the same functions the Airflow tasks call.

Every command logs progress to stderr and prints one JSON object with its counts as the last line of
stdout. A configuration problem exits with status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bouncehouse.config import Settings, load_settings, parse_as_of
from bouncehouse.errors import BouncehouseError

log = logging.getLogger("bouncehouse")


def _add_common(parser: argparse.ArgumentParser, *names: str) -> None:
    helps = {
        "source": "landing area: a folder, file:// URI or s3://bucket/prefix (env BOUNCEHOUSE_SOURCE)",
        "warehouse": "DuckDB file (env BOUNCEHOUSE_WAREHOUSE)",
        "as_of": "ISO 8601 instant that stands for 'now' (env BOUNCEHOUSE_AS_OF; default: the clock)",
        "outbox": "folder for .eml files of the outbox transport (env BOUNCEHOUSE_OUTBOX)",
        "routes": "admin routes YAML file (env BOUNCEHOUSE_ROUTES)",
        "retention_days": "days a delivered send is kept before prune drops it (env BOUNCEHOUSE_RETENTION_DAYS)",
        "digest_transport": "outbox | smtp | ses (env BOUNCEHOUSE_DIGEST_TRANSPORT)",
    }
    for name in names:
        parser.add_argument("--" + name.replace("_", "-"), dest=name, default=None, help=helps[name])


def _settings(args: argparse.Namespace) -> Settings:
    keys = ("source", "warehouse", "outbox", "routes", "as_of", "retention_days", "digest_transport")
    return load_settings({k: getattr(args, k, None) for k in keys})


def cmd_generate(args: argparse.Namespace) -> dict[str, Any]:
    from bouncehouse.demo import generate

    start = parse_as_of(args.start) if args.start else None
    return generate(Path(args.out), messages=args.messages, start=start, days=args.days, seed=args.seed)


def cmd_ingest(args: argparse.Namespace) -> dict[str, Any]:
    from bouncehouse.ingest import ingest

    return ingest(_settings(args))


def cmd_transform(args: argparse.Namespace) -> dict[str, Any]:
    from bouncehouse.transform import transform

    return transform(_settings(args), full_refresh=args.full_refresh, with_unit_tests=args.with_unit_tests)


def cmd_digest(args: argparse.Namespace) -> dict[str, Any]:
    from bouncehouse.digest import DigestDeliveryError, send_digests

    try:
        return send_digests(_settings(args))
    except DigestDeliveryError as exc:
        # Some routes were not sent: the counts still end stdout; main prints the error line and fails.
        _print_result(exc.counts)
        raise


def cmd_prune(args: argparse.Namespace) -> dict[str, Any]:
    from bouncehouse.prune import prune

    return prune(_settings(args))


def cmd_run(args: argparse.Namespace) -> dict[str, Any]:
    from bouncehouse.errors import DigestDeliveryError
    from bouncehouse.pipeline import run_all

    try:
        return run_all(_settings(args))
    except DigestDeliveryError as exc:
        _print_result(dict(exc.counts))  # the whole run's counts still end stdout
        raise


def cmd_ses_sync(args: argparse.Namespace) -> dict[str, Any]:
    from bouncehouse.ses.suppression_sync import run_from_cli

    return run_from_cli(_settings(args), dry_run=args.dry_run)


def cmd_docs(args: argparse.Namespace) -> dict[str, Any]:
    from bouncehouse.transform import build_docs

    return build_docs(_settings(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bouncehouse", description="Bouncehouse: SES feedback from S3 into a DuckDB warehouse."
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, func: Callable[[argparse.Namespace], dict[str, Any]], help_: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=func)
        return p

    p = add(
        "generate", cmd_generate, "write a realistic, deterministic Firehose landing tree of SES feedback"
    )
    p.add_argument("--out", required=True, help="folder to write the landing tree into")
    p.add_argument("--messages", type=int, default=2000, help="messages to simulate (default 2000)")
    p.add_argument(
        "--start", default=None, help="ISO 8601 start of the simulated period (default: days before now)"
    )
    p.add_argument("--days", type=int, default=3, help="length of the simulated period in days (default 3)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")

    p = add("ingest", cmd_ingest, "load every landing object not loaded before into raw.ses_events")
    _add_common(p, "source", "warehouse")

    p = add("transform", cmd_transform, "dbt build: message_status, suppression_list, deliverability_daily")
    _add_common(p, "warehouse", "as_of")
    p.add_argument("--full-refresh", action="store_true", help="rebuild incremental models from scratch")
    p.add_argument(
        "--with-unit-tests",
        action="store_true",
        help="also run dbt's unit tests (the models' SQL on fixtures)",
    )

    p = add("digest", cmd_digest, "email each admin route its bounce digest for the day before --as-of")
    _add_common(p, "warehouse", "as_of", "outbox", "routes", "digest_transport")

    p = add("prune", cmd_prune, "drop delivered sends older than the retention")
    _add_common(p, "warehouse", "as_of", "retention_days")

    p = add("run", cmd_run, "ingest, transform, digest and prune, in that order")
    _add_common(p, "source", "warehouse", "as_of", "outbox", "routes", "retention_days", "digest_transport")

    p = add(
        "ses-sync", cmd_ses_sync, "two-way sync of suppression_list with the SES account suppression list"
    )
    _add_common(p, "warehouse", "as_of")
    p.add_argument("--dry-run", action="store_true", help="log the changes it would make, make none")

    p = add("docs", cmd_docs, "build dbt's documentation site into dbt/target")
    _add_common(p, "warehouse")
    return parser


def configure_logging(quiet: bool = False) -> None:
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.quiet)
    try:
        result = args.func(args)
    except BouncehouseError as exc:
        print(f"bouncehouse {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bouncehouse {args.command}: interrupted", file=sys.stderr)
        return 130
    _print_result(result)
    return 0


def _print_result(result: dict[str, Any]) -> None:
    print(json.dumps(result, default=_json_default, sort_keys=False), flush=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
