"""copy_raw's staging on the production backend, measured against a moto S3 server (issue 14 §4).

One generated month of ``--facilities`` facilities (default 5: ≈ 541 MB, 0.53 GB of it EF) — the cached M
month of ``bench/run_bench.py`` under ``bench/data/M/raw``, generated with its parameters if missing — is
uploaded to a moto server that this script starts, then staged S3 → S3 as ``copy_raw`` stages it, each run
a fresh child process:

* ``file_by_file``: the line-by-line path (``load.stage_month`` below ``pieces.PARALLEL_FROM_BYTES``:
  ``s3.stage_to_s3`` per file in the task), the only path before, on 1 core and on 2;
* ``pieces:<n>``: ``pieces.stage_in_pieces``, the month cut into line-aligned pieces checked and transcoded
  by ``n`` worker processes: 1 and 2 workers on 1 core, 2 and 3 workers on 2 cores.

A run on 1 core is pinned to CPU 0 (its workers too) and the moto server to CPU 1, so the client has one
core to itself as on an mw1.small worker (1 vCPU); a run on 2 cores shares both cores with the moto server,
whose CPU time is reported apart. Per run, counted around the staging call only (not the interpreter's
start): wall seconds, MB/s (source bytes / wall), the client's CPU seconds (the whole machine's busy time
from /proc/stat minus the moto server's: the task process, its forkserver and workers, and anything else
running), of them the task process's own, the moto server's CPU seconds, the load average before and
after. Every run checks that the month's records and staged bytes
are those of the other runs. The report gives the median of ``--repeat`` runs (default 3).

moto is not S3: it is a Python process on the same two cores, and it reads an object's whole body for
every ranged GET (the line-by-line path reads through s3fs in 8 MiB ranges: 13 full reads of a 105 MB
object). Its CPU seconds show what it cost; the client's CPU seconds per GB are what carries over to
MWAA, where S3 costs the worker only the network.

    .venv/bin/python bench/production_transcode.py [--facilities 5] [--repeat 3]

Writes ``bench/data/production_transcode.json`` and prints a Markdown table. Standard library, the
project's code and the libraries it depends on (boto3, s3fs, moto's server).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from run_bench import DATA_DIR, MONTH, REPO, SCALES, _cpu_busy_s, base_env, generate

RESULTS_JSON = DATA_DIR / "production_transcode.json"
BUCKET = "dpc-bench"
CONN_ID = "bench_aws"
REGION = "ap-northeast-1"
RUNS = (  # path (pieces:<worker processes>), CPUs the client may use
    ("file_by_file", (0,)),
    ("pieces:1", (0,)),
    ("pieces:2", (0,)),  # two workers on one core: one computes while the other waits on S3
    ("file_by_file", (0, 1)),
    ("pieces:2", (0, 1)),
    ("pieces:3", (0, 1)),
)
MB = 10**6
MOTO_KEYS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench-secret"}  # moto takes any


def log(message: str) -> None:
    print(f"[production_transcode {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ the month


def month_subset(facilities: int) -> dict[str, Any]:
    """The cached M month's manifest, cut to its first ``facilities`` facilities."""
    generate("M", SCALES["M"])
    manifest = json.loads((DATA_DIR / "M" / "raw" / f"yyyymm={MONTH}" / "_manifest.json").read_text())
    chosen = sorted({f["facility_cd"] for f in manifest["files"]})[:facilities]
    manifest["files"] = [f for f in manifest["files"] if f["facility_cd"] in chosen]
    return manifest


# ------------------------------------------------------------------------------------------ moto


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_moto(log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with open(log_path, "w") as out:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, endpoint
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise SystemExit(f"moto_server did not start, see {log_path}") from None
            time.sleep(0.2)


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client_env(endpoint: str) -> dict[str, str]:
    """The children's environment: the Airflow AWS connection points at moto; so does every other client."""
    env = base_env()
    connection = {
        "conn_type": "aws",
        "login": MOTO_KEYS["aws_access_key_id"],
        "password": MOTO_KEYS["aws_secret_access_key"],
        "extra": {"region_name": REGION, "endpoint_url": endpoint},
    }
    env.update(
        {
            f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(connection),
            "AWS_ACCESS_KEY_ID": MOTO_KEYS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": MOTO_KEYS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint,
        }
    )
    return env


def upload(endpoint: str, manifest: dict[str, Any]) -> None:
    import boto3
    from boto3.s3.transfer import TransferConfig

    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, **MOTO_KEYS)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    source = DATA_DIR / "M" / "raw" / f"yyyymm={MONTH}"
    transfer = TransferConfig(multipart_threshold=64 * MB, multipart_chunksize=64 * MB)
    for listed in manifest["files"]:
        client.upload_file(
            str(source / listed["path"]), BUCKET, f"raw/yyyymm={MONTH}/{listed['path']}", Config=transfer
        )


# ------------------------------------------------------------------------------------------ one run


def measure(variant: str, cores: tuple[int, ...], env: dict[str, str], moto: subprocess.Popen, out: Path) -> dict:
    """One child process staging the month; its CPU seconds are counted around the staging only (not
    the interpreter's start and imports)."""
    if len(cores) == 1:  # the client alone on CPU 0, moto on the other core
        os.sched_setaffinity(moto.pid, {1})
    else:
        os.sched_setaffinity(moto.pid, set(range(os.cpu_count() or 1)))
    args = [sys.executable, str(Path(__file__).resolve()), "_child", variant, ",".join(map(str, cores)), str(out)]
    load_before = os.getloadavg()
    child = subprocess.run(
        args, env=env | {"BENCH_MOTO_PID": str(moto.pid)}, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    if child.returncode != 0:
        raise SystemExit(f"{variant} on {cores} failed:\n{child.stderr.decode(errors='replace')[-4000:]}")
    inner = json.loads(out.read_text())
    return {
        "variant": variant,
        "cores": len(cores),
        "stage_s": round(inner["stage_s"], 2),
        "client_cpu_s": round(inner["machine_busy_s"] - inner["moto_cpu_s"], 2),
        "task_cpu_s": round(inner["task_cpu_s"], 2),
        "moto_cpu_s": round(inner["moto_cpu_s"], 2),
        "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        "objects": inner["objects"],
        "records": inner["records"],
        "staged_bytes": inner["staged_bytes"],
    }


def child(variant: str, cores: str, out: str) -> None:
    """Stage the month once, in this process (and its workers), on ``cores``."""
    allowed = {int(c) for c in cores.split(",")}
    os.sched_setaffinity(0, allowed)  # inherited by the forkserver and the workers
    sys.path.insert(0, str(REPO / "plugins"))
    import resource

    from dpc_elt.backends.redshift import load, pieces, s3
    from dpc_elt.backends.redshift.data_api import Target
    from dpc_elt.core import formats
    from dpc_elt.core.manifest import ValidatedManifest

    manifest = ValidatedManifest.from_dict(json.loads(os.environ["BENCH_MANIFEST"]))
    fs = s3.filesystem(CONN_ID)
    where = Target(
        raw=s3.S3Uri(BUCKET, "raw"),
        staging=s3.S3Uri(BUCKET, "staging"),
        processed=s3.S3Uri(BUCKET, "processed"),
        workgroup="dpc-elt",
        database="dpc",
        iam_role_arn="arn:aws:iam::123456789012:role/bench",
        aws_conn_id=CONN_ID,
    )
    raw_month, staging_month = where.raw.join(f"yyyymm={MONTH}"), where.staging.join(f"yyyymm={MONTH}")
    listed = sorted(manifest.files, key=lambda f: (formats.FILE_TYPES.index(f.file_type), f.path))
    access = pieces.s3_access(CONN_ID)
    pieces.remove_staged(access.client(), staging_month)  # untimed: the previous run's objects
    moto_pid = int(os.environ["BENCH_MOTO_PID"])
    busy_before, moto_before = _cpu_busy_s(), process_cpu_s(moto_pid)
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    if variant == "file_by_file":
        pieces.PARALLEL_FROM_BYTES = sys.maxsize  # as a month too small for pieces is staged
        objects = load.stage_month(fs, where, MONTH, manifest)["files"]
    else:
        workers = int(variant.split(":")[1])
        staged = pieces.stage_in_pieces(fs, access, listed, raw_month, staging_month, MONTH, workers=workers)
        objects = [o.to_dict() for o in staged]
    stage_s = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "stage_s": stage_s,
        # the machine's busy seconds meanwhile: this process, its workers, moto, anything else
        "machine_busy_s": _cpu_busy_s() - busy_before,
        "moto_cpu_s": process_cpu_s(moto_pid) - moto_before,
        "task_cpu_s": usage.ru_utime + usage.ru_stime - self_before.ru_utime - self_before.ru_stime,
        "objects": len(objects),
        "records": sum(o["records"] for o in objects),
        "staged_bytes": sum(o["staged_bytes"] for o in objects),
    }
    Path(out).write_text(json.dumps(result))


# ------------------------------------------------------------------------------------------ report


def summarize(runs: list[dict[str, Any]], source_bytes: int) -> list[dict[str, Any]]:
    rows = []
    for variant, cores in RUNS:
        mine = [r for r in runs if r["variant"] == variant and r["cores"] == len(cores)]
        keys = ("stage_s", "client_cpu_s", "task_cpu_s", "moto_cpu_s")
        median = {k: statistics.median(r[k] for r in mine) for k in keys}
        rows.append(
            {
                "variant": variant,
                "cores": len(cores),
                "runs": len(mine),
                "stage_s": round(median["stage_s"], 1),
                "stage_s_range": [round(min(r["stage_s"] for r in mine), 1), round(max(r["stage_s"] for r in mine), 1)],
                "mb_per_s": round(source_bytes / MB / median["stage_s"], 1),
                "client_cpu_s": round(median["client_cpu_s"], 1),
                "client_cpu_s_per_gb": round(median["client_cpu_s"] / (source_bytes / 10**9), 1),
                "task_cpu_s": round(median["task_cpu_s"], 1),
                "moto_cpu_s": round(median["moto_cpu_s"], 1),
                "objects": mine[0]["objects"],
                "loadavg_1m": [min(r["loadavg_before"][0] for r in mine), max(r["loadavg_after"][0] for r in mine)],
            }
        )
    return rows


def markdown(rows: list[dict[str, Any]], source_bytes: int, files: int) -> str:
    lines = [
        f"One month of {files} files, {source_bytes / MB:.0f} MB, staged S3 → S3 against moto (median of "
        f"{rows[0]['runs']}; load average 1 min before the first and after the last run):",
        "",
        "| path | cores | staged objects | wall s (range) | MB/s | client CPU s (task process) | client CPU s/GB "
        "| moto CPU s | load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        low, high = r["stage_s_range"]
        lines.append(
            f"| {r['variant']} | {r['cores']} | {r['objects']} | {r['stage_s']} ({low}–{high}) | {r['mb_per_s']} "
            f"| {r['client_cpu_s']} ({r['task_cpu_s']}) | {r['client_cpu_s_per_gb']} | {r['moto_cpu_s']} "
            f"| {r['loadavg_1m'][0]}–{r['loadavg_1m'][1]} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--facilities", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs two cores: one for the client, one for the moto server")
    manifest = month_subset(args.facilities)
    source_bytes = sum(f["bytes"] for f in manifest["files"])
    work = DATA_DIR / "production_transcode"
    work.mkdir(parents=True, exist_ok=True)
    moto, endpoint = start_moto(work / "moto.log")
    try:
        log(f"uploading {len(manifest['files'])} files, {source_bytes / MB:.0f} MB, to moto at {endpoint}")
        upload(endpoint, manifest)
        env = client_env(endpoint) | {"BENCH_MANIFEST": json.dumps(manifest)}
        runs = []
        for repeat in range(args.repeat):
            for variant, cores in RUNS:
                log(f"{variant} on {len(cores)} core(s) ({repeat + 1}/{args.repeat})")
                runs.append(measure(variant, cores, env, moto, work / "child.json"))
                run = runs[-1]
                log(f"  {run['stage_s']} s, client {run['client_cpu_s']} CPU s, moto {run['moto_cpu_s']} CPU s")
    finally:
        moto.terminate()
        moto.wait(timeout=30)
    expected = {(r["records"], r["staged_bytes"]) for r in runs}
    if len(expected) != 1 or next(iter(expected))[0] != sum(f["records"] for f in manifest["files"]):
        raise SystemExit(f"the runs staged different months: {sorted(expected)}")
    rows = summarize(runs, source_bytes)
    report = {"files": len(manifest["files"]), "source_bytes": source_bytes, "summary": rows, "runs": runs}
    RESULTS_JSON.write_text(json.dumps(report, indent=1))
    print(markdown(rows, source_bytes, len(manifest["files"])))
    log(f"written {RESULTS_JSON.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child(*sys.argv[2:5])
        sys.exit(0)
    sys.exit(main())
