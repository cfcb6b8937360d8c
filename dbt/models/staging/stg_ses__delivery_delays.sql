-- One row per delayed recipient of a DeliveryDelay event.
with

source as (

    -- One row per recipient the event names (a select-list unnest keeps filters on loaded_at
    -- pushed down to the scan, which incremental models rely on).
    select *, {{ json_array_rows('payload', '$.deliveryDelay.delayedRecipients') }} as delayed_recipient
    from {{ source('ses', 'ses_events') }}
    where event_type = 'DeliveryDelay'

),

renamed as (

    select

        ---------- ids
        event_id,
        message_id,
        {{ normalize_email(json_text('delayed_recipient', '$.emailAddress')) }} as recipient,

        ---------- properties
        {{ json_text('payload', '$.deliveryDelay.delayType') }} as delay_type,
        {{ json_text('delayed_recipient', '$.status') }} as delay_status,
        {{ json_text('delayed_recipient', '$.diagnosticCode') }} as diagnostic_code,

        ---------- timestamps
        coalesce(event_at, {{ ses_timestamp(json_text('payload', '$.deliveryDelay.timestamp')) }}) as delayed_at,
        {{ ses_timestamp(json_text('payload', '$.deliveryDelay.expirationTime')) }} as expires_at,
        loaded_at

    from source

)

select * from renamed
