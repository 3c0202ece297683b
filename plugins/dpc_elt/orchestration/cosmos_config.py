"""Cosmos configuration, built once: the same dbt project for both backends.

Each dbt ASL state is ONE dbt invocation (a Cosmos local operator over a path selection): a month's
stage, its marts, its tests. Per-model tasks would start dbt (and its parse, and Airflow's task
bookkeeping) a dozen times for models that run for a fraction of a second each; the dbt log of the one
task still times every model. dbt runs in-process (``DBT_RUNNER``) and ``dbt deps`` never runs.
The month reaches dbt as the environment variable ``DPC_YYYYMM``, taken from ``check_manifest``: as a
dbt var it would change dbt's parse state every month and force a full re-parse (docs/performance.md);
the macros read it only while dbt executes, so a new month re-parses nothing. Each task keeps a
partial-parse cache, seeded by ``make manifest``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from dpc_elt.backends import get_backend
from dpc_elt.core import settings

PROFILE_NAME = "dpc_elt"
MONTH_TEMPLATE = "{{ ti.xcom_pull(task_ids='validate_manifest.check_manifest')['yyyymm'] }}"
# A one-facility reload (empty for the whole month): the facility check_manifest validated.
FACILITY_TEMPLATE = "{{ ti.xcom_pull(task_ids='validate_manifest.check_manifest')['manifest'].get('facility_cd', '') }}"

STAGE_SELECT = ["path:models/staging"]
MART_SELECT = ["path:seeds", "path:models/intermediate", "path:models/marts"]
# build_mart builds seeds and models only: every test runs in the dbt_tests state.
MODELS_AND_SEEDS = ["--resource-type", "model", "--resource-type", "seed"]
# A run tests its data; dbt's unit tests test the SQL on hand-made rows, so they run in `make test`
# (tests/dbt), not once a month on the warehouse.
DATA_TESTS_ONLY = ["--exclude-resource-type", "unit_test"]


@cache
def _configs() -> dict[str, Any]:
    from cosmos import ProfileConfig
    from cosmos.constants import InvocationMode

    cfg = settings.get_settings()
    executable = {"dbt_executable_path": cfg.dbt_executable_path} if cfg.dbt_executable_path else {}
    return {
        "profile_config": ProfileConfig(
            profile_name=PROFILE_NAME,
            target_name=get_backend(cfg).dbt_target,
            profiles_yml_filepath=settings.DBT_PROJECT_DIR / "profiles.yml",
        ),
        "invocation_mode": InvocationMode.SUBPROCESS if executable else InvocationMode.DBT_RUNNER,
        **executable,
    }


def dbt_env() -> dict[str, str]:
    """Environment dbt needs at run time: the month, the warehouse and its memory cap (credentials come
    from the profile's IAM auth)."""
    cfg = settings.get_settings()
    return {
        "DPC_YYYYMM": MONTH_TEMPLATE,
        "DPC_FACILITY_CD": FACILITY_TEMPLATE,
        "DPC_DUCKDB_PATH": cfg.duckdb_path,
        "DPC_DUCKDB_MEMORY_LIMIT": cfg.duckdb_memory_limit,
    }


# dbt's own log file lands in the temporary copy of the project Cosmos deletes after the task; at its
# default (debug) level writing it costs a tenth of a small month's dbt time. The task log keeps dbt's
# console lines (info: one per node, with its time).
NO_LOG_FILE = ["--log-level-file", "none"]


def operator_args() -> dict[str, Any]:
    return {
        "install_deps": False,
        "dbt_cmd_global_flags": NO_LOG_FILE,
        "env": dbt_env(),
        "append_env": True,
        "pool": settings.WAREHOUSE_POOL,
    }


def dbt_operator(operator_class: type, task_id: str, cache_name: str, **kwargs: Any) -> Any:
    """One Cosmos local operator over the project, with a partial-parse cache directory of its own
    (``cache_name``: the ASL state it belongs to), kept from one month to the next."""
    from cosmos import settings as cosmos_settings

    cache = {"cache_dir": cosmos_settings.cache_dir / f"dpc_elt__{cache_name}"} if cosmos_settings.enable_cache else {}
    return operator_class(
        task_id=task_id,
        project_dir=str(settings.DBT_PROJECT_DIR),
        **_configs(),
        **cache,
        **{**operator_args(), **kwargs},
    )


def dbt_step(group_id: str, command: str, select: list[str], doc_md: str, **kwargs: Any):
    """An ASL state as a task group holding one dbt invocation: ``dbt run`` or ``dbt build`` of ``select``."""
    from airflow.sdk import TaskGroup
    from cosmos.operators.local import DbtBuildLocalOperator, DbtRunLocalOperator

    operator_class = {"run": DbtRunLocalOperator, "build": DbtBuildLocalOperator}[command]
    with TaskGroup(group_id=group_id, tooltip=doc_md.splitlines()[0], doc_md=doc_md) as group:
        dbt_operator(operator_class, f"dbt_{command}", group_id, select=select, **kwargs)
    return group


def dbt_test_task(task_id: str, **kwargs: Any):
    """``dbt test`` of the data: the schema and singular tests of raw, stage and mart."""
    from cosmos.operators.local import DbtTestLocalOperator

    return dbt_operator(DbtTestLocalOperator, task_id, task_id, dbt_cmd_flags=DATA_TESTS_ONLY, **kwargs)
