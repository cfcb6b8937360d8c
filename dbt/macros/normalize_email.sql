{% macro normalize_email(address) -%}
    {#- The contract's address rule: trim, drop a display name and angle brackets, lower-case.
        "Bob <BOB@Ex.com>" -> bob@ex.com. Empty results become null. -#}
    nullif(
        lower({{ trim_chars(
            "case
                when " ~ address ~ " like '%<%>%'
                    then regexp_extract(" ~ address ~ ", '<([^<>]*)>[^<>]*$', 1)
                else " ~ address ~ "
            end",
            "' <>\"' || chr(9) || chr(10) || chr(13)"
        ) }}),
        ''
    )
{%- endmacro %}
