-- One row per complained recipient of a Complaint event (eventType or notificationType).
with

source as (

    -- One row per recipient the event names (a select-list unnest keeps filters on loaded_at
    -- pushed down to the scan, which incremental models rely on).
    select *, {{ json_array_rows('payload', '$.complaint.complainedRecipients') }} as complained_recipient
    from {{ source('ses', 'ses_events') }}
    where event_type = 'Complaint'

),

renamed as (

    select

        ---------- ids
        event_id,
        message_id,
        {{ normalize_email(json_text('complained_recipient', '$.emailAddress')) }} as recipient,
        {{ json_text('payload', '$.complaint.feedbackId') }} as feedback_id,

        ---------- properties
        {{ json_text('payload', '$.complaint.complaintFeedbackType') }} as complaint_feedback_type,
        {{ json_text('payload', '$.complaint.complaintSubType') }} as complaint_sub_type,
        {{ json_text('payload', '$.complaint.userAgent') }} as user_agent,

        ---------- timestamps
        coalesce(event_at, {{ ses_timestamp(json_text('payload', '$.complaint.timestamp')) }}) as complained_at,
        loaded_at

    from source

)

select * from renamed
