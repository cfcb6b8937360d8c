-- One row per Reject event: SES refused the whole message (it applies to every recipient).
with

source as (

    select * from {{ source('ses', 'ses_events') }}
    where event_type = 'Reject'

),

renamed as (

    select

        ---------- ids
        event_id,
        message_id,

        ---------- properties
        {{ json_text('payload', '$.reject.reason') }} as reject_reason,

        ---------- timestamps
        coalesce(event_at, {{ ses_timestamp(json_text('payload', '$.mail.timestamp')) }}) as rejected_at,
        loaded_at

    from source

)

select * from renamed
