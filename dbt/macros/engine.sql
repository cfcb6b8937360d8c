{#- The SQL that differs between the two engines the project builds on (target duckdb, target spark),
    one adapter.dispatch macro each, so the models stay one set. default__ is DuckDB's spelling (the
    project's first engine); spark__ is Spark SQL 3.5's. On Spark, JSON is text (the lake's payload
    column is a string) and string literals are raw (spark.sql.parser.escapedStringLiterals, set in
    the profile), as DuckDB's are, so one regular expression serves both. -#}

{#- ---------- JSON ---------------------------------------------------------------------------------- -#}

{% macro json_text(json, path) -%}
    {#- The value at a JSONPath ('$.a.b') as text: a string unquoted, an object or list as JSON text. -#}
    {{ return(adapter.dispatch('json_text', 'bouncehouse')(json, path)) }}
{%- endmacro %}
{% macro default__json_text(json, path) -%} ({{ json }} ->> '{{ path }}') {%- endmacro %}
{% macro spark__json_text(json, path) -%} get_json_object({{ json }}, '{{ path }}') {%- endmacro %}

{% macro json_value(json, path) -%}
    {#- The value at a JSONPath kept as JSON (DuckDB's json type; JSON text on Spark). -#}
    {{ return(adapter.dispatch('json_value', 'bouncehouse')(json, path)) }}
{%- endmacro %}
{% macro default__json_value(json, path) -%} ({{ json }} -> '{{ path }}') {%- endmacro %}
{% macro spark__json_value(json, path) -%} get_json_object({{ json }}, '{{ path }}') {%- endmacro %}

{% macro json_array_rows(json, path, as_text=false) -%}
    {#- A select-list generator: one row per element of the JSON list at `path` (none when it is missing
        or not a list). Elements are JSON (as_text: strings unquoted); read them with json_text(x, '$.f'). -#}
    {{ return(adapter.dispatch('json_array_rows', 'bouncehouse')(json, path, as_text)) }}
{%- endmacro %}
{% macro default__json_array_rows(json, path, as_text) -%}
    unnest({{ json }} {{ '->>' if as_text else '->' }} '{{ path }}[*]')
{%- endmacro %}
{% macro spark__json_array_rows(json, path, as_text) -%}
    explode({{ json_string_list(json, path) }})
{%- endmacro %}

{% macro json_string_list(json, path) -%}
    {#- The JSON list at `path` as a list of strings (objects in it as JSON text); null when not a list. -#}
    {{ return(adapter.dispatch('json_string_list', 'bouncehouse')(json, path)) }}
{%- endmacro %}
{% macro default__json_string_list(json, path) -%}
    try_cast({{ json }} -> '{{ path }}' as varchar[])
{%- endmacro %}
{% macro spark__json_string_list(json, path) -%}
    from_json(get_json_object({{ json }}, '{{ path }}'), 'array<string>')
{%- endmacro %}

{% macro json_string_list_map(json) -%}
    {#- A JSON object of name -> list of strings (SES mail.tags) as a map; null when it is not one. -#}
    {{ return(adapter.dispatch('json_string_list_map', 'bouncehouse')(json)) }}
{%- endmacro %}
{% macro default__json_string_list_map(json) -%} try_cast({{ json }} as map(varchar, varchar[])) {%- endmacro %}
{% macro spark__json_string_list_map(json) -%} from_json({{ json }}, 'map<string,array<string>>') {%- endmacro %}

{#- ---------- lists, maps and structs -------------------------------------------------------------- -#}

{% macro map_entry_rows(map, key_name, value_name) -%}
    {#- A select-list generator: one row per map entry, as two columns named key_name and value_name. -#}
    {{ return(adapter.dispatch('map_entry_rows', 'bouncehouse')(map, key_name, value_name)) }}
{%- endmacro %}
{% macro default__map_entry_rows(map, key_name, value_name) -%}
    unnest(map_keys({{ map }})) as {{ key_name }}, unnest(map_values({{ map }})) as {{ value_name }}
{%- endmacro %}
{% macro spark__map_entry_rows(map, key_name, value_name) -%}
    explode({{ map }}) as ({{ key_name }}, {{ value_name }})
{%- endmacro %}

{% macro list_rows(list) -%}
    {#- A select-list generator: one row per element of a list (none for an empty or null list). -#}
    {{ return(adapter.dispatch('list_rows', 'bouncehouse')(list)) }}
{%- endmacro %}
{% macro default__list_rows(list) -%} unnest({{ list }}) {%- endmacro %}
{% macro spark__list_rows(list) -%} explode({{ list }}) {%- endmacro %}

{% macro string_list(items) -%}
    {#- A list of strings from SQL expressions (an empty list when `items` is empty). -#}
    {{ return(adapter.dispatch('string_list', 'bouncehouse')(items)) }}
{%- endmacro %}
{% macro default__string_list(items) -%} [{{ items | join(', ') }}]::varchar[] {%- endmacro %}
{% macro spark__string_list(items) -%}
    {%- if items -%} array({{ items | join(', ') }}) {%- else -%} cast(array() as array<string>) {%- endif -%}
{%- endmacro %}

{% macro normalized_email_list(list) -%}
    {#- Every address of a list of strings through normalize_email, the empty ones dropped. -#}
    {{ return(adapter.dispatch('normalized_email_list', 'bouncehouse')(list)) }}
{%- endmacro %}
{% macro default__normalized_email_list(list) -%}
    list_filter(
        list_transform({{ list }}, lambda address: {{ normalize_email('address') }}),
        lambda address: address is not null
    )
{%- endmacro %}
{% macro spark__normalized_email_list(list) -%}
    filter(
        transform({{ list }}, address -> {{ normalize_email('address') }}),
        address -> address is not null
    )
{%- endmacro %}

{% macro struct_of(columns) -%}
    {#- A struct of the named columns (field = column name), read back with struct.field on both engines. -#}
    {{ return(adapter.dispatch('struct_of', 'bouncehouse')(columns)) }}
{%- endmacro %}
{% macro default__struct_of(columns) -%}
    { {%- for column in columns %}'{{ column }}': {{ column }}{{ ', ' if not loop.last }}{% endfor -%} }
{%- endmacro %}
{% macro spark__struct_of(columns) -%}
    named_struct({%- for column in columns %}'{{ column }}', {{ column }}{{ ', ' if not loop.last }}{% endfor -%})
{%- endmacro %}

{#- ---------- ordered aggregates --------------------------------------------------------------------
    order_by is a list of SQL expressions, each optionally followed by ' desc'. Nulls sort last, as
    DuckDB sorts them by default, whatever the direction. On Spark a `desc` key must be a number when
    the keys mix directions (it is negated; an all-desc order needs no negation). -#}

{% macro _spark_order_key(order_by, flip=false) -%}
    named_struct(
    {%- for item in order_by -%}
        {%- set text = item | trim -%}
        {%- set text = text[:-11] if (text | lower).endswith(' nulls last') else text -%}
        {%- set descending = (text | lower).endswith(' desc') -%}
        {%- set expression = text[:-5] if descending else text -%}
        {%- set negate = descending and not flip -%}
        'n{{ loop.index }}', ({{ expression }}) is {{ 'not ' if flip }}null,
        'k{{ loop.index }}', {{ '-(' ~ expression ~ ')' if negate else expression }}{{ ', ' if not loop.last }}
    {%- endfor -%}
    )
{%- endmacro %}

{% macro first_by(value, order_by) -%}
    {#- The value of the first row in that order (like DuckDB's first(value order by ...)). -#}
    {{ return(adapter.dispatch('first_by', 'bouncehouse')(value, order_by)) }}
{%- endmacro %}
{% macro default__first_by(value, order_by) -%}
    first({{ value }} order by {{ order_by | join(', ') }})
{%- endmacro %}
{% macro spark__first_by(value, order_by) -%}
    {%- set descending = [] -%}
    {%- for item in order_by if (item | trim | lower).replace(' nulls last', '').endswith(' desc') -%}{%- do descending.append(item) -%}{%- endfor -%}
    {%- if descending | length == order_by | length -%}
        max_by({{ value }}, {{ bouncehouse._spark_order_key(order_by, flip=true) }})
    {%- else -%}
        min_by({{ value }}, {{ bouncehouse._spark_order_key(order_by) }})
    {%- endif -%}
{%- endmacro %}

{% macro first_values(value, order_by, n) -%}
    {#- The list of the first `n` values in that order. -#}
    {{ return(adapter.dispatch('first_values', 'bouncehouse')(value, order_by, n)) }}
{%- endmacro %}
{% macro default__first_values(value, order_by, n) -%}
    list({{ value }} order by {{ order_by | join(', ') }})[1:{{ n }}]
{%- endmacro %}
{% macro spark__first_values(value, order_by, n) -%}
    slice(
        transform(
            array_sort(collect_list(named_struct('key', {{ bouncehouse._spark_order_key(order_by) }}, 'value', {{ value }}))),
            entry -> entry.value
        ),
        1, {{ n }}
    )
{%- endmacro %}

{#- ---------- text and time ------------------------------------------------------------------------- -#}

{% macro trim_chars(text, characters) -%}
    {#- `text` without any of the characters (an SQL string expression) at either end. -#}
    {{ return(adapter.dispatch('trim_chars', 'bouncehouse')(text, characters)) }}
{%- endmacro %}
{% macro default__trim_chars(text, characters) -%} trim({{ text }}, {{ characters }}) {%- endmacro %}
{% macro spark__trim_chars(text, characters) -%} trim(both {{ characters }} from {{ text }}) {%- endmacro %}

{% macro regex_matches(text, pattern) -%}
    {#- True when the regular expression finds a match anywhere in `text`. -#}
    {{ return(adapter.dispatch('regex_matches', 'bouncehouse')(text, pattern)) }}
{%- endmacro %}
{% macro default__regex_matches(text, pattern) -%} regexp_matches({{ text }}, '{{ pattern }}') {%- endmacro %}
{% macro spark__regex_matches(text, pattern) -%} ({{ text }} rlike '{{ pattern }}') {%- endmacro %}

{% macro utc_timestamp_with_offset(text) -%}
    {#- An ISO 8601 time carrying a UTC offset, converted to naive UTC; null when unreadable. -#}
    {{ return(adapter.dispatch('utc_timestamp_with_offset', 'bouncehouse')(text)) }}
{%- endmacro %}
{% macro default__utc_timestamp_with_offset(text) -%}
    cast(try_cast({{ text }} as timestamptz) at time zone 'UTC' as timestamp)
{%- endmacro %}
{#- Spark reads the offset and the session's time zone is UTC (profile), so a plain cast is UTC. -#}
{% macro spark__utc_timestamp_with_offset(text) -%} cast({{ text }} as timestamp) {%- endmacro %}

{% macro timestamp_text(value) -%}
    {#- A timestamp as 'YYYY-MM-DD HH:MM:SS.ffffff' (microseconds), for keys. -#}
    {{ return(adapter.dispatch('timestamp_text', 'bouncehouse')(value)) }}
{%- endmacro %}
{% macro default__timestamp_text(value) -%} strftime({{ value }}, '%Y-%m-%d %H:%M:%S.%f') {%- endmacro %}
{% macro spark__timestamp_text(value) -%} date_format({{ value }}, 'yyyy-MM-dd HH:mm:ss.SSSSSS') {%- endmacro %}

{#- ---------- materialisation --------------------------------------------------------------------- -#}

{% macro incremental_or_table() -%}
    {#- Incremental (delete+insert) on DuckDB; a table rebuilt every run on Spark, whose plain Parquet
        tables have no delete or merge (only append and insert_overwrite of partitions). -#}
    {{- return('table' if target.type == 'spark' else 'incremental') -}}
{%- endmacro %}

{% macro json_type() -%}
    {#- The type of a JSON column (tags, payload): DuckDB's json; text on Spark. -#}
    {{ return(adapter.dispatch('json_type', 'bouncehouse')()) }}
{%- endmacro %}
{% macro default__json_type() -%} json {%- endmacro %}
{% macro spark__json_type() -%} string {%- endmacro %}
