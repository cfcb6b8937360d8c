"""Step 3 of ingest: a batch's records into the temp table ``ingest_rows``, each classified.

DuckDB's own JSON reader splits and parses whole objects (the fast read), and one SQL statement
(CLASSIFY_SQL) unwraps SNS envelopes and tells an event from a record to set aside. An object DuckDB
cannot read (a record that is not JSON or not UTF-8), or that holds a record to set aside, is split
record by record in Python instead (``records.split_records``) and classified by the same statement,
so the rest of it still loads and every bad record is named with its position and byte offset.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from bouncehouse.config import DEFAULT_INGEST_MAX_OBJECT_BYTES, DEFAULT_INGEST_MAX_RECORD_BYTES, Settings
from bouncehouse.ingest.records import (
    ContentTooLarge,
    RawRecord,
    cut_into_lines,
    read_content,
    resplit,
    split_records,
)
from bouncehouse.ingest.stage import StagedObject

log = logging.getLogger(__name__)

# Landed bytes per DuckDB read statement: an object DuckDB cannot read makes the statement fail,
# and only this much is read again without it.
READ_GROUP_BYTES = 32 << 20
# ...and objects: DuckDB plans a statement of n reader calls in time that grows with n squared.
READ_GROUP_OBJECTS = 50
# Objects of records back to back per statement: enough for DuckDB's threads, few to read again.
BACK_TO_BACK_GROUP_OBJECTS = 4

# The SES JSON fields ingest needs; json_extract reads them all in one parse. [1] is the whole
# document, minified: the stored payload, and the input of md5 for events without an envelope.
SES_PATHS = (
    "$",
    "$.eventType",
    "$.notificationType",
    "$.mail.messageId",
    # The event's own time, else the send time (Send, Reject, Rendering Failure have no other).
    "$.bounce.timestamp",
    "$.complaint.timestamp",
    "$.delivery.timestamp",
    "$.deliveryDelay.timestamp",
    "$.open.timestamp",
    "$.click.timestamp",
    "$.subscription.timestamp",
    "$.mail.timestamp",
)

# Why a record is set aside: a stable prefix, then what it is. Records that are valid but are not SES
# sending feedback say what they are, so an operator sees at once that nothing is broken.
REJECTS = {
    "not_json": "not_json: not a JSON value",
    "message_not_json": "message_not_json: the SNS envelope's Message is not JSON",
    "no_ses_type": "no_ses_type: neither eventType/notificationType nor mail.messageId",
    "sns_subscription_confirmation": (
        "sns_subscription_confirmation: an SNS SubscriptionConfirmation, not SES feedback "
        "(its SubscribeURL is never fetched)"
    ),
    "sns_unsubscribe_confirmation": (
        "sns_unsubscribe_confirmation: an SNS UnsubscribeConfirmation, not SES feedback "
        "(its SubscribeURL is never fetched)"
    ),
    "s3_notification": "s3_notification: an S3 event notification (or S3's test event), not SES feedback",
    "ses_setup_notification": (
        "ses_setup_notification: SES confirming it can publish to this SNS topic, not SES feedback"
    ),
    "ses_inbound_received": (
        "ses_inbound_received: an SES inbound receipt notification (an email SES received), "
        "not sending feedback"
    ),
}
# The plain-text Message SES publishes when an SNS topic becomes an event destination.
SES_SETUP_TEXT = "Successfully validated SNS topic for Amazon SES"

ROWS_DDL = """
create or replace temp table ingest_rows (
    obj             integer not null,   -- the object's index in the batch
    ord             bigint not null,    -- the record's 1-based position in its object
    event_id        varchar,
    event_type      varchar,
    message_id      varchar,
    event_at        timestamp,
    sns_message_id  varchar,
    payload         json,
    reject          varchar,            -- why the record is set aside; null for an event
    byte_offset     bigint,
    excerpt         varchar
)
"""

# {source}: a relation (obj, ord, rec, byte_offset, excerpt, pre_error). rec is null when the reader
# could not read the record; pre_error is set when the per-record path already rejected it.
CLASSIFY_SQL = """
insert into ingest_rows
with bounded as (
    -- A record over the limit is not parsed (and the per-record path names it with its offset).
    select obj, ord, byte_offset, excerpt,
           case when strlen(rec) > {max_record_bytes} then null else rec end as rec,
           case when strlen(rec) > {max_record_bytes} then '{record_too_large}' else pre_error end
               as pre_error
    from {source}
), enveloped as (
    select obj, ord, rec, byte_offset, excerpt, pre_error,
           try(json_extract_string(rec, ['$.Type', '$.MessageId', '$.Message'])) as env
    from bounded
), unwrapped as (
    select *, coalesce(env[1] = 'Notification' and env[3] is not null, false) as is_envelope
    from enveloped
), parsed as (
    select *,
           try(json_extract(case when is_envelope then env[3] else rec end, {paths})) as f
    from unwrapped
), fields as (
    select *,
           coalesce(f[2] ->> '$', f[3] ->> '$') as event_type,
           f[4] ->> '$' as message_id
    from parsed
)
select
    obj,
    ord,
    case when is_envelope and env[2] is not null then env[2] else md5(f[1]) end,
    event_type,
    message_id,
    timezone('UTC', try_cast(coalesce(f[5], f[6], f[7], f[8], f[9], f[10], f[11], f[12]) ->> '$' as timestamptz)),
    case when is_envelope then env[2] end,
    f[1],
    case
        when pre_error is not null then pre_error
        when rec is null then 'unreadable'
        when env is null then '{not_json}'
        -- SNS's own messages about the subscription: no Message to unwrap.
        when env[1] = 'SubscriptionConfirmation' then '{sns_subscription_confirmation}'
        when env[1] = 'UnsubscribeConfirmation' then '{sns_unsubscribe_confirmation}'
        when f is null and is_envelope and starts_with(ltrim(env[3]), '{ses_setup_text}')
            then '{ses_setup_notification}'
        when f is null and is_envelope then '{message_not_json}'
        when f is null then '{not_json}'
        -- SES confirming an identity's notification topic; SES receiving email (not sending feedback).
        when event_type = 'AmazonSnsSubscriptionSucceeded' then '{ses_setup_notification}'
        when event_type = 'Received' then '{ses_inbound_received}'
        -- An S3 bucket notifying the topic (or the queue) of its objects.
        when event_type is null and message_id is null
             and (json_extract_string(f[1], '$.Event') = 's3:TestEvent'
                  or json_extract_string(f[1], '$.Records[0].eventSource') = 'aws:s3')
            then '{s3_notification}'
        when event_type is null and message_id is null then '{no_ses_type}'
    end,
    byte_offset,
    excerpt
from fields
"""

# The batch's objects, as the ledger will record them.
BATCH_COLUMNS = {
    "obj": "integer",
    "key": "varchar",
    "path": "varchar",
    "size": "bigint",
    "etag": "varchar",
    "checksum": "varchar",
    "last_modified": "timestamp",
    "compression": "varchar",
    "times_loaded": "integer",
}
# The per-record path's records: CLASSIFY_SQL's {source}.
RECORD_COLUMNS = {
    "obj": "integer",
    "ord": "bigint",
    "rec": "varchar",
    "byte_offset": "bigint",
    "excerpt": "varchar",
    "pre_error": "varchar",
}


@dataclass(frozen=True)
class Limits:
    """What one record and one object may hold (Settings.ingest_max_record_bytes, _object_bytes)."""

    max_record_bytes: int = DEFAULT_INGEST_MAX_RECORD_BYTES
    max_object_bytes: int = DEFAULT_INGEST_MAX_OBJECT_BYTES  # decompressed, on the per-record path

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(settings.ingest_max_record_bytes, settings.ingest_max_object_bytes)


# The per-record path hands DuckDB its records in groups of about this many characters.
RECORD_GROUP_CHARS = 16 << 20

_FILE_IN_ERROR = re.compile(r'file "([^"]+)"')
_GLOB_CHARS = re.compile(r"[*?\[\]{}\\]")


def read_batch(
    con: duckdb.DuckDBPyConnection, staged: Sequence[StagedObject], limits: Limits = Limits()
) -> int:
    """Fill ``ingest_batch`` and ``ingest_rows`` for the batch; returns how many objects were read
    record by record."""
    con.execute(ROWS_DDL)
    con.execute(
        f"create or replace temp table ingest_batch as {_unnest_sql(BATCH_COLUMNS)}",
        {name: [_batch_value(item, name) for item in staged] for name in BATCH_COLUMNS},
    )
    refused = {item.obj for item in staged if item.refusal is not None}
    unreadable = read_fast(con, [item for item in staged if item.obj not in refused], limits)
    flagged = {obj: whole for obj, whole in _objects_needing_record_path(con).items() if obj not in refused}
    per_record = sorted(set(flagged) | unreadable)
    for index in per_record:
        _reread_per_record(con, staged[index], limits, read_whole=flagged.get(index, False))
    for index in sorted(refused):
        set_aside(con, staged[index], staged[index].refusal or "")
    return len(per_record)


def _reread_per_record(
    con: duckdb.DuckDBPyConnection, item: StagedObject, limits: Limits, *, read_whole: bool
) -> None:
    """Replace what the fast read found of ``item`` by the per-record read. When DuckDB read every
    record of it, its reading stands where the splitter agrees (see ``_mend``). When the object is too
    large to be split in Python and DuckDB read every record of it, DuckDB's rows stand (its bad
    records have no byte offset); else it is set aside whole. Whatever happens, it is one object."""
    try:
        content = read_content(item.path, limits.max_object_bytes)
    except ContentTooLarge as exc:
        if read_whole:
            log.warning("ingest: %s kept as DuckDB read it, without byte offsets: %s", item.key, exc)
            con.execute(
                "update ingest_rows set reject = $reason where obj = $obj and reject = 'unreadable'",
                {"obj": item.obj, "reason": _unsplit_reason(limits.max_object_bytes)},
            )
        else:
            _forget(con, item)
            set_aside(con, item, str(exc))
        return
    try:
        if content[1] is None:
            if read_whole and _mend(con, item, limits, content[0]):
                return
            if (
                not read_whole
                and item.read_format == "unstructured"
                and _read_through_lines(con, item, limits, content[0])
            ):
                return
        _forget(con, item)
        read_per_record(con, item, limits, content=content)
    except duckdb.OutOfMemoryException as exc:  # this object, not the run
        _forget(con, item)
        set_aside(con, item, f"object_unreadable: {str(exc).splitlines()[0]}")


def _read_through_lines(
    con: duckdb.DuckDBPyConnection, item: StagedObject, limits: Limits, content: bytes
) -> bool:
    """Records back to back that DuckDB could not read whole: read again by its line reader, from a
    copy cut into lines (``records.cut_into_lines``), and mended (``_mend``). False when that does not
    give what the per-record path would (the object's rows are then as they were: none)."""
    with tempfile.TemporaryDirectory(prefix="bouncehouse-lines-") as scratch:
        item.lines_copy = Path(scratch, "lines.json")
        try:
            item.lines_copy.write_bytes(cut_into_lines(content))
            con.execute(classify_sql(_fast_source_sql([item]), limits.max_record_bytes), _fast_params([item]))
            if _mend(con, item, limits, content):
                return True
            _forget(con, item)
            return False
        except duckdb.Error:
            _forget(con, item)
            return False
        finally:
            item.lines_copy = None


def _mend(con: duckdb.DuckDBPyConnection, item: StagedObject, limits: Limits, content: bytes) -> bool:
    """For an object DuckDB read whole: only what it could not read is split in Python, and its set-aside
    records get their byte offsets and excerpts. Its reader is run again over the object for each
    record's text, which ``records.resplit`` finds in the content: where any is not where DuckDB's
    reading puts it, nothing changes and False says so (the caller splits the whole object)."""
    rows = con.execute(
        "select ord, reject is not null from ingest_rows where obj = $obj order by ord", {"obj": item.obj}
    ).fetchall()
    rejected = {ord_ for ord_, is_rejected in rows if is_rejected}
    try:
        reader = con.execute(
            f"select json::varchar from read_json_objects($path, {_reader_options(item)}) "
            "with ordinality order by ordinality",
            {"path": str(item.read_path)},
        )
        lines, cut = item.read_format == "newline_delimited", item.lines_copy is not None
        split = resplit(content, _texts(reader), lines=lines, cut=cut, named=rejected)
    except duckdb.Error:
        return False
    if split is None or [ord_ for ord_, _ in rows] != list(range(1, split.rows + 1)):
        return False
    named = sorted(split.named)
    con.execute(
        """
        update ingest_rows set byte_offset = u.byte_offset, excerpt = u.excerpt
        from (select unnest($ord::bigint[]) as ord, unnest($byte_offset::bigint[]) as byte_offset,
                     unnest($excerpt::varchar[]) as excerpt) u
        where ingest_rows.obj = $obj and ingest_rows.ord = u.ord
        """,
        {
            "obj": item.obj,
            "ord": named,
            "byte_offset": [split.named[ord_][0] for ord_ in named],
            "excerpt": [split.named[ord_][1] for ord_ in named],
        },
    )
    if split.unread:
        con.execute(
            "delete from ingest_rows where obj = $obj and list_contains($ords, ord)",
            {"obj": item.obj, "ords": split.unread},
        )
    if split.moved:
        con.execute(
            """
            update ingest_rows set ord = m.position
            from (select unnest($ord::bigint[]) as ord, unnest($position::bigint[]) as position) m
            where ingest_rows.obj = $obj and ingest_rows.ord = m.ord
            """,
            {"obj": item.obj, "ord": list(split.moved), "position": list(split.moved.values())},
        )
    classify_records(con, item, split.records, limits)
    log.info(
        "ingest: %s: DuckDB's reading of %d records kept, %d lines it could not read split into %d records",
        item.key, split.rows - len(split.unread), len(split.unread), len(split.records),
    )  # fmt: skip
    return True


def _texts(reader: duckdb.DuckDBPyConnection) -> Iterator[str | None]:
    while chunk := reader.fetchmany(10_000):
        for (text,) in chunk:
            yield text


def _unsplit_reason(max_object_bytes: int) -> str:
    return (
        "not_json: a record DuckDB could not read; its object is over "
        f"{max_object_bytes} bytes (BOUNCEHOUSE_INGEST_MAX_OBJECT_BYTES), too large to split record by "
        "record, so no byte offset or excerpt"
    )


def _forget(con: duckdb.DuckDBPyConnection, item: StagedObject) -> None:
    con.execute("delete from ingest_rows where obj = $obj", {"obj": item.obj})


def set_aside(con: duckdb.DuckDBPyConnection, item: StagedObject, reason: str) -> None:
    """The whole object is one rejected record at position 0 (it is not read, or not all of it):
    its ledger row still records it, so it is not retried until it changes."""
    log.warning("ingest: %s set aside: %s", item.key, reason)
    con.execute(
        "insert into ingest_rows (obj, ord, reject, byte_offset) values ($obj, 0, $reason, null)",
        {"obj": item.obj, "reason": reason},
    )


def classify_sql(source_sql: str, max_record_bytes: int = DEFAULT_INGEST_MAX_RECORD_BYTES) -> str:
    """CLASSIFY_SQL over ``source_sql``, a relation (obj, ord, rec, byte_offset, excerpt, pre_error)."""
    paths = "[" + ", ".join(f"'{p}'" for p in SES_PATHS) + "]"
    texts = {name: reason.replace("'", "''") for name, reason in REJECTS.items()}
    return CLASSIFY_SQL.format(
        source=source_sql,
        paths=paths,
        ses_setup_text=SES_SETUP_TEXT,
        max_record_bytes=int(max_record_bytes),
        record_too_large=too_large_reason(max_record_bytes),
        **texts,
    )


def too_large_reason(max_record_bytes: int) -> str:
    return f"record_too_large: over {max_record_bytes} bytes (BOUNCEHOUSE_INGEST_MAX_RECORD_BYTES)"


def _unnest_sql(columns: Mapping[str, str]) -> str:
    """A relation of one row per list element, from one list parameter per column."""
    return "select " + ", ".join(f"unnest(${name}::{kind}[]) as {name}" for name, kind in columns.items())


def _batch_value(item: StagedObject, name: str) -> object:
    value = getattr(item, name)
    return str(value) if name == "path" else value


def read_fast(
    con: duckdb.DuckDBPyConnection, staged: Sequence[StagedObject], limits: Limits = Limits()
) -> set[int]:
    """Read objects with DuckDB in groups; returns the objects it could not read.

    Records back to back are read a few objects at a time: DuckDB's reader of them fails on a
    broken record, and the statement's work is lost with it (_read_group)."""
    unreadable: set[int] = set()
    groups: dict[str, list[StagedObject]] = {"newline_delimited": [], "unstructured": []}
    sizes = dict.fromkeys(groups, 0)
    for item in staged:
        if item.size == 0:
            continue  # nothing to read; its ledger row still records it
        if _GLOB_CHARS.search(str(item.read_path)):
            # DuckDB's readers take a path as a glob pattern: "a[1]" would read "a1", or nothing.
            unreadable.add(item.obj)
            continue
        kind = item.read_format
        group = groups[kind]
        most = READ_GROUP_OBJECTS if kind == "newline_delimited" else BACK_TO_BACK_GROUP_OBJECTS
        if group and (sizes[kind] + item.size > READ_GROUP_BYTES or len(group) >= most):
            unreadable |= _read_group(con, group, limits)
            groups[kind], sizes[kind] = [], 0
        groups[kind].append(item)
        sizes[kind] += item.size
    for group in groups.values():
        if group:
            unreadable |= _read_group(con, group, limits)
    return unreadable


def _read_group(con: duckdb.DuckDBPyConnection, group: list[StagedObject], limits: Limits) -> set[int]:
    """One statement for the group; an object that makes it fail is left out and the rest re-read."""
    unreadable: set[int] = set()
    remaining = list(group)
    while remaining:
        try:
            sql = classify_sql(_fast_source_sql(remaining), limits.max_record_bytes)
            con.execute(sql, _fast_params(remaining))
            return unreadable
        except duckdb.Error as exc:
            culprit = _failing_object(exc, remaining)
            if culprit is None:
                if len(remaining) == 1:
                    return unreadable | {remaining[0].obj}
                # The error names no file we gave it: read them one by one to find out.
                for item in remaining:
                    unreadable |= _read_group(con, [item], limits)
                return unreadable
            log.debug("ingest: %s needs the per-record path: %s", culprit.key, str(exc).splitlines()[0])
            unreadable.add(culprit.obj)
            remaining = [item for item in remaining if item is not culprit]
    return unreadable


def _fast_source_sql(items: Sequence[StagedObject]) -> str:
    """One reader call per object, all in one statement.

    WITH ORDINALITY then numbers each object's records 1..n, and the calls, as separate pipelines,
    still run side by side (a single call over many files, numbered, runs on one thread).
    """
    reads = [
        f"select {item.obj} as obj, ordinality as ord, json from read_json_objects("
        f"$path{item.obj}, {_reader_options(item)}) with ordinality"
        for item in items
    ]
    union = "\n        union all ".join(reads)
    return f"""(
    select obj, ord, json::varchar as rec,
           null::bigint as byte_offset, null::varchar as excerpt, null::varchar as pre_error
    from ({union})
)"""


def _reader_options(item: StagedObject) -> str:
    # Objects read line by line (newline-framed ones, and copies of records back to back cut into
    # lines by staging) give a null for a line that is not JSON (ignore_errors) instead of failing
    # the statement; DuckDB's reader of records back to back fails on a broken record (_read_group).
    framing = (
        "format = 'newline_delimited', ignore_errors = true"
        if item.read_format == "newline_delimited"
        else "format = 'unstructured'"
    )
    return f"{framing}, compression = '{item.read_compression}'"


def _fast_params(items: Sequence[StagedObject]) -> dict[str, str]:
    return {f"path{item.obj}": str(item.read_path) for item in items}


def _failing_object(exc: Exception, items: Sequence[StagedObject]) -> StagedObject | None:
    by_path = {str(item.read_path): item for item in items}
    for match in _FILE_IN_ERROR.finditer(str(exc)):
        if match.group(1) in by_path:
            return by_path[match.group(1)]
    return None


def _objects_needing_record_path(con: duckdb.DuckDBPyConnection) -> dict[int, bool]:
    """Objects read whole that hold a record to set aside (its byte offset and excerpt are found
    record by record), whose record numbers are not 1..n, or that are not empty yet gave no row
    (never seen; checked, not assumed: an object is never recorded as loaded with what it holds lost).
    Each maps to whether DuckDB read all of it (its records numbered 1..n)."""
    rows = con.execute(
        """
        select b.obj, count(r.obj) > 0 and max(r.ord) = count(r.obj) and min(r.ord) = 1
        from ingest_batch b left join ingest_rows r on r.obj = b.obj
        where b.size > 0
        group by b.obj
        having count(r.obj) = 0 or count(r.reject) > 0 or max(r.ord) <> count(r.obj) or min(r.ord) <> 1
        """
    ).fetchall()
    return {obj: bool(whole) for obj, whole in rows}


def read_per_record(
    con: duckdb.DuckDBPyConnection,
    item: StagedObject,
    limits: Limits = Limits(),
    *,
    content: tuple[bytes, str | None] | None = None,
) -> None:
    """Split one object in Python and classify its records (each with its byte offset and excerpt),
    handing them to DuckDB a group at a time. ``content``: the object's (content, damage), if read.

    Raises ContentTooLarge when the object's content is over ``limits.max_object_bytes``."""
    data, damage = content or read_content(item.path, limits.max_object_bytes)
    records = classify_records(con, item, _with_damage(split_records(data), len(data), damage), limits)
    if not records:
        return
    (set_aside_count,) = con.execute(
        "select count(reject) from ingest_rows where obj = $obj", {"obj": item.obj}
    ).fetchone()
    log.info("ingest: %s read record by record: %d records, %d set aside", item.key, records, set_aside_count)


def _with_damage(records: Iterator[RawRecord], size: int, damage: str | None) -> Iterator[RawRecord]:
    """The records, then, when the gzip stream is damaged, what follows the last one that could be
    decompressed, as one record."""
    position = 0
    for record in records:
        position = record.position
        yield record
    if damage:
        yield RawRecord(position + 1, size, None, damage, None)


def classify_records(
    con: duckdb.DuckDBPyConnection, item: StagedObject, records: Iterable[RawRecord], limits: Limits
) -> int:
    """Classify records split in Python into ``ingest_rows``, handing them to DuckDB a group at a time;
    returns how many there were."""
    rows: dict[str, list[object]] = {name: [] for name in RECORD_COLUMNS}
    sql = classify_sql(f"({_unnest_sql(RECORD_COLUMNS)})", limits.max_record_bytes)
    chars = count = 0
    for raw in records:
        count += 1
        record = _bounded(raw, limits.max_record_bytes)
        values = (item.obj, record.position, record.text, record.byte_offset, record.excerpt, record.error)
        for name, value in zip(RECORD_COLUMNS, values, strict=True):
            rows[name].append(value)
        chars += len(record.text or "")
        if chars >= RECORD_GROUP_CHARS:
            con.execute(sql, rows)
            for column in rows.values():
                column.clear()
            chars = 0
    if rows["obj"]:
        con.execute(sql, rows)
    return count


def _bounded(record: RawRecord, max_record_bytes: int) -> RawRecord:
    """The record, or its rejection when it is over the limit (DuckDB never parses it then)."""
    text = record.text
    if text is None or len(text) * 4 <= max_record_bytes or len(text.encode()) <= max_record_bytes:
        return record
    return RawRecord(
        record.position, record.byte_offset, None, too_large_reason(max_record_bytes), record.excerpt
    )
