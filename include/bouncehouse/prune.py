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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from bouncehouse import lake, warehouse
from bouncehouse.config import Settings
from bouncehouse.errors import ConfigError

log = logging.getLogger(__name__)

# Must match the dbt var soft_bounce_expiry_days (dbt/dbt_project.yml).
SOFT_BOUNCE_EXPIRY_DAYS = 14
PRUNABLE_STATUSES = ("sent", "delivered", "delayed")
# Event types (eventType, or notificationType for identity notifications) that keep a message forever,
# and the late events of a pruned message that ingest still loads (ingest.commit passes this constant
# to its SQL).
KEEP_EVENT_TYPES = ("Bounce", "Complaint", "Reject")
# Schemas Python owns; every other schema's tables are dbt's.
PYTHON_SCHEMAS = (warehouse.RAW_SCHEMA, warehouse.OPS_SCHEMA)

# The messages to prune, in temp table prune_candidates. Decided from raw events as well as the mart, so
# an event that arrived after the last transform (a late bounce) still protects its message; `seen` is
# false for a message with any event loaded after message_status's watermark (the point up to which its
# incremental run has processed every load): its status, recipients and counts may be stale, so it waits.
FIND_PRUNABLE_MESSAGES = """
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
"""

# What the pruned sends added to deliverability_daily, which adds it back so no daily figure changes
# (the digest's own emails are left out: deliverability_daily never counted them).
RECORD_PRUNED_COUNTS = """
insert into raw.pruned_sends_daily (day, sent, delivered, delayed, sent_with_send_event, pruned_at)
select sent_at::date, count(*), count_if(final_status = 'delivered'), count_if(final_status = 'delayed'),
       sum({has_send_event}::int), ?
from {message_status}
where message_id in (select message_id from prune_candidates) {tracked_only}
group by 1
"""

# What suppression_list asks of deliveries: the latest per address (it clears soft bounces).
RECORD_PRUNED_DELIVERIES = """
insert into raw.pruned_deliveries (email, last_delivered_at, pruned_at)
select recipient, max(event_at), ?
from {classified}
where message_id in (select message_id from prune_candidates)
  and event_class = 'delivery' and recipient is not null and event_at is not null
group by recipient
on conflict (email) do update set
    last_delivered_at = greatest(last_delivered_at, excluded.last_delivered_at),
    pruned_at = excluded.pruned_at
"""

# What message_status says of each recipient: should a late Bounce, Complaint or Reject bring the
# message back, dbt restores its recipients from these rows (stand-in events).
RECORD_PRUNED_RECIPIENTS = """
insert into raw.pruned_recipients (message_id, recipient, final_status, sent_at, status_at, last_event_at,
                                   last_loaded_at, opened, clicked, is_digest, tags, source_address,
                                   subject, has_send_event, pruned_at)
select message_id, recipient, final_status, sent_at, status_at, last_event_at, last_loaded_at,
       coalesce(opened, false), coalesce(clicked, false), {is_digest}, tags, source_address, subject,
       {has_send_event}, ?
from {message_status}
where message_id in (select message_id from prune_candidates)
"""

# The messages themselves, so ingest drops their late events (all but a Bounce, Complaint or Reject).
RECORD_PRUNED_MESSAGES = """
insert into raw.pruned_messages (message_id, sent_at, pruned_at, recipients_recorded)
select message_id, min(sent_at), ?, true
from {message_status}
where message_id in (select message_id from prune_candidates)
group by message_id
"""

# Every dbt table holding rows per message (views follow their tables by themselves).
DBT_TABLES_WITH_MESSAGE_ID = """
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
"""


@dataclass(frozen=True)
class Marts:
    """Where dbt put the relations prune reads, and which later columns message_status has (a warehouse
    built by an older version lacks them)."""

    message_status: str
    classified: str
    has_is_digest: bool
    # Whether the message's sends were reported by Send events (deliverability_daily.sends_source).
    has_send_event: bool

    def sql(self, template: str) -> str:
        return template.format(
            message_status=self.message_status,
            classified=self.classified,
            tracked_only="and not is_digest" if self.has_is_digest else "",
            is_digest="coalesce(is_digest, false)" if self.has_is_digest else "false",
            has_send_event="coalesce(has_send_event, false)" if self.has_send_event else "null::boolean",
        )


def prune(settings: Settings, *, s3_client: Any | None = None) -> dict[str, Any]:
    """Drop the expired sends (see the module's docstring) in one transaction; then reclaim space, bring
    the lake up to date (bouncehouse.lake; ``s3_client`` writes an S3 one) and refresh the analysts'
    snapshot. Returns the counts."""
    cutoff = _cutoff(settings)
    path = Path(settings.warehouse)
    pruned_at = datetime.now(UTC).replace(tzinfo=None)
    with warehouse.writer(settings) as con:
        marts = _find_marts(con)
        bytes_before = _file_bytes(path)
        with warehouse.transaction(con):
            found = find_prunable_messages(con, marts, cutoff)
            lake.queue_before_prune(con, marts.classified)
            record_pruned_counts(con, marts, pruned_at)
            delivered = record_pruned_deliveries(con, marts, pruned_at)
            record_pruned_recipients(con, marts, pruned_at)
            record_pruned_messages(con, marts, pruned_at)
            lake.queue_pruned(con, pruned_at)
            events, mart_rows = delete_pruned(con)
        free_bytes = checkpoint(con)
        exported = lake.export_pending(con, settings, s3_client=s3_client)
    bytes_after = _file_bytes(path)
    # Analysts read the published snapshot: refresh it if there is one, so it too forgets the pruned sends.
    if warehouse.snapshot_path(path).exists():
        warehouse.publish(settings)
    counts = {
        "cutoff": cutoff.isoformat(sep=" "),
        "retention_days": settings.retention_days,
        **found,
        "pruned_deliveries": delivered,
        "events": events,
        "mart_rows": mart_rows,
        "bytes_before": bytes_before,
        "bytes_after": bytes_after,
        "free_bytes": free_bytes,
        **({"lake": exported} if exported else {}),
    }
    log.info(
        "prune (sends older than %s): %d messages, %d recipients, %d events removed (%d waiting for the next "
        "transform); %d -> %d bytes (%s free for reuse)",
        cutoff, found["messages"], found["recipients"], events, found["waiting"], bytes_before, bytes_after,
        free_bytes,
    )  # fmt: skip
    return counts


def _cutoff(settings: Settings) -> datetime:
    """Sends whose last event is before this instant are expired."""
    if settings.retention_days < SOFT_BOUNCE_EXPIRY_DAYS:
        raise ConfigError(
            f"BOUNCEHOUSE_RETENTION_DAYS / --retention-days is {settings.retention_days}; it must be at least "
            f"{SOFT_BOUNCE_EXPIRY_DAYS} (the soft-bounce expiry): ingest drops late deliveries of pruned messages, "
            "and one dropped sooner could still clear a soft-bounce suppression"
        )
    return settings.now() - timedelta(days=settings.retention_days)


def _find_marts(con: duckdb.DuckDBPyConnection) -> Marts:
    """The relations prune reads; a ConfigError when transform has not built them yet."""
    found = {}
    for name in ("message_status", "int_recipient_events_classified"):
        found[name] = warehouse.find_relation(con, name)
        if found[name] is None:
            raise ConfigError(
                f"the warehouse has no {name}: run `python -m bouncehouse transform` before prune"
            )
    message_status = found["message_status"]
    schema, table = (part.strip('"') for part in message_status.split("."))
    return Marts(
        message_status=message_status,
        classified=found["int_recipient_events_classified"],
        has_is_digest=_has_column(con, schema, table, "is_digest"),
        has_send_event=_has_column(con, schema, table, "has_send_event"),
    )


def find_prunable_messages(con: duckdb.DuckDBPyConnection, marts: Marts, cutoff: datetime) -> dict[str, int]:
    """Fill prune_candidates; how many messages (and their recipients) go, and how many wait."""
    con.execute(marts.sql(FIND_PRUNABLE_MESSAGES), [list(PRUNABLE_STATUSES), list(KEEP_EVENT_TYPES), cutoff])
    waiting = con.execute("delete from prune_candidates where not seen").fetchone()[0]
    messages = con.execute("select count(*) from prune_candidates").fetchone()[0]
    recipients = con.execute(
        marts.sql(
            "select count(*) from {message_status} where message_id in (select message_id from prune_candidates)"
        )
    ).fetchone()[0]
    return {"messages": int(messages), "waiting": int(waiting), "recipients": int(recipients)}


def record_pruned_counts(con: duckdb.DuckDBPyConnection, marts: Marts, pruned_at: datetime) -> None:
    """Keep what the pruned sends contributed to deliverability_daily."""
    con.execute(marts.sql(RECORD_PRUNED_COUNTS), [pruned_at])


def record_pruned_deliveries(con: duckdb.DuckDBPyConnection, marts: Marts, pruned_at: datetime) -> int:
    """Keep each address's latest delivery among the pruned messages; how many addresses."""
    return int(con.execute(marts.sql(RECORD_PRUNED_DELIVERIES), [pruned_at]).fetchone()[0])


def record_pruned_recipients(con: duckdb.DuckDBPyConnection, marts: Marts, pruned_at: datetime) -> None:
    """Keep each pruned recipient's status, so a late bounce can give the message back."""
    con.execute(marts.sql(RECORD_PRUNED_RECIPIENTS), [pruned_at])


def record_pruned_messages(con: duckdb.DuckDBPyConnection, marts: Marts, pruned_at: datetime) -> None:
    """Name the pruned messages, with their recipients recorded."""
    con.execute(marts.sql(RECORD_PRUNED_MESSAGES), [pruned_at])


def delete_pruned(con: duckdb.DuckDBPyConnection) -> tuple[int, dict[str, int]]:
    """Remove the pruned messages' raw events and dbt rows; the events and rows per table removed."""
    in_candidates = "where message_id in (select message_id from prune_candidates)"
    events = con.execute(f"delete from raw.ses_events {in_candidates}").fetchone()[0]
    deleted_by_table: dict[str, int] = {}
    for schema, table in con.execute(DBT_TABLES_WITH_MESSAGE_ID, [list(PYTHON_SCHEMAS)]).fetchall():
        deleted = con.execute(f"delete from {_quote(schema)}.{_quote(table)} {in_candidates}").fetchone()[0]
        deleted_by_table[f"{schema}.{table}"] = int(deleted)
    con.execute("drop table prune_candidates")
    return int(events), deleted_by_table


def checkpoint(con: duckdb.DuckDBPyConnection) -> int | None:
    """Write the deletions into the file and free their blocks; the bytes now free for reuse.

    CHECKPOINT frees the blocks (VACUUM reclaims nothing in DuckDB); later loads reuse them rather than
    the file shrinking."""
    con.execute("force checkpoint")
    size = con.execute("select total_blocks, free_blocks, block_size from pragma_database_size()").fetchone()
    return int(size[1]) * int(size[2]) if size else None


def _file_bytes(path: Path) -> int:
    wal = path.with_name(path.name + ".wal")
    return sum(p.stat().st_size for p in (path, wal) if p.exists())


def _has_column(con: duckdb.DuckDBPyConnection, schema: str, table: str, column: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.columns where table_schema = ? and table_name = ? and column_name = ?",
            [schema, table, column],
        ).fetchone()[0]
    )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
