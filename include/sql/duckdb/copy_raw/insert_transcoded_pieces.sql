-- Append the month's files of one type, transcoded in line-aligned pieces of rows "<line in piece> TAB
-- <fields>", to their raw table: TSV, fixed layout, no quoting, '' kept (as Redshift COPY); a wrong
-- field count fails it. Template values: schema, table, columns (from dpc_elt.core.formats).
-- Parameters: :yyyymm; per piece :pieces (path), :source_files, :line_offsets (lines before it).
-- Not idempotent alone: runs after delete_month in the load's one transaction.
insert into "{{ schema }}"."{{ table }}" (yyyymm, source_file, line_no, {{ columns | join(', ') }})
select
    :yyyymm,
    offsets.source_file,
    offsets.line_offset + rows.piece_line_no,
    {{ columns | join(', ') }}
from read_csv(
    :pieces,
    columns = {'piece_line_no': 'integer' {%- for column in columns %}, '{{ column }}': 'varchar'{% endfor -%} },
    delim = '\t',
    header = false,
    quote = '',
    escape = '',
    auto_detect = false,
    strict_mode = true,
    filename = true,
    force_not_null = [{%- for column in columns %}'{{ column }}'{{ ', ' if not loop.last }}{% endfor -%}]
) as rows
inner join (
    select
        unnest(:pieces) as filename,
        unnest(:source_files) as source_file,
        unnest(:line_offsets) as line_offset
) as offsets
    on rows.filename = offsets.filename;
