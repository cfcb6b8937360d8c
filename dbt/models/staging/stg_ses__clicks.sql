-- One row per Click event (SES does not say which recipient clicked: it applies to the message).
with

source as (

    select * from {{ source('ses', 'ses_events') }}
    where event_type = 'Click'

),

renamed as (

    select

        ---------- ids
        event_id,
        message_id,

        ---------- properties
        payload ->> '$.click.link' as link,
        payload -> '$.click.linkTags' as link_tags,
        payload ->> '$.click.ipAddress' as ip_address,
        payload ->> '$.click.userAgent' as user_agent,

        ---------- timestamps
        coalesce(event_at, {{ ses_timestamp("payload ->> '$.click.timestamp'") }}) as clicked_at,
        loaded_at

    from source

)

select * from renamed
