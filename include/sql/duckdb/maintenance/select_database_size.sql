-- Blocks of the warehouse file and how many of them are free (deleted data not yet reused): the
-- DuckDB side of the seed's "unused share above 20 %" check.
-- No parameters. Read-only.
select total_blocks, free_blocks
from pragma_database_size()
where database_name = current_database();
