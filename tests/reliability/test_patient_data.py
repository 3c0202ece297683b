"""Patient data stays in the warehouse: what the steps log, return as XCom, put in notices and raise
holds counts, codes, file names and rules — never a patient id or a free-text name.
(The task logs of whole Airflow runs are checked in test_dag_runs.py.)"""

from __future__ import annotations

import json
import logging

import pytest

from dpc_elt import notify
from dpc_elt.backends import embedded
from dpc_elt.core.errors import RawFileError
from dpc_elt.core.manifest import validate_month
from tests.reliability import support


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


@pytest.fixture
def package_log():
    """Everything the dpc_elt package logs (at any level) during the test."""
    handler = _Keep()
    logger = logging.getLogger("dpc_elt")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler.records
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_steps_log_and_return_no_patient_values(loaded, dbt, package_log):
    ids, names = support.patient_values(loaded.raw_root)
    assert ids and names
    checked = validate_month(loaded.raw_root, "202504")
    xcoms = [checked.to_dict(), embedded.EmbeddedBackend(loaded).load_month("202504", checked)]
    dbt.build_month(loaded, "202504")
    months = embedded.EmbeddedBackend(loaded).compute_readmit("202504")
    xcoms += [
        months,
        embedded.EmbeddedBackend(loaded).export_months(months),
        embedded.EmbeddedBackend(loaded).month_counts("202504"),
    ]
    assert package_log, "the steps log what they do"
    assert not support.leaked("\n".join(package_log), ids, names)
    assert not support.leaked(json.dumps(xcoms, ensure_ascii=False), ids, names)


def test_notices_quote_only_value_free_errors(loaded):
    ids, names = support.patient_values(loaded.raw_root)
    pid = sorted(ids)[0]
    database_error = RuntimeError(f'Constraint Error: duplicate key "{pid}" violates unique constraint')
    input_error = RawFileError("FF1_131000123_2504.txt", "impossible date", "column admission_date", line=7)
    message = notify.Message(status="FAILURE", dag_id="dpc_elt", run_id="r", yyyymm="202504", environment="t")
    message.failures = [
        notify.describe_failure("compute_readmit", database_error, "http://log"),
        notify.describe_failure("copy_raw", input_error, "http://log"),
    ]
    message.counts = embedded.EmbeddedBackend(loaded).month_counts("202504")
    text = json.dumps(message.to_dict(), ensure_ascii=False)
    assert "FF1_131000123_2504.txt:7: impossible date" in text
    assert "RuntimeError" in text
    assert support.leaked(str(database_error), ids, names) == [pid], "the check must see a raw id"
    assert not support.leaked(text, ids, names)
