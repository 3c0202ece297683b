"""The ASL ``Retry`` blocks as Airflow retries: only the transient errors a block names are retried,
never bad input (``SAFE_MESSAGE_ERRORS``: a manifest, file or parameter that breaks the contract)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule

from dpc_elt.core.errors import SAFE_MESSAGE_ERRORS, WarehouseBusyError


def asl_retry(attempts: int, interval_seconds: int, backoff_rate: float, transient: list[Any]) -> dict[str, Any]:
    """Task arguments for one ASL ``Retry`` block (MaxAttempts, IntervalSeconds, BackoffRate)."""
    return {
        "retries": attempts,
        "retry_delay": timedelta(seconds=interval_seconds),
        "retry_exponential_backoff": backoff_rate,
        "retry_policy": ExceptionRetryPolicy(
            rules=[
                RetryRule(exception=list(SAFE_MESSAGE_ERRORS), action=RetryAction.FAIL),
                RetryRule(exception=transient, action=RetryAction.RETRY),
            ],
            default=RetryAction.FAIL,
        ),
    }


# ValidateManifest.Retry: Lambda service errors, 10 s, 3 attempts, ×2 — here: storage I/O errors.
VALIDATE_MANIFEST_RETRY = asl_retry(3, 10, 2.0, [OSError, TimeoutError])
# CopyRaw.Retry: throttling and Data API errors, 30 s, 4 attempts, ×2 — here: a busy warehouse (the
# DuckDB file lock; on Redshift, Data API throttling and lost concurrent transactions, which the
# backend raises as WarehouseBusyError).
COPY_RAW_RETRY = asl_retry(4, 30, 2.0, [WarehouseBusyError, TimeoutError])
