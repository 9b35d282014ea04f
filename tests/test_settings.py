"""Production settings: refuse to start without secrets, and pass `check --deploy` with no warnings."""

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent

PRODUCTION_ENV = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "x" * 20 + Fernet.generate_key().decode(),
    "DJANGO_ALLOWED_HOSTS": "portal.coordinoter.example",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/coordinoter",
    # The run's own Redis database (scripts/test.sh), never a shared one; these subprocesses only read the setting.
    "REDIS_URL": settings.REDIS_URL or "redis://127.0.0.1:1/0",
    "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "XERO_CLIENT_ID": "client-id",
    "XERO_CLIENT_SECRET": "client-secret-from-the-vault",
    "XERO_REDIRECT_URI": "https://portal.coordinoter.example/integrations/xero/callback/",
    "XERO_WEBHOOK_KEY": "webhook-key-from-the-vault",
}


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "XERO_", "TOKEN_"))}
    base.pop("DATABASE_URL", None)
    base.pop("REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


def test_production_refuses_to_start_when_secrets_are_missing():
    result = run_manage("check", env={"DJANGO_DEBUG": "false"})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr
    assert "TOKEN_ENCRYPTION_KEYS" in result.stderr


def test_check_deploy_is_clean_when_production_secrets_are_set():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_malformed_deep_link_template_stops_start_up_when_set():
    result = run_manage(
        "check", env={"DJANGO_DEBUG": "true", "XERO_INVOICE_DEEP_LINK": "http://x/app/{short_code/view/{invoice_id}}"}
    )
    assert result.returncode != 0
    assert "XERO_INVOICE_DEEP_LINK" in result.stderr
