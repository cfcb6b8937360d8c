-- Per enhanced status code and SES bounce type/sub-type: how many recipients bounced that way, when it
-- was first and last seen, and the remote servers' most frequent diagnostics for it.

with

message_status as (

    select * from {{ ref('message_status') }}

),

bounced_recipients as (

    -- Recipients whose final status is the bounce (an auto-reply to a delivered recipient is no bounce).
    select
        coalesce(smtp_status, 'unknown') as smtp_status,
        coalesce(bounce_type, 'unknown') as bounce_type,
        coalesce(bounce_sub_type, 'unknown') as bounce_sub_type,
        recipient,
        status_at,
        diagnostic_code
    from message_status
    where final_status in ('hard_bounced', 'soft_bounced')
        and not is_digest

),

diagnostic_counts as (

    select smtp_status, bounce_type, bounce_sub_type, diagnostic_code, count(*) as times
    from bounced_recipients
    where diagnostic_code is not null
    group by all

),

example_diagnostics as (

    -- The three most frequent distinct diagnostics (ties by text, so the choice is stable).
    select
        smtp_status,
        bounce_type,
        bounce_sub_type,
        {{ first_values('diagnostic_code', ['times desc', 'diagnostic_code'], 3) }} as example_diagnostic_codes
    from diagnostic_counts
    group by all

),

bounce_groups as (

    select
        smtp_status,
        bounce_type,
        bounce_sub_type,
        count(*) as bounced,
        count(distinct recipient) as bounced_recipients,
        min(status_at) as first_seen_at,
        max(status_at) as last_seen_at
    from bounced_recipients
    group by all

),

final as (

    select
        bounce_groups.smtp_status,
        bounce_groups.bounce_type,
        bounce_groups.bounce_sub_type,
        bounce_groups.bounced,
        bounce_groups.bounced_recipients,
        bounce_groups.first_seen_at,
        bounce_groups.last_seen_at,
        coalesce(example_diagnostics.example_diagnostic_codes, {{ string_list([]) }}) as example_diagnostic_codes
    from bounce_groups
    left join example_diagnostics using (smtp_status, bounce_type, bounce_sub_type)

)

select * from final
