-- One row per recipient of message_status and value of its SES tags (mail.tags: tag name -> list of
-- values), so a recipient counts once under every value of every tag (a value listed twice still once).
-- The daily marts by tag (deliverability_by_tag_daily, engagement_daily) read it. Identity
-- notifications carry no tags, and a value that is not such a map yields no rows rather than failing.

with

message_status as (

    select * from {{ ref('message_status') }}

),

tag_maps as (

    -- Each distinct tags value read as a map once: a few dozen conversions instead of one per recipient
    -- row, which was most of the tag marts' time.
    select tags, {{ json_string_list_map('tags') }} as tag_map
    from (select distinct tags from message_status where tags is not null) as distinct_tags

),

tag_entries as (

    select
        message_status.message_id,
        message_status.recipient,
        {{ map_entry_rows('tag_maps.tag_map', 'tag', 'tag_values') }}
    from message_status
    inner join tag_maps on tag_maps.tags = message_status.tags

),

tag_values as (

    select message_id, recipient, tag, {{ list_rows('tag_values') }} as value
    from tag_entries

),

final as (

    select distinct message_id, recipient, tag, value
    from tag_values
    where value is not null

)

select * from final
