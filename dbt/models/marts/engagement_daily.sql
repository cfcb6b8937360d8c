-- Per UTC send day and SES tag value: of the recipients delivered to, how many belong to opened and to
-- clicked messages. SES reports opens and clicks per message, not per recipient (message_status.opened).

with

message_status as (

    select * from {{ ref('message_status') }}

),

message_tags as (

    select * from {{ ref('int_message_tags') }}

),

recipient_tag_values as (

    -- One row per recipient and tag value, as in deliverability_by_tag_daily (int_message_tags).
    select
        message_tags.tag,
        message_tags.value,
        cast(message_status.sent_at as date) as day,
        message_status.delivered,
        message_status.opened,
        message_status.clicked
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
        count_if(delivered) as delivered,
        count_if(delivered and opened) as opened,
        count_if(delivered and clicked) as clicked
    from recipient_tag_values
    group by day, tag, value

),

final as (

    select
        day,
        tag,
        value,
        delivered,
        opened,
        clicked,
        -- Null when nothing was delivered: no rate to speak of.
        opened / nullif(delivered, 0) as open_rate,
        clicked / nullif(delivered, 0) as click_rate
    from tag_days

)

select * from final
