{% test unique_combination_of_columns(model, combination_of_columns) %}
{#- Rows whose combination of columns is not unique (dbt_utils' test, without the package). -#}
select {{ combination_of_columns | join(', ') }}, count(*) as rows_with_this_combination
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}
