"""The CopyErrorCount log line: fixed format for the metric filter, file and line only."""

from __future__ import annotations

import re

import pytest

from dpc_elt.core import copy_errors
from dpc_elt.core.errors import ManifestError, RawFileError

# What infra/terraform/modules/operations/logs.tf filters on, and the documented shape.
LINE = re.compile(r"^DPC_COPY_ERROR count=[1-9][0-9]* file=[A-Za-z0-9._-]+ line=([0-9]+|-)$")


def test_line_format():
    assert copy_errors.copy_error_line("FF1_131000123_2504.txt", 17) == (
        "DPC_COPY_ERROR count=1 file=FF1_131000123_2504.txt line=17"
    )
    assert (
        copy_errors.copy_error_line("Dn_131000123_2504.txt")
        == "DPC_COPY_ERROR count=1 file=Dn_131000123_2504.txt line=-"
    )


@pytest.mark.parametrize(
    "name",
    ["s3://bucket/raw/yyyymm=202504/EFn_131000123_2504.txt", "患者 山田.txt", "a b;rm -rf", "", "x" * 500],
)
def test_only_a_safe_base_name_reaches_the_log(name):
    line = copy_errors.copy_error_line(name, 3)
    assert LINE.match(line), line
    assert "yyyymm=" not in line and "山田" not in line and " b" not in line.split("file=")[1]
    assert len(line) < 200


def test_count_must_be_positive():
    with pytest.raises(ValueError):
        copy_errors.copy_error_line("a.txt", 1, count=0)


def test_wrapper_reports_a_rejected_line_and_re_raises(log_lines):
    error = RawFileError("FF1_131000123_2504.txt", "wrong number of fields", detail="expected 14", line=42)
    with pytest.raises(RawFileError), copy_errors.copy_errors_reported():
        raise error
    assert log_lines == ["DPC_COPY_ERROR count=1 file=FF1_131000123_2504.txt line=42"]


def test_wrapper_leaves_other_failures_alone(log_lines):
    with pytest.raises(ManifestError), copy_errors.copy_errors_reported():
        raise ManifestError("_manifest.json", "sha256 mismatch")
    with pytest.raises(OSError), copy_errors.copy_errors_reported():
        raise OSError("disk full")
    assert not [line for line in log_lines if line.startswith("DPC_COPY_ERROR")]
