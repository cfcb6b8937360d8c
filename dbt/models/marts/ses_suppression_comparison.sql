-- Our suppression_list beside SES's account-level suppression list (as `ses-sync` last pulled it): one
-- row per address on either, with `side` saying where it is (ours_only, ses_only, both).
with

suppression_list as (

    select * from {{ ref('suppression_list') }}

),

ses_suppressions as (

    select * from {{ ref('stg_ses__account_suppressions') }}

),

ours as (

    select {{ normalize_email('email') }} as email, reason, suppressed_at, expires_at
    from suppression_list

),

compared as (

    select
        coalesce(ours.email, ses_suppressions.email) as email,
        case
            when ses_suppressions.email is null then 'ours_only'
            when ours.email is null then 'ses_only'
            else 'both'
        end as side,
        ours.reason as our_reason,
        ours.suppressed_at,
        ours.expires_at,
        ses_suppressions.ses_reason,
        ses_suppressions.ses_updated_at,
        ses_suppressions.ses_message_id,
        ses_suppressions.ses_feedback_id,
        ses_suppressions.pulled_at as ses_pulled_at
    from ours
    full outer join ses_suppressions on ours.email = ses_suppressions.email

)

select * from compared
