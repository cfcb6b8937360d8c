{#- The columns of `columns` that the incremental model's existing table lacks: a table built before a
    column existed gets it added (on_schema_change) and every row recomputed once, so none keeps a null
    there. Empty on a full build, in unit tests (where `this` is a fixture, a string) and while parsing. -#}
{% macro columns_missing_from_this(columns) %}
    {%- if execute and is_incremental() and this is not string -%}
        {%- set existing = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
        {%- if existing -%}
            {%- do return(columns | reject('in', existing) | list) -%}
        {%- endif -%}
    {%- endif -%}
    {%- do return([]) -%}
{% endmacro %}
