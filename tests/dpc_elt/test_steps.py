"""The ASL Retry blocks as retry policies: transient errors are retried, bad input never."""

from __future__ import annotations

import pytest
from airflow.sdk.definitions.retry_policy import RetryAction

from dpc_elt.errors import ManifestError, ParameterError, RawFileError, WarehouseBusyError
from dpc_elt.steps import COPY_RAW_RETRY, VALIDATE_MANIFEST_RETRY


@pytest.mark.parametrize(
    ("policy", "error", "action"),
    [
        (VALIDATE_MANIFEST_RETRY, ManifestError("_manifest.json", "invalid JSON", line=3), RetryAction.FAIL),
        (VALIDATE_MANIFEST_RETRY, ParameterError("yyyymm"), RetryAction.FAIL),
        (VALIDATE_MANIFEST_RETRY, ConnectionResetError("storage hiccup"), RetryAction.RETRY),
        (VALIDATE_MANIFEST_RETRY, TimeoutError(), RetryAction.RETRY),
        (VALIDATE_MANIFEST_RETRY, KeyError("bug"), RetryAction.FAIL),
        (COPY_RAW_RETRY, RawFileError("EFn_131000123_2504.txt", "wrong number of fields", line=9), RetryAction.FAIL),
        (COPY_RAW_RETRY, WarehouseBusyError("dpc.duckdb: locked"), RetryAction.RETRY),
        (COPY_RAW_RETRY, FileNotFoundError("gone"), RetryAction.FAIL),
        (COPY_RAW_RETRY, ValueError("bug"), RetryAction.FAIL),
    ],
)
def test_retry_policy_decides_like_the_asl_error_equals(policy, error, action):
    decision = policy["retry_policy"].evaluate(error, try_number=1, max_tries=policy["retries"])
    assert decision.action == action, decision.reason
