-- One row per recipient of a message prune removed: what message_status said of it then
-- (raw.pruned_recipients, written by prune; docs: revived_pruned_message).
with

source as (

    select * from {{ source('prune', 'pruned_recipients') }}

),

renamed as (

    select

        ---------- ids
        message_id,
        recipient,

        ---------- status
        final_status,

        ---------- mail
        source_address,
        subject,
        tags,

        ---------- booleans
        opened,
        clicked,
        is_digest,
        has_send_event,

        ---------- timestamps
        sent_at,
        status_at,
        last_event_at,
        last_loaded_at,
        pruned_at

    from source

)

select * from renamed
