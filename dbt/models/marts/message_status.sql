-- depends_on: {{ ref('int_recipient_events_unioned') }}
{{
    config(
        materialized=incremental_or_table(),
        incremental_strategy='delete+insert',
        unique_key='message_id',
        on_schema_change='append_new_columns'
    )
}}
-- One row per (message_id, recipient): the recipient's final status, decided only by the set of the
-- message's events (never their order). Incremental: a run recomputes, from all their events, only
-- the messages that have events loaded since the last build (delete+insert by message_id).
-- The digest's own emails are kept, flagged is_digest; deliverability_daily leaves them out.
-- Every recipient has a row (docs: message_recipients), even one no event names: identity notifications
-- name only the bounced address, and the message's other recipients are then `sent`.

{#- Columns added since the table was built: every row is recomputed once to fill them. -#}
{%- set missing_columns = columns_missing_from_this(['is_digest', 'smtp_status', 'hard_by_smtp_status', 'has_send_event', 'reject_reason', 'rendering_error']) %}
{%- set only_touched = is_incremental() and not missing_columns %}

with

recipient_events as (

    select * from {{ ref('int_recipient_events_classified') }}

),

{% if only_touched %}
touched_messages as (

    select distinct message_id
    from {{ ref('int_recipient_events_unioned') }}
    where loaded_at >= (select coalesce(max(last_loaded_at), cast('1900-01-01' as timestamp)) from {{ this }})

),
{% endif %}

message_events as (

    select * from recipient_events
    where message_id is not null
    {% if only_touched %}
        and message_id in (select message_id from touched_messages)
    {% endif %}

),

message_flags as (

    -- Decided from all of the message's events. The digest's own emails (tag bouncehouse_message=digest):
    -- identity notifications carry no tags, so one tagged event marks the whole message. has_send_event:
    -- SES reported the send itself (event publishing with Send events), not only feedback about it.
    -- The rest stands in for a recipient no event bears on.
    select
        message_id,
        bool_or(is_digest) as is_digest,
        -- A Send stand-in of a pruned `sent` recipient is no evidence; PrunedSendEvent is (restored).
        coalesce(bool_or(
            (event_type = 'Send' and event_id not like 'pruned:%') or event_type = 'PrunedSendEvent'
        ), false) as has_send_event,
        min(sent_at) as message_sent_at,
        {{ first_by('tags', ['tags is null', 'event_at', 'event_id']) }} as message_tags,
        {{ first_by('source_address', ['source_address is null', 'event_at', 'event_id']) }} as message_source_address,
        {{ first_by('subject', ['subject is null', 'event_at', 'event_id']) }} as message_subject
    from message_events
    group by message_id

),

message_rejects as (

    -- Why SES refused the message (Reject and Rendering Failure apply to every recipient).
    select message_id, {{ first_by('reject_reason', ['rejected_at', 'event_id']) }} as reject_reason
    from {{ ref('stg_ses__rejects') }}
    where message_id in (select message_id from message_flags)
    group by message_id

),

message_rendering_failures as (

    select
        message_id,
        {{ first_by(
            "nullif(coalesce(template_name || ': ', '') || coalesce(error_message, ''), '')",
            ['failed_at', 'event_id']
        ) }} as rendering_error
    from {{ ref('stg_ses__rendering_failures') }}
    where message_id in (select message_id from message_flags)
    group by message_id

),

message_recipients as (

    -- Recipients: every address in mail.destination of any event, plus any address an event names;
    -- with the latest of the events that list or name it (for a recipient no event bears on).
    select message_id, recipient, max(event_at) as mentioned_at, max(loaded_at) as mentioned_loaded_at
    from (
        select message_id, {{ list_rows('destination') }} as recipient, event_at, loaded_at from message_events
        union all
        select message_id, recipient, event_at, loaded_at from message_events where recipient is not null
    )
    group by message_id, recipient

),

recipient_events_applied as (

    -- The events that bear on each recipient: the ones naming it, and the ones about the whole message.
    -- A left join: a recipient no event bears on (only listed in mail.destination) keeps one row of nulls.
    select
        message_recipients.message_id as status_message_id,
        message_recipients.recipient as status_recipient,
        message_recipients.mentioned_at,
        message_recipients.mentioned_loaded_at,
        message_events.*,
        max(message_events.status_rank) over (
            partition by message_recipients.message_id, message_recipients.recipient
        ) as winning_rank
    from message_recipients
    left join message_events
        on message_events.message_id = message_recipients.message_id
        and (
            message_events.recipient = message_recipients.recipient
            or message_events.applies_to_message
        )

),

recipient_statuses as (

    select
        status_message_id as message_id,
        status_recipient as recipient,
        coalesce(max(implied_status) filter (where status_rank = winning_rank), 'sent') as final_status,
        coalesce(
            min(event_at) filter (where status_rank = winning_rank),
            min(sent_at)
        ) as status_at,
        min(sent_at) as sent_at,
        -- The bounce that explains the status: hard before soft before auto-reply, then the earliest.
        {{ first_by(
            struct_of(['bounce_type', 'bounce_sub_type', 'diagnostic_code', 'smtp_status', 'hard_by_smtp_status']),
            ['status_rank desc nulls last', 'event_at', 'event_id']
        ) }} filter (where event_type = 'Bounce' and recipient = status_recipient) as bounce,
        {{ first_by('complaint_feedback_type', ['event_at', 'event_id']) }}
            filter (where event_class = 'complaint') as complaint_feedback_type,
        coalesce(bool_or(event_class = 'auto_reply'), false) as is_auto_reply,
        coalesce(bool_or(event_class = 'open'), false) as opened,
        coalesce(bool_or(event_class = 'click'), false) as clicked,
        coalesce(bool_or(event_class = 'delivery'), false) as delivered,
        {{ first_by('tags', ['tags is null', 'event_at', 'event_id']) }} as tags,
        {{ first_by('source_address', ['source_address is null', 'event_at', 'event_id']) }} as source_address,
        {{ first_by('subject', ['subject is null', 'event_at', 'event_id']) }} as subject,
        coalesce(max(event_at), max(mentioned_at)) as last_event_at,
        coalesce(max(loaded_at), max(mentioned_loaded_at)) as last_loaded_at
    from recipient_events_applied
    group by status_message_id, status_recipient

),

final as (

    select
        message_id,
        recipient,
        final_status,
        coalesce(status_at, message_flags.message_sent_at) as status_at,
        coalesce(sent_at, message_flags.message_sent_at) as sent_at,
        bounce.bounce_type as bounce_type,
        bounce.bounce_sub_type as bounce_sub_type,
        bounce.diagnostic_code as diagnostic_code,
        complaint_feedback_type,
        is_auto_reply,
        opened,
        clicked,
        delivered,
        coalesce(tags, message_flags.message_tags) as tags,
        message_flags.is_digest,
        coalesce(source_address, message_flags.message_source_address) as source_address,
        coalesce(subject, message_flags.message_subject) as subject,
        last_event_at,
        last_loaded_at,
        bounce.smtp_status as smtp_status,
        coalesce(bounce.hard_by_smtp_status, false) as hard_by_smtp_status,
        message_flags.has_send_event,
        message_rejects.reject_reason,
        message_rendering_failures.rendering_error
    from recipient_statuses
    inner join message_flags using (message_id)
    left join message_rejects using (message_id)
    left join message_rendering_failures using (message_id)

)

select * from final
