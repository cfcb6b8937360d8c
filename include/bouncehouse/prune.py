"""Drop expired sends: old messages that went out fine and never bounced, complained or were rejected.

A message is pruned when every recipient's final_status is sent, delivered or delayed, its last event
is older than ``now - retention_days``, it has no Bounce, Complaint or Reject event at all (so
out-of-office bounces and not-spam complaints stay), and message_status has seen all of its events:
a message with a raw event loaded after message_status's watermark (its latest ``last_loaded_at``, up to
which its incremental run has processed every load) waits for the next transform, so a late Delivery
naming a new recipient is never lost or miscounted. ``waiting`` in the counts says how many waited.

In one transaction, for the pruned messages:
- their send counts are added to ``raw.pruned_sends_daily`` (deliverability_daily adds them back, so no
  daily figure changes; the digest's own emails, ``message_status.is_digest``, are pruned too but add
  nothing: deliverability_daily never counted them);
- the latest delivery per address among their events is upserted into ``raw.pruned_deliveries``
  (suppression_list counts it as a delivery);
- each recipient's row of message_status is kept in ``raw.pruned_recipients`` (final status, status_at,
  sent_at, opened, clicked, tags, ...: what dbt needs to give the message back should it return);
- they are recorded in ``raw.pruned_messages``, with ``recipients_recorded`` set;
- their rows leave ``raw.ses_events`` and every dbt table with a ``message_id`` column.
Then a checkpoint reclaims space.

Late feedback: ingest drops a late copy of any event prune removed (Send, Delivery, DeliveryDelay, Open,
Click, ...), but loads a late Bounce, Complaint or Reject of a pruned message (a feedback loop's complaint
can come weeks after the send): the address must still be suppressed. That brings the message back, and
dbt gives it back its recipients from ``raw.pruned_recipients`` as stand-in events
(int_recipient_events_restored: a Delivery at status_at for a delivered recipient, and so on), so every
rule applies as if it had never been pruned: the highest status wins, a Transient/General bounce after the
pruned Delivery is an auto-reply, and deliverability_daily takes the revived recipients' share back out
of ``raw.pruned_sends_daily`` so nobody counts twice. A revived message holds a Bounce, Complaint or
Reject, so prune never takes it again. Messages pruned before ``raw.pruned_recipients`` existed
(``recipients_recorded`` false) cannot be given back: ingest keeps dropping every late event of them.

Why suppression_list cannot change when prune runs: of the events it counts (complaints, hard and soft
bounces, deliveries), a pruned message can hold only deliveries (a Bounce or Complaint keeps the message),
and all it asks of deliveries is the latest one per address, which ``raw.pruned_deliveries`` keeps (a
revived message's stand-in Delivery is at or before it). That holds for any as_of at or after the pruned
deliveries (an as_of before a prune's cutoff replays history the prune has forgotten).

retention_days >= soft_bounce_expiry_days (14) is still required, as a margin for late feedback: ingest
drops a late Delivery of a pruned message (it could have cleared a soft-bounce suppression) and every late
event of a message pruned before its recipients were recorded, and past the expiry a late soft bounce
dated near its message could no longer have suppressed anyway.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from bouncehouse import warehouse
from bouncehouse.config import Settings
from bouncehouse.errors import ConfigError

log = logging.getLogger(__name__)

# Must match the dbt var soft_bounce_expiry_days (dbt/dbt_project.yml).
SOFT_BOUNCE_EXPIRY_DAYS = 14
PRUNABLE_STATUSES = ("sent", "delivered", "delayed")
# Event types (eventType, or notificationType for identity notifications) that keep a message forever,
# and the late events of a pruned message that ingest still loads (ingest._commit names them in its SQL;
# tests/ingest checks the two agree).
KEEP_EVENT_TYPES = ("Bounce", "Complaint", "Reject")
# Schemas Python owns; every other schema's tables are dbt's.
PYTHON_SCHEMAS = (warehouse.RAW_SCHEMA, warehouse.OPS_SCHEMA)


def _file_bytes(path: Path) -> int:
    wal = path.with_name(path.name + ".wal")
    return sum(p.stat().st_size for p in (path, wal) if p.exists())


def _dbt_tables_with_message_id(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    rows = con.execute(
        """
        select c.table_schema, c.table_name
        from information_schema.columns c
        join information_schema.tables t
          on t.table_catalog = c.table_catalog and t.table_schema = c.table_schema and t.table_name = c.table_name
        where c.column_name = 'message_id'
          and t.table_type = 'BASE TABLE'
          and c.table_catalog = current_database()
          and c.table_schema not in ?
          and c.table_schema not like 'temp%'
        order by 1, 2
        """,
        [list(PYTHON_SCHEMAS)],
    ).fetchall()
    return [(schema, table) for schema, table in rows]


def _has_column(con: duckdb.DuckDBPyConnection, schema: str, table: str, column: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.columns where table_schema = ? and table_name = ? and column_name = ?",
            [schema, table, column],
        ).fetchone()[0]
    )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def prune(settings: Settings) -> dict[str, Any]:
    if settings.retention_days < SOFT_BOUNCE_EXPIRY_DAYS:
        raise ConfigError(
            f"BOUNCEHOUSE_RETENTION_DAYS / --retention-days is {settings.retention_days}; it must be at least "
            f"{SOFT_BOUNCE_EXPIRY_DAYS} (the soft-bounce expiry): ingest drops late deliveries of pruned messages, "
            "and one dropped sooner could still clear a soft-bounce suppression"
        )
    cutoff = settings.now() - timedelta(days=settings.retention_days)
    path = Path(settings.warehouse)
    bytes_before = _file_bytes(path)
    pruned_at = datetime.now(UTC).replace(tzinfo=None)
    counts: dict[str, Any] = {"cutoff": cutoff.isoformat(sep=" "), "retention_days": settings.retention_days}

    with warehouse.session(path, lock_timeout=settings.lock_timeout) as con:
        message_status = warehouse.find_relation(con, "message_status")
        if message_status is None:
            raise ConfigError(
                "the warehouse has no message_status: run `python -m bouncehouse transform` before prune"
            )
        classified = warehouse.find_relation(con, "int_recipient_events_classified")
        if classified is None:
            raise ConfigError(
                "the warehouse has no int_recipient_events_classified: run `python -m bouncehouse transform` before prune"
            )
        bytes_before = _file_bytes(path)
        # The digest's own emails are pruned like any clean send, but deliverability_daily never counted
        # them, so they add nothing to raw.pruned_sends_daily.
        schema, table = (part.strip('"') for part in message_status.split("."))
        has_is_digest = _has_column(con, schema, table, "is_digest")
        tracked_only = "and not is_digest" if has_is_digest else ""
        is_digest = "coalesce(is_digest, false)" if has_is_digest else "false"
        # Whether the day's sends were reported by Send events (deliverability_daily.sends_source).
        has_send_event = (
            "coalesce(has_send_event, false)"
            if _has_column(con, schema, table, "has_send_event")
            else "null::boolean"
        )
        statuses = list(PRUNABLE_STATUSES)
        con.execute("begin transaction")
        try:
            # Decided from raw events as well as the mart, so an event that arrived after the last
            # transform (a late bounce) still protects its message, and a message with any event
            # loaded after message_status's watermark (the point up to which its incremental run has
            # processed every load) waits: its status, recipients and counts may be stale.
            con.execute(
                f"""
                create or replace temp table prune_candidates as
                with status as (
                    select message_id,
                           bool_and(final_status in ?) as all_prunable,
                           max(last_event_at) as last_status_event
                    from {message_status}
                    group by message_id
                ),
                watermark as (
                    select max(last_loaded_at) as seen_until from {message_status}
                ),
                raw_events as (
                    select message_id,
                           max(event_at) as last_raw_event,
                           count_if(event_type in ?) as kept_events,
                           max(loaded_at) as last_raw_loaded
                    from raw.ses_events
                    where message_id is not null
                    group by message_id
                )
                select s.message_id, coalesce(r.last_raw_loaded <= w.seen_until, true) as seen
                from status s
                cross join watermark w
                left join raw_events r using (message_id)
                where s.all_prunable
                  and coalesce(r.kept_events, 0) = 0
                  and greatest(coalesce(r.last_raw_event, s.last_status_event), s.last_status_event) < ?
                """,
                [statuses, list(KEEP_EVENT_TYPES), cutoff],
            )
            waiting = con.execute("delete from prune_candidates where not seen").fetchone()[0]
            messages = con.execute("select count(*) from prune_candidates").fetchone()[0]
            recipients = con.execute(
                f"select count(*) from {message_status} where message_id in (select message_id from prune_candidates)"
            ).fetchone()[0]
            con.execute(
                f"""
                insert into raw.pruned_sends_daily (day, sent, delivered, delayed, sent_with_send_event, pruned_at)
                select sent_at::date, count(*), count_if(final_status = 'delivered'),
                       count_if(final_status = 'delayed'), sum({has_send_event}::int), ?
                from {message_status}
                where message_id in (select message_id from prune_candidates) {tracked_only}
                group by 1
                """,
                [pruned_at],
            )
            # What suppression_list asks of deliveries: the latest per address (it clears soft bounces).
            delivered = con.execute(
                f"""
                insert into raw.pruned_deliveries (email, last_delivered_at, pruned_at)
                select recipient, max(event_at), ?
                from {classified}
                where message_id in (select message_id from prune_candidates)
                  and event_class = 'delivery' and recipient is not null and event_at is not null
                group by recipient
                on conflict (email) do update set
                    last_delivered_at = greatest(last_delivered_at, excluded.last_delivered_at),
                    pruned_at = excluded.pruned_at
                """,
                [pruned_at],
            ).fetchone()[0]
            # What message_status says of each recipient: should a late Bounce, Complaint or Reject bring
            # the message back, dbt restores its recipients from these rows (stand-in events).
            con.execute(
                f"""
                insert into raw.pruned_recipients (message_id, recipient, final_status, sent_at, status_at,
                                                   last_event_at, last_loaded_at, opened, clicked, is_digest,
                                                   tags, source_address, subject, has_send_event, pruned_at)
                select message_id, recipient, final_status, sent_at, status_at, last_event_at, last_loaded_at,
                       coalesce(opened, false), coalesce(clicked, false), {is_digest}, tags, source_address,
                       subject, {has_send_event}, ?
                from {message_status}
                where message_id in (select message_id from prune_candidates)
                """,
                [pruned_at],
            )
            con.execute(
                f"""
                insert into raw.pruned_messages (message_id, sent_at, pruned_at, recipients_recorded)
                select message_id, min(sent_at), ?, true
                from {message_status}
                where message_id in (select message_id from prune_candidates)
                group by message_id
                """,
                [pruned_at],
            )
            events = con.execute(
                "delete from raw.ses_events where message_id in (select message_id from prune_candidates)"
            ).fetchone()[0]
            deleted_by_table: dict[str, int] = {}
            for schema, table in _dbt_tables_with_message_id(con):
                deleted = con.execute(
                    f"delete from {_quote(schema)}.{_quote(table)} "
                    "where message_id in (select message_id from prune_candidates)"
                ).fetchone()[0]
                deleted_by_table[f"{schema}.{table}"] = int(deleted)
            con.execute("drop table prune_candidates")
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        # CHECKPOINT writes the deletions into the file and frees their blocks (VACUUM reclaims
        # nothing in DuckDB); freed blocks are reused by later loads rather than returned to the OS.
        con.execute("force checkpoint")
        size = con.execute(
            "select total_blocks, free_blocks, block_size from pragma_database_size()"
        ).fetchone()
    bytes_after = _file_bytes(path)
    # Analysts read the published snapshot: refresh it if there is one, so it too forgets the pruned sends.
    if warehouse.snapshot_path(path).exists():
        warehouse.publish_snapshot(path, lock_timeout=settings.lock_timeout)

    counts.update(
        {
            "messages": int(messages),
            "waiting": int(waiting),
            "recipients": int(recipients),
            "pruned_deliveries": int(delivered),
            "events": int(events),
            "mart_rows": deleted_by_table,
            "bytes_before": bytes_before,
            "bytes_after": bytes_after,
            "free_bytes": int(size[1]) * int(size[2]) if size else None,
        }
    )
    log.info(
        "prune (sends older than %s): %d messages, %d recipients, %d events removed (%d waiting for the next "
        "transform); %d -> %d bytes (%s free for reuse)",
        cutoff, messages, recipients, events, waiting, bytes_before, bytes_after, counts["free_bytes"],
    )  # fmt: skip
    return counts
