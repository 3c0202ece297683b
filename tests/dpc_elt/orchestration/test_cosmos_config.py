"""What the Cosmos configuration hands to dbt: one invocation per dbt state, each with its cache."""

from __future__ import annotations

from dpc_elt.core import settings
from dpc_elt.orchestration import cosmos_config


def test_dbt_gets_the_same_month_warehouse_and_cap_as_the_loader():
    cfg = settings.get_settings()
    env = cosmos_config.dbt_env()
    assert env["DPC_DUCKDB_PATH"] == cfg.duckdb_path
    assert env["DPC_DUCKDB_MEMORY_LIMIT"] == cfg.duckdb_memory_limit
    assert env["DPC_YYYYMM"] == cosmos_config.MONTH_TEMPLATE
    assert "vars" not in cosmos_config.operator_args()  # a changed --vars re-parses the whole dbt project


def test_each_dbt_state_is_one_invocation_over_its_selection():
    from airflow.sdk import DAG
    from cosmos.operators.local import DbtBuildLocalOperator, DbtRunLocalOperator

    from dpc_elt.orchestration import steps

    with DAG("t_dbt_steps", schedule=None):
        stage, mart = steps.build_stage(), steps.build_mart()
    (run,) = stage.children.values()
    (build,) = mart.children.values()
    assert (run.task_id, type(run), run.select) == ("build_stage.dbt_run", DbtRunLocalOperator, ["path:models/staging"])
    assert (build.task_id, type(build)) == ("build_mart.dbt_build", DbtBuildLocalOperator)
    assert build.select == cosmos_config.MART_SELECT
    assert build.dbt_cmd_flags == ["--resource-type", "model", "--resource-type", "seed"]  # tests: dbt_tests
    assert stage.doc_md == steps.BUILD_STAGE_DOC and mart.doc_md == steps.BUILD_MART_DOC


def test_every_dbt_task_has_its_own_partial_parse_cache():
    from cosmos import settings as cosmos_settings
    from cosmos.operators.local import DbtRunLocalOperator

    task = cosmos_config.dbt_test_task("dbt_tests")
    assert task.cache_dir == cosmos_settings.cache_dir / "dpc_elt__dbt_tests"
    assert task.dbt_cmd_flags == ["--exclude-resource-type", "unit_test"]  # unit tests run in make test
    assert task.env["DPC_YYYYMM"] == cosmos_config.MONTH_TEMPLATE
    stage = cosmos_config.dbt_operator(DbtRunLocalOperator, "dbt_run", "build_stage", select=["path:models/staging"])
    assert stage.cache_dir == cosmos_settings.cache_dir / "dpc_elt__build_stage"


def test_dbt_writes_no_log_file_into_the_project_copy_cosmos_deletes():
    """dbt's debug log file would land in Cosmos' temporary project copy; the console lines stay."""
    from cosmos.operators.local import DbtTestLocalOperator

    task = cosmos_config.dbt_test_task("dbt_tests")
    assert isinstance(task, DbtTestLocalOperator)
    command, _ = task.build_cmd(context={})
    assert command[1:4] == ["--log-level-file", "none", "test"]  # a global flag: before the subcommand


def test_dbt_accepts_the_global_flags():
    from dbt.cli.main import cli

    from dpc_elt.core import settings

    context = cli.commands["test"].make_context(
        "test", [*cosmos_config.NO_LOG_FILE, "--profiles-dir", str(settings.DBT_PROJECT_DIR)]
    )
    assert context.params["log_level_file"] == "none"
