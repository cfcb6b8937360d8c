-- One row per delivered recipient of a Delivery event (eventType or notificationType).
with

source as (

    -- One row per recipient the event names (a select-list unnest keeps filters on loaded_at
    -- pushed down to the scan, which incremental models rely on).
    select *, {{ json_array_rows('payload', '$.delivery.recipients', as_text=true) }} as delivered_recipient
    from {{ source('ses', 'ses_events') }}
    where event_type = 'Delivery'

),

renamed as (

    select

        ---------- ids
        event_id,
        message_id,
        {{ normalize_email('delivered_recipient') }} as recipient,

        ---------- properties
        {{ json_text('payload', '$.delivery.smtpResponse') }} as smtp_response,
        {{ json_text('payload', '$.delivery.reportingMTA') }} as reporting_mta,
        try_cast({{ json_text('payload', '$.delivery.processingTimeMillis') }} as bigint) as processing_time_ms,

        ---------- timestamps
        coalesce(event_at, {{ ses_timestamp(json_text('payload', '$.delivery.timestamp')) }}) as delivered_at,
        loaded_at

    from source

)

select * from renamed
