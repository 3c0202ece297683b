-- Unload one month of one mart table as Parquet (always Snappy) into <processed_root>/yyyymm=<M>/,
-- the yyyymm column kept inside the files (INCLUDE); CLEANPATH empties that month's folder first.
-- No parameters: :unload_query, :unload_target and :iam_role_arn are literal slots (UNLOAD cannot
-- bind them), rendered by dpc_elt.backends.redshift from the validated month and settings. Idempotent.
unload (:unload_query)
to :unload_target
iam_role :iam_role_arn
format as parquet
partition by (yyyymm) include
cleanpath;
