-- One row per SES event: the `mail` object every event carries (who it went to, when, tags).
with

source as (

    select * from {{ source('ses', 'ses_events') }}

),

renamed as (

    select

        ---------- ids
        event_id,
        coalesce(message_id, {{ json_text('payload', '$.mail.messageId') }}) as message_id,
        coalesce(event_type, {{ json_text('payload', '$.eventType') }}, {{ json_text('payload', '$.notificationType') }}) as event_type,

        ---------- mail
        {{ json_text('payload', '$.mail.source') }} as source_address,
        {{ json_text('payload', '$.mail.commonHeaders.subject') }} as subject,
        {{ json_value('payload', '$.mail.tags') }} as tags,
        {{ normalized_email_list(
            "coalesce(" ~ json_string_list('payload', '$.mail.destination') ~ ", " ~ string_list([]) ~ ")"
        ) }} as destination,

        ---------- booleans
        {{ is_digest_mail('payload') }} as is_digest,

        ---------- timestamps
        {{ ses_timestamp(json_text('payload', '$.mail.timestamp')) }} as sent_at,
        event_at,
        loaded_at

    from source

)

select * from renamed
