-- One row per bounced recipient of a Bounce event (eventType or notificationType).
with

source as (

    -- One row per recipient the event names (a select-list unnest keeps filters on loaded_at
    -- pushed down to the scan, which incremental models rely on).
    select *, unnest(payload -> '$.bounce.bouncedRecipients[*]') as bounced_recipient
    from {{ source('ses', 'ses_events') }}
    where event_type = 'Bounce'

),

renamed as (

    select

        ---------- ids
        event_id,
        message_id,
        {{ normalize_email("bounced_recipient ->> 'emailAddress'") }} as recipient,
        payload ->> '$.bounce.feedbackId' as feedback_id,

        ---------- properties
        payload ->> '$.bounce.bounceType' as bounce_type,
        payload ->> '$.bounce.bounceSubType' as bounce_sub_type,
        bounced_recipient ->> 'diagnosticCode' as diagnostic_code,
        bounced_recipient ->> 'action' as bounce_action,
        bounced_recipient ->> 'status' as bounce_status,
        payload ->> '$.bounce.reportingMTA' as reporting_mta,

        ---------- timestamps
        coalesce(event_at, {{ ses_timestamp("payload ->> '$.bounce.timestamp'") }}) as bounced_at,
        loaded_at

    from source

)

select * from renamed
