#!/usr/bin/env bash
# Create .venv with the pinned local stack (requirements/local.txt). Idempotent and offline-friendly:
# a venv whose pins already match is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
# The Makefile puts .venv/bin first on PATH, and the venv's python3 has no pip: the interpreter that
# builds the venv (and installs uv) is looked up on PATH without it.
venv_bin="$PWD/.venv/bin"
outside_path=$(printf '%s' ":$PATH:" | sed "s#:$venv_bin:#:#g; s#^:##; s#:\$##")
PYTHON=${PYTHON:-$(PATH=$outside_path command -v python3)}
# pip --user puts uv in ~/.local/bin, which need not be on PATH: a second make must find it there.
export PATH="$PATH:$HOME/.local/bin"
if ! command -v uv >/dev/null 2>&1; then
  echo "==> installing uv (the fast pip) for this user"
  "$PYTHON" -m pip install --quiet --user uv 2>/dev/null || "$PYTHON" -m pip install --quiet uv
fi
command -v uv >/dev/null 2>&1 || { echo "install.sh: uv was installed but is not on PATH or in ~/.local/bin" >&2; exit 1; }
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
