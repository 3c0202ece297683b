-- Append one staged file (UTF-8, LF, TAB, lineage columns first) to its raw table. DuckDB's COPY
-- equivalent: read_csv with a fixed layout, no quoting, empty fields kept as '' like Redshift COPY.
-- Template values: schema, table, columns (lineage + layout, allow-listed). Parameters: :path.
-- Not idempotent alone: always runs after delete_raw_month in one transaction.
insert into "{{ schema }}"."{{ table }}" ({{ columns | join(', ') }})
select {{ columns | join(', ') }}
from read_csv(
    :path,
    columns = { {%- for column in columns %}'{{ column }}': '{{ 'integer' if column == 'line_no' else 'varchar' }}'{{ ', ' if not loop.last }}{% endfor -%} },
    delim = '\t',
    header = false,
    quote = '',
    escape = '',
    auto_detect = false,
    strict_mode = true,
    force_not_null = [{%- for column in columns %}'{{ column }}'{{ ', ' if not loop.last }}{% endfor -%}]
);
