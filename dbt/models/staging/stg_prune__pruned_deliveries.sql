-- One row per address: the latest delivery among the messages prune removed (raw.pruned_deliveries,
-- written by prune), so suppression_list keeps counting a delivery whose events are gone.
with

source as (

    select * from {{ source('prune', 'pruned_deliveries') }}

),

renamed as (

    select

        ---------- ids
        email,

        ---------- timestamps
        last_delivered_at,
        pruned_at

    from source

)

select * from renamed
