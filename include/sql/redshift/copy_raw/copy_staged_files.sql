-- Append the staged UTF-8 TSV objects of one file type (a COPY manifest) to its raw table: TAB, LF, no
-- quoting or escapes, empty fields stay '' (NULL AS a NUL byte, which never occurs). STATUPDATE ON: the
-- table's statistics are refreshed at the end of the COPY, inside the load batch's one transaction.
-- Template values: schema, table, columns. No parameters: :copy_manifest_uri and :iam_role_arn are literal
-- slots (COPY cannot bind them) from validated settings. Not idempotent alone: after delete_month, same batch.
copy "{{ schema }}"."{{ table }}" ({{ columns | join(', ') }})
from :copy_manifest_uri
iam_role :iam_role_arn
manifest
delimiter '\t'
null as '\0'
encoding utf8
maxerror 0
compupdate off
statupdate on;
