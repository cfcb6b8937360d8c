-- Per UTC send day (a cohort: the day of sent_at), how that day's recipients ended up, with the
-- rates SES judges an account by. The rules are docs blocks (models/docs.md): pruned_sends_added_back,
-- revived_pruned_message (a revived recipient's share of raw.pruned_sends_daily comes back out: its
-- raw.pruned_recipients row says which day and status it was counted with), digest_own_emails.

{%- set daily_columns = [
    'day', 'sent', 'delivered', 'hard_bounced', 'rate_hard_bounced', 'known_sent', 'sent_with_send_event',
    'delivered_without_send_event', 'soft_bounced', 'complained', 'rejected', 'rendering_failed', 'delayed'
] %}
{%- set pruned_columns = [
    'day', 'sent', 'delivered', 'delayed', 'known_sent', 'sent_with_send_event', 'delivered_without_send_event'
] %}
{%- set revived_columns = ['day', 'sent', 'delivered', 'delayed', 'known_sent', 'sent_with_send_event'] %}

with

message_status as (

    select * from {{ ref('message_status') }}

),

pruned_sends_daily as (

    select * from {{ ref('stg_prune__pruned_sends_daily') }}

),

pruned_recipients as (

    select * from {{ ref('stg_prune__pruned_recipients') }}

),

tracked_days as (

    select
        cast(sent_at as date) as day,
        count(*) as sent,
        count_if(final_status = 'delivered') as delivered,
        count_if(final_status = 'hard_bounced') as hard_bounced,
        -- The hard bounces SES's bounce rate counts (macro: OnAccountSuppressionList and hard only by the
        -- smtp status are left out, Suppressed counts).
        {{ ses_rate_hard_bounced() }} as rate_hard_bounced,
        -- Where `sent` comes from (docs: sends_source): recipients of messages SES reported a Send event
        -- for, or only seen in feedback. known_sent: recipients of which that is known.
        count(*) as known_sent,
        count_if(coalesce(has_send_event, false)) as sent_with_send_event,
        -- Deliveries reported for recipients without a Send event: that part of the stream reports
        -- deliveries (Delivery notifications or events), so its recipients are all seen (docs: sends_source).
        count_if(not coalesce(has_send_event, false) and delivered) as delivered_without_send_event,
        count_if(final_status = 'soft_bounced') as soft_bounced,
        count_if(final_status = 'complained') as complained,
        count_if(final_status = 'rejected') as rejected,
        count_if(final_status = 'rendering_failed') as rendering_failed,
        count_if(final_status = 'delayed') as delayed
    from message_status
    where sent_at is not null
        and not is_digest
    group by 1

),

pruned_days as (

    select
        day,
        sum(sent) as sent,
        sum(delivered) as delivered,
        sum(delayed) as delayed,
        -- Rows prune wrote before it recorded Send events say nothing about them.
        sum(case when sent_with_send_event is not null then sent else 0 end) as known_sent,
        sum(coalesce(sent_with_send_event, 0)) as sent_with_send_event,
        -- At least this many pruned deliveries had no Send event (only whether any did matters).
        greatest(sum(delivered) - sum(coalesce(sent_with_send_event, sent)), 0) as delivered_without_send_event
    from pruned_sends_daily
    group by day

),

revived_days as (

    -- Pruned recipients message_status counts again: what raw.pruned_sends_daily added for them (by
    -- their send day and pruned status; the digest's own emails added nothing).
    select
        cast(pruned_recipients.sent_at as date) as day,
        count(*) as sent,
        count_if(pruned_recipients.final_status = 'delivered') as delivered,
        count_if(pruned_recipients.final_status = 'delayed') as delayed,
        count_if(pruned_recipients.has_send_event is not null) as known_sent,
        count_if(pruned_recipients.has_send_event) as sent_with_send_event
    from pruned_recipients
    inner join message_status
        on message_status.message_id = pruned_recipients.message_id
        and message_status.recipient = pruned_recipients.recipient
    where not pruned_recipients.is_digest
    group by 1

),

daily_parts as (

    -- By name: a part leaves out (null) what it does not count.
    select {{ daily_columns | join(', ') }} from tracked_days

    union all

    select
        {%- for column in daily_columns %}
        {{ column if column in pruned_columns else 'null as ' ~ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from pruned_days

    union all

    select
        {%- for column in daily_columns %}
        {{ ('-' ~ column ~ ' as ' ~ column if column != 'day' else column) if column in revived_columns else 'null as ' ~ column }}{{ ',' if not loop.last }}
        {%- endfor %}
    from revived_days

),

combined as (

    select
        day,
        coalesce(sum(sent), 0) as sent,
        coalesce(sum(delivered), 0) as delivered,
        coalesce(sum(hard_bounced), 0) as hard_bounced,
        coalesce(sum(soft_bounced), 0) as soft_bounced,
        coalesce(sum(complained), 0) as complained,
        coalesce(sum(rejected), 0) as rejected,
        coalesce(sum(rendering_failed), 0) as rendering_failed,
        coalesce(sum(delayed), 0) as delayed,
        coalesce(sum(rate_hard_bounced), 0) as rate_hard_bounced,
        coalesce(sum(known_sent), 0) as known_sent,
        coalesce(sum(sent_with_send_event), 0) as sent_with_send_event,
        coalesce(sum(delivered_without_send_event), 0) as delivered_without_send_event
    from daily_parts
    group by day

),

final as (

    select
        day,
        cast(sent as bigint) as sent,
        cast(delivered as bigint) as delivered,
        cast(hard_bounced as bigint) as hard_bounced,
        cast(soft_bounced as bigint) as soft_bounced,
        cast(complained as bigint) as complained,
        cast(rejected as bigint) as rejected,
        cast(rendering_failed as bigint) as rendering_failed,
        cast(delayed as bigint) as delayed,
        case when sent = 0 then 0.0 else rate_hard_bounced / sent end as bounce_rate,
        case when sent = 0 then 0.0 else complained / sent end as complaint_rate,
        cast(rate_hard_bounced as bigint) as rate_hard_bounced,
        sends_source,
        sends_source = 'send_events'
            or (sends_source in ('feedback_only', 'mixed') and delivered_without_send_event > 0) as sends_known
    from (
        select
            *,
            case
                -- Some sends are known only from prune's counts of before it recorded Send events.
                when known_sent < sent then 'pruned'
                when sent_with_send_event = sent then 'send_events'
                when sent_with_send_event = 0 then 'feedback_only'
                else 'mixed'
            end as sends_source
        from combined
    ) as combined

)

select * from final
