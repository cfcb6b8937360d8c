{{
    config(
        materialized=incremental_or_table(),
        incremental_strategy='delete+insert',
        unique_key='event_id'
    )
}}
-- One row per Rendering Failure event: the template could not be rendered (applies to every recipient).
-- A table added to incrementally (loaded_at watermark), not a view: message_status reads the rows of the
-- messages it recomputes, and a view made every run read every payload of raw.ses_events to find them.
with

source as (

    select * from {{ source('ses', 'ses_events') }}
    where event_type in ('Rendering Failure', 'RenderingFailure')
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
        {{ json_text('payload', '$.failure.templateName') }} as template_name,
        {{ json_text('payload', '$.failure.errorMessage') }} as error_message,

        ---------- timestamps
        coalesce(event_at, {{ ses_timestamp(json_text('payload', '$.mail.timestamp')) }}) as failed_at,
        loaded_at

    from source

)

select * from renamed
