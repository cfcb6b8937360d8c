{% macro ses_timestamp(text) -%}
    {#- An ISO 8601 time as naive UTC: with an offset ("2026-11-20T10:05:12.345Z", "+02:00") it is
        converted to UTC; without one it is taken as UTC already. Null when unreadable. -#}
    case
        when {{ regex_matches(text, '[T ]\d\d:\d\d(:\d\d(\.\d+)?)?\s*([Zz]|[+-]\d\d(:?\d\d)?)$') }}
            then {{ utc_timestamp_with_offset(text) }}
        else try_cast({{ text }} as timestamp)
    end
{%- endmacro %}
