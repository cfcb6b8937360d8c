-- Per UTC send day and recipient domain: how that day's recipients ended up, with the mailbox provider
-- behind the domain (seed mailbox_providers; 'other' for a domain not in it). Rates as deliverability_daily.

with

message_status as (

    select * from {{ ref('message_status') }}

),

mailbox_providers as (

    select lower(trim(domain)) as domain, provider from {{ ref('mailbox_providers') }}

),

recipients as (

    select
        cast(sent_at as date) as day,
        -- The part after the last @ (addresses are normalised lower-case); '' stands for none.
        coalesce(regexp_extract(recipient, '@([^@]*)$', 1), '') as domain,
        final_status,
        bounce_sub_type,
        hard_by_smtp_status
    from message_status
    where sent_at is not null
        and not is_digest

),

domain_days as (

    select
        day,
        domain,
        {{ recipient_status_counts() }}
    from recipients
    group by day, domain

),

final as (

    select
        domain_days.day,
        domain_days.domain,
        coalesce(mailbox_providers.provider, 'other') as provider,
        domain_days.sent,
        domain_days.delivered,
        domain_days.hard_bounced,
        domain_days.soft_bounced,
        domain_days.complained,
        domain_days.rate_hard_bounced / domain_days.sent as bounce_rate,
        domain_days.complained / domain_days.sent as complaint_rate
    from domain_days
    left join mailbox_providers using (domain)

)

select * from final
