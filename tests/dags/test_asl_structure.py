"""The DAG mirrors the state machine kept in include/asl/dpc_elt.asl.json.

Everything expected here is read from the ASL file, not restated: each state has its task or task
group (the state's name in snake_case), each ``Next`` and ``Catch`` is an edge, each ``Retry`` block
is the retries, delay and backoff of every task of its state, and states without one never retry.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

ASL = json.loads((Path(__file__).resolve().parents[2] / "include" / "asl" / "dpc_elt.asl.json").read_text())
STATES = ASL["States"]


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags"))
    assert bag.import_errors == {}
    return bag.dags["dpc_elt"]


def step_of(task_id: str) -> str:
    return task_id.split(".", 1)[0]


def tasks_of(dag, state: str):
    tasks = [t for t in dag.tasks if step_of(t.task_id) == snake(state)]
    assert tasks, f"no task or task group for ASL state {state}"
    return tasks


def step_edges(dag) -> set[tuple[str, str]]:
    return {
        (step_of(t.task_id), step_of(d))
        for t in dag.tasks
        for d in t.downstream_task_ids
        if step_of(t.task_id) != step_of(d)
    }


def asl_edges() -> set[tuple[str, str]]:
    edges = set()
    for name, state in STATES.items():
        targets = [state["Next"]] if "Next" in state else []
        targets += [catch["Next"] for catch in state.get("Catch", [])]
        edges |= {(snake(name), snake(target)) for target in targets}
    return edges


def test_every_state_has_its_task_and_nothing_else(dag):
    assert {step_of(t.task_id) for t in dag.tasks} == {snake(name) for name in STATES}


def test_start_state_is_the_only_root(dag):
    roots = {step_of(t.task_id) for t in dag.roots}
    assert roots == {snake(ASL["StartAt"])}


def test_transitions_equal_the_asl(dag):
    assert step_edges(dag) == asl_edges()


@pytest.mark.parametrize("state", list(STATES))
def test_trigger_rules_follow_next_and_catch(dag, state):
    caught_by = {c["Next"] for s in STATES.values() for c in s.get("Catch", [])}
    entry_tasks = [t for t in tasks_of(dag, state) if not any(step_of(u) == snake(state) for u in t.upstream_task_ids)]
    for task in entry_tasks:
        rule = getattr(task.trigger_rule, "value", task.trigger_rule)
        if state in caught_by:
            assert rule in {"one_failed", "all_done"}, (task.task_id, rule)
        else:
            assert rule == "all_success", (task.task_id, rule)


@pytest.mark.parametrize("state", list(STATES))
def test_retries_mirror_the_retry_block(dag, state):
    retry = STATES[state].get("Retry")
    for task in tasks_of(dag, state):
        if not retry:
            assert task.retries == 0, task.task_id
            continue
        (block,) = retry
        assert task.retries == block["MaxAttempts"], task.task_id
        assert task.retry_delay == timedelta(seconds=block["IntervalSeconds"]), task.task_id
        assert task.retry_exponential_backoff == block["BackoffRate"], task.task_id
        assert task.retry_policy is not None, f"{task.task_id} would retry bad input too"
