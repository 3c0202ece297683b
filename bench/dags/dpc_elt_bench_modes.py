"""
# bench_dbt_<variant> — the dbt part of dpc_elt under other Cosmos execution settings (benchmark only)

Not deployed and not in `dags/`: `bench/run_bench.py` points a throwaway AIRFLOW_HOME at this folder and
runs each DAG once with `dag.test()` on a warehouse the real `dpc_elt` DAG has just loaded. Each DAG is
`build_stage` → `build_mart` → `dbt_tests`, built from `dpc_elt.orchestration.cosmos_config` (same project,
profile, selections, operator arguments and pool) with only the execution settings changed:

- `one_per_state`: what `dpc_elt` does today (one LOCAL DBT_RUNNER invocation per dbt state, built by
  `cosmos_config.dbt_step` exactly as the DAG builds it);
- `per_model`: a DbtTaskGroup per state (LOCAL, DBT_RUNNER, one task per model: the design before);
- `watcher`: ExecutionMode.WATCHER (one `dbt build` producer per group plus one sensor per model).

The month comes from the `yyyymm` param instead of `check_manifest`'s XCom.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, chain

from dpc_elt.core import settings
from dpc_elt.orchestration import cosmos_config

MONTH = "{{ params.yyyymm }}"


def _operator_args() -> dict:
    args = cosmos_config.operator_args()
    # No manifest task here: the whole month, every facility.
    return {**args, "env": {**args["env"], "DPC_YYYYMM": MONTH, "DPC_FACILITY_CD": ""}}


def _group(variant: str, group_id: str, select: list[str]):
    """A DbtTaskGroup over the prebuilt manifest, one task per model."""
    from cosmos import DbtTaskGroup, ExecutionConfig, ProjectConfig, RenderConfig
    from cosmos.constants import (
        PRODUCER_WATCHER_DONE_TASK_ID,
        PRODUCER_WATCHER_TASK_ID,
        ExecutionMode,
        InvocationMode,
        LoadMode,
        TestBehavior,
    )

    configs = cosmos_config._configs()
    manifest = settings.DBT_PROJECT_DIR / "target" / "manifest.json"
    project = ProjectConfig(dbt_project_path=settings.DBT_PROJECT_DIR, manifest_path=manifest, install_dbt_deps=False)
    project.manifest_path = manifest  # a plain Path: no ObjectStoragePath open (docs/performance.md)
    mode = ExecutionMode.WATCHER if variant == "watcher" else ExecutionMode.LOCAL
    group = DbtTaskGroup(
        group_id=group_id,
        project_config=project,
        profile_config=configs["profile_config"],
        execution_config=ExecutionConfig(execution_mode=mode, invocation_mode=InvocationMode.DBT_RUNNER),
        render_config=RenderConfig(load_method=LoadMode.DBT_MANIFEST, select=select, test_behavior=TestBehavior.NONE),
        operator_args=_operator_args(),
    )
    if variant == "watcher":
        # dag.test() runs one task at a time: make the producer run first, so that the sensors find
        # every model's status at their first poke instead of waiting for a producer that never starts.
        producer = group.children[f"{group_id}.{PRODUCER_WATCHER_TASK_ID}"]
        skip = {producer.task_id, f"{group_id}.{PRODUCER_WATCHER_DONE_TASK_ID}"}
        for task_id, child in group.children.items():
            if task_id not in skip and not child.upstream_task_ids:
                producer >> child
    return group


def _one_per_state():
    """Today's DAG: one dbt invocation per state, with the month from the param."""
    env = {"env": _operator_args()["env"]}
    stage = cosmos_config.dbt_step("build_stage", "run", cosmos_config.STAGE_SELECT, "build_stage", **env)
    mart = cosmos_config.dbt_step(
        "build_mart",
        "build",
        cosmos_config.MART_SELECT,
        "build_mart",
        dbt_cmd_flags=cosmos_config.MODELS_AND_SEEDS,
        **env,
    )
    return stage, mart


def _tests():
    return cosmos_config.dbt_test_task("dbt_tests", env=_operator_args()["env"])


VARIANTS = ("one_per_state", "per_model", "watcher")

for _variant in VARIANTS:
    with DAG(
        dag_id=f"bench_dbt_{_variant}",
        description=f"Benchmark: dpc_elt's dbt part with {_variant}",
        doc_md=__doc__,
        schedule=None,
        start_date=pendulum.datetime(2025, 1, 1, tz="Asia/Tokyo"),
        catchup=False,
        params={"yyyymm": Param("202504", type="string", pattern="^[0-9]{6}$")},
        default_args={"retries": 0},
        tags=["bench"],
    ):
        if _variant == "one_per_state":
            build_stage, build_mart = _one_per_state()
        else:
            build_stage = _group(_variant, "build_stage", cosmos_config.STAGE_SELECT)
            build_mart = _group(_variant, "build_mart", cosmos_config.MART_SELECT)
        chain(build_stage, build_mart, _tests())
