#!/usr/bin/env bash
# Create .venv with the pinned local stack (requirements/local.txt). Idempotent and offline-friendly:
# a venv whose pins already match is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! command -v uv >/dev/null 2>&1; then
  echo "==> installing uv (the fast pip) for this user"
  "$PYTHON" -m pip install --quiet --user uv 2>/dev/null || "$PYTHON" -m pip install --quiet uv
  export PATH="$HOME/.local/bin:$PATH"
fi
stamp=.venv/.requirements.sha256
# The stamp also names the install options: a venv made without byte-code is made again.
want="$(sha256sum requirements/local.txt | cut -d' ' -f1) compiled"
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "==> creating .venv from requirements/local.txt"
[ -x .venv/bin/python ] || uv venv --quiet --python "$PYTHON" .venv
# --compile-bytecode: every Airflow task is a new interpreter (each Cosmos model one), and with
# PYTHONDONTWRITEBYTECODE set (as on these machines) it would compile Airflow, Cosmos and dbt from
# source every time: ~1 s of each DAG parse and task start.
uv pip sync --quiet --compile-bytecode --python .venv/bin/python requirements/local.txt
echo "$want" > "$stamp"
