-- Per UTC send day and SES tag value: of the recipients delivered to, how many belong to opened and to
-- clicked messages. SES reports opens and clicks per message, not per recipient (message_status.opened).

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

    -- As in deliverability_by_tag_daily: tags is JSON, tag name -> list of values.
    select
        message_id,
        recipient,
        cast(sent_at as date) as day,
        delivered,
        opened,
        clicked,
        unnest(map_entries(tag_maps.tag_map)) as tag_entry
    from message_status
    inner join tag_maps on tag_maps.tags = message_status.tags
    where sent_at is not null
        and not is_digest

),

recipient_tag_values as (

    -- One row per recipient and tag value (list_distinct: a value listed twice counts once).
    select
        message_id,
        recipient,
        day,
        tag_entry.key as tag,
        unnest(list_distinct(tag_entry.value)) as value,
        delivered,
        opened,
        clicked
    from tagged_recipients

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
    where value is not null
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
