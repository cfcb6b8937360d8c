-- One row per Subscription event (a recipient changed their subscription through SES's contact lists).
with

source as (

    select * from {{ source('ses', 'ses_events') }}
    where event_type = 'Subscription'

),

renamed as (

    select

        ---------- ids
        event_id,
        message_id,

        ---------- properties
        payload ->> '$.subscription.contactList' as contact_list,
        payload ->> '$.subscription.source' as subscription_source,
        try_cast(payload ->> '$.subscription.newTopicPreferences.unsubscribeAll' as boolean) as is_unsubscribe_all,

        ---------- timestamps
        coalesce(event_at, {{ ses_timestamp("payload ->> '$.subscription.timestamp'") }}) as subscribed_at,
        loaded_at

    from source

)

select * from renamed
