"""
# bench_dbt_<variant> — the dbt part of dpc_elt under other Cosmos execution settings (benchmark only)

Not deployed and not in `dags/`: `bench/run_bench.py` points a throwaway AIRFLOW_HOME at this folder and
runs each DAG once with `dag.test()` on a warehouse the real `dpc_elt` DAG has just loaded. Each DAG is
`build_stage` → `build_mart` → `dbt_tests`, built from `dpc_elt.orchestration.cosmos_config` (same project,
profile, selections, operator arguments and pool) with only the execution settings changed:

- `local_dbt_runner`: what `dpc_elt` does today (LOCAL, DBT_RUNNER, one task per model);
- `watcher`: ExecutionMode.WATCHER (one `dbt build` producer per group plus one sensor per model);
- `task_per_stage`: one LOCAL DBT_RUNNER task per stage (`dbt run` / `dbt build`), no per-model tasks.

The month comes from the `yyyymm` param instead of `check_manifest`'s XCom.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, chain

from dpc_elt.core import settings
from dpc_elt.orchestration import cosmos_config

MONTH = "{{ params.yyyymm }}"
# The producer builds models and seeds only; tests run in dbt_tests as in dpc_elt.
MODELS_AND_SEEDS = ["--resource-type", "model", "--resource-type", "seed"]


def _operator_args() -> dict:
    args = cosmos_config.operator_args()
    return {**args, "env": {**args["env"], "DPC_YYYYMM": MONTH}}


def _execution_config(variant: str):
    from cosmos import ExecutionConfig
    from cosmos.constants import ExecutionMode, InvocationMode

    if variant == "watcher":
        return ExecutionConfig(execution_mode=ExecutionMode.WATCHER, invocation_mode=InvocationMode.DBT_RUNNER)
    return ExecutionConfig(execution_mode=ExecutionMode.LOCAL, invocation_mode=InvocationMode.DBT_RUNNER)


def _group(variant: str, group_id: str, select: list[str]):
    from cosmos import DbtTaskGroup, RenderConfig
    from cosmos.constants import PRODUCER_WATCHER_DONE_TASK_ID, PRODUCER_WATCHER_TASK_ID, LoadMode, TestBehavior

    configs = cosmos_config._configs()
    group = DbtTaskGroup(
        group_id=group_id,
        project_config=configs["project_config"],
        profile_config=configs["profile_config"],
        execution_config=_execution_config(variant),
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


def _stage_tasks():
    """task_per_stage: one dbt invocation per ASL state, each with a partial-parse cache as a group has."""
    from cosmos import settings as cosmos_settings
    from cosmos.operators.local import DbtBuildLocalOperator, DbtRunLocalOperator

    configs = cosmos_config._configs()
    common = {
        "project_dir": str(settings.DBT_PROJECT_DIR),
        "profile_config": configs["profile_config"],
        "invocation_mode": configs["execution_config"].invocation_mode,
        **_operator_args(),
    }
    stage = DbtRunLocalOperator(
        task_id="build_stage",
        select=cosmos_config.STAGE_SELECT,
        cache_dir=cosmos_settings.cache_dir / "bench__build_stage",
        **common,
    )
    mart = DbtBuildLocalOperator(
        task_id="build_mart",
        select=cosmos_config.MART_SELECT,
        dbt_cmd_flags=MODELS_AND_SEEDS,
        cache_dir=cosmos_settings.cache_dir / "bench__build_mart",
        **common,
    )
    return stage, mart


def _tests():
    return cosmos_config.dbt_test_task("dbt_tests", env=_operator_args()["env"])


VARIANTS = ("local_dbt_runner", "watcher", "task_per_stage")

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
        if _variant == "task_per_stage":
            build_stage, build_mart = _stage_tasks()
        else:
            build_stage = _group(_variant, "build_stage", cosmos_config.STAGE_SELECT)
            build_mart = _group(_variant, "build_mart", cosmos_config.MART_SELECT)
        chain(build_stage, build_mart, _tests())
