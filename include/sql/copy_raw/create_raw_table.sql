-- Create one raw table if it does not exist: lineage columns, then every source column as text.
-- Template values: schema, table, columns (identifiers from dpc_elt.core.formats only). No parameters.
-- Idempotent.
create schema if not exists "{{ schema }}";

create table if not exists "{{ schema }}"."{{ table }}" (
    yyyymm varchar(6) not null,
    source_file varchar(64) not null,
    line_no integer not null{% for column in columns %},
    {{ column }} varchar(512){% endfor %}
);
