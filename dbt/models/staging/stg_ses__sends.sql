-- One row per Send event: SES accepted the message for sending.
with

source as (

    select * from {{ source('ses', 'ses_events') }}
    where event_type = 'Send'

),

renamed as (

    select

        ---------- ids
        event_id,
        message_id,

        ---------- timestamps
        coalesce(event_at, {{ ses_timestamp("payload ->> '$.mail.timestamp'") }}) as sent_at,
        loaded_at

    from source

)

select * from renamed
