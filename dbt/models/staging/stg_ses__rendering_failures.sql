-- One row per Rendering Failure event: the template could not be rendered (applies to every recipient).
with

source as (

    select * from {{ source('ses', 'ses_events') }}
    where event_type in ('Rendering Failure', 'RenderingFailure')

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
