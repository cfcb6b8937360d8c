-- One row per bounced recipient of a Bounce event (eventType or notificationType).
with

source as (

    select * from {{ source('ses', 'ses_events') }}
    where event_type = 'Bounce'

),

renamed as (

    select

        ---------- ids
        source.event_id,
        source.message_id,
        {{ normalize_email("bounced.recipient ->> 'emailAddress'") }} as recipient,
        payload ->> '$.bounce.feedbackId' as feedback_id,

        ---------- properties
        payload ->> '$.bounce.bounceType' as bounce_type,
        payload ->> '$.bounce.bounceSubType' as bounce_sub_type,
        bounced.recipient ->> 'diagnosticCode' as diagnostic_code,
        bounced.recipient ->> 'action' as bounce_action,
        bounced.recipient ->> 'status' as bounce_status,
        payload ->> '$.bounce.reportingMTA' as reporting_mta,

        ---------- timestamps
        coalesce(event_at, {{ ses_timestamp("payload ->> '$.bounce.timestamp'") }}) as bounced_at,
        loaded_at

    from source,
        unnest(payload -> '$.bounce.bouncedRecipients[*]') as bounced(recipient)

)

select * from renamed
