-- One row per address on SES's account-level suppression list, as `bouncehouse ses-sync` last pulled
-- it (raw.ses_account_suppressions). The sync creates that table on its first run; until then this view
-- is empty, so a transform on a warehouse the sync never touched still builds.
{%- set source_relation = source('ses_sync', 'ses_account_suppressions') -%}
{%- set source_exists = (load_relation(source_relation) is not none) if execute else true %}
with

source as (

    {% if source_exists -%}
    select * from {{ source_relation }}
    {%- else -%}
    select
        cast(null as {{ dbt.type_string() }}) as email, cast(null as {{ dbt.type_string() }}) as reason,
        cast(null as timestamp) as last_update_at, cast(null as {{ dbt.type_string() }}) as message_id,
        cast(null as {{ dbt.type_string() }}) as feedback_id, cast(null as timestamp) as pulled_at
    where false
    {%- endif %}

),

renamed as (

    select

        ---------- ids
        {{ normalize_email('email') }} as email,
        nullif(message_id, '') as ses_message_id,
        nullif(feedback_id, '') as ses_feedback_id,

        ---------- properties
        reason as ses_reason,

        ---------- timestamps
        last_update_at as ses_updated_at,
        pulled_at

    from source

)

select * from renamed
