{% macro as_of() -%}
    {#- The instant that stands for "now" (dbt var as_of, naive UTC); empty: the run's start time. -#}
    {%- set value = var('as_of', '') -%}
    {%- if value is none or (value | string | trim) == '' -%}
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp)
    {%- else -%}
        {{ ses_timestamp("'" ~ (value | string | trim) ~ "'") }}
    {%- endif -%}
{%- endmacro %}
