-- Files of the month just loaded into one raw table with a line breaking a field rule of contract §2:
-- a date that is neither a real yyyymmdd nor a sentinel (optional ones may be empty), or a malformed
-- DPC code / none on a bundled row; file names only (the loader then names file, line and rule).
-- Template values: schema, table, required_dates, optional_dates, payload_dates, dpc_code (from
-- dpc_elt.core.formats, as rawfile checks them). Parameters: :yyyymm. Read-only.
{%- macro valid_date(column) -%}
    ({{ column }} in ('00000000', '99999999')
        or (regexp_full_match({{ column }}, '[0-9]{8}')
            and {{ column }} >= '00010101'
            and try_strptime({{ column }}, '%Y%m%d') is not null))
{%- endmacro %}
select distinct source_file
from "{{ schema }}"."{{ table }}"
where yyyymm = :yyyymm
    and (
        false
        {%- for column in required_dates %}
        or not {{ valid_date(column) }}
        {%- endfor %}
        {%- for column in optional_dates %}
        or not ({{ column }} = '' or {{ valid_date(column) }})
        {%- endfor %}
        {%- for item_code, columns in payload_dates.items() %}{% for column in columns %}
        or (item_code = '{{ item_code }}' and not ({{ column }} = '' or {{ valid_date(column) }}))
        {%- endfor %}{% endfor %}
        {%- if dpc_code %}
        or (
            dpc_code = ''
            and regexp_full_match(
                data_category,
                '[\s\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]*93[\s\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]*'
            )
        )
        or (dpc_code <> '' and not regexp_full_match(dpc_code, '[0-9]{6}[0-9x]{8}'))
        {%- endif %}
    )
order by source_file;
