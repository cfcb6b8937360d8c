-- One row per delivered recipient of a Delivery event (eventType or notificationType).
with

source as (

    select * from {{ source('ses', 'ses_events') }}
    where event_type = 'Delivery'

),

renamed as (

    select

        ---------- ids
        source.event_id,
        source.message_id,
        {{ normalize_email('delivered.recipient') }} as recipient,

        ---------- properties
        payload ->> '$.delivery.smtpResponse' as smtp_response,
        payload ->> '$.delivery.reportingMTA' as reporting_mta,
        try_cast(payload ->> '$.delivery.processingTimeMillis' as bigint) as processing_time_ms,

        ---------- timestamps
        coalesce(event_at, {{ ses_timestamp("payload ->> '$.delivery.timestamp'") }}) as delivered_at,
        loaded_at

    from source,
        unnest(payload ->> '$.delivery.recipients[*]') as delivered(recipient)

)

select * from renamed
