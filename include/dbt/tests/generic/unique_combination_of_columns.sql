{#- Fails with one row per combination of the given columns that occurs more than once.
    NULLs group together, so a NULL in a key column still counts as one value. per_month: the key
    holds yyyymm, so with DPC_YYYYMM set (a pipeline run) only that month's rows need checking. -#}
{% test unique_combination_of_columns(model, combination_of_columns, per_month=false) %}

{%- set month = dpc_target_month() if per_month else none %}

{%- set columns_csv = combination_of_columns | join(', ') %}

with

grouped as (

    select
        {{ columns_csv }},
        count(*) as n_rows
    from {{ model }}
    {%- if month is not none %}
    where yyyymm = '{{ month }}'
    {%- endif %}
    group by {{ columns_csv }}

)

select * from grouped
where n_rows > 1

{% endtest %}
