-- Append the staged UTF-8 TSV objects of one file type (listed in a COPY manifest) to its raw table:
-- TAB, LF, no quoting or escapes, empty fields stay '' (NULL AS a NUL byte, which never occurs).
-- Template values: schema, table, columns. No parameters: :copy_manifest_uri and :iam_role_arn are
-- literal slots (COPY cannot bind them), rendered from validated settings by dpc_elt.production.
-- Not idempotent alone: always after delete_month, in the same Data API batch (one transaction).
copy "{{ schema }}"."{{ table }}" ({{ columns | join(', ') }})
from :copy_manifest_uri
iam_role :iam_role_arn
manifest
delimiter '\t'
null as '\0'
encoding utf8
maxerror 0
compupdate off
statupdate off;
