"""README commands after one another: scripts/install.sh on a machine whose PATH holds neither uv nor
~/.local/bin, run a second time the way the Makefile runs it (the venv's bin first on PATH, where the
python3 has no pip). It used to fail with ".venv/bin/python3: No module named pip"."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def python_with_pip() -> str:
    """A python3 on PATH outside this venv (the one a fresh machine has)."""
    venv_bin = (Path(sys.prefix) / "bin").resolve()  # .venv may be a symlink (a git worktree's)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p and Path(p).resolve() != venv_bin)
    found = shutil.which("python3", path=path)
    assert found, "no python3 outside the venv"
    return found


def test_a_second_make_finds_uv_where_the_first_installed_it(tmp_path):
    repo = tmp_path / "clone"
    (repo / "scripts").mkdir(parents=True)
    (repo / "requirements").mkdir()
    shutil.copy(REPO / "scripts" / "install.sh", repo / "scripts")
    (repo / "requirements" / "local.txt").write_text("six==1.16.0\n")
    home = tmp_path / "home"
    home.mkdir()
    base_path = os.pathsep.join([str(Path(python_with_pip()).parent), "/usr/bin", "/bin"])
    env = {**os.environ, "HOME": str(home), "PATH": base_path}
    env.pop("PYTHON", None)
    assert shutil.which("uv", path=base_path) is None, "the machine must start without uv on PATH"

    first = subprocess.run(["scripts/install.sh"], cwd=repo, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert (home / ".local" / "bin" / "uv").exists()  # pip --user, not on PATH

    # The Makefile's PATH: the venv first; a changed pin makes install.sh sync again, with uv.
    (repo / "requirements" / "local.txt").write_text("six==1.17.0\n")
    second_env = {**env, "PATH": os.pathsep.join([str(repo / ".venv" / "bin"), base_path])}
    second = subprocess.run(["scripts/install.sh"], cwd=repo, env=second_env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    assert "No module named pip" not in second.stderr
    installed = subprocess.run(
        [str(repo / ".venv" / "bin" / "python"), "-c", "import six; print(six.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert installed.stdout.strip() == "1.17.0"
