-- The addresses suppressed as of the dbt var as_of (only events at or before it count), one row each.
-- Reasons: complaint > hard_bounce > manual > soft_bounce; a manual `lift` beats every reason.
-- Rebuilt every run (expiry moves with as_of) from the compact classified events, not the raw JSON.
-- Every message counts, the digest's own emails included (docs: digest_own_emails). Deliveries of
-- messages prune removed still count, through raw.pruned_deliveries (the latest per address); the
-- stand-ins of a revived message (docs: revived_pruned_message) add no delivery later than that one.

{%- set threshold = var('soft_bounce_threshold') | int %}
{%- set window_days = var('soft_bounce_window_days') | int %}
{%- set expiry_days = var('soft_bounce_expiry_days') | int %}

with

recipient_events as (

    select * from {{ ref('int_recipient_events_classified') }}

),

manual_suppressions as (

    select * from {{ ref('manual_suppressions') }}

),

pruned_deliveries as (

    select * from {{ ref('stg_prune__pruned_deliveries') }}

),

counted_events as (

    select message_id, recipient as email, event_id, event_class, event_at, hard_by_smtp_status
    from recipient_events
    where recipient is not null
        and event_class in ('complaint', 'hard_bounce', 'soft_bounce', 'delivery')
        and event_at <= {{ as_of() }}

),

permanent as (

    select
        email,
        case event_class when 'complaint' then 'complaint' else 'hard_bounce' end as reason,
        min(event_at) as suppressed_at,
        cast(null as timestamp) as expires_at,
        {{ first_by('message_id', ['event_at desc', 'event_id desc']) }} as last_message_id,
        -- Hard only because the var transient_mailbox_missing_is_hard made a Transient 5.1.x bounce hard:
        -- none of the address's hard bounces was Permanent.
        event_class = 'hard_bounce' and bool_and(coalesce(hard_by_smtp_status, false)) as hard_by_smtp_status
    from counted_events
    where event_class in ('complaint', 'hard_bounce')
    group by email, event_class

),

soft_bounces as (

    select
        email,
        message_id,
        event_id,
        event_at,
        count(*) over (
            partition by email
            order by event_at
            range between interval {{ window_days }} days preceding and current row
        ) as bounces_in_window
    from counted_events
    where event_class = 'soft_bounce'

),

soft_bounce_streaks as (

    -- The latest soft bounce that completed a run of `threshold` within `window` days, and the last one.
    select
        email,
        max(event_at) filter (where bounces_in_window >= {{ threshold }}) as threshold_reached_at,
        max(event_at) as last_soft_bounce_at,
        {{ first_by('message_id', ['event_at desc', 'event_id desc']) }} as last_message_id
    from soft_bounces
    group by email

),

last_deliveries as (

    -- Deliveries still among the events, and the latest of those prune removed: pruning a delivered
    -- message never brings back a suppression its delivery cleared.
    select email, max(delivered_at) as last_delivered_at
    from (
        select email, event_at as delivered_at
        from counted_events
        where event_class = 'delivery'

        union all

        select email, last_delivered_at as delivered_at
        from pruned_deliveries
        where last_delivered_at <= {{ as_of() }}
    )
    group by email

),

soft as (

    select
        streaks.email,
        'soft_bounce' as reason,
        streaks.threshold_reached_at as suppressed_at,
        streaks.last_soft_bounce_at + interval {{ expiry_days }} days as expires_at,
        streaks.last_message_id,
        false as hard_by_smtp_status
    from soft_bounce_streaks as streaks
    left join last_deliveries
        on last_deliveries.email = streaks.email
    where streaks.threshold_reached_at is not null
        -- A delivery after the bounce that reached the threshold clears it.
        and (last_deliveries.last_delivered_at is null
            or last_deliveries.last_delivered_at <= streaks.threshold_reached_at)
        and streaks.last_soft_bounce_at + interval {{ expiry_days }} days > {{ as_of() }}

),

manual_latest as (

    -- Each address's latest manual entry; at the same added_at a lift wins.
    select email, action, added_at
    from (
        select
            {{ normalize_email('email') }} as email,
            lower(trim(action)) as action,
            added_at,
            row_number() over (
                partition by {{ normalize_email('email') }}
                order by added_at desc nulls last, lower(trim(action)) = 'lift' desc
            ) as entry_number
        from manual_suppressions
        where {{ normalize_email('email') }} is not null
    ) as manual_entries
    where entry_number = 1

),

manual as (

    select
        email,
        'manual' as reason,
        added_at as suppressed_at,
        cast(null as timestamp) as expires_at,
        cast(null as {{ dbt.type_string() }}) as last_message_id,
        false as hard_by_smtp_status
    from manual_latest
    where action = 'suppress'

),

candidates as (

    select *, 1 as reason_priority from permanent where reason = 'complaint'
    union all
    select *, 2 as reason_priority from permanent where reason = 'hard_bounce'
    union all
    select *, 3 as reason_priority from manual
    union all
    select *, 4 as reason_priority from soft

),

final as (

    select email, reason, suppressed_at, expires_at, last_message_id, hard_by_smtp_status
    from (
        select candidates.*, row_number() over (partition by candidates.email order by reason_priority) as reason_number
        from candidates
        -- An anti-join, never `not in` (one null in a `not in` list would drop every row), nor a
        -- correlated `not exists` on manual_latest, which candidates also reads (Spark rejects that plan).
        left join manual_latest as lifted
            on lifted.email = candidates.email
            and lifted.action = 'lift'
        where lifted.email is null
    ) as strongest_reasons
    where reason_number = 1

)

select * from final
