"""Cosmos configuration, built once: the same dbt project for both backends.

Per Cosmos' performance guidance: the DAG is rendered from a manifest that ``make manifest`` builds
(``LoadMode.DBT_MANIFEST``, no dbt call while parsing), dbt runs in-process (``DBT_RUNNER``), and
``dbt deps`` never runs. Tests run in their own ASL state (``dbt_tests``), so the groups render
no test tasks. The month reaches dbt as the environment variable ``DPC_YYYYMM``, taken from
``check_manifest``: as a dbt var it would change dbt's parse state every month, and the first task
of each group would re-parse the whole project instead of partially (docs/performance.md).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from dpc_elt.backends import get_backend
from dpc_elt.core import settings

PROFILE_NAME = "dpc_elt"
MANIFEST_PATH = settings.DBT_PROJECT_DIR / "target" / "manifest.json"
MONTH_TEMPLATE = "{{ ti.xcom_pull(task_ids='validate_manifest.check_manifest')['yyyymm'] }}"

STAGE_SELECT = ["path:models/staging"]
MART_SELECT = ["path:seeds", "path:models/intermediate", "path:models/marts"]


@cache
def _configs() -> dict[str, Any]:
    from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig
    from cosmos.constants import ExecutionMode, InvocationMode

    cfg = settings.get_settings()
    executable = {"dbt_executable_path": cfg.dbt_executable_path} if cfg.dbt_executable_path else {}
    project_config = ProjectConfig(
        dbt_project_path=settings.DBT_PROJECT_DIR,
        manifest_path=MANIFEST_PATH,
        install_dbt_deps=False,
    )
    # ProjectConfig casts any manifest path to an ObjectStoragePath, whose first open() loads every
    # provider's filesystems and every plugin (about 1 s of each DAG parse and task start, measured in
    # docs/performance.md). The manifest is a local file, and a plain Path is a type the attribute takes.
    project_config.manifest_path = MANIFEST_PATH
    return {
        "project_config": project_config,
        "profile_config": ProfileConfig(
            profile_name=PROFILE_NAME,
            target_name=get_backend(cfg).dbt_target,
            profiles_yml_filepath=settings.DBT_PROJECT_DIR / "profiles.yml",
        ),
        "execution_config": ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            invocation_mode=InvocationMode.SUBPROCESS if executable else InvocationMode.DBT_RUNNER,
            **executable,
        ),
    }


def dbt_env() -> dict[str, str]:
    """Environment dbt needs at run time: the month, the warehouse and its memory cap (credentials come
    from the profile's IAM auth)."""
    cfg = settings.get_settings()
    return {
        "DPC_YYYYMM": MONTH_TEMPLATE,
        "DPC_DUCKDB_PATH": cfg.duckdb_path,
        "DPC_DUCKDB_MEMORY_LIMIT": cfg.duckdb_memory_limit,
    }


def operator_args() -> dict[str, Any]:
    return {
        "install_deps": False,
        "env": dbt_env(),
        "append_env": True,
        "pool": settings.WAREHOUSE_POOL,
    }


def dbt_task_group(group_id: str, select: list[str], doc_md: str):
    """One DbtTaskGroup per pipeline stage, selected by path, with no test tasks."""
    from cosmos import DbtTaskGroup, RenderConfig
    from cosmos.constants import LoadMode, TestBehavior

    configs = _configs()
    return DbtTaskGroup(
        group_id=group_id,
        **configs,
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            select=select,
            test_behavior=TestBehavior.NONE,
        ),
        operator_args=operator_args(),
        tooltip=doc_md.splitlines()[0],
    )


def dbt_test_task(task_id: str, **kwargs: Any):
    """``dbt test`` over the whole project: schema, data and unit tests of stage and mart.

    A standalone Cosmos operator gets no partial-parse cache of its own (groups do); without one it
    parses the whole project on every run, so it is given a cache directory like a group's.
    """
    from cosmos import settings as cosmos_settings
    from cosmos.operators.local import DbtTestLocalOperator

    configs = _configs()
    executable = configs["execution_config"].dbt_executable_path
    cache_dir = cosmos_settings.cache_dir / f"dpc_elt__{task_id}"  # named like a group's: <dag>__<id>
    cache = {"cache_dir": cache_dir} if cosmos_settings.enable_cache else {}
    return DbtTestLocalOperator(
        task_id=task_id,
        project_dir=str(Path(settings.DBT_PROJECT_DIR)),
        profile_config=configs["profile_config"],
        invocation_mode=configs["execution_config"].invocation_mode,
        **({"dbt_executable_path": executable} if executable else {}),
        **cache,
        **{**operator_args(), **kwargs},
    )
