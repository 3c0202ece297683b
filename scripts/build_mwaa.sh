#!/usr/bin/env bash
# Build what Amazon MWAA (Airflow 3.3.1, Python 3.12) deploys, into dist/mwaa/, and check it.
#
#   scripts/build_mwaa.sh [--env mwaa/<environment>.env] [--out DIR] [--no-resolve]
#
#   DIR/dags/             the DAG files, include/ (SQL, dbt project + its manifest for target redshift,
#                         schemas, ASL), constraints-3.3.1.txt, .airflowignore  -> s3://<mwaa bucket>/dags/
#   DIR/plugins.zip       the dpc_elt package (reproducible: sorted, fixed timestamps) -> plugins.zip
#   DIR/requirements.txt  with its --constraint line                                   -> requirements.txt
#   DIR/startup.sh        mwaa/startup.sh with the env file's DPC_* exports            -> startup script
#
# Checks (offline except the resolve): env values valid; startup script syntax; plugins.zip imports
# dpc_elt from the zip; dbt parse --target redshift; the DAG folder parses on the production backend
# once it is wired in settings; requirements.txt resolves against the constraints for Python 3.12
# (uv pip compile, needs PyPI; --no-resolve skips it). See docs/deploy-mwaa.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ENV_FILE=mwaa/example.env
OUT=dist/mwaa
RESOLVE=1
while [ $# -gt 0 ]; do
  case "$1" in
    --env) ENV_FILE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --no-resolve) RESOLVE=0; shift ;;
    *) echo "usage: $0 [--env FILE] [--out DIR] [--no-resolve]" >&2; exit 2 ;;
  esac
done
ROOT=$PWD
PY=$ROOT/.venv/bin/python
CONSTRAINTS=mwaa/constraints-3.3.1.txt
MWAA_DAGS=/usr/local/airflow/dags
export PYTHONPATH="$PWD/plugins" DO_NOT_TRACK=1 DBT_SEND_ANONYMOUS_USAGE_STATS=false
# uv (scripts/install.sh) lives in ~/.local/bin, which need not be on the caller's PATH.
export PATH="$PATH:$HOME/.local/bin"

OUT=$(mkdir -p "$OUT" && cd "$OUT" && pwd)
case "$OUT" in /|"$ROOT"|"$ROOT/dags"|"$ROOT/plugins") echo "refusing to build into $OUT" >&2; exit 2 ;; esac
echo "==> checking $ENV_FILE"
"$PY" - "$ENV_FILE" "$OUT/startup.settings" <<'EOF'
import re, sys
from dpc_elt.backends.redshift import data_api
from dpc_elt.backends.redshift.s3 import S3Uri
from dpc_elt.core.settings import MANIFEST_QUEUE_URL_PATTERN
from dpc_elt.notify.channels import SNS_TOPIC_PATTERN

REQUIRED = ("DPC_ENVIRONMENT", "DPC_S3_BUCKET", "DPC_REDSHIFT_WORKGROUP", "DPC_REDSHIFT_DATABASE",
            "DPC_REDSHIFT_IAM_ROLE_ARN", "DPC_REDSHIFT_HOST", "DPC_REDSHIFT_REGION")
OPTIONAL = ("DPC_AWS_CONN_ID", "DPC_SNS_TOPIC_ARN", "DPC_SLACK_CONN_ID", "DPC_SLACK_CHANNEL",
            "DPC_RAW_ROOT", "DPC_PROCESSED_ROOT", "DPC_MANIFEST_POKE_SECONDS", "DPC_REDSHIFT_USER",
            "DPC_MANIFEST_QUEUE_URL")
values = {}
for number, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    key, sep, value = line.partition("=")
    if not sep or key not in REQUIRED + OPTIONAL:
        sys.exit(f"{sys.argv[1]}:{number}: expected one of {', '.join(REQUIRED + OPTIONAL)} as KEY=value")
    if not re.fullmatch(r"[A-Za-z0-9_.:/=@+,#-]*", value):
        sys.exit(f"{sys.argv[1]}:{number}: {key} holds a character a shell or SQL literal would change")
    values[key] = value
missing = [k for k in REQUIRED if not values.get(k)]
if missing:
    sys.exit(f"{sys.argv[1]}: missing {', '.join(missing)}")
bucket = values["DPC_S3_BUCKET"]
checks = {
    "DPC_S3_BUCKET": lambda v: S3Uri(v),
    "DPC_RAW_ROOT": S3Uri.parse,
    "DPC_PROCESSED_ROOT": S3Uri.parse,
    "DPC_REDSHIFT_WORKGROUP": data_api.WORKGROUP_PATTERN.fullmatch,
    "DPC_REDSHIFT_DATABASE": data_api.DATABASE_PATTERN.fullmatch,
    "DPC_REDSHIFT_IAM_ROLE_ARN": data_api.IAM_ROLE_PATTERN.fullmatch,
    "DPC_SNS_TOPIC_ARN": SNS_TOPIC_PATTERN.fullmatch,
    "DPC_MANIFEST_QUEUE_URL": MANIFEST_QUEUE_URL_PATTERN.fullmatch,
}
for key, check in checks.items():
    if values.get(key):
        try:
            ok = check(values[key])
        except ValueError:
            ok = None
        if not ok:
            sys.exit(f"{sys.argv[1]}: {key} is not valid for the production backend")
with open(sys.argv[2], "w", encoding="utf-8") as out:
    out.writelines(f"export {key}='{value}'\n" for key, value in values.items())
EOF

echo "==> $OUT/dags"
rm -rf "$OUT/dags" "$OUT/plugins.zip"
mkdir -p "$OUT/dags/include"
cp dags/*.py "$OUT/dags/"
cp "$CONSTRAINTS" "$OUT/dags/"
printf 'include/\n' > "$OUT/dags/.airflowignore"
(cd include && tar --exclude='dbt/target' --exclude='dbt/logs' --exclude='dbt/dbt_packages' --exclude='dbt/.user.yml' \
  --exclude='__pycache__' -cf - .) | (cd "$OUT/dags/include" && tar -xf -)
# dbt parse (the slowest step) runs in the background while the rest is built; the DAG parse waits.
dbt_log=$(mktemp -d)
(cd "$OUT/dags/include/dbt" && "$ROOT/.venv/bin/dbt" parse --quiet --profiles-dir . \
  --target redshift --target-path target --log-path "$dbt_log" --no-partial-parse) >"$dbt_log/out.txt" 2>&1 &
dbt_pid=$!

echo "==> $OUT/plugins.zip, requirements.txt, startup.sh"
"$PY" - "$OUT/plugins.zip" <<'EOF'
import sys, zipfile
from pathlib import Path
root = Path("plugins")
# dpc_elt/dev (synthetic data, the local runner, the fault drill) is for laptops and tests only.
dev = root / "dpc_elt" / "dev"
files = sorted(
    p
    for p in root.rglob("*")
    if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc" and dev not in p.parents
)
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as archive:
    for path in files:
        info = zipfile.ZipInfo(str(path.relative_to(root)), date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
EOF
cp requirements.txt "$OUT/requirements.txt"
grep -q "^--constraint \"$MWAA_DAGS/$(basename "$CONSTRAINTS")\"$" "$OUT/requirements.txt" \
  || { echo "requirements.txt must hold: --constraint \"$MWAA_DAGS/$(basename "$CONSTRAINTS")\"" >&2; exit 1; }
marker='# >>> DPC settings (generated by scripts/build_mwaa.sh) >>>'
awk -v marker="$marker" -v settings="$OUT/startup.settings" \
  '{ print } $0 == marker { while ((getline line < settings) > 0) print line }' mwaa/startup.sh > "$OUT/startup.sh"
rm "$OUT/startup.settings"
chmod +x "$OUT/startup.sh"

echo "==> checks"
sh -n "$OUT/startup.sh"
# As the API server sources it (no dbt virtualenv there): the exports must be what settings reads.
exported=$(cd "$(mktemp -d)" && env -i PATH=/usr/bin:/bin AIRFLOW_HOME="$PWD" MWAA_AIRFLOW_COMPONENT=api-server \
  sh -c ". '$OUT/startup.sh' >/dev/null; echo \"\$DPC_BACKEND \$DPC_S3_BUCKET \$DPC_INCLUDE_DIR \$DPC_DBT_EXECUTABLE\"")
case "$exported" in
  "production "?*" "*/dags/include" "*/dbt_venv/bin/dbt) echo "    startup.sh exports: $exported" ;;
  *) echo "startup.sh exports the wrong settings: $exported" >&2; exit 1 ;;
esac
"$PY" - "$OUT/plugins.zip" <<'EOF'
import subprocess, sys
code = ("import sys, importlib.util; sys.path.insert(0, sys.argv[1]); import dpc_elt, dpc_elt.backends.redshift; "
        "assert dpc_elt.__file__.startswith(sys.argv[1]), dpc_elt.__file__; "
        "assert importlib.util.find_spec('dpc_elt.dev') is None, 'dpc_elt.dev must not ship'; "
        "print('    plugins.zip imports', dpc_elt.__file__, '(no dpc_elt.dev)')")
subprocess.run([sys.executable, "-c", code, sys.argv[1]], check=True, env={"PATH": "/usr/bin:/bin"})
EOF
if [ "$RESOLVE" = 1 ]; then
  resolve_dir=$(mktemp -d)
  sed "s#^--constraint \"$MWAA_DAGS/#--constraint \"$OUT/dags/#" "$OUT/requirements.txt" > "$resolve_dir/requirements.txt"
  uv pip compile --quiet --python-version 3.12 --python-platform x86_64-manylinux_2_28 \
    "$resolve_dir/requirements.txt" -o "$resolve_dir/resolved.txt"
  grep -E '^(apache-airflow|apache-airflow-providers-amazon|apache-airflow-providers-slack|boto3|astronomer-cosmos|s3fs)==' \
    "$resolve_dir/resolved.txt" | sed 's/^/    resolved /'
  rm -rf "$resolve_dir"
fi
if ! wait "$dbt_pid"; then cat "$dbt_log/out.txt" >&2; echo "dbt parse --target redshift failed" >&2; exit 1; fi
find "$OUT/dags/include/dbt/target" -type f ! -name manifest.json -delete
rm -rf "$dbt_log"
test -s "$OUT/dags/include/dbt/target/manifest.json"
echo "    dbt parse --target redshift: include/dbt/target/manifest.json"
parse_log=$(mktemp)
if (set -a; . "$ENV_FILE"; set +a
    export DPC_BACKEND=production DPC_INCLUDE_DIR="$OUT/dags/include" AIRFLOW_HOME="$(mktemp -d)" \
      AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__COSMOS__ENABLE_TELEMETRY=False PYTHONPATH="$OUT/plugins.zip"
    "$PY" -c "
import sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
if bag.import_errors:
  sys.exit(f'DAG import errors: {bag.import_errors}')
print('    dags parse on the production backend:', ', '.join(sorted(bag.dags)))
" "$OUT/dags") >"$parse_log" 2>&1; then
  tail -n 1 "$parse_log"
  rm -f "$parse_log"
else
  cat "$parse_log" >&2
  exit 1
fi
echo "==> $OUT ready: upload dags/ (sync), plugins.zip, requirements.txt and startup.sh (docs/deploy-mwaa.md)"
