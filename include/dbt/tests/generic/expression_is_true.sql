{#- Fails with every row for which the boolean SQL expression is not true (false or NULL).
    Usable on a model or on a column (the column is then only documentation); narrow the rows
    with the test's `where` config. -#}
{% test expression_is_true(model, expression, column_name=none) %}

select * from {{ model }}
where not coalesce({{ expression }}, false)

{% endtest %}
