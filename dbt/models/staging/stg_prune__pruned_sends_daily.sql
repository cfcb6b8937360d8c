-- One row per (send day, prune run): what the messages prune removed had contributed to
-- deliverability_daily (raw.pruned_sends_daily, written by prune), which adds it back.
with

source as (

    select * from {{ source('prune', 'pruned_sends_daily') }}

),

renamed as (

    select

        ---------- day
        day,

        ---------- counts
        sent,
        delivered,
        delayed,
        sent_with_send_event,

        ---------- timestamps
        pruned_at

    from source

)

select * from renamed
