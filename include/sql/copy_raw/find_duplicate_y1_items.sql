-- Find y1 items listed twice for one case in the month just loaded (a duplicated case block):
-- returns the file and line of the first repeated item, or no row. Codes only, no values.
-- Parameters: :yyyymm. Read-only.
select source_file, min(line_no) as line_no
from (
    select
        source_file,
        line_no,
        row_number() over (
            partition by facility_cd, patient_id, admission_date, admission_seq_no, summary_no, item_code, item_seq
            order by line_no
        ) as occurrence
    from "raw".y1
    where yyyymm = :yyyymm
) as items
where occurrence > 1
group by source_file
order by source_file
limit 1;
