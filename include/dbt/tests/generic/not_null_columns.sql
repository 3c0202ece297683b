{#- Fails with every row that has a NULL in any of the given columns: the not_null test of each, in
    one query. For the intermediate views, which aggregate every loaded month: one test per column
    would compute the view once per column. -#}
{% test not_null_columns(model, columns) %}

select {{ columns | join(', ') }}
from {{ model }}
where {% for column in columns %}{{ column }} is null{{ ' or ' if not loop.last }}{% endfor %}

{% endtest %}
