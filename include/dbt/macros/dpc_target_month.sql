{#- The month a run works on, from the environment variable DPC_YYYYMM, validated because it is
    injected into SQL. Returns none when it is not set (or empty): the models then build every month.
    An environment variable rather than a dbt var: a changed var makes dbt re-parse the whole project,
    a changed env_var only the files that read it at parse time - and it is read only when executing,
    so a new month re-parses nothing. -#}
{% macro dpc_target_month() -%}
    {#- Read only when running: read at parse time, a new month would make dbt re-parse every file that
        reads it (the stage models and the tests keyed on the month) in each month's first dbt task. -#}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set month = env_var('DPC_YYYYMM', '') | trim -%}
    {%- if month == '' -%}
        {{ return(none) }}
    {%- endif -%}
    {#- The same rule as dpc_elt.core.params.YYYYMM_PATTERN and the manifest schema: 190001 … 209912. -#}
    {%- if not modules.re.fullmatch('(19|20)[0-9]{2}(0[1-9]|1[0-2])', month) -%}
        {{ exceptions.raise_compiler_error(
            "DPC_YYYYMM must be a real month written as 6 digits (YYYYMM, e.g. 202504), got '"
            ~ month ~ "'") }}
    {%- endif -%}
    {{ return(month) }}
{%- endmacro %}


{#- The facility of a one-facility reload, from DPC_FACILITY_CD (nine digits, validated: it is written
    into SQL), or none for the whole month. Only used together with the month. -#}
{% macro dpc_target_facility() -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set facility = env_var('DPC_FACILITY_CD', '') | trim -%}
    {%- if facility == '' -%}
        {{ return(none) }}
    {%- endif -%}
    {#- The same rule as dpc_elt.core.params.FACILITY_CD_PATTERN. -#}
    {%- if not modules.re.fullmatch('[0-9]{9}', facility) -%}
        {{ exceptions.raise_compiler_error(
            "DPC_FACILITY_CD must be a facility code of exactly nine digits, got '" ~ facility ~ "'") }}
    {%- endif -%}
    {{ return(facility) }}
{%- endmacro %}


{#- What an incremental run with DPC_YYYYMM replaces: the month, or with DPC_FACILITY_CD too, that
    facility's rows of the month; none otherwise. -#}
{% macro dpc_target_predicate(column='yyyymm') -%}
    {%- set month = dpc_target_month() -%}
    {%- if month is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set facility = dpc_target_facility() -%}
    {%- if facility is none -%}
        {{ return(column ~ " = '" ~ month ~ "'") }}
    {%- endif -%}
    {{ return(column ~ " = '" ~ month ~ "' and facility_cd = '" ~ facility ~ "'") }}
{%- endmacro %}


{#- A predicate on the month column: only the target month (or the target facility's rows of it)
    during an incremental run with DPC_YYYYMM set, otherwise every month (initial build, full refresh,
    or no month given). -#}
{% macro dpc_month_filter(column='yyyymm') -%}
    {%- set target = dpc_target_predicate(column) -%}
    {%- if is_incremental() and target is not none -%}
        {{ target }}
    {%- else -%}
        1 = 1
    {%- endif -%}
{%- endmacro %}


{#- Pre-hook of every staging model: before appending, remove what is about to be appended again,
    so a month is replaced as a whole (a month with zero raw rows ends up empty). Renders nothing
    when the model is (re)built from scratch. -#}
{% macro dpc_delete_target_month(column='yyyymm') -%}
    {%- if is_incremental() -%}
        {%- set target = dpc_target_predicate(column) -%}
        {%- if target is not none -%}
            delete from {{ this }} where {{ target }}
        {%- else -%}
            delete from {{ this }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
