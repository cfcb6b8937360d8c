-- One row per SES event: the `mail` object every event carries (who it went to, when, tags).
with

source as (

    select * from {{ source('ses', 'ses_events') }}

),

renamed as (

    select

        ---------- ids
        event_id,
        coalesce(message_id, payload ->> '$.mail.messageId') as message_id,
        coalesce(event_type, payload ->> '$.eventType', payload ->> '$.notificationType') as event_type,

        ---------- mail
        payload ->> '$.mail.source' as source_address,
        payload ->> '$.mail.commonHeaders.subject' as subject,
        payload -> '$.mail.tags' as tags,
        list_filter(
            list_transform(
                coalesce(try_cast(payload -> '$.mail.destination' as varchar[]), []),
                lambda address: {{ normalize_email('address') }}
            ),
            lambda address: address is not null
        ) as destination,

        ---------- booleans
        {{ is_digest_mail('payload') }} as is_digest,

        ---------- timestamps
        {{ ses_timestamp("payload ->> '$.mail.timestamp'") }} as sent_at,
        event_at,
        loaded_at

    from source

)

select * from renamed
