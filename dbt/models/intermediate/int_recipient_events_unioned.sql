{{
    config(
        materialized=incremental_or_table(),
        incremental_strategy='delete+insert',
        unique_key='event_id',
        on_schema_change='append_new_columns'
    )
}}
-- Every SES event in one narrow shape: one row per recipient it names (Delivery, Bounce, Complaint,
-- DeliveryDelay), one row with a null recipient for events about the whole message (Send, Reject,
-- Rendering Failure, Open, Click, ...). Incremental: a run parses only the events loaded since the
-- last one (loaded_at watermark; the anti-join on event_id keeps a re-read batch single).

{#- Columns added since the table was built: every row is recomputed once to fill them. -#}
{%- set missing_columns = columns_missing_from_this(['feedback_id', 'smtp_status', 'complaint_sub_type']) %}
{%- set only_new = is_incremental() and not missing_columns %}

{%- if only_new %}
    {%- set loaded_since_last_run -%}
        loaded_at >= (select coalesce(max(loaded_at), cast('1900-01-01' as timestamp)) from {{ this }})
    {%- endset %}
{%- else %}
    {%- set loaded_since_last_run = 'true' %}
{%- endif %}

with

events as (

    select * from {{ ref('stg_ses__messages') }} as loaded_events
    where {{ loaded_since_last_run }}
    {% if only_new %}
        and not exists (
            select 1 from {{ this }} as parsed
            where parsed.event_id = loaded_events.event_id and {{ loaded_since_last_run }}
        )
    {% endif %}

),

deliveries as (

    select * from {{ ref('stg_ses__deliveries') }}

),

bounces as (

    select * from {{ ref('stg_ses__bounces') }}

),

complaints as (

    select * from {{ ref('stg_ses__complaints') }}

),

delivery_delays as (

    select * from {{ ref('stg_ses__delivery_delays') }}

),

named_recipients as (

    select
        event_id,
        recipient,
        cast(null as {{ dbt.type_string() }}) as feedback_id,
        cast(null as {{ dbt.type_string() }}) as bounce_type,
        cast(null as {{ dbt.type_string() }}) as bounce_sub_type,
        cast(null as {{ dbt.type_string() }}) as diagnostic_code,
        cast(null as {{ dbt.type_string() }}) as smtp_status,
        cast(null as {{ dbt.type_string() }}) as complaint_feedback_type,
        cast(null as {{ dbt.type_string() }}) as complaint_sub_type
    from deliveries
    where {{ loaded_since_last_run }} and event_id in (select event_id from events)

    union all

    select
        event_id,
        recipient,
        feedback_id,
        bounce_type,
        bounce_sub_type,
        diagnostic_code,
        smtp_status,
        null as complaint_feedback_type,
        null as complaint_sub_type
    from bounces
    where {{ loaded_since_last_run }} and event_id in (select event_id from events)

    union all

    select
        event_id,
        recipient,
        feedback_id,
        null as bounce_type,
        null as bounce_sub_type,
        null as diagnostic_code,
        null as smtp_status,
        complaint_feedback_type,
        complaint_sub_type
    from complaints
    where {{ loaded_since_last_run }} and event_id in (select event_id from events)

    union all

    select
        event_id,
        recipient,
        null as feedback_id,
        null as bounce_type,
        null as bounce_sub_type,
        diagnostic_code,
        null as smtp_status,
        null as complaint_feedback_type,
        null as complaint_sub_type
    from delivery_delays
    where {{ loaded_since_last_run }} and event_id in (select event_id from events)

),

unioned as (

    select
        events.event_id,
        events.message_id,
        events.event_type,
        named_recipients.recipient,
        named_recipients.bounce_type,
        named_recipients.bounce_sub_type,
        named_recipients.diagnostic_code,
        named_recipients.complaint_feedback_type,
        events.destination,
        named_recipients.feedback_id,
        named_recipients.smtp_status,
        named_recipients.complaint_sub_type,
        events.source_address,
        events.subject,
        events.tags,
        events.is_digest,
        events.sent_at,
        events.event_at,
        events.loaded_at
    from events
    left join named_recipients
        on events.event_id = named_recipients.event_id

)

select * from unioned
