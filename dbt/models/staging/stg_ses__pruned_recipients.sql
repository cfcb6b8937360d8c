-- One row per recipient of a message prune removed: what message_status said of it then
-- (raw.pruned_recipients, written by prune), so a message that a late Bounce, Complaint or Reject brings
-- back gets its recipients back (int_recipient_events_restored).
with

source as (

    select * from {{ source('ses', 'pruned_recipients') }}

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

        ---------- timestamps
        sent_at,
        status_at,
        last_event_at,
        last_loaded_at,
        pruned_at

    from source

)

select * from renamed
