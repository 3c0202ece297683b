{#- Fails with one row per combination of the given columns that occurs more than once.
    NULLs group together, so a NULL in a key column still counts as one value. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

{%- set columns_csv = combination_of_columns | join(', ') %}

with

grouped as (

    select
        {{ columns_csv }},
        count(*) as n_rows
    from {{ model }}
    group by {{ columns_csv }}

)

select * from grouped
where n_rows > 1

{% endtest %}
