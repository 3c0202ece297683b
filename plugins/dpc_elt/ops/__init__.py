"""Operations of the pipeline (the second seed): thresholds, the ELTExecutionDelay metric, the weekly
health checks and the monthly quality report."""
