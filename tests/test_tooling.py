"""The developer commands the README and the Makefile promise: lint (ruff check and ruff format) and
check-deploy, and that each test run owns its Redis databases."""

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_ruff_check_and_format_are_clean_when_run_over_the_tree():
    for args in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run([BIN / "ruff", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"ruff {' '.join(args)}:\n{result.stdout}{result.stderr}"


def test_check_deploy_script_passes_when_run():
    result = subprocess.run(["bash", "scripts/check_deploy.sh"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_run_uses_its_own_redis_databases_when_started_by_make_test():
    # scripts/test.sh claims a pair above 1 (db 0 holds the claims); an explicit TEST_REDIS_URL may differ.
    broker_db = int(settings.REDIS_URL.rsplit("/", 1)[1])
    cache_db = int(settings.CACHES["default"]["LOCATION"].rsplit("/", 1)[1])
    assert broker_db != cache_db
    if "TEST_REDIS_URL" not in os.environ:
        assert broker_db >= 2 and cache_db == broker_db + 1
