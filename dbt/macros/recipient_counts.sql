{#- How recipients ended up, counted the same way in every daily mart (deliverability_daily and the
    analyst marts by domain and by tag): one row per recipient of message_status in the group. -#}

{% macro ses_rate_hard_bounced() -%}
    {#- The hard bounces SES's bounce rate counts: not OnAccountSuppressionList (SES did not send: "does
        not count toward your bounce rate"), and not a bounce SES called Transient that is hard here only
        by the var transient_mailbox_missing_is_hard. Suppressed (the global suppression list) counts. -#}
    count_if(
        final_status = 'hard_bounced'
        and lower(trim(coalesce(bounce_sub_type, ''))) <> 'onaccountsuppressionlist'
        and not coalesce(hard_by_smtp_status, false)
    )
{%- endmacro %}

{% macro recipient_status_counts() -%}
    count(*) as sent,
    count_if(final_status = 'delivered') as delivered,
    count_if(final_status = 'hard_bounced') as hard_bounced,
    count_if(final_status = 'soft_bounced') as soft_bounced,
    count_if(final_status = 'complained') as complained,
    {{ ses_rate_hard_bounced() }} as rate_hard_bounced
{%- endmacro %}
