-- Create one raw table if it does not exist: lineage columns, then every source column as text.
-- Redshift counts VARCHAR lengths in bytes: 1536 holds the 512 characters of the portable file as
-- UTF-8 (up to 3 bytes a character). Template values: schema, table, columns. No parameters.
-- Idempotent. Sorted by month: every load and every model reads or deletes one yyyymm.
create schema if not exists "{{ schema }}";

create table if not exists "{{ schema }}"."{{ table }}" (
    yyyymm varchar(6) not null,
    source_file varchar(64) not null,
    line_no integer not null{% for column in columns %},
    {{ column }} varchar(1536){% endfor %}
)
diststyle auto
sortkey (yyyymm);
