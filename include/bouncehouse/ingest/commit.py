"""Step 4 of ingest: a batch's events, rejected records and ledger rows, in one transaction.

Each step below is one SQL statement over the temp tables the read left (``ingest_batch``,
``ingest_rows``); together they commit or none does, so a process killed at any moment leaves no
object half-loaded. The batch's ids are the build side of every lookup and the big tables are only
scanned, so memory follows the batch, not the warehouse.
"""

from __future__ import annotations

import re
from datetime import datetime

import duckdb

from bouncehouse.lake import QUEUE_INGESTED
from bouncehouse.prune import KEEP_EVENT_TYPES
from bouncehouse.warehouse import transaction

# Rows are named obj * stride + ord: unique within a batch and ordered like (object, position).
ROW_ID_STRIDE = 1 << 40

# Another process may have loaded some of these objects since we listed them: theirs stands.
DROP_LOADED_ELSEWHERE = """
delete from ingest_batch b using raw.ingested_objects o
where o.key = b.key and o.size = b.size and o.etag is not distinct from b.etag
  and o.checksum is not distinct from b.checksum
"""

# times_loaded follows the ledger as it is now, not as it was when the run listed the source.
COUNT_TIMES_LOADED = """
update ingest_batch b set times_loaded = 1 + coalesce(
    (select o.times_loaded from raw.ingested_objects o where o.key = b.key), 0)
"""

# Events not to load: already in the warehouse, or late events of a message prune removed, except a
# late $keep_types event (prune.KEEP_EVENT_TYPES: it can still suppress the address) when prune
# recorded the message's recipients, from which dbt gives the message back.
FIND_SEEN = """
create or replace temp table ingest_seen as
select event_id from raw.ses_events
where event_id in (select event_id from ingest_rows where reject is null)
union all
select r.event_id from ingest_rows r
join (select message_id, coalesce(recipients_recorded, false) as recipients_recorded
      from raw.pruned_messages
      where message_id in (select message_id from ingest_rows)) p
  on p.message_id = r.message_id
where not (p.recipients_recorded and coalesce(list_contains($keep_types, r.event_type), false))
"""

# One row per new event: its first copy in the batch (object order, then position).
CHOOSE_EVENTS = """
create or replace temp table ingest_chosen as
select min(obj::bigint * $stride + ord) as row_id
from ingest_rows r
where reject is null
  and event_id not in (select event_id from ingest_seen)
  and obj in (select obj from ingest_batch)
group by event_id
"""

INSERT_EVENTS = """
insert into raw.ses_events (event_id, event_type, message_id, event_at, source_key, payload,
                            loaded_at, sns_message_id, source_position)
select r.event_id, r.event_type, r.message_id, r.event_at, b.key, r.payload,
       $loaded_at, r.sns_message_id, r.ord
from ingest_rows r
join ingest_chosen c on c.row_id = r.obj::bigint * $stride + r.ord
join ingest_batch b on b.obj = r.obj
"""

# The lake files this batch changes, while a lake is in use (bouncehouse.lake): its events' and rejected
# records', and those of the rejected records DELETE_REJECTED replaces, so it runs before that step.
QUEUE_LAKE_FILES = QUEUE_INGESTED

# An object read again replaces its rejected records: they describe its content as it is now.
DELETE_REJECTED = "delete from raw.rejected_records where source_key in (select key from ingest_batch)"

INSERT_REJECTED = """
insert into raw.rejected_records (source_key, position, byte_offset, error, excerpt, rejected_at)
select b.key, r.ord, r.byte_offset, r.reject, r.excerpt, $loaded_at
from ingest_rows r
join ingest_batch b on b.obj = r.obj
where r.reject is not null
order by b.key, r.ord
"""

# Per object: its records, events loaded, duplicates (events not loaded) and rejected records.
COUNT_PER_OBJECT = """
create or replace temp table ingest_counts as
select b.obj,
       coalesce(r.records, 0) as records,
       coalesce(c.loaded, 0) as events_loaded,
       coalesce(r.events, 0) - coalesce(c.loaded, 0) as duplicates,
       coalesce(r.rejected, 0) as rejected
from ingest_batch b
left join (select obj, count(*) as records, count(reject) as rejected,
                  count(*) - count(reject) as events
           from ingest_rows group by obj) r on r.obj = b.obj
left join (select (row_id // $stride)::integer as obj, count(*) as loaded
           from ingest_chosen group by all) c on c.obj = b.obj
"""

# The ledger row of an object read again is replaced: it names the content just loaded.
DELETE_LEDGER_ROWS = "delete from raw.ingested_objects where key in (select key from ingest_batch)"

INSERT_LEDGER_ROWS = """
insert into raw.ingested_objects (key, size, etag, checksum, last_modified, compression, records,
                                  events_loaded, duplicates, rejected, loaded_at, times_loaded)
select b.key, b.size, b.etag, b.checksum, b.last_modified, b.compression, n.records,
       n.events_loaded, n.duplicates, n.rejected, $loaded_at, b.times_loaded
from ingest_batch b
join ingest_counts n on n.obj = b.obj
order by b.key
"""

STEPS = (
    DROP_LOADED_ELSEWHERE,
    COUNT_TIMES_LOADED,
    FIND_SEEN,
    CHOOSE_EVENTS,
    INSERT_EVENTS,
    QUEUE_LAKE_FILES,
    DELETE_REJECTED,
    INSERT_REJECTED,
    COUNT_PER_OBJECT,
    DELETE_LEDGER_ROWS,
    INSERT_LEDGER_ROWS,
)

BATCH_COUNTS = """
select count(*), sum(records), sum(events_loaded), sum(duplicates), sum(rejected) from ingest_counts
"""
COUNT_NAMES = ("objects_loaded", "records", "events_loaded", "duplicates", "rejected")

_PARAMETER = re.compile(r"\$(\w+)")


def commit(con: duckdb.DuckDBPyConnection, loaded_at: datetime) -> dict[str, int]:
    """Run STEPS in one transaction; returns the batch's counts (COUNT_NAMES)."""
    values = {"loaded_at": loaded_at, "stride": ROW_ID_STRIDE, "keep_types": list(KEEP_EVENT_TYPES)}
    with transaction(con):
        for step in STEPS:
            con.execute(step, {name: values[name] for name in set(_PARAMETER.findall(step))})
        counts = con.execute(BATCH_COUNTS).fetchone()
    for table in ("ingest_seen", "ingest_chosen", "ingest_counts"):
        con.execute(f"drop table if exists {table}")
    return {name: int(value or 0) for name, value in zip(COUNT_NAMES, counts, strict=True)}
