-- One row per bounced recipient of a Bounce event (eventType or notificationType).
with

source as (

    -- One row per recipient the event names (a select-list unnest keeps filters on loaded_at
    -- pushed down to the scan, which incremental models rely on).
    select *, {{ json_array_rows('payload', '$.bounce.bouncedRecipients') }} as bounced_recipient
    from {{ source('ses', 'ses_events') }}
    where event_type = 'Bounce'

),

renamed as (

    select

        ---------- ids
        event_id,
        message_id,
        {{ normalize_email(json_text('bounced_recipient', '$.emailAddress')) }} as recipient,
        {{ json_text('payload', '$.bounce.feedbackId') }} as feedback_id,

        ---------- properties
        {{ json_text('payload', '$.bounce.bounceType') }} as bounce_type,
        {{ json_text('payload', '$.bounce.bounceSubType') }} as bounce_sub_type,
        {{ json_text('bounced_recipient', '$.diagnosticCode') }} as diagnostic_code,
        {{ json_text('bounced_recipient', '$.action') }} as bounce_action,
        {{ json_text('bounced_recipient', '$.status') }} as bounce_status,
        -- The enhanced status code (RFC 3463, e.g. 5.1.1): SES's status field, else read from the
        -- diagnostic ("smtp; 550 5.1.1 user unknown"); a whole token only (not "2.0.2" of 192.0.2.1).
        coalesce(
            nullif(regexp_extract({{ json_text('bounced_recipient', '$.status') }}, '(?:^|[^0-9.])([245]\.\d{1,3}\.\d{1,3})(?:[^0-9.]|$)', 1), ''),
            nullif(regexp_extract({{ json_text('bounced_recipient', '$.diagnosticCode') }}, '(?:^|[^0-9.])([245]\.\d{1,3}\.\d{1,3})(?:[^0-9.]|$)', 1), '')
        ) as smtp_status,
        {{ json_text('payload', '$.bounce.reportingMTA') }} as reporting_mta,

        ---------- timestamps
        coalesce(event_at, {{ ses_timestamp(json_text('payload', '$.bounce.timestamp')) }}) as bounced_at,
        loaded_at

    from source

)

select * from renamed
