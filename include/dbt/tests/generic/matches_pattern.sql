{#- Fails with every non-NULL value of the column that does not fully match the regular
    expression (POSIX classes only, so it means the same on DuckDB and Redshift). -#}
{% test matches_pattern(model, column_name, pattern) %}

select {{ column_name }} from {{ model }}
where {{ column_name }} is not null
    and not {{ dpc_regex_full_match(column_name, pattern) }}

{% endtest %}
