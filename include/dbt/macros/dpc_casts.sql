{#- Typed values from the raw text columns. The loader has already validated dates (real dates,
    the sentinels 00000000 / 99999999, or empty in optional columns); numeric columns are checked
    here and anything that is not a number becomes NULL rather than failing the whole model. -#}

{#- yyyymmdd text to a date; sentinels, empty and malformed text to NULL. -#}
{% macro dpc_date(column) -%}
    {{ return(adapter.dispatch('dpc_date', 'dpc_elt')(column)) }}
{%- endmacro %}

{% macro default__dpc_date(column) -%}
    case
        when {{ column }} in ('00000000', '99999999') then null
        when {{ dpc_regex_full_match(column, '[0-9]{8}') }}
            then cast(
                substring({{ column }}, 1, 4) || '-' || substring({{ column }}, 5, 2)
                || '-' || substring({{ column }}, 7, 2) as date
            )
    end
{%- endmacro %}

{% macro duckdb__dpc_date(column) -%}
    case
        when {{ column }} in ('00000000', '99999999') then null
        else cast(try_strptime({{ column }}, '%Y%m%d') as date)
    end
{%- endmacro %}

{% macro redshift__dpc_date(column) -%}
    case
        when {{ column }} in ('00000000', '99999999') then null
        when {{ dpc_regex_full_match(column, '[0-9]{8}') }} then to_date({{ column }}, 'YYYYMMDD')
    end
{%- endmacro %}


{#- Integer text (optional sign, leading zeros and blanks allowed) to bigint, else NULL. -#}
{% macro dpc_int(column) -%}
    case
        when {{ dpc_regex_full_match('trim(' ~ column ~ ')', '[+-]?[0-9]{1,18}') }}
            then cast(trim({{ column }}) as bigint)
    end
{%- endmacro %}


{#- Decimal text (e.g. 0000001.000, -12.5, .5) to decimal(precision, scale), else NULL. -#}
{% macro dpc_decimal(column, precision=18, scale=5) -%}
    case
        when {{ dpc_regex_full_match('trim(' ~ column ~ ')', '[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)') }}
            then cast(trim({{ column }}) as decimal({{ precision }}, {{ scale }}))
    end
{%- endmacro %}


{#- Empty or blank text to NULL, everything else trimmed (codes keep their leading zeros). -#}
{% macro dpc_text(column) -%}
    nullif(trim({{ column }}), '')
{%- endmacro %}


{#- True when the whole text matches the regular expression; NULL for NULL text. -#}
{% macro dpc_regex_full_match(column, pattern) -%}
    {{ return(adapter.dispatch('dpc_regex_full_match', 'dpc_elt')(column, pattern)) }}
{%- endmacro %}

{% macro default__dpc_regex_full_match(column, pattern) -%}
    ({{ column }} ~ '^({{ pattern }})$')
{%- endmacro %}

{% macro duckdb__dpc_regex_full_match(column, pattern) -%}
    regexp_full_match({{ column }}, '{{ pattern }}')
{%- endmacro %}


{#- Completed years between two dates (age at admission); portable, no dispatch needed. -#}
{% macro dpc_age_years(birth_date, at_date) -%}
    case
        when {{ birth_date }} is not null and {{ at_date }} is not null then
            cast(extract(year from {{ at_date }}) as integer)
            - cast(extract(year from {{ birth_date }}) as integer)
            - case
                when cast(extract(month from {{ at_date }}) as integer) * 100
                    + cast(extract(day from {{ at_date }}) as integer)
                    < cast(extract(month from {{ birth_date }}) as integer) * 100
                    + cast(extract(day from {{ birth_date }}) as integer)
                    then 1
                else 0
            end
    end
{%- endmacro %}
