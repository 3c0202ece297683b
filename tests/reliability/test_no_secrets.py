"""Secret scan of the repository: every file git tracks (and every new file not ignored yet) is
searched for cloud keys, Slack tokens and webhooks, private keys, and passwords inside URLs."""

from __future__ import annotations

import re
import subprocess

import pytest

from dpc_elt.core.settings import REPO_ROOT

# Each pattern is written so that it does not match its own source text.
PATTERNS = {
    "AWS access key id": re.compile(r"(?<![A-Z0-9])(AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}(?![A-Z0-9])"),
    "AWS secret access key": re.compile(
        r"(?i)aws.{0,20}secret.{0,20}['\"=:\s]\s*['\"]?(?![A-Za-z]+['\"\s])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"
    ),
    "Slack token": re.compile(r"\bxox[abposre]-[0-9A-Za-z]{6,}-[0-9A-Za-z-]{6,}"),
    "Slack webhook": re.compile(r"hooks\.slack\.com/(services|workflows|triggers)/[A-Za-z0-9_/-]{8,}"),
    "private key": re.compile(r"-----BEGIN (RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY( BLOCK)?-----"),
    "GitHub token": re.compile(r"\b(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{60,}"),
    "password in URL": re.compile(r"\b[a-z][a-z0-9+.-]{1,20}://[^/\s:@'\"<>{}]{1,64}:([^/\s@'\"<>{}$]{3,128})@[\w.-]+"),
}
# Placeholder passwords in URLs of docs and local compose files: not secrets.
PLACEHOLDER_PASSWORDS = {"password", "pass", "secret", "airflow", "postgres", "xxx", "xxxx", "changeme", "example"}


def tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout
    return sorted({name for name in out.decode().split("\0") if name})


def findings(text: str) -> list[str]:
    found = []
    for kind, pattern in PATTERNS.items():
        for match in pattern.finditer(text):
            if kind == "password in URL" and match.group(1).lower() in PLACEHOLDER_PASSWORDS:
                continue
            found.append(kind)
    return found


def test_the_scan_finds_planted_secrets():
    """Built at run time, so that this file holds none of them."""
    key = "AKIA" + "Q3EXAMPLE7ZZ4PLE"
    planted = {
        "AWS access key id": f"aws_access_key_id = {key}",
        "AWS secret access key": "AWS_SECRET_ACCESS_KEY=" + "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY",
        "Slack token": "token: " + "xo" + "xb-123456789012-abcdefABCDEF",
        "Slack webhook": "https://hooks." + "slack.com/services/T000/B000/abcdefghijklmnop",
        "private key": "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIE...",
        "GitHub token": "gh" + "p_" + "a" * 36,
        "password in URL": "postgresql://dpc:" + "S3cr3t-pw" + "@db.internal:5432/dpc",
    }
    for kind, text in planted.items():
        assert findings(text) == [kind], (kind, findings(text))
    assert findings("postgresql://airflow:airflow@postgres/airflow") == []
    assert findings("https://example.com/path?x=1 and user@example.com") == []


def test_no_secret_in_the_repository():
    files = tracked_files()
    assert len(files) > 50 and "dags/dpc_elt.py" in files
    hits = []
    for name in files:
        path = REPO_ROOT / name
        if not path.is_file() or path.stat().st_size > 5_000_000:
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        for kind in findings(data.decode("utf-8", "replace")):
            hits.append(f"{name}: {kind}")
    assert hits == []


@pytest.mark.parametrize(
    "path",
    [
        "data/warehouse/dpc.duckdb",
        "data/outbox/notifications.jsonl",
        ".airflow/airflow.cfg",  # make's AIRFLOW_HOME: fernet key, JWT secret
        ".env",
    ],
)
def test_local_state_that_may_hold_secrets_or_patient_data_is_ignored(path):
    ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO_ROOT)
    assert ignored.returncode == 0, f"{path} would be committed by 'git add -A'"
