-- Per UTC send day (a cohort: the day of sent_at), how that day's recipients ended up, with the
-- rates SES judges an account by. Sends removed by prune are added back from raw.pruned_sends_daily,
-- so pruning never changes a figure. The digest's own emails (message_status.is_digest) are not
-- tracked sends and count nowhere here.

with

message_status as (

    select * from {{ ref('message_status') }}

),

pruned_sends_daily as (

    select * from {{ source('ses', 'pruned_sends_daily') }}

),

tracked_days as (

    select
        cast(sent_at as date) as day,
        count(*) as sent,
        count_if(final_status = 'delivered') as delivered,
        count_if(final_status = 'hard_bounced') as hard_bounced,
        count_if(final_status = 'soft_bounced') as soft_bounced,
        count_if(final_status = 'complained') as complained,
        count_if(final_status = 'rejected') as rejected,
        count_if(final_status = 'rendering_failed') as rendering_failed,
        count_if(final_status = 'delayed') as delayed
    from message_status
    where sent_at is not null
        and not is_digest
    group by 1

),

pruned_days as (

    select
        day,
        sum(sent) as sent,
        sum(delivered) as delivered,
        sum(delayed) as delayed
    from pruned_sends_daily
    group by day

),

combined as (

    select
        coalesce(tracked_days.day, pruned_days.day) as day,
        coalesce(tracked_days.sent, 0) + coalesce(pruned_days.sent, 0) as sent,
        coalesce(tracked_days.delivered, 0) + coalesce(pruned_days.delivered, 0) as delivered,
        coalesce(tracked_days.hard_bounced, 0) as hard_bounced,
        coalesce(tracked_days.soft_bounced, 0) as soft_bounced,
        coalesce(tracked_days.complained, 0) as complained,
        coalesce(tracked_days.rejected, 0) as rejected,
        coalesce(tracked_days.rendering_failed, 0) as rendering_failed,
        coalesce(tracked_days.delayed, 0) + coalesce(pruned_days.delayed, 0) as delayed
    from tracked_days
    full outer join pruned_days
        on tracked_days.day = pruned_days.day

),

final as (

    select
        day,
        cast(sent as bigint) as sent,
        cast(delivered as bigint) as delivered,
        cast(hard_bounced as bigint) as hard_bounced,
        cast(soft_bounced as bigint) as soft_bounced,
        cast(complained as bigint) as complained,
        cast(rejected as bigint) as rejected,
        cast(rendering_failed as bigint) as rendering_failed,
        cast(delayed as bigint) as delayed,
        case when sent = 0 then 0.0 else hard_bounced / sent end as bounce_rate,
        case when sent = 0 then 0.0 else complained / sent end as complaint_rate
    from combined

)

select * from final
