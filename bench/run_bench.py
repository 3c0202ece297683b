"""Benchmark of dpc_elt on the embedded default (GitHub issue 14): a month end to end against the limit
and against a peer, from one run, with the machine's load recorded.

For each scale (``BENCH_SCALES``, default ``S,M``; ``L`` is opt-in) this script

1. generates one synthetic month with ``dpc_elt.dev.synthetic`` (cached under ``bench/data/<scale>/raw``,
   made again when the parameters change);
2. repeats ``BENCH_REPEAT`` times, each in fresh processes and in this order:

   * the **limit** (``child_limit``): the least work any loader of the month must do, on all of the
     machine's cores. Standard library and DuckDB only, one process: every file is cut into
     line-aligned pieces, the pieces are transcoded cp932 → UTF-8 in a process pool (one worker per
     core), then one in-memory DuckDB connection (threads = cores) reads all pieces of each file type
     with one strict ``read_csv``, aggregates per case and writes one Parquet;
   * the **limit keeping the rows** (``child_limit --keep-rows``): the same, except that DuckDB first
     stores every line of the month in in-memory tables and the pass reads those: the least any loader
     that keeps the month's rows (as the design's delete-then-COPY into raw tables does) must do. Not
     a target: the floor the targets table compares the project's goals with;
   * the **peer** (``child_peer``): the script a capable analyst writes with polars over the same files:
     per file read, decode cp932, ``polars.read_csv`` (strings, field count checked), then aggregate per
     case as the limit does and write the month's Parquet;
   * the **project**: the whole ``dpc_elt`` DAG for the month (``dpc_elt.dev.run_local.run_month``,
     ``dag.test``) on a fresh warehouse, with its own ``DPC_DATA_DIR`` / ``AIRFLOW_HOME`` / Cosmos cache:
     task times from the DagRun, copy_raw per file type from the loader's ``copy_raw timing {...}`` log
     lines, the process's peak memory;

   each measurement records wall and CPU time, peak RSS, the 1/5/15-minute load average before and
   after, and the CPU that other processes used meanwhile (from ``/proc/stat``);
3. on the warehouse the last project run left: one bare ``dbt build`` (dbtRunner, same month) and the
   dbt part of the DAG under each Cosmos variant of ``bench/dags/dpc_elt_bench_modes.py``.

Once per invocation it measures the DAG file's import time (fresh interpreters, median of 5) and (unless
``BENCH_BACKFILL=0``) a backfill, issue 14's target: 12 small months (S parameters) through
``scripts/run_month.sh`` in one invocation, as ``make backfill`` runs them. Ratios project/limit and
project/peer are of medians over the repeats; the report gives min/median/max where repeated. Results go
to ``bench/results.json`` and ``bench/results.md``; everything else stays under ``bench/data/``
(git-ignored). Run it with ``scripts/bench.sh`` (``make bench``).

Time on this 2-core machine (measured while the DAG took 204 s at M, on a busy machine): the import
measurement ~1 min; S ~45 s per repeat; M ~50 s of limit + peer plus the DAG run per repeat, then ~5 min
for the bare dbt build and the three variants. Defaults: ``BENCH_REPEAT`` 3 at S and M, 1 at L, which
keeps ``make bench`` (S,M) at ~23 minutes (less as the DAG gets faster); set ``BENCH_REPEAT`` (one number
for every scale, or ``S=3,M=1``) to change it. L adds ~2× M's single run plus its generation (~20 s).
The backfill adds about 12 runs of S.

Environment: ``BENCH_SCALES`` (``S,M``), ``BENCH_REPEAT`` (see above), ``BENCH_VARIANTS`` (all three;
empty string = none), ``BENCH_VARIANT_SCALES`` (scales that get the variant runs; default M, else the
first scale), ``BENCH_IMPORT_REPEAT`` (5), ``BENCH_BACKFILL`` (``1``; ``0`` skips it).
Units: data sizes in GB = 10^9 bytes, as issue 14 states them; memory in GiB = 2^30 bytes.
The script itself needs only the standard library; the children import Airflow, dbt, DuckDB and polars.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DATA_DIR = BENCH_DIR / "data"
RESULTS_JSON = BENCH_DIR / "results.json"
RESULTS_MD = BENCH_DIR / "results.md"
PYCACHE = DATA_DIR / "_pycache"
MONTH = "202504"
SEED = 1

# facilities × discharges per facility and month ≈ discharges in the month; EF rows per in-patient day.
# M: ~50,000 discharges and ≥ 2 GB of EF (seed 1: 2.10e9 bytes of EF, 12.3 M EF rows, 2.16e9 in all);
# L: twice M (≥ 4 GB in all).
SCALES: dict[str, dict[str, int]] = {
    "S": {"facilities": 3, "discharges_per_month": 333, "ef_rows_per_day": 10},
    "M": {"facilities": 20, "discharges_per_month": 2500, "ef_rows_per_day": 21},
    "L": {"facilities": 40, "discharges_per_month": 2500, "ef_rows_per_day": 21},
}
DEFAULT_REPEAT = {"S": 3, "M": 3, "L": 1}
# The backfill: 12 months of S's parameters, run as `make backfill FROM=202401 TO=202412` runs them.
BACKFILL_MONTHS = ("202401", "202412")
KINDS = ("limit", "peer", "project")  # the programs compared
MEASURED = ("limit", "kept", "peer", "project")  # kept: the limit keeping the rows, a floor
VARIANTS = ("one_per_state", "per_model", "watcher")
DEFAULT_VARIANTS = VARIANTS
DBT_STEPS = ("build_stage", "build_mart", "dbt_tests")
PARTIAL_PARSE_MISS = "Unable to do partial parsing"
COPY_RAW_TIMING = "copy_raw timing "
TIMEOUT_S = 4 * 3600
GB = 10**9
GIB = 2**30

# Issue 14's targets.
TARGET_X_LIMIT = 2.0  # M end to end ≤ 2.0× the limit
TARGET_X_PEER = 1.0  # M end to end ≤ 1.0× the peer
TARGET_LINEAR = 0.20  # L: seconds per GB within ±20 % of M's
TARGET_RSS_BYTES = 1.5e9  # peak RSS at M ≤ 1.5 GB (= 1.40 GiB)
TARGET_SMALL_S = 10.0  # S end to end
TARGET_BACKFILL_S = 120.0  # 12 small months
TARGET_SCHEDULER_S = 30.0  # issue 17: a small month through the real scheduler
SCHEDULER_MONTHS = ("202401", "202402", "202403")


# ------------------------------------------------------------------------------------------ helpers


def log(message: str) -> None:
    print(f"[bench {datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def base_env() -> dict[str, str]:
    """The environment of every child: the repo's venv, plugins on the path, no telemetry, no examples."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DPC_", "AIRFLOW"))}
    # Byte-code caches as on any real deployment, kept under bench/data/ (this environment may set
    # PYTHONDONTWRITEBYTECODE, which makes every interpreter compile Airflow, Cosmos and dbt anew).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        {
            "PYTHONPYCACHEPREFIX": str(PYCACHE),
            "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
            "PYTHONPATH": str(REPO / "plugins"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
            "DO_NOT_TRACK": "1",
            "DPC_MANIFEST_POKE_SECONDS": "1",
        }
    )
    return env


def _cpu_busy_s() -> float | None:
    """CPU seconds the whole machine has been busy since boot (``/proc/stat``; None elsewhere)."""
    try:
        with open("/proc/stat") as handle:
            values = [int(v) for v in handle.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = values
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run_child(args: list[str], env: dict[str, str], log_path: Path) -> dict[str, Any]:
    """Run one child process; return its wall time, CPU time and peak RSS (from wait4), its exit status
    and what else the machine did meanwhile: the load averages before and after, and the cores that
    other processes kept busy on average (machine busy time from /proc/stat minus the child's CPU)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    busy_before = _cpu_busy_s()
    with open(log_path, "w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = started + TIMEOUT_S
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    busy_after = _cpu_busy_s()
    load_after = os.getloadavg()
    cpu = usage.ru_utime + usage.ru_stime  # the child and the children it waited for (a pool's workers)
    others = None
    if busy_before is not None and busy_after is not None and wall > 0:
        others = round(max(0.0, (busy_after - busy_before - cpu) / wall), 2)
    return {
        "wall_s": round(wall, 3),
        "maxrss_mib": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB; the largest one process
        "cpu_s": round(cpu, 2),
        "exit_code": proc.returncode,
        # Other work on the machine inflates wall times: the 1-minute load average before and after
        # (kept under this name since issue 8), all three averages, and the cores others kept busy.
        "loadavg_1m": [round(load_before[0], 2), round(load_after[0], 2)],
        "loadavg": {"before": [round(v, 2) for v in load_before], "after": [round(v, 2) for v in load_after]},
        "others_busy_cores": others,
        "log": str(log_path.relative_to(REPO)),
    }


def child_cmd(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "_child", *args]


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def airflow_init(airflow_home: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [str(REPO / "scripts" / "airflow_init.sh")], env={**env, "AIRFLOW_HOME": str(airflow_home)}, check=True
    )
    return round(time.perf_counter() - started, 2)


def spread(values: list[float], digits: int = 3) -> dict[str, Any]:
    """n, min, median, max of repeated measurements."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "min": round(min(values), digits),
        "median": round(statistics.median(values), digits),
        "max": round(max(values), digits),
    }


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose wall time is the median (the lower one of the middle two for an even count)."""
    ranked = sorted(runs, key=lambda r: r["process"]["wall_s"])
    return ranked[(len(ranked) - 1) // 2]


# ------------------------------------------------------------------------------------------ generate


def month_files(root: Path, yyyymm: str) -> list[dict[str, Any]]:
    return read_json(root / f"yyyymm={yyyymm}" / "_manifest.json")["files"]


def generate(name: str, params: dict[str, int], months: tuple[str, str] = (MONTH, MONTH)) -> dict[str, Any]:
    """Synthetic months under ``bench/data/<name>/raw``, cached with the parameters they were made with."""
    params = {**params, "months": f"{months[0]}-{months[1]}", "seed": SEED}
    root = DATA_DIR / name
    raw = root / "raw"
    stamp = root / "generate.json"
    if stamp.exists() and (raw / f"yyyymm={months[1]}" / "_manifest.json").exists():
        cached = read_json(stamp)
        if cached.get("params") == params:
            cached["cached"] = True
            log(f"{name}: synthetic data cached in {raw.relative_to(REPO)}")
            return cached
    shutil.rmtree(root, ignore_errors=True)
    raw.mkdir(parents=True)
    log(f"{name}: generating {params}")
    cmd = [
        sys.executable,
        "-m",
        "dpc_elt.dev.synthetic",
        "--facilities",
        str(params["facilities"]),
        "--months",
        params["months"],
        "--discharges-per-month",
        str(params["discharges_per_month"]),
        "--ef-rows-per-day",
        str(params["ef_rows_per_day"]),
        "--seed",
        str(SEED),
        "--out",
        str(raw),
        "--quiet",
    ]
    child = run_child(cmd, base_env(), root / "generate.log")
    if child["exit_code"] != 0:
        raise SystemExit(f"generator failed, see {child['log']}")
    # The measured month (the last one): its files, bytes and rows, per file type.
    files = month_files(raw, months[1])
    types = ("y1", "ef_in", "d")
    rows = {t: sum(f["records"] for f in files if f["file_type"] == t) for t in types}
    result = {
        "params": params,
        "files": len(files),
        "bytes": sum(f["bytes"] for f in files),
        "bytes_by_type": {t: sum(f["bytes"] for f in files if f["file_type"] == t) for t in types},
        "rows": rows,
        "wall_s": child["wall_s"],
        "maxrss_mib": child["maxrss_mib"],
        "ef_rows_per_s": round(rows["ef_in"] / child["wall_s"]),
        "cached": False,
    }
    write_json(stamp, result)
    return result


# ------------------------------------------------------------------------------------------ orchestration


def measure_import(repeat: int) -> dict[str, Any]:
    """DAG file import beyond ``import airflow``: fresh interpreters, median of ``repeat`` each, after
    one untimed warm-up round that fills the byte-code cache."""
    work = DATA_DIR / "_import"
    home = work / "airflow"
    env = {**base_env(), "AIRFLOW_HOME": str(home), "DPC_DATA_DIR": str(work / "data")}
    airflow_init(home, env)
    walls: dict[str, list[float]] = {"airflow": [], "dag": [], "dbt": [], "processor": []}
    inner: dict[str, list[float]] = {"airflow": [], "dag": [], "dbt": [], "processor": []}
    for i in range(-1, repeat):
        for kind in walls:
            out = work / f"{kind}-{i}.json"
            child = run_child(child_cmd("import", "--kind", kind, "--out", str(out)), env, out.with_suffix(".log"))
            if child["exit_code"] != 0:
                raise SystemExit(f"import measurement failed, see {child['log']}")
            if i >= 0:
                data = read_json(out)
                walls[kind].append(child["wall_s"])
                inner[kind].append(data["after_airflow_s"] if kind != "airflow" else data["airflow_import_s"])

    def median(values: list[float]) -> float:
        return round(statistics.median(values), 3)

    return {
        "repeat": repeat,
        "airflow_only_wall_s": median(walls["airflow"]),
        "airflow_plus_dag_wall_s": median(walls["dag"]),
        "dag_beyond_airflow_s": round(median(walls["dag"]) - median(walls["airflow"]), 3),
        "import_airflow_in_process_s": median(inner["airflow"]),
        "dag_import_in_process_s": median(inner["dag"]),
        "dbt_import_in_process_s": median(inner["dbt"]),
        "dag_beyond_processor_in_process_s": median(inner["processor"]),
    }


def scale_env(scale: str, run: Path, airflow_home: Path, dags: Path) -> dict[str, str]:
    env = base_env()
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__COSMOS__CACHE_DIR": str(run / "cosmos-cache"),
            "DPC_DATA_DIR": str(run / "data"),
            "DPC_RAW_ROOT": str(DATA_DIR / scale / "raw"),
        }
    )
    return env


def count_in_log(path: Path, needle: str) -> int:
    with open(path, errors="replace") as handle:
        return sum(line.count(needle) for line in handle)


def warehouse_files(run: Path) -> list[Path]:
    base = run / "data" / "warehouse" / "dpc.duckdb"
    return [base, base.with_name(base.name + ".wal")]


def snapshot(run: Path) -> None:
    """Keep the warehouse as the DAG run left it: every later measurement starts from this state."""
    for path in warehouse_files(run):
        if path.exists():
            shutil.copy2(path, run / f"snapshot-{path.name}")


def restore(run: Path) -> None:
    for path in warehouse_files(run):
        saved = run / f"snapshot-{path.name}"
        path.unlink(missing_ok=True)
        if saved.exists():
            shutil.copy2(saved, path)


def dbt_manifest(env: dict[str, str]) -> None:
    """``make manifest`` for this run's warehouse path, as on a deployment: dbt keys its partial-parse
    state on the connection values, so a manifest parsed for another path would make the first task
    of each group parse the whole project. ``main`` parses it again for the caller's environment at the end."""
    subprocess.run([str(REPO / "scripts" / "dbt_manifest.sh")], env=env, check=True, stdout=subprocess.DEVNULL)


def copy_raw_timings(log_path: Path) -> dict[str, dict[str, Any]]:
    """The loader's ``copy_raw timing {json}`` lines (one per file type; the last one counts when a task
    ran again), with rates added. Empty when the loader wrote none."""
    found: dict[str, dict[str, Any]] = {}
    decoder = json.JSONDecoder()
    if not log_path.exists():
        return found
    with open(log_path, errors="replace") as handle:
        for line in handle:
            at = line.find(COPY_RAW_TIMING)
            if at < 0:
                continue
            text = line[at + len(COPY_RAW_TIMING) :].lstrip()
            for candidate in (text, text.replace('\\"', '"')):  # as is, or inside a JSON-rendered log line
                try:
                    data, _ = decoder.raw_decode(candidate)
                except ValueError:
                    continue
                if isinstance(data, dict) and "file_type" in data:
                    found[str(data["file_type"])] = data
                    break
    order = {t: i for i, t in enumerate(FIELD_COUNTS)}
    found = dict(sorted(found.items(), key=lambda kv: order.get(kv[0], len(order))))
    for data in found.values():
        # transcode_s: the workers' CPU seconds on this type's pieces (checks and cp932 -> UTF-8), spread
        # over all cores; transcode_phase_s: the wall seconds of that phase, all types together;
        # insert_s: the wall seconds of this type's one insert.
        cpu = float(data.get("transcode_s") or 0)
        data["transcode_mib_per_cpu_s"] = round(data.get("bytes", 0) / 2**20 / cpu, 1) if cpu else None
    return found


def measure(kind: str, scale: str, run: Path, repeat: int, env: dict[str, str]) -> dict[str, Any]:
    """One measurement of the limit (kept: keeping the rows), the peer or the project, in a fresh process."""
    out = run / f"{kind}-{repeat}.json"
    out.unlink(missing_ok=True)
    if kind == "project":
        # A fresh warehouse and Cosmos cache each time: every repeat is the month's first load.
        shutil.rmtree(run / "data", ignore_errors=True)
        shutil.rmtree(run / "cosmos-cache", ignore_errors=True)
        child = run_child(child_cmd("dag", "--out", str(out)), env, out.with_suffix(".log"))
        data = read_json(out) if out.exists() else {"state": "no result"}
        data["partial_parse_misses"] = count_in_log(out.with_suffix(".log"), PARTIAL_PARSE_MISS)
        data["copy_raw_by_type"] = copy_raw_timings(out.with_suffix(".log"))
        data["ok"] = child["exit_code"] == 0 and data.get("state") == "success"
        forked = data.get("harness", {}).get("forkserver_cpu_s", 0.0)
        if forked:  # the piece workers' CPU belongs to the project, not to "others"
            child["cpu_s"] = round(child["cpu_s"] + forked, 2)
            if child["others_busy_cores"] is not None:
                child["others_busy_cores"] = round(max(0.0, child["others_busy_cores"] - forked / child["wall_s"]), 2)
    else:
        raw, work = DATA_DIR / scale / "raw", run / kind
        program = ("limit", "--keep-rows") if kind == "kept" else (kind,)
        child = run_child(
            child_cmd(*program, "--raw", str(raw), "--work", str(work), "--out", str(out)),
            base_env(),
            out.with_suffix(".log"),
        )
        if child["exit_code"] != 0 or not out.exists():
            raise SystemExit(f"{scale}: the {kind} failed, see {child['log']}")
        data = {**read_json(out), "ok": True}
    data["process"] = child
    data["repeat"] = repeat
    return data


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """min/median/max of the successful runs' wall, CPU and peak RSS."""
    ok = [r for r in runs if r.get("ok")]
    return {
        "runs": len(runs),
        "succeeded": len(ok),
        **{key: spread([r["process"][key] for r in ok]) for key in ("wall_s", "cpu_s", "maxrss_mib")},
    }


def bench_scale(scale: str, variants: list[str], repeat: int) -> dict[str, Any]:
    phases: dict[str, float] = {}
    began = time.perf_counter()
    result: dict[str, Any] = {"scale": scale, "month": MONTH, "code_fingerprint": code_fingerprint()}
    result.update({"generate": generate(scale, SCALES[scale]), "phases_s": phases, "repeat": repeat})
    phases["generate"] = round(time.perf_counter() - began, 1)
    run = DATA_DIR / scale / "run"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)

    def phase(name: str, since: float) -> None:
        phases[name] = round(time.perf_counter() - since, 1)

    env = scale_env(scale, run, run / "airflow", REPO / "dags")
    result["airflow_init_s"] = airflow_init(run / "airflow", env)
    dbt_manifest(env)
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in MEASURED}
    for i in range(repeat):
        for kind in MEASURED:
            log(f"{scale}: {kind} ({i + 1}/{repeat})")
            began = time.perf_counter()
            runs[kind].append(measure(kind, scale, run, i, env))
            phase(f"{kind}_{i}", began)
            if kind == "project" and not runs[kind][-1]["ok"]:
                log(f"{scale}: dpc_elt run did not succeed ({runs[kind][-1].get('state')}), see {run}/project-{i}.log")
    result["runs"] = runs
    result["summary"] = {kind: summarize(runs[kind]) for kind in MEASURED}
    result["limit"] = median_run(runs["limit"])
    result["kept"] = median_run(runs["kept"])
    result["peer"] = median_run(runs["peer"])
    succeeded = [r for r in runs["project"] if r["ok"]]
    result["dag"] = median_run(succeeded) if succeeded else runs["project"][-1]
    last = runs["project"][-1]
    if not last["ok"]:
        derive(result)
        return result
    snapshot(run)  # the warehouse as the last project run left it

    log(f"{scale}: bare dbt build on the warehouse the run left")
    began = time.perf_counter()
    restore(run)
    out = run / "dbt_build.json"
    child = run_child(
        child_cmd("dbt-build", "--target-path", str(run / "dbt-target"), "--out", str(out)), env, run / "dbt_build.log"
    )
    result["bare_dbt"] = {**(read_json(out) if out.exists() else {}), "process": child}
    phase("bare_dbt", began)

    if variants:
        benv = scale_env(scale, run, run / "airflow-bench", BENCH_DIR / "dags")
        airflow_init(run / "airflow-bench", benv)
        result["variants"] = {}
        for variant in variants:
            log(f"{scale}: dbt part with {variant}")
            began = time.perf_counter()
            restore(run)
            out = run / f"variant-{variant}.json"
            benv["AIRFLOW__COSMOS__CACHE_DIR"] = str(run / f"cosmos-cache-{variant}")
            child = run_child(
                child_cmd("variant", "--variant", variant, "--out", str(out)), benv, out.with_suffix(".log")
            )
            data = read_json(out) if out.exists() else {"state": "no result"}
            data["process"] = child
            data["partial_parse_misses"] = count_in_log(out.with_suffix(".log"), PARTIAL_PARSE_MISS)
            result["variants"][variant] = data
            phase(f"variant_{variant}", began)
    for saved in run.glob("snapshot-*"):
        saved.unlink()
    derive(result)
    return result


def derive(result: dict[str, Any]) -> None:
    """Ratios of medians: project/limit, project/peer, peer/limit; per step against the limit; the dbt part."""
    summary = result["summary"]
    limit = summary["limit"]["wall_s"]["median"]
    limit_cpu = summary["limit"]["cpu_s"]["median"]
    peer = summary["peer"]["wall_s"]["median"]
    peer_cpu = summary["peer"]["cpu_s"]["median"]
    derived: dict[str, Any] = {
        "limit_s": limit,
        "kept_s": summary["kept"]["wall_s"]["median"] if "kept" in summary else None,
        "peer_s": peer,
        "peer_x_limit": round(peer / limit, 2),
        "gb": round(result["generate"]["bytes"] / GB, 3),
    }
    result["derived"] = derived
    dag = result["dag"]
    if not summary["project"]["succeeded"]:
        return
    project = summary["project"]["wall_s"]["median"]
    project_cpu = summary["project"]["cpu_s"]["median"]
    steps = dag["steps"]
    dbt_sum = sum(steps[s]["sum_s"] for s in DBT_STEPS if s in steps)
    dbt_span = sum(steps[s]["span_s"] for s in DBT_STEPS if s in steps)
    derived.update(
        {
            "end_to_end_s": project,
            "end_to_end_x_limit": round(project / limit, 2),
            "end_to_end_x_peer": round(project / peer, 2),
            "end_to_end_cpu_x_limit_cpu": round(project_cpu / limit_cpu, 2),
            "end_to_end_cpu_x_peer_cpu": round(project_cpu / peer_cpu, 2),
            "s_per_gb": {
                "limit": round(limit / derived["gb"], 2),
                "peer": round(peer / derived["gb"], 2),
                "project": round(project / derived["gb"], 2),
            },
            "run_span_x_limit": round(dag["run_span_s"] / limit, 2),
            "steps_x_limit": {s: round(v["sum_s"] / limit, 2) for s, v in steps.items()},
            "dbt_part_sum_s": round(dbt_sum, 2),
            "dbt_part_span_s": round(dbt_span, 2),
        }
    )
    bare = result.get("bare_dbt", {})
    if bare.get("build_s"):
        derived["bare_dbt_build_s"] = bare["build_s"]
        derived["dbt_part_x_bare_fresh_run"] = round(dbt_sum / bare["build_s"], 2)
        current = result.get("variants", {}).get("one_per_state", {})
        if current.get("dbt_part_sum_s"):
            derived["dbt_part_x_bare"] = round(current["dbt_part_sum_s"] / bare["build_s"], 2)
        for variant in result.get("variants", {}).values():
            if variant.get("dbt_part_sum_s"):
                variant["x_bare"] = round(variant["dbt_part_sum_s"] / bare["build_s"], 2)
                variant["span_x_bare"] = round(variant["dbt_part_span_s"] / bare["build_s"], 2)
                variant["x_limit"] = round(variant["dbt_part_sum_s"] / limit, 2)


def growth(scales: dict[str, Any]) -> dict[str, Any]:
    """Time and memory against data size between consecutive scales (medians): exponent 1 = linear;
    seconds per GB of the larger scale against the smaller one's."""

    names = [s for s in ("S", "M", "L") if "end_to_end_s" in scales.get(s, {}).get("derived", {})]
    out = {}
    for a, b in itertools.pairwise(names):
        ra, rb = scales[a], scales[b]
        da, db = ra["derived"], rb["derived"]
        size = rb["generate"]["bytes"] / ra["generate"]["bytes"]

        def exponent(x: float, y: float, size: float = size) -> float | None:
            return round(math.log(y / x) / math.log(size), 2) if x > 0 and y > 0 else None

        steps_a, steps_b = ra["dag"]["steps"], rb["dag"]["steps"]
        out[f"{a}->{b}"] = {
            "bytes_ratio": round(size, 2),
            "end_to_end_exponent": exponent(da["end_to_end_s"], db["end_to_end_s"]),
            "limit_exponent": exponent(da["limit_s"], db["limit_s"]),
            "peer_exponent": exponent(da["peer_s"], db["peer_s"]),
            "s_per_gb_ratio": round(db["s_per_gb"]["project"] / da["s_per_gb"]["project"], 3),
            "limit_s_per_gb_ratio": round(db["s_per_gb"]["limit"] / da["s_per_gb"]["limit"], 3),
            "dag_maxrss_ratio": round(
                rb["summary"]["project"]["maxrss_mib"]["max"] / ra["summary"]["project"]["maxrss_mib"]["max"], 2
            ),
            "step_exponents": {
                s: exponent(steps_a[s]["sum_s"], steps_b[s]["sum_s"])
                for s in steps_a
                if s in steps_b and steps_a[s]["sum_s"] > 0
            },
            # Seconds per GB of each step at the larger scale against the smaller one's.
            "step_s_per_gb_ratio": {
                s: round((steps_b[s]["sum_s"] / db["gb"]) / (steps_a[s]["sum_s"] / da["gb"]), 2)
                for s in steps_a
                if s in steps_b and steps_a[s]["sum_s"] > 0
            },
        }
    return out


def bench_backfill() -> dict[str, Any]:
    """12 small months through ``scripts/run_month.sh`` in one invocation, as ``make backfill`` runs it
    (after ``make install manifest``: the dbt manifest is built beforehand, Airflow's init is inside)."""
    name = "backfill"
    gen = generate(name, SCALES["S"], BACKFILL_MONTHS)
    run = DATA_DIR / name / "run"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    env = scale_env("S", run, run / "airflow", REPO / "dags")
    env["DPC_RAW_ROOT"] = str(DATA_DIR / name / "raw")
    dbt_manifest(env)
    months = subprocess.run(
        [str(REPO / "scripts" / "months.sh"), *BACKFILL_MONTHS], capture_output=True, text=True, check=True
    ).stdout.split()
    log(f"backfill: {len(months)} months {months[0]}..{months[-1]} through scripts/run_month.sh")
    child = run_child([str(REPO / "scripts" / "run_month.sh"), *months], env, run / "run_month.log")
    text = (run / "run_month.log").read_text(errors="replace")
    # run_local's summary line per month: "dpc_elt 202401: run <id> ended success in 9.8 s".
    ended = re.findall(r"dpc_elt (\d{6}): run \S+ ended (\w+) in ([\d,.]+) s", text)
    done = [(m, seconds.replace(",", "")) for m, state, seconds in ended if state == "success"]
    failed = [m for m, state, _ in ended if state != "success"]
    return {
        "failed_month": failed[0] if failed else None,
        "months": months,
        "generate": gen,
        "process": child,
        "ok": child["exit_code"] == 0 and len(done) == len(months),
        "month_s": {m: float(s) for m, s in done},
    }


def bench_scheduler() -> dict[str, Any]:
    """Small months through Airflow's real scheduler: PostgreSQL, an S3 server and Airflow's four
    components as processes (tests/topology/services.py, as `make services-up` starts them), one
    single-run backfill per month as `make backfill-services` makes them; each run timed by Airflow."""
    run = DATA_DIR / "scheduler"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    out = run / "scheduler.json"
    env = {**base_env(), "PYTHONPATH": f"{REPO / 'plugins'}:{REPO}"}
    log(f"scheduler: {len(SCHEDULER_MONTHS)} small months through the native topology")
    child = run_child(child_cmd("scheduler", "--out", str(out), "--work", str(run)), env, run / "scheduler.log")
    result = read_json(out) if out.exists() else {"months": {}}
    result["process"] = child
    return result


def code_fingerprint() -> str:
    """SHA-256 (first 12) over what the measured pipeline runs: dags/, plugins/dpc_elt/, include/."""
    import hashlib

    digest = hashlib.sha256()
    for folder in ("dags", "plugins/dpc_elt", "include/sql", "include/dbt/models", "include/dbt/macros"):
        for path in sorted((REPO / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def meta() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_head": git("rev-parse", "--short", "HEAD"),
        "git_dirty_files": len(git("status", "--porcelain").splitlines()),
        "code_fingerprint": code_fingerprint(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "packages": {
            name: installed(name)
            for name in ("apache-airflow", "astronomer-cosmos", "dbt-core", "dbt-duckdb", "duckdb", "polars")
        },
    }


def parse_repeat(spec: str, scales: list[str]) -> dict[str, int]:
    """``3`` (every scale) or ``S=3,M=1`` (the rest keep their default)."""
    repeat = {s: DEFAULT_REPEAT.get(s, 1) for s in scales}
    spec = spec.strip()
    if not spec:
        return repeat
    if "=" not in spec:
        return dict.fromkeys(scales, max(1, int(spec)))
    for part in spec.split(","):
        scale, _, count = part.partition("=")
        repeat[scale.strip().upper()] = max(1, int(count))
    return repeat


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default=os.environ.get("BENCH_SCALES", "S,M"))
    parser.add_argument(
        "--repeat",
        default=os.environ.get("BENCH_REPEAT", ""),
        help="repeats of limit, peer and project per scale: N, or S=3,M=1 (default "
        + ",".join(f"{s}={n}" for s, n in DEFAULT_REPEAT.items())
        + ")",
    )
    parser.add_argument(
        "--variants",
        default=os.environ.get("BENCH_VARIANTS", ",".join(DEFAULT_VARIANTS)),
        help=f"Cosmos variants of bench/dags to run, or 'all' ({', '.join(VARIANTS)})",
    )
    parser.add_argument(
        "--variant-scales",
        default=os.environ.get("BENCH_VARIANT_SCALES", ""),
        help="scales that get the variant runs (default: M if measured, else the first scale)",
    )
    parser.add_argument("--import-repeat", type=int, default=int(os.environ.get("BENCH_IMPORT_REPEAT", "5")))
    parser.add_argument(
        "--backfill",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get("BENCH_BACKFILL", "1") not in ("", "0", "false", "no"),
        help="also run 12 small months through scripts/run_month.sh (default; BENCH_BACKFILL=0 skips it)",
    )
    parser.add_argument(
        "--scheduler",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get("BENCH_SCHEDULER", "1") not in ("", "0", "false", "no"),
        help="also run small months through the real scheduler (native topology; BENCH_SCHEDULER=0 skips)",
    )
    parser.add_argument("--no-write", action="store_true", help="do not write results.{json,md}")
    parser.add_argument("--write-to", metavar="DIR", help="write results.{json,md} to DIR instead of bench/")
    parser.add_argument("--note", default="", help="a line under the title of results.md (e.g. a development run)")
    parser.add_argument("--render", metavar="JSON", help="only re-render results.md from a results file")
    args = parser.parse_args(argv)
    out_dir = Path(args.write_to) if args.write_to else BENCH_DIR
    if args.render:
        results = read_json(Path(args.render))
        if args.note:
            results["meta"]["note"] = args.note
        results["growth"] = growth(results["scales"])
        results["targets"] = targets(results)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / RESULTS_MD.name).write_text(render_markdown(results), encoding="utf-8")
        return 0
    scales = [s.strip().upper() for s in args.scales.split(",") if s.strip()]
    variants = list(VARIANTS) if args.variants.strip() == "all" else [v.strip() for v in args.variants.split(",")]
    variants = [v for v in variants if v]
    variant_scales = {s.strip().upper() for s in args.variant_scales.split(",") if s.strip()}
    if not variant_scales and scales:
        variant_scales = {"M"} if "M" in scales else {scales[0]}
    unknown = [s for s in scales if s not in SCALES] + [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown scale or variant: {unknown}; scales {list(SCALES)}, variants {list(VARIANTS)}")
    repeat = parse_repeat(args.repeat, scales)

    started = time.perf_counter()
    config = {
        "scales": scales,
        "repeat": repeat,
        "variants": variants,
        "variant_scales": sorted(variant_scales),
        "backfill": args.backfill,
        "scheduler": args.scheduler,
    }
    results: dict[str, Any] = {"meta": meta(), "config": config, "scales_defined": SCALES, "scales": {}}
    if args.note:
        results["meta"]["note"] = args.note
    log("DAG file import time")
    results["dag_import"] = measure_import(args.import_repeat)
    try:
        for scale in scales:
            results["scales"][scale] = bench_scale(scale, variants if scale in variant_scales else [], repeat[scale])
        if args.backfill:
            results["backfill"] = bench_backfill()
        if args.scheduler:
            results["scheduler"] = bench_scheduler()
    finally:
        dbt_manifest(dict(os.environ))  # as `make manifest` left it
    results["growth"] = growth(results["scales"])
    results["targets"] = targets(results)
    results["meta"]["bench_wall_s"] = round(time.perf_counter() - started, 1)
    if not args.no_write:
        write_json(out_dir / RESULTS_JSON.name, results)
        (out_dir / RESULTS_MD.name).write_text(render_markdown(results), encoding="utf-8")
        log(f"wrote {out_dir / RESULTS_JSON.name} and {out_dir / RESULTS_MD.name}")
    print(render_markdown(results))
    return 0


# ------------------------------------------------------------------------------------------ targets and report


def _gib(mib: float) -> float:
    return mib * 2**20 / GIB


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 14's targets (and issue 8's, for reference) with their measured status; met is None where
    the run did not measure it."""
    rows: list[dict[str, Any]] = []
    scales = results["scales"]

    def add(target: str, measured: str | None, met: bool | None, why: str = "", issue: int = 14) -> None:
        rows.append({"issue": issue, "target": target, "measured": measured or "not measured", "met": met, "why": why})

    def project_ok(name: str) -> bool:
        return "end_to_end_s" in scales.get(name, {}).get("derived", {})

    m = scales.get("M", {})
    if project_ok("M"):
        d, n = m["derived"], m["summary"]["project"]["succeeded"]
        add(
            f"M end to end ≤ {TARGET_X_LIMIT}× the limit",
            f"{d['end_to_end_x_limit']}× ({d['end_to_end_s']:.1f} s vs {d['limit_s']:.1f} s; medians of {n})",
            d["end_to_end_x_limit"] <= TARGET_X_LIMIT,
            end_to_end_reason(m, "limit", TARGET_X_LIMIT),
        )
        add(
            f"M end to end ≤ {TARGET_X_PEER}× the peer",
            f"{d['end_to_end_x_peer']}× ({d['end_to_end_s']:.1f} s vs {d['peer_s']:.1f} s; medians of {n})",
            d["end_to_end_x_peer"] <= TARGET_X_PEER,
            end_to_end_reason(m, "peer", TARGET_X_PEER),
        )
    else:
        why = "the project run did not succeed at M" if m else ""
        add(f"M end to end ≤ {TARGET_X_LIMIT}× the limit", None if not m else "failed", False if m else None, why)
        add(f"M end to end ≤ {TARGET_X_PEER}× the peer", None if not m else "failed", False if m else None, why)

    g = results.get("growth", {}).get("M->L")
    if g:
        add(
            f"L linear: seconds per GB within ±{TARGET_LINEAR:.0%} of M's",
            f"×{g['s_per_gb_ratio']} ({scales['L']['derived']['s_per_gb']['project']:.1f} s/GB at L vs "
            f"{m['derived']['s_per_gb']['project']:.1f} s/GB at M; limit ×{g['limit_s_per_gb_ratio']})",
            abs(g["s_per_gb_ratio"] - 1) <= TARGET_LINEAR,
            linear_reason(g),
        )
    else:
        add(f"L linear: seconds per GB within ±{TARGET_LINEAR:.0%} of M's", None, None)
    big = scales.get("L")
    if big:
        runs = big["runs"]["project"]
        caps = {r.get("duckdb_memory_limit") for r in runs}
        default = next(
            (r.get("duckdb_memory_limit_default") for r in runs if r.get("duckdb_memory_limit_default")), None
        )
        ok = all(r["ok"] for r in runs) and caps == {default}
        failed = sorted({t["task_id"] for r in runs for t in r.get("tasks", []) if t["state"] == "failed"})
        add(
            "L completes under the default DPC_DUCKDB_MEMORY_LIMIT",
            f"{sum(r['ok'] for r in runs)} of {len(runs)} runs succeeded with memory_limit "
            f"{', '.join(sorted(str(c) for c in caps))} (default {default})",
            ok,
            f"failed tasks: {', '.join(failed) or '–'}; see {runs[-1]['process']['log']}",
        )
    else:
        add("L completes under the default DPC_DUCKDB_MEMORY_LIMIT", None, None)

    if project_ok("M"):
        rss = m["summary"]["project"]["maxrss_mib"]
        add(
            f"peak RSS at M ≤ 1.5 GB ({TARGET_RSS_BYTES / GIB:.2f} GiB)",
            f"{_gib(rss['max']):.2f} GiB (max of {rss['n']}; median {_gib(rss['median']):.2f} GiB)",
            rss["max"] * 2**20 <= TARGET_RSS_BYTES,
            rss_reason(m),
        )
    else:
        add(f"peak RSS at M ≤ 1.5 GB ({TARGET_RSS_BYTES / GIB:.2f} GiB)", None, None)

    s = scales.get("S", {})
    if project_ok("S"):
        wall = s["summary"]["project"]["wall_s"]
        add(
            f"S (≈1,000 cases) end to end ≤ {TARGET_SMALL_S:.0f} s",
            f"{wall['median']:.1f} s (median of {wall['n']}; {wall['min']:.1f}–{wall['max']:.1f})",
            wall["median"] <= TARGET_SMALL_S,
            small_reason(s),
        )
    else:
        add(f"S (≈1,000 cases) end to end ≤ {TARGET_SMALL_S:.0f} s", "failed" if s else None, False if s else None)

    b = results.get("backfill")
    if b:
        wall = b["process"]["wall_s"]
        add(
            f"12-month backfill of small months ≤ {TARGET_BACKFILL_S:.0f} s",
            f"{wall:.0f} s for {len(b['month_s'])} of {len(b['months'])} months",
            b["ok"] and wall <= TARGET_BACKFILL_S,
            backfill_reason(b),
        )
    else:
        add(f"12-month backfill of small months ≤ {TARGET_BACKFILL_S:.0f} s", None, None, issue=14)

    sched = results.get("scheduler")
    name = f"a small month through the real scheduler ≤ {TARGET_SCHEDULER_S:.0f} s (issue 17)"
    done = [m for m in (sched or {}).get("months", {}).values() if m.get("state") == "success"]
    if done:
        per = spread([m["queued_to_end_s"] for m in done], 1)
        add(
            name,
            f"{per['median']:.0f} s queued to end (median of {len(done)}; {per['min']:.0f}–{per['max']:.0f})",
            per["median"] <= TARGET_SCHEDULER_S,
            scheduler_reason(done),
            issue=17,
        )
    else:
        add(name, "failed" if sched else None, False if sched else None, issue=17)

    # Issue 8's remaining targets, for reference.
    for name, scale in scales.items():
        d = scale.get("derived", {})
        if "dbt_part_x_bare" in d:
            add(
                f"dbt part ≤ 1.3× a bare dbt build at {name}",
                f"{d['dbt_part_x_bare']}× (re-run; first run {d['dbt_part_x_bare_fresh_run']}×)",
                d["dbt_part_x_bare"] <= 1.3,
                dbt_part_reason(scale),
                issue=8,
            )
    imp = results["dag_import"]
    add(
        "DAG file import ≤ 0.5 s beyond `import airflow`",
        f"{imp['dag_beyond_airflow_s']} s (in-process {imp['dag_import_in_process_s']} s; beyond what "
        f"Airflow's DAG-file processor has loaded: {imp.get('dag_beyond_processor_in_process_s', '–')} s)",
        imp["dag_beyond_airflow_s"] <= 0.5,
        f"beyond the modules Airflow's DAG-file processor has loaded before it reads a DAG file, the DAG "
        f"costs {imp.get('dag_beyond_processor_in_process_s', '–')} s; the rest is `airflow.models`, which "
        "Cosmos imports and `import airflow` alone does not load",
        issue=8,
    )
    return rows


def _breakdown(dag: dict[str, Any]) -> dict[str, float]:
    """Where one project run's wall time went: copy_raw, the dbt steps, the other tasks, outside the tasks."""
    steps = dag.get("steps", {})
    copy = steps.get("copy_raw", {}).get("sum_s", 0.0)
    dbt = sum(steps[s]["sum_s"] for s in DBT_STEPS if s in steps)
    tasks = dag.get("task_sum_s", 0.0)
    return {
        "wall": dag["process"]["wall_s"],
        "copy_raw": copy,
        "dbt": dbt,
        "other_tasks": max(0.0, tasks - copy - dbt),
        "outside": max(0.0, dag["process"]["wall_s"] - tasks),
    }


def _outside(dag: dict[str, Any]) -> str:
    h = dag.get("harness", {})
    if not h:
        return ""
    # run_month() around its DagRun: dbt's runner imported (and the heap frozen) before the first task,
    # the DAG parsed, the run created.
    around_run = max(0.0, dag.get("run_month_s", 0.0) - dag.get("run_span_s", 0.0))
    return (
        f" (imports {h.get('imports_s', 0):.1f} s, dag.test API start {h.get('execution_api_start_s', 0):.1f} s, "
        f"run_month() around the DagRun {around_run:.1f} s: dbt's import, the DAG parse, the run's creation; "
        f"{h.get('dag_parses', 0)} DAG parses {h.get('dag_parse_s', 0):.1f} s, gaps between tasks)"
    )


def end_to_end_reason(scale: dict[str, Any], against: str, target: float) -> str:
    """What the median project run spent, against the limit's or the peer's whole pass, from this run."""
    d, dag = scale["derived"], scale["dag"]
    ref = d["limit_s"] if against == "limit" else d["peer_s"]
    b = _breakdown(dag)
    if against == "limit":
        lim = scale["limit"]
        how = (
            f"the limit: {lim.get('cpus')} cores, split {lim.get('split_s', 0):.1f} s, parallel transcode "
            f"{lim.get('transcode_s', 0):.1f} s, one DuckDB pass {lim.get('query_s', 0):.1f} s"
        )
    else:
        peer = scale["peer"]
        how = (
            f"the peer: serial decode {peer.get('decode_s', 0):.1f} s, polars read_csv "
            f"{peer.get('read_csv_s', 0):.1f} s, aggregate and Parquet {peer.get('aggregate_s', 0):.1f} s"
        )
    parts = [
        f"the target allows {target * ref:.0f} s; the median run took {b['wall']:.0f} s ({how})",
        f"copy_raw alone {b['copy_raw']:.0f} s = {b['copy_raw'] / ref:.2f}× the {against}",
    ]
    timings = dag.get("copy_raw_by_type") or {}
    if timings:
        phase_s = next(iter(timings.values())).get("transcode_phase_s", 0)
        parts.append(
            "per file type "
            + ", ".join(
                f"{t} transcode {v.get('transcode_s', 0):.0f} CPU s + insert {v.get('insert_s', 0):.0f} s"
                for t, v in timings.items()
            )
            + f" (transcode phase, all types on all cores: {phase_s:.0f} s wall)"
        )
    else:
        parts.append("copy_raw per file type not reported")
    bare = d.get("bare_dbt_build_s")
    parts.append(
        f"the dbt steps {b['dbt']:.0f} s"
        + (f" (a bare dbt build alone {bare:.0f} s = {bare / ref:.2f}× the {against})" if bare else "")
    )
    parts.append(f"other tasks {b['other_tasks']:.0f} s; outside the tasks {b['outside']:.0f} s{_outside(dag)}")
    # What a faster copy_raw alone could reach: the rest of the run as measured, plus a copy_raw that
    # takes no longer than the limit's whole pass (the least any loader must do).
    rest, allowed, least = b["wall"] - b["copy_raw"], target * ref, d["limit_s"]
    at_best = rest + least
    parts.append(
        f"without copy_raw the run takes {rest:.0f} s, so with a copy_raw as fast as the limit's whole pass "
        f"({least:.0f} s) it would take {at_best:.0f} s"
        + (
            f", above the {allowed:.0f} s allowed: the steps besides copy_raw must shrink as well"
            if at_best > allowed
            else f", within the {allowed:.0f} s allowed: copy_raw is what to shrink"
        )
    )
    parts.append(_kept_floor(scale, allowed))
    return "; ".join(part for part in parts if part)


def _kept_floor(scale: dict[str, Any], allowed: float) -> str:
    """Whether any run that keeps the month's rows in the warehouse could meet ``allowed``: the limit
    keeping every line in in-memory tables, plus what Airflow costs before the first task of any DAG."""
    kept, h = scale["derived"].get("kept_s"), scale["dag"].get("harness", {})
    if not kept or not h:
        return ""
    airflow = h.get("imports_s", 0.0) + h.get("execution_api_start_s", 0.0)
    floor = kept + airflow
    head = (
        f"the limit keeping every line in in-memory DuckDB tables takes {kept:.0f} s "
        f"({scale['kept'].get('keep_s', 0):.0f} s of it storing the lines); with what Airflow spends before the "
        f"first task (imports {h.get('imports_s', 0):.1f} s, dag.test API start "
        f"{h.get('execution_api_start_s', 0):.1f} s) that is {floor:.0f} s"
    )
    if floor <= allowed:
        return f"{head}, within the {allowed:.0f} s allowed"
    # Without kept rows and without the API start, what still comes before the checks and the other tasks.
    least, imports = scale["derived"]["limit_s"], h.get("imports_s", 0.0)
    validate = scale["dag"].get("steps", {}).get("validate_manifest", {}).get("sum_s", 0.0)
    bare = scale["derived"].get("bare_dbt_build_s") or 0.0
    rest = least + imports + validate + bare
    left = (
        f"{allowed - rest:.0f} s left for the contract's line checks, the other tasks and Airflow's work per task"
        if rest < allowed
        else "already above it"
    )
    return (
        f"{head}, above the {allowed:.0f} s allowed before validation, the contract's checks or dbt: no run that "
        "keeps the month's rows in the warehouse (the design's delete-then-COPY into raw tables) meets this target "
        "on this machine. A raw layer that keeps no rows (the files read in place) and an execution API that "
        f"starts without building every API version's routes would still leave the limit's pass ({least:.0f} s), "
        f"the imports ({imports:.1f} s), validation ({validate:.1f} s) and a bare dbt build ({bare:.1f} s): "
        f"{rest:.0f} s of the {allowed:.0f} s, {left}"
    )


def linear_reason(g: dict[str, Any]) -> str:
    """The steps whose seconds per GB moved most between M and L."""
    ranked = sorted(g["step_s_per_gb_ratio"].items(), key=lambda kv: -abs(kv[1] - 1))[:4]
    return (
        "seconds per GB at L against M, per step: "
        + ", ".join(f"{step} ×{ratio}" for step, ratio in ranked)
        + f"; end-to-end exponent {g['end_to_end_exponent']} over {g['bytes_ratio']}× the bytes"
    )


def rss_reason(scale: dict[str, Any]) -> str:
    dag = scale["dag"]
    return (
        f"one process runs every task (dag.test); the tasks that raised its peak most (MiB): {_rss_steps(dag)}; "
        f"DuckDB memory_limit {dag.get('duckdb_memory_limit', '?')}"
    )


def small_reason(scale: dict[str, Any]) -> str:
    dag = scale["dag"]
    b = _breakdown(dag)
    steps = sorted(dag.get("steps", {}).items(), key=lambda kv: -kv[1]["sum_s"])[:4]
    return (
        f"of the median run's {b['wall']:.1f} s: outside the tasks {b['outside']:.1f} s{_outside(dag)}; "
        f"tasks {dag.get('task_sum_s', 0):.1f} s, most in "
        + ", ".join(
            f"{name} {v['sum_s']:.1f} s ({v['tasks']} task{'s' if v['tasks'] > 1 else ''})" for name, v in steps
        )
        + f"; the limit reads the same month in {scale['derived']['limit_s']:.1f} s"
        + _small_floor(scale, b)
    )


def _small_floor(scale: dict[str, Any], b: dict[str, float]) -> str:
    """What no task of ours can remove: the time outside the tasks plus dbt's own floor (a bare build)."""
    bare = scale["derived"].get("bare_dbt_build_s")
    if not bare:
        return ""
    floor = b["outside"] + bare
    if floor <= TARGET_SMALL_S:
        return (
            f"; outside the tasks ({b['outside']:.1f} s) plus a bare dbt build of the month ({bare:.1f} s) come to "
            f"{floor:.1f} s, within the {TARGET_SMALL_S:.0f} s target"
        )
    api = scale["dag"].get("harness", {}).get("execution_api_start_s", 0.0)
    without = b["wall"] - api
    return (
        f"; outside the tasks ({b['outside']:.1f} s) plus a bare dbt build of the month ({bare:.1f} s) come to "
        f"{floor:.1f} s, above the {TARGET_SMALL_S:.0f} s target before copy_raw or any other task runs; the "
        f"largest part is inside Airflow: the dag.test API start ({api:.1f} s), its execution API building the "
        f"routes of every API version on the first request; the run without it: {without:.1f} s, "
        + ("within" if without <= TARGET_SMALL_S else "still above")
        + f" the {TARGET_SMALL_S:.0f} s"
    )


def backfill_reason(b: dict[str, Any]) -> str:
    if not b["month_s"]:
        return f"no month finished, see {b['process']['log']}"
    per = spread([float(v) for v in b["month_s"].values()], 1)
    return (
        f"all months in one `dag.test` process: median {per['median']:.0f} s a month "
        f"({per['min']:.0f}–{per['max']:.0f}), so {len(b['months'])} months need "
        f"~{per['median'] * len(b['months']):.0f} s"
        + ("" if b["ok"] else f"; the run stopped at {b.get('failed_month') or '?'}, see {b['process']['log']}")
    )


def scheduler_reason(months: list[dict[str, Any]]) -> str:
    tasks = spread([m["task_sum_s"] for m in months], 1)
    gaps = spread([m["queued_to_end_s"] - m["task_sum_s"] for m in months], 1)
    slowest = sorted(months[-1].get("task_s", {}).items(), key=lambda kv: -kv[1])[:4]
    return (
        (f"slowest tasks {', '.join(f'{t} {s:.1f} s' for t, s in slowest)}; " if slowest else "")
        + f"every task is its own process under LocalExecutor: the {months[0]['tasks']} tasks of a month add up "
        f"to {tasks['median']:.0f} s (each starts Python, Airflow and the DAG; the dbt tasks dbt too), and the "
        f"scheduler's hand-offs between them {gaps['median']:.0f} s more"
    )


def dbt_part_reason(scale: dict[str, Any]) -> str:
    """The fixed cost per dbt invocation: today's three tasks against one bare build of the same nodes."""
    variant = scale.get("variants", {}).get("one_per_state", {})
    bare = scale.get("bare_dbt", {}).get("build_s")
    tasks = variant.get("tasks", [])
    if not tasks or not bare:
        return "–"
    total = sum(t["duration_s"] for t in tasks)
    return (
        f"{len(tasks)} dbt invocations (one per dbt state) took {total:.1f} s for a bare build of "
        f"{bare:.1f} s: {(total - bare) / len(tasks):.2f} s of fixed cost per invocation (dbt start-up and its "
        "partial parse, Cosmos' project copy and lineage, Airflow's task bookkeeping); per-model tasks "
        "(the design before) and Cosmos' WATCHER mode measured slower in the same run"
    )


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _rss_steps(run: dict[str, Any], top: int = 3) -> str:
    after = run.get("harness", {}).get("maxrss_after_task_mib")
    if not after:
        return "–"
    steps: dict[str, float] = {}
    previous = run["harness"].get("maxrss_before_tasks_mib", 0.0)
    for task_id, peak in after.items():
        step = task_id.split(".", 1)[0]
        steps[step] = steps.get(step, 0.0) + max(0.0, peak - previous)
        previous = max(previous, peak)
    ranked = sorted(steps.items(), key=lambda kv: -kv[1])[:top]
    return ", ".join(f"{step} +{grow:,.0f}" for step, grow in ranked if grow > 0)


def _spread_text(s: dict[str, Any], digits: int = 1) -> str:
    """median (min–max) of a spread; just the value for one run."""
    if not s.get("n"):
        return "–"
    if s["n"] == 1:
        return f"{s['median']:,.{digits}f}"
    return f"{s['median']:,.{digits}f} ({s['min']:,.{digits}f}–{s['max']:,.{digits}f})"


def _load_text(process: dict[str, Any]) -> str:
    before, after = process["loadavg_1m"]
    others = process.get("others_busy_cores")
    return f"{before} → {after}" + ("" if others is None else f"; others {others}")


def _render_scales(results: dict[str, Any], lines: list[str]) -> None:
    """The per-scale sections of results.md: data and end to end, every measurement, the ASL steps,
    copy_raw per file type, the dbt part."""
    scales = results["scales"]
    names = list(scales)
    lines += ["## Data and end to end", "", "| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]

    def row(label: str, values: list[Any]) -> None:
        lines.append(f"| {label} | " + " | ".join(_fmt(v) for v in values) + " |")

    def each(fn: Any) -> list[Any]:
        out = []
        for s in names:
            try:
                out.append(fn(scales[s]))
            except (KeyError, TypeError, ZeroDivisionError):
                out.append("–")
        return out

    row(
        "facilities × discharges/month; EF rows per day",
        each(
            lambda r: (
                f"{r['generate']['params']['facilities']} × {r['generate']['params']['discharges_per_month']}"
                f"; {r['generate']['params']['ef_rows_per_day']}"
            )
        ),
    )
    row(
        "raw GB (files); of it EF",
        each(
            lambda r: (
                f"{r['generate']['bytes'] / GB:,.2f} ({r['generate']['files']}); "
                f"{r['generate']['bytes_by_type']['ef_in'] / GB:,.2f}"
            )
        ),
    )
    row(
        "rows y1 / ef_in / d", each(lambda r: " / ".join(f"{r['generate']['rows'][t]:,}" for t in ("y1", "ef_in", "d")))
    )
    row(
        "cases (discharged): limit / peer",
        each(
            lambda r: (
                f"{r['limit']['cases']:,} ({r['limit']['discharged']:,}) / "
                f"{r['peer']['cases']:,} ({r['peer']['discharged']:,})"
            )
        ),
    )
    row("code fingerprint (dags, plugins, SQL, dbt)", each(lambda r: f"`{r.get('code_fingerprint', '–')}`"))
    row("repeats", each(lambda r: r["repeat"]))
    row("**limit**: wall s", each(lambda r: _spread_text(r["summary"]["limit"]["wall_s"])))
    row("… CPU s", each(lambda r: _spread_text(r["summary"]["limit"]["cpu_s"])))
    row(
        "… split / transcode (pieces) / DuckDB",
        each(
            lambda r: (
                f"{r['limit']['split_s']:.1f} / {r['limit']['transcode_s']:.1f} ({r['limit']['pieces']}) / "
                f"{r['limit']['query_s']:.1f}"
            )
        ),
    )
    row(
        "limit keeping the rows (floor, not compared): wall s",
        each(lambda r: _spread_text(r["summary"]["kept"]["wall_s"])),
    )
    row(
        "… transcode / every line into in-memory tables / DuckDB pass over them",
        each(lambda r: f"{r['kept']['transcode_s']:.1f} / {r['kept']['keep_s']:.1f} / {r['kept']['query_s']:.1f}"),
    )
    row("**peer** (polars): wall s", each(lambda r: _spread_text(r["summary"]["peer"]["wall_s"])))
    row("… CPU s", each(lambda r: _spread_text(r["summary"]["peer"]["cpu_s"])))
    row(
        "… decode / read_csv / aggregate + Parquet",
        each(lambda r: f"{r['peer']['decode_s']:.1f} / {r['peer']['read_csv_s']:.1f} / {r['peer']['aggregate_s']:.1f}"),
    )
    row("**project** (dpc_elt end to end): wall s", each(lambda r: _spread_text(r["summary"]["project"]["wall_s"])))
    row(
        "… runs that failed",
        each(lambda r: r["summary"]["project"]["runs"] - r["summary"]["project"]["succeeded"]),
    )
    row("… CPU s", each(lambda r: _spread_text(r["summary"]["project"]["cpu_s"])))
    row(
        "**project / limit**: wall (CPU)",
        each(lambda r: f"**{r['derived']['end_to_end_x_limit']}** ({r['derived']['end_to_end_cpu_x_limit_cpu']})"),
    )
    row(
        "**project / peer**: wall (CPU)",
        each(lambda r: f"**{r['derived']['end_to_end_x_peer']}** ({r['derived']['end_to_end_cpu_x_peer_cpu']})"),
    )
    row("peer / limit: wall", each(lambda r: r["derived"]["peer_x_limit"]))
    row(
        "s per GB: limit / peer / project",
        each(lambda r: " / ".join(f"{r['derived']['s_per_gb'][k]:.1f}" for k in KINDS)),
    )
    row(
        "… median project run: run_month() / DagRun span / sum of task durations",
        each(
            lambda r: (
                f"{r['dag'].get('run_month_s', 0):.1f} / {r['dag'].get('run_span_s', 0):.1f} / "
                f"{r['dag'].get('task_sum_s', 0):.1f}"
            )
        ),
    )
    row(
        "… imports / dag.test API start / DAG parses (n)",
        each(
            lambda r: "{imports_s:.1f} / {execution_api_start_s:.1f} / {dag_parse_s:.1f} ({dag_parses})".format(
                **r["dag"]["harness"]
            )
        ),
    )
    row(
        "peak RSS GiB (max): project / limit / peer",
        each(
            lambda r: " / ".join(
                f"{_gib(r['summary'][k]['maxrss_mib']['max']):.2f}" for k in ("project", "limit", "peer")
            )
        ),
    )
    row("… DuckDB memory_limit of the project", each(lambda r: r["dag"].get("duckdb_memory_limit")))
    row("dbt partial-parse misses in the median run", each(lambda r: r["dag"].get("partial_parse_misses")))
    row("tasks that raised the peak RSS most (MiB)", each(lambda r: _rss_steps(r["dag"])))

    lines += ["", "## Every measurement (in the order run)", ""]
    lines += ["| scale | # | what | wall s | CPU s | peak RSS GiB | load 1 min before → after; others' busy cores |"]
    lines += ["|---|---|---|---|---|---|---|"]
    for s in names:
        runs = scales[s].get("runs", {})
        for i in range(scales[s].get("repeat", 0)):
            for kind in MEASURED:
                if i >= len(runs.get(kind, [])):
                    continue
                r = runs[kind][i]
                p = r["process"]
                state = "" if r.get("ok") else f" ({r.get('state', 'failed')})"
                lines.append(
                    f"| {s} | {i + 1} | {kind}{state} | {p['wall_s']:.1f} | {p['cpu_s']:.1f} "
                    f"| {_gib(p['maxrss_mib']):.2f} | {_load_text(p)} |"
                )

    lines += [
        "",
        "## Per ASL step (median project run: sum of task durations; ×limit)",
        "",
        "| step | tasks | " + " | ".join(names) + " |",
    ]
    lines.append("|---|---|" + "---|" * len(names))
    # The children record steps in the DAG's order (_steps); the union keeps it across scales.
    for step in dict.fromkeys(step for s in names for step in scales[s]["dag"].get("steps", {})):
        present = [scales[s]["dag"].get("steps", {}).get(step) for s in names]
        if not any(present):
            continue
        tasks = next(p["tasks"] for p in present if p)
        cells = []
        for s, p in zip(names, present, strict=True):
            x = scales[s].get("derived", {}).get("steps_x_limit", {}).get(step)
            cells.append("–" if not p else f"{p['sum_s']:,.1f} ({x}×)")
        lines.append(f"| {step} | {tasks} | " + " | ".join(cells) + " |")

    lines += ["", "## copy_raw per file type (the loader's `copy_raw timing` log lines, median project run)", ""]
    lines += [
        "Transcode: the workers' CPU seconds on the type's pieces (checks, cp932 → UTF-8), spread over all "
        "cores; the phase runs all types at once, so its wall time repeats on each row of a scale. Insert: wall "
        "seconds of the type's one `INSERT … FROM read_csv`.",
        "",
        "| scale | file type | rows | MiB | transcode CPU s | MiB per CPU s | transcode phase wall s | insert wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in names:
        timings = scales[s]["dag"].get("copy_raw_by_type") or {}
        if not timings:
            lines.append(f"| {s} | not reported | | | | | | |")
        for ftype, c in timings.items():
            lines.append(
                f"| {s} | {ftype} | {_fmt(c.get('rows'))} | {_fmt(c.get('bytes', 0) / 2**20, 0)} "
                f"| {_fmt(c.get('transcode_s'), 2)} | {_fmt(c.get('transcode_mib_per_cpu_s'), 0)} "
                f"| {_fmt(c.get('transcode_phase_s'), 2)} | {_fmt(c.get('insert_s'), 2)} |"
            )

    lines += ["", "## The dbt part: Cosmos against a bare `dbt build` (same warehouse state, same month)", ""]
    lines += [
        "| scale | how | tasks | sum of task durations | span (with gaps) | ×bare | ×limit | process CPU s "
        "| peak RSS MiB | partial-parse misses |"
    ]
    lines += ["|---|---|---|---|---|---|---|---|---|---|"]
    for s in names:
        d = scales[s].get("derived", {})
        bare = scales[s].get("bare_dbt", {})
        if bare.get("build_s"):
            lines.append(
                f"| {s} | bare `dbt build` (dbtRunner, warm parse; cold parse +{bare['parse_s']:.1f} s) | 1 "
                f"| {bare['build_s']:.1f} | – | 1.00 "
                f"| {bare['build_s'] / d['limit_s']:.2f} | {bare['process']['cpu_s']:.0f} "
                f"| {bare['process']['maxrss_mib']:,.0f} | – |"
            )
        elif bare:
            lines.append(
                f"| {s} | bare `dbt build` | – | failed (see `bench/data/{s}/run/dbt_build.log`) | | | | | | |"
            )
        if "dbt_part_sum_s" in d:
            lines.append(
                f"| {s} | dpc_elt, median run above (first load of the month) "
                f"| {sum(scales[s]['dag']['steps'][x]['tasks'] for x in DBT_STEPS if x in scales[s]['dag']['steps'])} "
                f"| {d['dbt_part_sum_s']:.1f} | {d['dbt_part_span_s']:.1f} | {d.get('dbt_part_x_bare_fresh_run', '–')} "
                f"| {d['dbt_part_sum_s'] / d['limit_s']:.2f} | – | – | {scales[s]['dag']['partial_parse_misses']} |"
            )
        for name, v in scales[s].get("variants", {}).items():
            if v.get("state") != "success":
                lines.append(
                    f"| {s} | {name} | – | failed ({v.get('state')}; see `bench/data/{s}/run/variant-{name}.log`) "
                    "| | | | | | |"
                )
                continue
            lines.append(
                f"| {s} | {name} | {v['task_count']} | {v['dbt_part_sum_s']:.1f} | {v['dbt_part_span_s']:.1f} "
                f"| {v.get('x_bare', '–')} "
                f"| {v.get('x_limit', '–')} | {v['process']['cpu_s']:.0f} | {v['process']['maxrss_mib']:,.0f} "
                f"| {v['partial_parse_misses']} |"
            )
    bare_nodes = [(s, scales[s].get("bare_dbt", {}).get("slowest", [])) for s in names]
    if any(n for _, n in bare_nodes):
        lines += ["", "Slowest nodes of the bare build (dbt's own execution time):", ""]
        for s, nodes in bare_nodes:
            if nodes:
                lines.append(f"- {s}: " + ", ".join(f"{n['node']} {n['s']:.1f} s" for n in nodes[:6]))


def render_markdown(results: dict[str, Any]) -> str:
    m = results["meta"]
    scales = results["scales"]
    names = list(scales)
    pk = m["packages"]
    lines = ["# dpc_elt benchmark — latest measured results", ""]
    if m.get("note"):
        lines += [f"> **{m['note']}**", ""]
    lines += [
        f"Measured {m['measured_at']} at `{m['git_head']}` ({m['git_dirty_files']} uncommitted files) on "
        f"{m['cpus']} CPUs / {m['memory_gib']} GiB, Python {m['python']}, Airflow {pk['apache-airflow']}, "
        f"Cosmos {pk['astronomer-cosmos']}, dbt-core {pk['dbt-core']}, dbt-duckdb {pk['dbt-duckdb']}, "
        f"DuckDB {pk['duckdb']}, polars {pk.get('polars', '–')}; `make bench` took {m.get('bench_wall_s', 0) / 60:.0f} "
        "min. Produced by `bench/run_bench.py` (`make bench`); findings in `docs/performance.md`.",
        "",
        "Times in seconds: median (min–max) over the repeats; ratios are of medians. The **limit** is the least "
        "work any loader must do, on all cores (line-aligned pieces transcoded cp932 → UTF-8 in a process pool, "
        "one multi-threaded DuckDB pass, Parquet); the **peer** is a straightforward polars script (per file: "
        "decode cp932, `polars.read_csv`, then aggregate, Parquet); the **project** is the whole `dpc_elt` DAG "
        "(`dag.test`, fresh warehouse). Data in GB = 10^9 bytes; memory in GiB = 2^30 bytes. Load: the 1-minute "
        "load average before → after a measurement, and the cores other processes kept busy during it.",
        "",
    ]
    if names:
        _render_scales(results, lines)

    b = results.get("backfill")
    if b:
        lines += ["", "## Backfill: 12 small months through `scripts/run_month.sh` (`make backfill`)", ""]
        lines.append(
            f"{b['months'][0]}..{b['months'][-1]}, {b['generate']['params']['facilities']} × "
            f"{b['generate']['params']['discharges_per_month']} discharges a month: **{b['process']['wall_s']:.0f} s** "
            f"in all ({'succeeded' if b['ok'] else 'did not finish'}; CPU {b['process']['cpu_s']:.0f} s; load "
            f"{_load_text(b['process'])}); per month (s): "
            + ", ".join(f"{k} {v}" for k, v in b["month_s"].items())
            + "."
        )

    imp = results["dag_import"]
    lines += [
        "",
        f"## DAG file import (fresh interpreters, median of {imp['repeat']})",
        "",
        f"`import airflow` alone {imp['airflow_only_wall_s']} s; with `dags/dpc_elt.py` "
        f"{imp['airflow_plus_dag_wall_s']} s: **{imp['dag_beyond_airflow_s']} s beyond `import airflow`** "
        f"(timed inside the interpreter: {imp['dag_import_in_process_s']} s). Beyond what Airflow's DAG-file "
        f"processor (`airflow.dag_processing.processor`) has imported before it reads a DAG file: "
        f"{imp.get('dag_beyond_processor_in_process_s', '–')} s (Cosmos imports `airflow.models`, which "
        "`import airflow` alone does not load). Importing dbt's runner and "
        f"the duckdb adapter after Airflow, as each Cosmos task process does: {imp['dbt_import_in_process_s']} s.",
    ]
    sched = results.get("scheduler")
    if sched and sched.get("months"):
        lines += ["", "## Small months through the real scheduler (native topology, LocalExecutor)", ""]
        lines += [f"Topology started and seeded in {sched.get('start_s', '–')} s.", ""]
        lines += ["| month | state | queued → end s | start → end s | sum of task durations s | tasks |"]
        lines += ["|---|---|---|---|---|---|"]
        for month, m in sched["months"].items():
            lines.append(
                f"| {month} | {m['state']} | {m['queued_to_end_s']} | {m['start_to_end_s']} "
                f"| {m['task_sum_s']} | {m['tasks']} |"
            )
    groups = (
        (14, "## Targets of issue 14"),
        (17, "## Target of issue 17"),
        (8, "## Earlier targets (issue 8), for reference"),
    )
    for issue, title in groups:
        lines += ["", title, "", "| target | measured | met | why not (from this run's numbers) |", "|---|---|---|---|"]
        for t in results["targets"]:
            if t.get("issue", 14) != issue:
                continue
            met = "–" if t["met"] is None else ("yes" if t["met"] else "**no**")
            why = t.get("why", "") if t["met"] is False else ""
            lines.append(f"| {t['target']} | {t['measured']} | {met} | {why} |")
    if results["growth"]:
        lines += [
            "",
            "Growth per step between scales (medians; time ∝ bytes^k: 1 = linear, < 1 = fixed costs still dominate):",
            "",
        ]
        for pair, g in results["growth"].items():
            steps = ", ".join(f"{k} {v}" for k, v in g["step_exponents"].items())
            lines.append(
                f"- {pair} (bytes ×{g['bytes_ratio']}): limit {g['limit_exponent']}, peer {g['peer_exponent']}, "
                f"end to end {g['end_to_end_exponent']} (s per GB ×{g['s_per_gb_ratio']}); {steps}"
            )
    lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ children


def child_import(kind: str, out: str) -> None:
    """One fresh interpreter: ``import airflow`` and then, for kind ``dag``, the DAG file (as the
    dag-processor does) or, for kind ``dbt``, dbt's runner and adapter (as a Cosmos task does). Kind
    ``processor`` first imports Airflow's DAG-file processor, whose process parses DAG files, then
    the DAG file: what parsing costs beyond what that process has loaded already."""
    import importlib.util

    started = time.perf_counter()
    import airflow

    if kind == "processor":
        import airflow.dag_processing.processor  # noqa: F401
    after_airflow = time.perf_counter()
    if kind in ("dag", "processor"):
        spec = importlib.util.spec_from_file_location("dpc_elt_dag_file", REPO / "dags" / "dpc_elt.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    elif kind == "dbt":
        import dbt.adapters.duckdb  # noqa: F401
        from dbt.cli.main import dbtRunner  # noqa: F401
    write_json(
        Path(out),
        {"airflow_import_s": after_airflow - started, "after_airflow_s": time.perf_counter() - after_airflow},
    )


# The contract's layouts, as far as the limit and the peer need them (shared/notes/dpc-data-contract.md
# §1): field count per file type, the names of the columns they aggregate (1-based positions), and
# the header line's second field. Kept here, not imported from dpc_elt: neither pass may run our code.
FIELD_COUNTS = {"y1": 17, "ef_in": 31, "d": 30}
USED_COLUMNS = {
    "y1": {
        "facility_cd": 1, "patient_id": 2, "admission_date": 3, "admission_seq_no": 4, "summary_no": 5,
        "item_code": 6, "payload_1": 9, "payload_5": 13,
    },
    "ef_in": {"facility_cd": 1, "patient_id": 2, "admission_date": 4, "detail_points": 14},
    "d": {
        "facility_cd": 1, "patient_id": 2, "admission_date": 4, "data_category": 5, "act_points": 11,
        "dpc_code": 29,
    },
}  # fmt: skip
HEADER_SECOND_FIELDS = ("データ識別番号", "ﾃﾞｰﾀ識別番号")
SOURCE_ENCODING = "cp932"
# The limit cuts a file into about cpus × PIECES_PER_CPU pieces, none smaller than MIN_PIECE_BYTES.
PIECES_PER_CPU = 4
KEPT_MEMORY_LIMIT = "1GB"  # the limit keeping the rows: the project's default DPC_DUCKDB_MEMORY_LIMIT
MIN_PIECE_BYTES = 8 << 20


def _is_header(first_line: bytes) -> bool:
    fields = first_line.split(b"\t", 2)
    return len(fields) > 1 and fields[1] in {h.encode(SOURCE_ENCODING) for h in HEADER_SECOND_FIELDS}


def _month_files(raw: str) -> tuple[Path, list[dict[str, Any]]]:
    month_dir = Path(raw) / f"yyyymm={MONTH}"
    return month_dir, read_json(month_dir / "_manifest.json")["files"]


def _case_query(sources: dict[str, str], parquet: Path) -> str:
    """One row per case: the y1 case items pivoted, EF and D rows aggregated per stay, joined on the
    stay (facility, patient, admission date), written to one Parquet. ``sources`` holds one table
    expression per file type whose columns are named as in USED_COLUMNS."""
    return f"""
        copy (
            with y1 as (
                select facility_cd, patient_id, admission_date, admission_seq_no,
                    max(case when item_code = 'A000030' then payload_1 end) as discharge_date,
                    max(case when item_code = 'A000020' then payload_5 end) as admission_type,
                    count(*) as y1_items
                from {sources["y1"]}
                where summary_no = '0'
                group by all
            ),
            ef as (
                select facility_cd, patient_id, admission_date,
                    count(*) as ef_rows, sum(try_cast(detail_points as decimal(18, 2))) as ef_points
                from {sources["ef_in"]}
                group by all
            ),
            d as (
                select facility_cd, patient_id, admission_date,
                    count(*) as d_rows, sum(try_cast(act_points as bigint)) as d_points,
                    max(case when data_category = '93' then dpc_code end) as dpc_code
                from {sources["d"]}
                group by all
            )
            select y1.*, ef.ef_rows, ef.ef_points, d.d_rows, d.d_points, d.dpc_code
            from y1
            left join ef using (facility_cd, patient_id, admission_date)
            left join d using (facility_cd, patient_id, admission_date)
        ) to '{parquet}' (format parquet, compression snappy)
    """  # noqa: S608 - benchmark SQL over our own file names


def _count_cases(parquet: Path) -> tuple[int, int]:
    """Cases and discharged cases (a real discharge date) in a case Parquet."""
    import duckdb

    with duckdb.connect() as con:
        return con.execute(
            "select count(*), count(*) filter (where discharge_date not in ('00000000', '99999999')) "
            "from read_parquet(?)",
            [str(parquet)],
        ).fetchone()


def _split_lines(path: Path, size: int, pieces: int) -> list[tuple[int, int]]:
    """``pieces`` byte ranges of about equal size, each ending just after a b"\\n" (or at the end)."""
    bounds = [0]
    with open(path, "rb") as handle:
        for k in range(1, pieces):
            target = size * k // pieces
            if target <= bounds[-1]:
                continue
            handle.seek(target)
            handle.readline()
            cut = handle.tell()
            if cut >= size:
                break
            bounds.append(cut)
    bounds.append(size)
    return list(itertools.pairwise(bounds))


def _transcode_piece(task: tuple[str, int, int, str]) -> tuple[int, int]:
    """One piece cp932 → UTF-8 into its own file; the header line of a file's first piece is left out.
    Decoding is the only check. Returns (source bytes, lines)."""
    source, start, end, target = task
    with open(source, "rb") as handle:
        handle.seek(start)
        data = handle.read(end - start)
    view = memoryview(data)
    lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    if start == 0:
        newline = data.find(b"\n")
        if _is_header(data[: newline if newline >= 0 else len(data)]):
            view = view[newline + 1 :] if newline >= 0 else view[:0]
            lines -= 1
    with open(target, "wb") as handle:
        handle.write(str(view, SOURCE_ENCODING).encode("utf-8"))
    return len(data), lines


def child_limit(raw: str, work: str, out: str, keep_rows: bool = False) -> None:
    """The limit: the least work any loader of the month must do, on all of the machine's cores.

    Standard library and DuckDB only, one process: cut every file into line-aligned pieces, transcode
    the pieces cp932 → UTF-8 in a process pool (one worker per core), then one in-memory DuckDB
    connection (threads = cores) reads all pieces of each file type in one strict ``read_csv`` (every
    line must have the type's field count), aggregates per case and writes one Parquet.

    ``keep_rows``: DuckDB first stores every line of each file type, all columns, in a table of the
    in-memory database (``keep_s``), and the same pass reads the tables: the least a loader that keeps
    the month's rows must do. Under the project's 1 GB cap DuckDB spills what does not fit to temporary
    files; measured at M, that stores EF faster than a database file does (12.0 s against 15.6 s)."""
    from concurrent.futures import ProcessPoolExecutor

    started = time.perf_counter()
    cpu_started = time.process_time()
    cpus = os.cpu_count() or 1
    month_dir, files = _month_files(raw)
    work_dir = Path(work)
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    tasks: list[tuple[str, int, int, str]] = []
    pieces: dict[str, list[str]] = {t: [] for t in FIELD_COUNTS}
    for n, item in enumerate(files):
        path = month_dir / item["path"]
        size = path.stat().st_size
        wanted = max(1, min(cpus * PIECES_PER_CPU, size // MIN_PIECE_BYTES))
        for k, (start, end) in enumerate(_split_lines(path, size, wanted)):
            target = str(work_dir / f"{n:04d}-{k:03d}.tsv")
            tasks.append((str(path), start, end, target))
            pieces[item["file_type"]].append(target)
    for file_type, paths in pieces.items():
        if not paths:  # a month may lack a file type: read an empty piece
            paths.append(str(work_dir / f"empty-{file_type}.tsv"))
            Path(paths[0]).touch()
    split = time.perf_counter()

    # Largest pieces first, so that the last ones to finish are small. The pool forks before DuckDB
    # is imported (this module imports only the standard library at the top).
    tasks.sort(key=lambda t: t[2] - t[1], reverse=True)
    with ProcessPoolExecutor(max_workers=cpus) as pool:
        done = list(pool.map(_transcode_piece, tasks, chunksize=1))
    transcoded = time.perf_counter()

    import duckdb

    def source(file_type: str) -> str:
        names = {position: name for name, position in USED_COLUMNS[file_type].items()}
        columns = ", ".join(f"'{names.get(i, f'c{i:02d}')}': 'varchar'" for i in range(1, FIELD_COUNTS[file_type] + 1))
        paths = ", ".join(f"'{p}'" for p in pieces[file_type])
        return (
            f"read_csv([{paths}], columns = {{{columns}}}, delim = '\\t', header = false, quote = '', "
            "escape = '', auto_detect = false, strict_mode = true, parallel = true)"
        )

    parquet = work_dir / "case_summary.parquet"
    # Keeping the rows: under the project's memory cap, which measured faster than none at M (15.0 s
    # against 18.2 s of storing: without it the process faults in gigabytes of fresh pages).
    config = {"threads": cpus, **({"memory_limit": KEPT_MEMORY_LIMIT} if keep_rows else {})}
    with duckdb.connect(config=config) as con:
        sources = {t: source(t) for t in FIELD_COUNTS}
        if keep_rows:
            for file_type, expression in sources.items():
                con.execute(f"create table kept_{file_type} as select * from {expression}")  # noqa: S608 - our file names
            sources = {t: f"kept_{t}" for t in FIELD_COUNTS}
        kept = time.perf_counter()
        con.execute(_case_query(sources, parquet))
    queried = time.perf_counter()
    cpu_main = time.process_time() - cpu_started
    cases, discharged = _count_cases(parquet)
    total = sum(f["bytes"] for f in files)
    write_json(
        Path(out),
        {
            "cpus": cpus,
            "split_s": round(split - started, 3),
            "transcode_s": round(transcoded - split, 3),
            "keep_rows": keep_rows,
            "keep_s": round(kept - transcoded, 3),
            "query_s": round(queried - kept, 3),
            "in_process_s": round(queried - started, 3),
            "main_process_cpu_s": round(cpu_main, 2),
            "pieces": len(tasks),
            "lines": sum(lines for _, lines in done),
            "bytes": total,
            "transcode_mib_per_s": round(total / 2**20 / (transcoded - split), 1),
            "cases": cases,
            "discharged": discharged,
            "parquet_bytes": parquet.stat().st_size,
        },
    )
    shutil.rmtree(work_dir, ignore_errors=True)


def child_peer(raw: str, work: str, out: str) -> None:
    """The peer: the script a capable analyst writes with polars for the same month, one file at a time.

    Read each file, decode cp932 (the whole file at once), hand the UTF-8 bytes to ``polars.read_csv``
    (TAB, no quoting, every column a string, the header line recognised), check the field count, keep
    the columns the summary needs; then aggregate per case as the limit does and write the month's
    Parquet. Polars uses its own thread pool; nothing else runs in parallel."""
    import polars as pl

    started = time.perf_counter()
    month_dir, files = _month_files(raw)
    work_dir = Path(work)
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    frames: dict[str, list[Any]] = {t: [] for t in FIELD_COUNTS}
    decode_s = parse_s = 0.0
    rows = 0
    for item in files:
        file_type = item["file_type"]
        fields = FIELD_COUNTS[file_type]
        begun = time.perf_counter()
        data = (month_dir / item["path"]).read_bytes()
        utf8 = data.decode(SOURCE_ENCODING).encode("utf-8")
        decoded = time.perf_counter()
        header = _is_header(data[: data.find(b"\n")])
        names = {position: name for name, position in USED_COLUMNS[file_type].items()}
        frame = pl.read_csv(
            utf8,
            separator="\t",
            quote_char=None,
            has_header=header,
            new_columns=[names.get(i, f"c{i:02d}") for i in range(1, fields + 1)],
            infer_schema=False,
        )
        # polars refuses a line with too many fields and pads one with too few: so every line has
        # exactly `fields` fields when the file holds (fields - 1) TABs per line.
        lines = frame.height + (1 if header else 0)
        if data.count(b"\t") != lines * (fields - 1):
            raise SystemExit(f"{item['path']}: a line does not have {fields} fields")
        frames[file_type].append(frame.select(list(USED_COLUMNS[file_type])))
        rows += frame.height
        del data, utf8, frame
        decode_s += decoded - begun
        parse_s += time.perf_counter() - decoded
    read = time.perf_counter()

    y1, ef, d = (
        pl.concat(frames[t]) if frames[t] else pl.DataFrame(schema=dict.fromkeys(USED_COLUMNS[t], pl.String))
        for t in ("y1", "ef_in", "d")
    )
    stay = ["facility_cd", "patient_id", "admission_date"]
    cases = (
        y1.filter(pl.col("summary_no") == "0")
        .group_by([*stay, "admission_seq_no"])
        .agg(
            pl.col("payload_1").filter(pl.col("item_code") == "A000030").max().alias("discharge_date"),
            pl.col("payload_5").filter(pl.col("item_code") == "A000020").max().alias("admission_type"),
            pl.len().alias("y1_items"),
        )
        .join(
            ef.group_by(stay).agg(
                pl.len().alias("ef_rows"),
                pl.col("detail_points").cast(pl.Decimal(18, 2), strict=False).sum().alias("ef_points"),
            ),
            on=stay,
            how="left",
        )
        .join(
            d.group_by(stay).agg(
                pl.len().alias("d_rows"),
                pl.col("act_points").cast(pl.Int64, strict=False).sum().alias("d_points"),
                pl.col("dpc_code").filter(pl.col("data_category") == "93").max().alias("dpc_code"),
            ),
            on=stay,
            how="left",
        )
    )
    parquet = work_dir / f"case_summary_{MONTH}.parquet"
    cases.write_parquet(parquet, compression="snappy")
    written = time.perf_counter()
    count, discharged = _count_cases(parquet)
    write_json(
        Path(out),
        {
            "polars": pl.__version__,
            "polars_threads": pl.thread_pool_size(),
            "decode_s": round(decode_s, 3),
            "read_csv_s": round(parse_s, 3),
            "aggregate_s": round(written - read, 3),
            "in_process_s": round(written - started, 3),
            "rows": rows,
            "bytes": sum(f["bytes"] for f in files),
            "cases": count,
            "discharged": discharged,
            "parquet_bytes": parquet.stat().st_size,
        },
    )
    shutil.rmtree(work_dir, ignore_errors=True)


def _task_rows(dag_run: Any) -> list[dict[str, Any]]:
    rows = []
    for ti in dag_run.get_task_instances():
        rows.append(
            {
                "task_id": ti.task_id,
                "state": str(getattr(ti.state, "value", ti.state)),
                "start": ti.start_date.isoformat() if ti.start_date else None,
                "end": ti.end_date.isoformat() if ti.end_date else None,
                "duration_s": round(ti.duration, 3) if ti.duration is not None else None,
            }
        )
    return sorted(rows, key=lambda r: r["start"] or "~")


def _steps(tasks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per top-level task or group: sum of durations, span first start → last end, task count; in the
    order of the DAG's ASL steps (``dpc_elt.orchestration.steps.STEP_IDS``), then the notifications as they ran."""
    from dpc_elt.orchestration.steps import STEP_IDS

    steps: dict[str, dict[str, Any]] = {}
    for t in tasks:
        if t["duration_s"] is None:
            continue
        step = t["task_id"].split(".", 1)[0]
        s = steps.setdefault(step, {"sum_s": 0.0, "tasks": 0, "start": t["start"], "end": t["end"]})
        s["sum_s"] += t["duration_s"]
        s["tasks"] += 1
        s["start"] = min(s["start"], t["start"])
        s["end"] = max(s["end"], t["end"])
    for s in steps.values():
        s["span_s"] = round(
            (datetime.fromisoformat(s.pop("end")) - datetime.fromisoformat(s.pop("start"))).total_seconds(), 3
        )
        s["sum_s"] = round(s["sum_s"], 3)
    position = {step: i for i, step in enumerate(STEP_IDS)}
    return dict(sorted(steps.items(), key=lambda item: position.get(item[0], len(position))))


def _run_summary(dag_run: Any, wall: float) -> dict[str, Any]:
    tasks = _task_rows(dag_run)
    timed = [t for t in tasks if t["start"] and t["end"]]
    span = (
        datetime.fromisoformat(max(t["end"] for t in timed)) - datetime.fromisoformat(min(t["start"] for t in timed))
    ).total_seconds()
    return {
        "state": str(getattr(dag_run.state, "value", dag_run.state)),
        "run_month_s": round(wall, 3),
        "run_span_s": round(span, 3),
        "task_sum_s": round(sum(t["duration_s"] or 0 for t in tasks), 3),
        "steps": _steps(tasks),
        "tasks": tasks,
        "maxrss_self_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _harness() -> dict[str, float]:
    """Time Airflow's imports, then start dag.test()'s in-process execution API with one request, so
    that its one-off start (seconds) is reported apart instead of inside the first task; time DAG parses."""
    started = time.perf_counter()
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor

    imported = time.perf_counter()
    # The app builds its routes at the first request (seconds): make one before the first task.
    InProcessTestSupervisor._api_client().get("health").raise_for_status()
    harness = {"imports_s": round(imported - started, 3), "execution_api_start_s": 0.0, "dag_parses": 0}
    harness["execution_api_start_s"] = round(time.perf_counter() - imported, 3)
    harness["dag_parse_s"] = 0.0
    process_file = DagBag.process_file

    def timed_process_file(self: Any, *args: Any, **kwargs: Any):
        begun = time.perf_counter()
        try:
            return process_file(self, *args, **kwargs)
        finally:
            harness["dag_parse_s"] = round(harness["dag_parse_s"] + time.perf_counter() - begun, 3)
            harness["dag_parses"] += 1

    DagBag.process_file = timed_process_file

    # Peak RSS so far after each task (it only grows): the task that raises it is the one to look at.
    import airflow.sdk.definitions.dag as sdk_dag

    run_task = sdk_dag._run_task
    harness["maxrss_after_task_mib"] = {}

    def measured_run_task(**kwargs: Any):
        try:
            return run_task(**kwargs)
        finally:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            harness["maxrss_after_task_mib"][kwargs["ti"].task_id] = round(peak, 1)

    sdk_dag._run_task = measured_run_task
    return harness


def _duckdb_memory_limit() -> tuple[str, str]:
    """The DuckDB memory_limit the run used, and the default one (DPC_DUCKDB_MEMORY_LIMIT unset)."""
    from dpc_elt.core import settings

    return settings.get_settings().duckdb_memory_limit, settings.DEFAULT_DUCKDB_MEMORY_LIMIT


def _forkserver_cpu_s() -> float:
    """CPU seconds of multiprocessing's forkserver with the workers it forked and reaped (copy_raw's
    piece workers). This process never waits for the forkserver, so wait4 does not count them."""
    from multiprocessing import forkserver

    pid = getattr(forkserver._forkserver, "_forkserver_pid", None)
    stat = Path(f"/proc/{pid}/stat")
    if not pid or not stat.exists():
        return 0.0
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return round(sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK"), 2)  # utime stime cutime cstime


def child_dag(out: str) -> None:
    """The whole dpc_elt month with dag.test(), in this fresh process. copy_raw's per-file-type timings
    come from the loader's own log lines (``copy_raw timing {...}``), read by the parent from this log."""
    harness = _harness()
    from dpc_elt.dev import run_local

    harness["maxrss_before_tasks_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    started = time.perf_counter()
    dag_run = run_local.run_month(MONTH, dag_folder=str(REPO / "dags"))
    summary = _run_summary(dag_run, time.perf_counter() - started)
    harness["forkserver_cpu_s"] = _forkserver_cpu_s()
    summary["harness"] = harness
    summary["duckdb_memory_limit"], summary["duckdb_memory_limit_default"] = _duckdb_memory_limit()
    write_json(Path(out), summary)


def child_variant(variant: str, out: str) -> None:
    """The dbt part of dpc_elt under one Cosmos variant (bench/dags), with dag.test()."""
    from datetime import datetime as dt

    harness = _harness()
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(BENCH_DIR / "dags"))
    if bag.import_errors:
        raise SystemExit(f"bench DAG import errors: {bag.import_errors}")
    started = time.perf_counter()
    dag_run = bag.dags[f"bench_dbt_{variant}"].test(logical_date=dt.now(UTC), run_conf={"yyyymm": MONTH})
    summary = _run_summary(dag_run, time.perf_counter() - started)
    summary["harness"] = harness
    steps = summary["steps"]
    summary["task_count"] = len(summary["tasks"])
    summary["dbt_part_sum_s"] = round(sum(steps[s]["sum_s"] for s in DBT_STEPS if s in steps), 3)
    summary["dbt_part_span_s"] = summary["run_span_s"]
    write_json(Path(out), summary)


def child_dbt_build(target_path: str, out: str) -> None:
    """One bare ``dbt build`` of the whole project (models, seeds, tests) for the run's month."""
    from dbt.cli.main import dbtRunner

    from dpc_elt.backends import get_backend
    from dpc_elt.core import settings
    from dpc_elt.orchestration import cosmos_config

    project = str(settings.DBT_PROJECT_DIR)
    common = [
        "--project-dir",
        project,
        "--profiles-dir",
        project,
        "--target",
        get_backend(settings.get_settings()).dbt_target,
        "--target-path",
        target_path,
        "--log-path",
        str(Path(target_path) / "logs"),
    ]
    os.environ.update({**cosmos_config.dbt_env(), "DPC_YYYYMM": MONTH, "DPC_FACILITY_CD": ""})
    runner = dbtRunner()
    started = time.perf_counter()
    parsed = runner.invoke(["parse", *common])
    parse_s = time.perf_counter() - started
    started = time.perf_counter()
    built = runner.invoke(["build", *common])
    build_s = time.perf_counter() - started
    results = read_json(Path(target_path) / "run_results.json")["results"]
    slowest = sorted(results, key=lambda r: r["execution_time"], reverse=True)
    write_json(
        Path(out),
        {
            "success": bool(parsed.success and built.success),
            "parse_s": round(parse_s, 3),
            "build_s": round(build_s, 3),
            "nodes": len(results),
            "node_time_sum_s": round(sum(r["execution_time"] for r in results), 3),
            "node_s": {r["unique_id"].split(".", 2)[-1]: round(r["execution_time"], 3) for r in results},
            "slowest": [
                {"node": r["unique_id"].split(".", 2)[-1], "s": round(r["execution_time"], 3)} for r in slowest[:10]
            ],
            "status": sorted({r["status"] for r in results}),
        },
    )


def child_scheduler(work: str, out: str) -> None:
    """Start the native topology, seed the months (3 facilities, ~1,000 cases each), backfill them one
    by one, and record each run's queued -> end and start -> end seconds from Airflow's REST API."""
    from datetime import datetime as _datetime

    from tests.topology.services import Topology

    def seconds(run: dict[str, Any], start_key: str) -> float:
        begin = _datetime.fromisoformat(run[start_key].replace("Z", "+00:00"))
        return round((_datetime.fromisoformat(run["end_date"].replace("Z", "+00:00")) - begin).total_seconds(), 1)

    topo = Topology(Path(work) / "topology", Path(work) / "logs")
    result: dict[str, Any] = {"months": {}}
    try:
        started = time.perf_counter()
        client = topo.start()
        topo.seed(f"{SCHEDULER_MONTHS[0]}-{SCHEDULER_MONTHS[-1]}", facilities=3)
        result["start_s"] = round(time.perf_counter() - started, 1)
        for yyyymm in SCHEDULER_MONTHS:
            begun = time.perf_counter()
            states = client.backfill_months([yyyymm], timeout_per_month=1800, alive=topo.alive)
            runs = client.request("GET", "/dags/dpc_elt/dagRuns", params={"run_type": "backfill", "limit": 100})
            (run,) = [r for r in runs["dag_runs"] if r.get("note") == f"month {yyyymm}"]
            tasks = client.request("GET", f"/dags/dpc_elt/dagRuns/{run['dag_run_id']}/taskInstances")
            result["months"][yyyymm] = {
                "state": states[yyyymm],
                "wall_s": round(time.perf_counter() - begun, 1),
                "queued_to_end_s": seconds(run, "queued_at"),
                "start_to_end_s": seconds(run, "start_date"),
                "task_sum_s": round(sum(t["duration"] or 0 for t in tasks["task_instances"]), 1),
                "tasks": len(tasks["task_instances"]),
                "task_s": {t["task_id"]: round(t["duration"] or 0, 1) for t in tasks["task_instances"]},
            }
    finally:
        topo.stop()
        write_json(Path(out), result)


def child_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="run_bench.py _child")
    parser.add_argument("what", choices=("import", "limit", "peer", "dag", "variant", "dbt-build", "scheduler"))
    parser.add_argument("--out", required=True)
    parser.add_argument("--kind")
    parser.add_argument("--raw")
    parser.add_argument("--work")
    parser.add_argument("--variant")
    parser.add_argument("--target-path")
    parser.add_argument("--keep-rows", action="store_true", help="limit: keep every line in in-memory tables first")
    args = parser.parse_args(argv)
    if args.what == "import":
        child_import(args.kind, args.out)
    elif args.what == "limit":
        child_limit(args.raw, args.work, args.out, keep_rows=args.keep_rows)
    elif args.what == "peer":
        child_peer(args.raw, args.work, args.out)
    elif args.what == "dag":
        child_dag(args.out)
    elif args.what == "variant":
        child_variant(args.variant, args.out)
    elif args.what == "scheduler":
        child_scheduler(args.work, args.out)
    else:
        child_dbt_build(args.target_path, args.out)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        if sys.argv[2:3] == ["dag"]:  # the project's month ends as `make run-month` ends
            from dpc_elt.dev import run_local

            run_local.exit_without_teardown(lambda: child_main(sys.argv[2:]))
        sys.exit(child_main(sys.argv[2:]))
    sys.exit(main())
