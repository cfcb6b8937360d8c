-- One row per Open event (SES does not say which recipient opened: it applies to the message).
with

source as (

    select * from {{ source('ses', 'ses_events') }}
    where event_type = 'Open'

),

renamed as (

    select

        ---------- ids
        event_id,
        message_id,

        ---------- properties
        payload ->> '$.open.ipAddress' as ip_address,
        payload ->> '$.open.userAgent' as user_agent,

        ---------- timestamps
        coalesce(event_at, {{ ses_timestamp("payload ->> '$.open.timestamp'") }}) as opened_at,
        loaded_at

    from source

)

select * from renamed
