"""Every DAG and every task group tells a user in the UI what it does, what a failure means and how
to re-run it (doc_md), on the embedded default and on the production backend. Airflow 3's TaskGroup
takes ``doc_md`` (shown in the group's details), Cosmos' DbtTaskGroup passes it through."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dpc_elt.core import settings

DAGS = Path(__file__).resolve().parents[2] / "dags"
PRODUCTION = {
    "DPC_BACKEND": "production",
    "DPC_S3_BUCKET": "dpc-learning-data-dev",
    "DPC_REDSHIFT_IAM_ROLE_ARN": "arn:aws:iam::123456789012:role/dpc-redshift-s3-access",
}


def load(env: dict[str, str]):
    from airflow.dag_processing.dagbag import DagBag

    from dpc_elt.orchestration import cosmos_config

    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        if env:
            mp.delenv("DPC_RAW_ROOT", raising=False)
            mp.delenv("DPC_PROCESSED_ROOT", raising=False)
        settings.get_settings.cache_clear()
        cosmos_config._configs.cache_clear()
        try:
            bag = DagBag(dag_folder=str(DAGS))
        finally:
            settings.get_settings.cache_clear()
            cosmos_config._configs.cache_clear()
    assert bag.import_errors == {}
    return bag.dags


@pytest.fixture(scope="module", params=["embedded", "production"])
def dags(request):
    return load({} if request.param == "embedded" else PRODUCTION)


def says_what_failure_and_rerun(doc: str | None) -> list[str]:
    """What a doc_md lacks of: some substance, what a failure means, how to re-run / clear."""
    missing = []
    if not doc or len(doc.split()) < 25:
        missing.append("a description of at least 25 words")
    if not re.search(r"fail", doc or "", re.I):
        missing.append("what a failure means")
    if not re.search(r"re-run|clear", doc or "", re.I):
        missing.append("how to re-run or clear")
    return missing


def test_every_dag_file_defines_a_documented_dag(dags):
    files = {p.stem for p in DAGS.glob("*.py")}
    assert files <= set(dags), "every file in dags/ defines the DAG of its name"
    for dag_id, dag in dags.items():
        assert not says_what_failure_and_rerun(dag.doc_md), (dag_id, says_what_failure_and_rerun(dag.doc_md))


def test_every_task_group_has_doc_md_and_a_tooltip(dags):
    groups = {
        (dag_id, group_id): group
        for dag_id, dag in dags.items()
        for group_id, group in dag.task_group.get_task_group_dict().items()
        if group_id is not None
    }
    assert {"validate_manifest", "build_stage", "build_mart"} <= {g for _d, g in groups}
    for key, group in groups.items():
        assert not says_what_failure_and_rerun(group.doc_md), (key, says_what_failure_and_rerun(group.doc_md))
        assert group.tooltip.strip(), key


def test_group_docs_reach_the_serialized_dag(dags):
    """What the UI shows comes from the serialized DAG, not from the parsed object."""
    from airflow.serialization.serialized_objects import DagSerialization

    serialized = DagSerialization.to_dict(dags["dpc_elt"])
    groups = serialized["dag"]["task_group"]["children"]
    docs = {name: value for name, (kind, value) in groups.items() if kind == "taskgroup"}
    for name in ("validate_manifest", "build_stage", "build_mart"):
        assert docs[name].get("doc_md"), name
