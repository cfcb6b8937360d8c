{% macro as_of() -%}
    {#- The instant that stands for "now" (naive UTC): the dbt var as_of if given (the Airflow DAG, unit
        tests), else the environment variable BOUNCEHOUSE_DBT_AS_OF (set by `bouncehouse transform`), else
        the run's start time. The environment variable is read only when the model runs, never while dbt
        parses: a new "now" every hour then leaves dbt's partial parse valid (a new --vars value would make
        it re-parse the whole project). -#}
    {%- set value = var('as_of', '') -%}
    {%- if (value is none or (value | string | trim) == '') and execute -%}
        {%- set value = env_var('BOUNCEHOUSE_DBT_AS_OF', '') -%}
    {%- endif -%}
    {%- if value is none or (value | string | trim) == '' -%}
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp)
    {%- else -%}
        {{ ses_timestamp("'" ~ (value | string | trim) ~ "'") }}
    {%- endif -%}
{%- endmacro %}
