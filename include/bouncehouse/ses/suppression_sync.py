"""Two-way sync between ``suppression_list`` and the SES account-level suppression list (SESv2).

One run, ``sync_suppressions``:

1. **pull**: ``ListSuppressedDestinations`` (paged) into ``raw.ses_account_suppressions``; the first
   run (and one run a week, to notice addresses someone removed in the console) lists everything, the
   others only what changed since the previous pull (``StartDate``).
2. **resume**: a change a killed run had started (``pending`` in ``ops.ses_sync_log``) is checked with
   ``GetSuppressedDestination``: made already, it is recorded as done; not made, it is made now. So no
   change is repeated or skipped.
3. **plan**: ours (hard bounce, complaint; soft bounce when ``BOUNCEHOUSE_SES_SYNC_SOFT_BOUNCES``) not on
   SES's list -> put; a soft-bounce suppression Bouncehouse put there that has expired -> delete; a
   manual lift -> delete, if Bouncehouse put the address there (``BOUNCEHOUSE_SES_LIFT_POLICY=ours``),
   always (``all``) or never (``never``).
4. **push** (or, with ``dry_run``, only log): each change is logged ``pending``, requested, then marked
   ``done`` together with the mirror and ``ops.ses_pushed_suppressions`` in one transaction.
5. **details**: an address new or changed on SES's list is read with ``GetSuppressedDestination`` for
   its message and feedback ids.

Requests go through ``PacedCaller``: about one a second, backing off when SES throttles. A run stops
making changes and reading details once it has made ``BOUNCEHOUSE_SES_MAX_REQUESTS`` requests (600:
ten minutes at that pace), so it never holds the warehouse (and Airflow's one-slot pool) for hours;
the next run carries on where it stopped.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
from botocore.exceptions import ClientError

from bouncehouse.config import Settings
from bouncehouse.errors import BouncehouseError, ConfigError
from bouncehouse.ses.pacing import PacedCaller, error_code, naive_utc, paced_caller, utcnow
from bouncehouse.ses.schema import ensure_ses_schema
from bouncehouse.warehouse import find_relation, transaction, writer

log = logging.getLogger(__name__)

PAGE_SIZE = 100
FULL_PULL_EVERY = timedelta(days=7)
# The incremental pull starts this long before the previous one did: SES's LastUpdateTime and our
# clock may disagree a little, and an address listed twice is only upserted twice.
PULL_OVERLAP = timedelta(minutes=15)
SES_REASONS = {"hard_bounce": "BOUNCE", "soft_bounce": "BOUNCE", "complaint": "COMPLAINT"}
REPORTED_CHANGES = 50


class SesSyncError(BouncehouseError):
    """Some changes were refused by SES (logged as failed); the others were made."""


@dataclass(frozen=True)
class Change:
    action: str  # put | delete
    email: str
    ses_reason: str | None
    our_reason: str | None
    why: str

    def describe(self) -> str:
        return f"{self.action} {self.email} ({self.ses_reason or '-'}): {self.why}"


def sync_suppressions(
    settings: Settings,
    client: Any,
    *,
    dry_run: bool = False,
    caller: PacedCaller | None = None,
    page_size: int = PAGE_SIZE,
) -> dict[str, Any]:
    """Pull SES's list, finish what a killed run started, then make (or, dry run, log) the differences."""
    caller = caller or paced_caller(settings)
    started = utcnow()
    run_id = f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    with writer(settings) as con:
        ensure_ses_schema(con)
        pulled = pull_suppressions(con, client, caller, page_size=page_size, now=started)
        pending = _pending(con)
        resumed = 0 if dry_run else resume_pending(con, client, caller, pending)
        changes = plan_changes(con, settings)
        failed = made = 0
        for change in changes:
            if dry_run:
                _log_dry_run(con, run_id, change)
            elif caller.requests < settings.ses_max_requests:
                failed += not apply_change(con, client, caller, run_id, change)
                made += 1
        details = fill_details(con, client, caller, settings.ses_max_requests - caller.requests)
    left = 0 if dry_run else len(changes) - made
    if left:
        log.warning("ses sync: request budget (BOUNCEHOUSE_SES_MAX_REQUESTS=%d) spent; %d changes left for "
                    "the next run", settings.ses_max_requests, left)  # fmt: skip
    counts: dict[str, Any] = {
        "dry_run": dry_run,
        **pulled,
        **details,
        "pending_from_killed_run": len(pending),
        "resumed": resumed,
        "puts": sum(c.action == "put" for c in changes),
        "deletes": sum(c.action == "delete" for c in changes),
        "left_for_next_run": left,
        "failed": failed,
        "requests": caller.requests,
        "throttled": caller.throttled,
        "changes": [c.describe() for c in changes[:REPORTED_CHANGES]],
    }
    if failed:
        raise SesSyncError(
            f"SES refused {failed} of {len(changes)} changes: see ops.ses_sync_log (state failed)"
        )
    return counts


def run_from_cli(settings: Settings, *, dry_run: bool) -> dict[str, Any]:
    """``python -m bouncehouse ses-sync``: boto3's default credentials, ``BOUNCEHOUSE_SES_ENDPOINT_URL``
    if set; an SES or network failure is one line (BouncehouseError), not a traceback."""
    from botocore.exceptions import BotoCoreError

    from bouncehouse.ses.pacing import boto3_client

    try:
        return sync_suppressions(settings, boto3_client("sesv2", settings), dry_run=dry_run)
    except (BotoCoreError, ClientError) as exc:
        raise BouncehouseError(f"SES: {exc}") from None


# --- pull ----------------------------------------------------------------------------------------------

# A listed address keeps its details while its reason and LastUpdateTime stay as they were; a row
# Bouncehouse wrote itself after a put (last_update_at null, nothing to read) takes SES's time quietly.
UPSERT_LISTED = """
insert into raw.ses_account_suppressions (email, reason, last_update_at, pulled_at, details_fetched)
values (?, ?, ?, ?, false)
on conflict (email) do update set
    details_fetched = details_fetched and reason = excluded.reason
        and (last_update_at is null or last_update_at = excluded.last_update_at),
    message_id = case when reason = excluded.reason then message_id end,
    feedback_id = case when reason = excluded.reason then feedback_id end,
    reason = excluded.reason,
    last_update_at = excluded.last_update_at,
    pulled_at = excluded.pulled_at
"""


def _state(con: duckdb.DuckDBPyConnection, key: str) -> datetime | None:
    row = con.execute("select value from ops.ses_sync_state where key = ?", [key]).fetchone()
    return row[0] if row else None


def _set_state(con: duckdb.DuckDBPyConnection, key: str, value: datetime) -> None:
    con.execute(
        "insert or replace into ops.ses_sync_state (key, value, updated_at) values (?, ?, ?)",
        [key, value, utcnow()],
    )


def pull_suppressions(
    con: duckdb.DuckDBPyConnection, client: Any, caller: PacedCaller, *, page_size: int, now: datetime
) -> dict[str, Any]:
    """Mirror SES's list into raw.ses_account_suppressions, one transaction per page; the cursor moves
    only once every page is in, so a pull killed midway is simply done again."""
    cursor, last_full = _state(con, "pull_cursor"), _state(con, "last_full_pull_at")
    full = cursor is None or last_full is None or now - last_full >= FULL_PULL_EVERY
    request: dict[str, Any] = {"PageSize": page_size}
    if not full:
        assert cursor is not None
        request["StartDate"] = (cursor - PULL_OVERLAP).replace(tzinfo=UTC)
    listed = 0
    token: str | None = None
    while True:
        page = caller(
            client.list_suppressed_destinations, **request, **({"NextToken": token} if token else {})
        )
        summaries = page.get("SuppressedDestinationSummaries", [])
        listed += len(summaries)
        rows = [
            (s["EmailAddress"].strip().lower(), s["Reason"], naive_utc(s.get("LastUpdateTime")), now)
            for s in summaries
        ]
        if rows:
            with transaction(con):
                con.executemany(UPSERT_LISTED, rows)
        token = page.get("NextToken")
        if not token:
            break
    with transaction(con):
        removed = 0
        if full:  # what this complete listing did not show is no longer on SES's list
            removed = con.execute(
                "select count(*) from raw.ses_account_suppressions where pulled_at < ?", [now]
            ).fetchone()[0]
            con.execute("delete from raw.ses_account_suppressions where pulled_at < ?", [now])
            _set_state(con, "last_full_pull_at", now)
        _set_state(con, "pull_cursor", now)
    log.info("ses pull (%s): %d listed, %d gone", "full" if full else "incremental", listed, removed)
    return {"full_pull": full, "listed": listed, "gone_from_ses": removed}


def fill_details(
    con: duckdb.DuckDBPyConnection, client: Any, caller: PacedCaller, budget: int
) -> dict[str, int]:
    """GetSuppressedDestination for up to ``budget`` mirrored addresses that lack their message and
    feedback ids; each answer is stored at once, so a killed run never reads an address twice."""
    missing = [
        row[0]
        for row in con.execute(
            "select email from raw.ses_account_suppressions where not details_fetched order by email limit ?",
            [max(budget, 0)],
        ).fetchall()
    ]
    for email in missing:
        found = _get(client, caller, email)
        if found is None:  # gone from SES's list since it was listed
            con.execute("delete from raw.ses_account_suppressions where email = ?", [email])
            continue
        attributes = found.get("Attributes", {})
        con.execute(
            "update raw.ses_account_suppressions set message_id = ?, feedback_id = ?, details_fetched = true"
            " where email = ?",
            [attributes.get("MessageId") or None, attributes.get("FeedbackId") or None, email],
        )
    pending = con.execute(
        "select count(*) from raw.ses_account_suppressions where not details_fetched"
    ).fetchone()[0]
    return {"details_fetched": len(missing), "details_pending": pending}


def _get(client: Any, caller: PacedCaller, email: str) -> dict[str, Any] | None:
    """SES's entry for ``email``, or None when it is not on the list."""
    try:
        return caller(client.get_suppressed_destination, EmailAddress=email)["SuppressedDestination"]
    except ClientError as exc:
        if error_code(exc) == "NotFoundException":
            return None
        raise


# --- plan ----------------------------------------------------------------------------------------------


def _lifts_sql(con: duckdb.DuckDBPyConnection) -> str:
    """Addresses whose latest manual entry (the dbt seed) is a lift; at the same added_at a lift wins."""
    seed = find_relation(con, "manual_suppressions")
    if seed is None:
        return "select null::varchar as email where false"
    return f"""
        select email from (
            select lower(trim(email)) as email, lower(trim(action)) as action,
                   row_number() over (
                       partition by lower(trim(email))
                       order by added_at desc nulls last, lower(trim(action)) = 'lift' desc
                   ) as position
            from {seed}
        ) where position = 1 and action = 'lift'
    """


def plan_changes(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[Change]:
    """The differences between suppression_list and SES's list (as last pulled) that the sync makes."""
    ours = find_relation(con, "suppression_list")
    if ours is None:
        raise ConfigError(
            "the warehouse has no suppression_list: run `python -m bouncehouse transform` first"
        )
    rows = con.execute(
        f"""
        with ours as (
            select lower(trim(email)) as email, reason from {ours}
            where expires_at is null or expires_at > $now
        ),
        lifted as ({_lifts_sql(con)}),
        mirror as (select email, reason from raw.ses_account_suppressions),
        pushed as (select email, reason from ops.ses_pushed_suppressions),
        puts as (
            select 'put' as action, email,
                   case reason when 'complaint' then 'COMPLAINT' else 'BOUNCE' end as ses_reason,
                   reason as our_reason, 'our ' || reason || ' suppression is not on SES''s list' as why
            from ours
            where (reason in ('hard_bounce', 'complaint') or ($soft and reason = 'soft_bounce'))
              and email not in (select email from mirror)
        ),
        lifts as (
            select 'delete' as action, mirror.email, mirror.reason as ses_reason, 'manual' as our_reason,
                   case when mirror.email in (select email from pushed)
                        then 'manual lift of an address Bouncehouse put on SES''s list'
                        else 'manual lift (lift policy all)' end as why
            from mirror
            where mirror.email in (select email from lifted)
              and mirror.email not in (select email from ours)
              and ($policy = 'all' or ($policy = 'ours' and mirror.email in (select email from pushed)))
        ),
        expired as (
            select 'delete' as action, mirror.email, mirror.reason as ses_reason, pushed.reason as our_reason,
                   'soft-bounce suppression Bouncehouse put on SES''s list has expired' as why
            from pushed join mirror using (email)
            where pushed.reason = 'soft_bounce'
              and pushed.email not in (select email from ours)
              and pushed.email not in (select email from lifts)
        )
        select * from puts union all select * from lifts union all select * from expired
        order by action desc, email
        """,
        {"now": settings.now(), "soft": settings.ses_sync_soft_bounces, "policy": settings.ses_lift_policy},
    ).fetchall()
    return [Change(*row) for row in rows]


# --- push ----------------------------------------------------------------------------------------------


def _request(client: Any, caller: PacedCaller, change: Change) -> str | None:
    """Make one change on SES; returns a note (None, or why nothing needed doing)."""
    if change.action == "put":
        caller(client.put_suppressed_destination, EmailAddress=change.email, Reason=change.ses_reason)
        return None
    try:
        caller(client.delete_suppressed_destination, EmailAddress=change.email)
    except ClientError as exc:
        if error_code(exc) != "NotFoundException":
            raise
        return "already gone from SES's list"
    return None


def _log(con: duckdb.DuckDBPyConnection, change_id: str, run_id: str, change: Change, state: str) -> None:
    con.execute(
        "insert into ops.ses_sync_log (change_id, run_id, action, email, ses_reason, our_reason, why, state,"
        " dry_run, logged_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [change_id, run_id, change.action, change.email, change.ses_reason, change.our_reason, change.why,
         state, state == "dry_run", utcnow()],
    )  # fmt: skip


def _log_dry_run(con: duckdb.DuckDBPyConnection, run_id: str, change: Change) -> None:
    log.info("ses sync dry run: would %s", change.describe())
    _log(con, f"{run_id}:{change.action}:{change.email}", run_id, change, "dry_run")


def _finish(con: duckdb.DuckDBPyConnection, change_id: str, change: Change, note: str | None) -> None:
    """Record a change SES has made: the log, the mirror and what Bouncehouse put there, together."""
    now = utcnow()
    with transaction(con):
        con.execute(
            "update ops.ses_sync_log set state = 'done', done_at = ?, note = ? where change_id = ?",
            [now, note, change_id],
        )
        if change.action == "put":
            con.execute(
                "insert or replace into raw.ses_account_suppressions (email, reason, last_update_at,"
                " message_id, feedback_id, pulled_at, details_fetched) values (?, ?, null, null, null, ?, true)",
                [change.email, change.ses_reason, now],
            )
            con.execute(
                "insert or replace into ops.ses_pushed_suppressions (email, reason, ses_reason, pushed_at)"
                " values (?, ?, ?, ?)",
                [change.email, change.our_reason, change.ses_reason, now],
            )
        else:
            con.execute("delete from raw.ses_account_suppressions where email = ?", [change.email])
            con.execute("delete from ops.ses_pushed_suppressions where email = ?", [change.email])


def apply_change(
    con: duckdb.DuckDBPyConnection, client: Any, caller: PacedCaller, run_id: str, change: Change
) -> bool:
    """Log the change as pending, make it, record it done; False (logged failed) when SES refuses it."""
    change_id = f"{run_id}:{change.action}:{change.email}"
    with transaction(con):
        _log(con, change_id, run_id, change, "pending")
    try:
        note = _request(client, caller, change)
    except ClientError as exc:
        log.error("ses sync: SES refused to %s: %s", change.describe(), exc)
        con.execute(
            "update ops.ses_sync_log set state = 'failed', done_at = ?, note = ? where change_id = ?",
            [utcnow(), str(exc), change_id],
        )
        return False
    _finish(con, change_id, change, note)
    log.info("ses sync: %s", change.describe())
    return True


def _pending(con: duckdb.DuckDBPyConnection) -> list[tuple[str, Change]]:
    rows = con.execute(
        "select change_id, action, email, ses_reason, our_reason, why from ops.ses_sync_log"
        " where state = 'pending' order by logged_at, change_id"
    ).fetchall()
    return [(row[0], Change(*row[1:])) for row in rows]


def resume_pending(
    con: duckdb.DuckDBPyConnection, client: Any, caller: PacedCaller, pending: list[tuple[str, Change]]
) -> int:
    """Finish the changes a killed run had started: SES's own state says whether each one happened."""
    for change_id, change in pending:
        on_list = _get(client, caller, change.email) is not None
        made = on_list if change.action == "put" else not on_list
        if made:
            note = "resumed: SES had made it before the run was killed"
        else:
            _request(client, caller, change)
            note = "resumed: made after the run was killed"
        _finish(con, change_id, change, note)
        log.info("ses sync: %s (%s)", change.describe(), note)
    return len(pending)
