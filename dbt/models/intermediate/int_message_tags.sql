-- One row per recipient of message_status and value of its SES tags (mail.tags: tag name -> list of
-- values), so a recipient counts once under every value of every tag (a value listed twice still once).
-- The daily marts by tag (deliverability_by_tag_daily, engagement_daily) read it. Identity
-- notifications carry no tags, and a value that is not such a map yields no rows rather than failing.

with

message_status as (

    select * from {{ ref('message_status') }}

),

tag_entries as (

    select
        message_id,
        recipient,
        {{ map_entry_rows(json_string_list_map('tags'), 'tag', 'tag_values') }}
    from message_status
    where tags is not null

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
