{#- Whether int_recipient_events_classified's existing table was classified with the other value of the var
    transient_mailbox_missing_is_hard: a row hard only by its smtp status while the var is off, or a
    Transient 5.1.x soft bounce while it is on. Then the incremental run reclassifies every event, so
    flipping the var needs no --full-refresh. False on a full build, in unit tests and while parsing. -#}
{% macro classified_under_other_rules(transient_mailbox_missing_is_hard) %}
    {%- if not (execute and is_incremental() and this is not string) -%}
        {%- do return(false) -%}
    {%- endif -%}
    {%- if transient_mailbox_missing_is_hard -%}
        {%- set other_rule = "event_class = 'soft_bounce' and lower(trim(bounce_type)) = 'transient' and smtp_status like '5.1.%'" -%}
    {%- else -%}
        {%- set other_rule = "hard_by_smtp_status" -%}
    {%- endif -%}
    {%- set found = run_query("select 1 from " ~ this ~ " where " ~ other_rule ~ " limit 1") -%}
    {%- do return(found.rows | length > 0) -%}
{% endmacro %}
