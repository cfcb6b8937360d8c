{{
    config(
        materialized=incremental_or_table(),
        incremental_strategy='delete+insert',
        unique_key='event_id'
    )
}}
-- One row per Reject event: SES refused the whole message (it applies to every recipient).
-- A table added to incrementally (loaded_at watermark), not a view: message_status reads the rows of the
-- messages it recomputes, and a view made every run read every payload of raw.ses_events to find them.
with

source as (

    select * from {{ source('ses', 'ses_events') }}
    where event_type = 'Reject'
    {% if is_incremental() %}
        and loaded_at >= (select coalesce(max(loaded_at), cast('1900-01-01' as timestamp)) from {{ this }})
    {% endif %}

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
