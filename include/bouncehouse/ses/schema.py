"""Tables of SES in the loop, created by this package's own code (the core raw schema is warehouse.py's).

All timestamps are naive UTC, as in the rest of the warehouse.
"""

from __future__ import annotations

import duckdb

SES_DDL = """
create schema if not exists raw;
create schema if not exists ops;

-- The account-level suppression list as SES reports it (ListSuppressedDestinations, details from
-- GetSuppressedDestination): one row per address. Our own puts and deletes update it at once.
create table if not exists raw.ses_account_suppressions (
    email           varchar primary key,
    reason          varchar not null,   -- BOUNCE | COMPLAINT
    last_update_at  timestamp,
    message_id      varchar,
    feedback_id     varchar,
    pulled_at       timestamp not null,
    -- false until GetSuppressedDestination has filled message_id and feedback_id (a later run does it
    -- when this one ran out of its request budget)
    details_fetched boolean not null default false
);
-- Mirrors made before the details were read after the changes.
alter table raw.ses_account_suppressions add column if not exists details_fetched boolean default false;

-- The sync's memory: the incremental pull's cursor and when the last full listing ran.
create table if not exists ops.ses_sync_state (
    key         varchar primary key,
    value       timestamp,
    updated_at  timestamp not null
);

-- Addresses Bouncehouse itself put on SES's list (and has not deleted since): what a manual lift or a
-- soft-bounce expiry may take off again.
create table if not exists ops.ses_pushed_suppressions (
    email       varchar primary key,
    reason      varchar not null,   -- our reason: hard_bounce | complaint | soft_bounce
    ses_reason  varchar not null,   -- BOUNCE | COMPLAINT
    pushed_at   timestamp not null
);

-- One row per change the sync made or (dry run) would make. state: pending (written before the
-- request, so a run killed midway knows what may or may not have happened), done, dry_run, failed.
create table if not exists ops.ses_sync_log (
    change_id   varchar primary key,
    run_id      varchar not null,
    action      varchar not null,   -- put | delete
    email       varchar not null,
    ses_reason  varchar,
    our_reason  varchar,
    why         varchar not null,
    state       varchar not null,
    dry_run     boolean not null,
    logged_at   timestamp not null,
    done_at     timestamp,
    note        varchar
);

-- SES's own reputation figures (CloudWatch AWS/SES), one row per metric and period.
create table if not exists raw.ses_reputation_metrics (
    metric          varchar not null,   -- Reputation.BounceRate | Reputation.ComplaintRate
    period_start    timestamp not null,
    period_seconds  integer not null,
    average         double,
    maximum         double,
    pulled_at       timestamp not null,
    primary key (metric, period_start, period_seconds)
);

-- GetSendStatistics: SES's 15-minute send intervals of the last two weeks.
create table if not exists raw.ses_send_statistics (
    interval_start     timestamp primary key,
    delivery_attempts  bigint not null,
    bounces            bigint not null,
    complaints         bigint not null,
    rejects            bigint not null,
    pulled_at          timestamp not null
);

-- GetSendQuota, one row per pull.
create table if not exists raw.ses_send_quota (
    pulled_at            timestamp primary key,
    max_24_hour_send     double,
    max_send_rate        double,
    sent_last_24_hours   double
);

-- One row per alert raised: at most one per alert key (a rate crossing, a stale landing) and UTC day.
create table if not exists ops.ses_alert_log (
    alert_key   varchar not null,
    alert_day   date not null,
    message     varchar not null,
    raised_at   timestamp not null,
    notified    varchar,
    primary key (alert_key, alert_day)
);
"""


def ensure_ses_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(SES_DDL)
