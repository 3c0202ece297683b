{#- Fails with one row per combination of the given columns that occurs more than once.
    NULLs group together, so a NULL in a key column still counts as one value. per_month: the key
    holds yyyymm, so with DPC_YYYYMM set (a pipeline run) only that month's rows need checking.
    The query itself is dpc_repeated_keys, per adapter. -#}
{% test unique_combination_of_columns(model, combination_of_columns, per_month=false) %}

{%- set month = dpc_target_month() if per_month else none %}
{%- set scope = "where yyyymm = '" ~ month ~ "'" if month is not none else "" %}

{{ dpc_repeated_keys(model, combination_of_columns, scope) }}

{% endtest %}
