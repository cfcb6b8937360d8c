{{ config(materialized='view') }}
-- Each recipient event classified by what it means for the recipient, with the contract's rules:
-- a not-spam complaint is not a complaint; a Transient/General bounce for a recipient the same message
-- was also delivered to is an out-of-office auto-reply (never a soft bounce); Permanent bounces are
-- hard, every other bounce type soft. status_rank orders final_status (highest wins).
-- The events are the loaded ones plus the stand-ins of a revived pruned message's recipients (docs:
-- revived_pruned_message), so these rules see it as if it had never been pruned.

with

loaded_events as (

    select * from {{ ref('int_recipient_events_unioned') }}

),

restored_events as (

    select * from {{ ref('int_recipient_events_restored') }}

),

recipient_events as (

    select * from loaded_events
    union all by name
    select * from restored_events

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
                    when bounce_type = 'Permanent' then 'hard_bounce'
                    when bounce_type = 'Transient' and bounce_sub_type = 'General' and recipient_delivered
                        then 'auto_reply'
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
        end as status_rank
    from classified

)

select * from ranked
