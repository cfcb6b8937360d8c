-- Stand-in events for the recipients of revived pruned messages (docs: revived_pruned_message): the
-- events that made their status, in int_recipient_events_unioned's shape, so every rule downstream
-- decides as if the message had never been pruned. Per pruned recipient of a revived message:
--   status      the winning status's event at status_at, naming the recipient: Send (sent),
--               Delivery (delivered), DeliveryDelay (delayed);
--   open/click  an Open and a Click (about the whole message) when the message had them, at sent_at
--               and the message's earliest last_loaded_at, which no recipient's last event precedes;
--   last_event  'PrunedLastEvent' at last_event_at when later than status_at: it means nothing (class
--               other) but keeps message_status.last_event_at what it was;
--   send_event  'PrunedSendEvent' (about the whole message, naming nobody, class other) when the message
--               had a Send event: message_status.has_send_event stays what it was (the Send stand-in
--               of a `sent` recipient does not say whether SES reported one).
-- Only messages with events again are restored: pruned messages that stay gone cost nothing downstream.

with

pruned_recipients as (

    select * from {{ ref('stg_prune__pruned_recipients') }}

),

recipient_events as (

    select * from {{ ref('int_recipient_events_unioned') }}

),

revived_recipients as (

    select
        *,
        -- No event about the whole message was loaded after any of its recipients' last one.
        min(last_loaded_at) over (partition by message_id) as message_loaded_at
    from pruned_recipients
    where message_id in (select message_id from recipient_events)

),

stand_ins as (

    select
        *,
        'status' as stand_in,
        case final_status
            when 'delivered' then 'Delivery'
            when 'delayed' then 'DeliveryDelay'
            else 'Send'
        end as stand_in_type,
        recipient as named_recipient,
        status_at as stand_in_at,
        last_loaded_at as stand_in_loaded_at
    from revived_recipients

    union all

    select *, 'open', 'Open', null, sent_at, message_loaded_at
    from revived_recipients
    where opened

    union all

    select *, 'click', 'Click', null, sent_at, message_loaded_at
    from revived_recipients
    where clicked

    union all

    select *, 'last_event', 'PrunedLastEvent', recipient, last_event_at, last_loaded_at
    from revived_recipients
    where last_event_at > status_at

    union all

    select *, 'send_event', 'PrunedSendEvent', null, sent_at, message_loaded_at
    from revived_recipients
    where coalesce(has_send_event, false)

),

restored as (

    select
        'pruned:' || message_id || ':' || recipient || ':' || stand_in as event_id,
        message_id,
        stand_in_type as event_type,
        named_recipient as recipient,
        cast(null as {{ dbt.type_string() }}) as bounce_type,
        cast(null as {{ dbt.type_string() }}) as bounce_sub_type,
        cast(null as {{ dbt.type_string() }}) as diagnostic_code,
        cast(null as {{ dbt.type_string() }}) as complaint_feedback_type,
        cast(null as {{ dbt.type_string() }}) as feedback_id,
        cast(null as {{ dbt.type_string() }}) as smtp_status,
        cast(null as {{ dbt.type_string() }}) as complaint_sub_type,
        {{ string_list(['recipient']) }} as destination,
        source_address,
        subject,
        tags,
        is_digest,
        sent_at,
        stand_in_at as event_at,
        stand_in_loaded_at as loaded_at
    from stand_ins

)

select * from restored
