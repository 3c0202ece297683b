-- The embedded warehouse's note of each in-batch ANALYZE: table, time and row count then, so the
-- weekly check can tell how many rows changed since (DuckDB keeps no such history itself).
-- No parameters. Idempotent: creates the schema and the table only when missing.
create schema if not exists ops;

create table if not exists ops.analyze_log (
    schema_name varchar(64) not null,
    table_name varchar(64) not null,
    analyzed_at timestamp not null,
    row_count bigint not null
);
