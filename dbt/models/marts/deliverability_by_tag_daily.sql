-- Per UTC send day and SES tag value (long format: tag, value): how the recipients of messages carrying
-- that value ended up. A recipient counts once under every value of every tag of its message.

with

message_status as (

    select * from {{ ref('message_status') }}

),

message_tags as (

    select * from {{ ref('int_message_tags') }}

),

recipient_tag_values as (

    -- One row per recipient and tag value (int_message_tags: a value listed twice still counts once).
    select
        message_tags.tag,
        message_tags.value,
        cast(message_status.sent_at as date) as day,
        message_status.final_status,
        message_status.bounce_sub_type,
        message_status.hard_by_smtp_status
    from message_tags
    inner join message_status
        on message_status.message_id = message_tags.message_id
        and message_status.recipient = message_tags.recipient
    where message_status.sent_at is not null
        and not message_status.is_digest

),

tag_days as (

    select
        day,
        tag,
        value,
        {{ recipient_status_counts() }}
    from recipient_tag_values
    group by day, tag, value

),

final as (

    select
        day,
        tag,
        value,
        sent,
        delivered,
        hard_bounced,
        soft_bounced,
        complained,
        rate_hard_bounced / sent as bounce_rate,
        complained / sent as complaint_rate
    from tag_days

)

select * from final
