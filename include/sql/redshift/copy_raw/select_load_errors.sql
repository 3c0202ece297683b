-- Why a COPY failed: object, line, column and load error code from SYS_LOAD_ERROR_DETAIL (Serverless
-- has no STL_ tables), by the failed statement's query id, else by staged prefix and start time.
-- error_message is never selected: it can quote the rejected value (patient data).
-- Parameters: :query_id, :staged_prefix (a LIKE pattern), :since (UTC timestamp). Read-only.
select
    trim(file_name) as file_name,
    line_number,
    trim(column_name) as column_name,
    error_code
from sys_load_error_detail
where
    query_id = cast(:query_id as bigint)
    or (trim(file_name) like :staged_prefix and start_time >= cast(:since as timestamp))
order by start_time, line_number
limit 1;
