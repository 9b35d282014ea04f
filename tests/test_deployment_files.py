"""docker-compose.yml cannot run here (no Docker engine), so its shape is checked as data."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_runs_the_production_shape_when_parsed():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert services["db"]["image"] == "postgres:15"
    assert services["redis"]["image"] == "redis:7"
    assert "gunicorn" in services["web"]["command"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "coordinoter", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "coordinoter", "beat"]
    for name in ("web", "worker", "beat", "migrate"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@db:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert services[name]["env_file"] == ".env"


def test_compose_holds_no_literal_secret_when_read():
    text = (ROOT / "docker-compose.yml").read_text()
    assert "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?" in text
    for word in ("DJANGO_SECRET_KEY:", "XERO_CLIENT_SECRET:", "TOKEN_ENCRYPTION_KEYS:"):
        assert word not in text


def test_ci_runs_make_test_when_invoked():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_make_run_deep_link_keeps_both_placeholders_when_expanded_by_bash():
    import subprocess

    script = (ROOT / "scripts" / "run.sh").read_text()
    lines = [line for line in script.splitlines() if "DEEP_LINK" in line and not line.lstrip().startswith("#")]
    command = "SANDBOX_URL=http://sb; " + "; ".join(lines) + "; echo $XERO_INVOICE_DEEP_LINK"
    out = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, check=True
    ).stdout.strip()
    assert out == "http://sb/app/{short_code}/invoicing/view/{invoice_id}"
