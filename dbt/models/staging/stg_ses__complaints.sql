-- One row per complained recipient of a Complaint event (eventType or notificationType).
with

source as (

    select * from {{ source('ses', 'ses_events') }}
    where event_type = 'Complaint'

),

renamed as (

    select

        ---------- ids
        source.event_id,
        source.message_id,
        {{ normalize_email("complained.recipient ->> 'emailAddress'") }} as recipient,
        payload ->> '$.complaint.feedbackId' as feedback_id,

        ---------- properties
        payload ->> '$.complaint.complaintFeedbackType' as complaint_feedback_type,
        payload ->> '$.complaint.complaintSubType' as complaint_sub_type,
        payload ->> '$.complaint.userAgent' as user_agent,

        ---------- timestamps
        coalesce(event_at, {{ ses_timestamp("payload ->> '$.complaint.timestamp'") }}) as complained_at,
        loaded_at

    from source,
        unnest(payload -> '$.complaint.complainedRecipients[*]') as complained(recipient)

)

select * from renamed
