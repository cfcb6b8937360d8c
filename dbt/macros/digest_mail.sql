{% macro is_digest_mail(payload) -%}
    {#- True when the event's mail carries the digest's own SES tag (bouncehouse_message=digest). -#}
    coalesce(
        array_contains(
            {{ json_string_list(payload, '$.mail.tags.' ~ var("digest_tag_name")) }},
            '{{ var("digest_tag_value") }}'
        ),
        false
    )
{%- endmacro %}
