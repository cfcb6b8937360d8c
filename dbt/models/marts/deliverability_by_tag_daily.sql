-- Per UTC send day and SES tag value (long format: tag, value): how the recipients of messages carrying
-- that value ended up. A recipient counts once under every value of every tag of its message.

with

message_status as (

    select * from {{ ref('message_status') }}

),

tag_maps as (

    -- Each distinct tags value cast to a map once: a few dozen casts instead of one per recipient row,
    -- which was most of this model's time.
    select tags, try_cast(tags as map(varchar, varchar[])) as tag_map
    from (select distinct tags from message_status where tags is not null)

),

tagged_recipients as (

    -- tags is JSON, tag name -> list of values (SES mail.tags); identity notifications carry none, and
    -- a value that is not such a map yields no rows rather than failing the build.
    select
        message_id,
        recipient,
        cast(sent_at as date) as day,
        final_status,
        bounce_sub_type,
        hard_by_smtp_status,
        unnest(map_entries(tag_maps.tag_map)) as tag_entry
    from message_status
    inner join tag_maps on tag_maps.tags = message_status.tags
    where sent_at is not null
        and not is_digest

),

recipient_tag_values as (

    -- One row per recipient and tag value (a value listed twice still counts once: list_distinct, as
    -- (message_id, recipient) is unique in message_status and a map's keys are unique).
    select
        message_id,
        recipient,
        day,
        tag_entry.key as tag,
        unnest(list_distinct(tag_entry.value)) as value,
        final_status,
        bounce_sub_type,
        hard_by_smtp_status
    from tagged_recipients

),

tag_days as (

    select
        day,
        tag,
        value,
        {{ recipient_status_counts() }}
    from recipient_tag_values
    where value is not null
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
