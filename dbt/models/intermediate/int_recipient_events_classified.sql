{{
    config(
        materialized=incremental_or_table(),
        incremental_strategy='delete+insert',
        unique_key='message_key',
        on_schema_change='append_new_columns'
    )
}}
-- Each recipient event classified by what it means for the recipient, with the contract's rules:
-- a not-spam complaint is not a complaint; a Transient/General bounce for a recipient the same message
-- was also delivered to is an out-of-office auto-reply (never a soft bounce); Permanent bounces are
-- hard, every other bounce type soft (types and sub-types compare case-insensitively; the raw value is
-- kept). With the var transient_mailbox_missing_is_hard, a Transient bounce whose enhanced status code is
-- 5.1.x (the mailbox does not exist) is hard too, flagged hard_by_smtp_status. status_rank orders
-- final_status (highest wins).
-- One real event counts once (docs: one_count_per_real_event): SES may report the same feedback through
-- event publishing and identity notifications, two raw events with different ids; only one row per
-- count_key is kept, so every status, count, rule and rate downstream sees it once.
-- The events are the loaded ones plus the stand-ins of a revived pruned message's recipients (docs:
-- revived_pruned_message), so these rules see it as if it had never been pruned.
-- Incremental (delete+insert by message_key): every rule above looks only at one message's events (the
-- message id is in count_key), so a run reclassifies, from all their events, only the messages with events
-- loaded since the last run, plus the few events naming no message (message_key ''). A table built under
-- the other value of transient_mailbox_missing_is_hard is reclassified whole.

{%- set recipient_event_columns = [
    'event_id', 'message_id', 'event_type', 'recipient', 'bounce_type', 'bounce_sub_type', 'diagnostic_code',
    'complaint_feedback_type', 'destination', 'feedback_id', 'smtp_status', 'complaint_sub_type',
    'source_address', 'subject', 'tags', 'is_digest', 'sent_at', 'event_at', 'loaded_at'
] %}
{%- set ranked_columns = recipient_event_columns + [
    'applies_to_message', 'recipient_delivered', 'event_class', 'implied_status', 'status_rank',
    'hard_by_smtp_status', 'count_key'
] %}
{%- set transient_mailbox_missing_is_hard = var('transient_mailbox_missing_is_hard', false) | string | lower in ['true', '1', 'yes'] %}
{%- set only_touched = is_incremental() and not classified_under_other_rules(transient_mailbox_missing_is_hard) %}

with

{% if only_touched %}
touched_messages as (

    select distinct message_id
    from {{ ref('int_recipient_events_unioned') }}
    where loaded_at >= (select coalesce(max(loaded_at), cast('1900-01-01' as timestamp)) from {{ this }})

),
{% endif %}

loaded_events as (

    select * from {{ ref('int_recipient_events_unioned') }}
    {% if only_touched %}
    where message_id in (select message_id from touched_messages) or message_id is null
    {% endif %}

),

restored_events as (

    select * from {{ ref('int_recipient_events_restored') }}
    {% if only_touched %}
    where message_id in (select message_id from touched_messages) or message_id is null
    {% endif %}

),

recipient_events as (

    -- By name (the incremental table appended its later columns at the end).
    select {{ recipient_event_columns | join(', ') }} from loaded_events
    union all
    select {{ recipient_event_columns | join(', ') }} from restored_events

),

with_delivery_flag as (

    select
        *,
        -- Reject, Rendering Failure, Send, Open, Click, ... are about the whole message.
        event_type in (
            'Send', 'Reject', 'Rendering Failure', 'RenderingFailure', 'Open', 'Click', 'Subscription'
        ) as applies_to_message,
        recipient is not null
            and bool_or(event_type = 'Delivery') over (partition by message_id, recipient) as recipient_delivered
    from recipient_events

),

classified as (

    select
        *,
        case
            when event_type = 'Complaint' and recipient is not null
                then case
                    when lower(trim(coalesce(complaint_feedback_type, ''))) = 'not-spam' then 'not_spam_complaint'
                    else 'complaint'
                end
            when event_type = 'Bounce' and recipient is not null
                then case
                    when lower(trim(bounce_type)) = 'permanent' then 'hard_bounce'
                    when lower(trim(bounce_type)) = 'transient' and lower(trim(bounce_sub_type)) = 'general'
                        and recipient_delivered
                        then 'auto_reply'
                    {%- if transient_mailbox_missing_is_hard %}
                    when lower(trim(bounce_type)) = 'transient' and smtp_status like '5.1.%' then 'hard_bounce'
                    {%- endif %}
                    else 'soft_bounce'
                end
            when event_type = 'Delivery' and recipient is not null then 'delivery'
            when event_type = 'DeliveryDelay' and recipient is not null then 'delay'
            when event_type = 'Reject' then 'reject'
            when event_type in ('Rendering Failure', 'RenderingFailure') then 'rendering_failure'
            when event_type = 'Send' then 'send'
            when event_type = 'Open' then 'open'
            when event_type = 'Click' then 'click'
            else 'other'
        end as event_class
    from with_delivery_flag

),

ranked as (

    select
        *,
        case event_class
            when 'complaint' then 'complained'
            when 'hard_bounce' then 'hard_bounced'
            when 'reject' then 'rejected'
            when 'rendering_failure' then 'rendering_failed'
            when 'soft_bounce' then 'soft_bounced'
            when 'delivery' then 'delivered'
            when 'delay' then 'delayed'
            when 'send' then 'sent'
        end as implied_status,
        case event_class
            when 'complaint' then 8
            when 'hard_bounce' then 7
            when 'reject' then 6
            when 'rendering_failure' then 5
            when 'soft_bounce' then 4
            when 'delivery' then 3
            when 'delay' then 2
            when 'send' then 1
        end as status_rank,
        -- Hard only by the var transient_mailbox_missing_is_hard (SES itself called it Transient).
        event_class = 'hard_bounce' and lower(trim(coalesce(bounce_type, ''))) <> 'permanent' as hard_by_smtp_status,
        -- The message id is in a feedback's key too: one real feedback is about one message, so it never
        -- merges two messages' events that happen to share a feedbackId (reused samples, test data).
        case
            when event_type in ('Bounce', 'Complaint') and recipient is not null and feedback_id is not null
                then lower(event_type) || ':' || feedback_id || ':' || coalesce(message_id, '') || ':' || recipient
            when event_class = 'delivery' and message_id is not null and event_at is not null
                then 'delivery:' || message_id || ':' || recipient || ':' || {{ timestamp_text('event_at') }}
            else 'event:' || event_id || ':' || coalesce(recipient, '')
        end as count_key
    from classified

),

copies as (

    -- One row per count_key: the copy with tags (event publishing carries them, identity notifications
    -- do not), then the smallest event_id, so the choice depends only on the set of events; it takes
    -- the latest loaded_at and any digest flag of its copies.
    select
        *,
        max(loaded_at) over same_key as copies_loaded_at,
        bool_or(is_digest) over same_key as copies_is_digest,
        row_number() over (partition by count_key order by tags is null, event_id) as copy_number
    from ranked
    window same_key as (partition by count_key)

),

counted_once as (

    select
        {%- for column in ranked_columns %}
        {{ {'loaded_at': 'copies_loaded_at as loaded_at', 'is_digest': 'copies_is_digest as is_digest'}.get(column, column) }}{{ ',' if not loop.last }}
        {%- endfor %}
    from copies
    where copy_number = 1

)

select *, coalesce(message_id, '') as message_key from counted_once
