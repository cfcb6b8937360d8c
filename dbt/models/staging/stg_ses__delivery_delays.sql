-- One row per delayed recipient of a DeliveryDelay event.
with

source as (

    select * from {{ source('ses', 'ses_events') }}
    where event_type = 'DeliveryDelay'

),

renamed as (

    select

        ---------- ids
        source.event_id,
        source.message_id,
        {{ normalize_email("delayed.recipient ->> 'emailAddress'") }} as recipient,

        ---------- properties
        payload ->> '$.deliveryDelay.delayType' as delay_type,
        delayed.recipient ->> 'status' as delay_status,
        delayed.recipient ->> 'diagnosticCode' as diagnostic_code,

        ---------- timestamps
        coalesce(event_at, {{ ses_timestamp("payload ->> '$.deliveryDelay.timestamp'") }}) as delayed_at,
        {{ ses_timestamp("payload ->> '$.deliveryDelay.expirationTime'") }} as expires_at,
        loaded_at

    from source,
        unnest(payload -> '$.deliveryDelay.delayedRecipients[*]') as delayed(recipient)

)

select * from renamed
