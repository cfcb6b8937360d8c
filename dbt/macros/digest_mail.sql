{% macro is_digest_mail(payload) -%}
    {#- True when the event's mail carries the digest's own SES tag (bouncehouse_message=digest). -#}
    coalesce(
        list_contains(
            try_cast({{ payload }} -> '$.mail.tags.{{ var("digest_tag_name") }}' as varchar[]),
            '{{ var("digest_tag_value") }}'
        ),
        false
    )
{%- endmacro %}
