{#- The body of the unique_combination_of_columns test: one row per combination of `columns` that
    occurs more than once among the rows of `model` that `scope` (a where clause, or empty) keeps,
    with its count. -#}
{% macro dpc_repeated_keys(model, columns, scope) -%}
    {{ return(adapter.dispatch('dpc_repeated_keys', 'dpc_elt')(model, columns, scope)) }}
{%- endmacro %}

{% macro default__dpc_repeated_keys(model, columns, scope) -%}
{%- set columns_csv = columns | join(', ') %}
with

grouped as (

    select
        {{ columns_csv }},
        count(*) as n_rows
    from {{ model }}
    {{ scope }}
    group by {{ columns_csv }}

)

select * from grouped
where n_rows > 1
{%- endmacro %}

{#- DuckDB groups a month of EF lines on one 64-bit hash of the key about twice as fast as on the key's
    columns. Only the rows whose hash occurs more than once (every repeated key, and the rare hash
    collision) then go through the default's grouping on the columns, so the result is exactly its. -#}
{% macro duckdb__dpc_repeated_keys(model, columns, scope) -%}
{%- set key_hash = "hash(" ~ (columns | join(', ')) ~ ")" %}
{%- set rows_of_repeated_hashes -%}
(
    select * from {{ model }}
    {{ scope }}{{ ' and' if scope else ' where' }} {{ key_hash }} in (
        select {{ key_hash }} from {{ model }}
        {{ scope }}
        group by 1
        having count(*) > 1
    )
)
{%- endset %}
{{ default__dpc_repeated_keys(rows_of_repeated_hashes, columns, '') }}
{%- endmacro %}
