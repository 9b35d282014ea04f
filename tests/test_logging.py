import logging

from coordinoter.logging import RedactSecretsFilter, redact


def test_redact_hides_bearer_tokens_and_jwts_when_present():
    text = "Authorization: Bearer abc.def.ghi refresh_token=r3fr3sh&x=1 eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.sig"
    cleaned = redact(text)
    assert "abc.def.ghi" not in cleaned
    assert "r3fr3sh" not in cleaned
    assert "eyJhbGciOiJSUzI1NiJ9" not in cleaned
    assert "x=1" in cleaned


def test_filter_scrubs_message_args_and_exceptions_when_they_carry_tokens():
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "refreshing with %s", ("access_token=SECRET1",), None)
    try:
        raise ValueError('{"refresh_token": "SECRET2"}')
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    RedactSecretsFilter().filter(record)
    assert "SECRET1" not in record.getMessage()
    assert "SECRET2" not in record.exc_text


def test_redact_hides_oauth_code_and_state_when_a_callback_url_is_logged():
    cleaned = redact('"GET /integrations/xero/callback/?code=abc123&state=s7a7e&scope=x HTTP/1.1" 302')
    assert "abc123" not in cleaned and "s7a7e" not in cleaned
    assert "scope=x" in cleaned


def test_debug_console_logging_is_redacted_when_django_logs_a_request_path():
    """Issue 13, finding 9: with DEBUG on, Django's own console handler wrote request paths unredacted beside our
    redacted JSON lines. Every Django logger now goes through the same handler and redaction as production."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import django, logging; django.setup(); "
        "logging.getLogger('django.request').warning("
        "'Not Found: /integrations/xero/callback/?code=AUTHCODE123&state=STATE456'); "
        "logging.getLogger('django.security.csrf').warning('Forbidden: access_token=TOKEN789')"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "coordinoter.settings",
        "DJANGO_DEBUG": "true",
        "LOG_LEVEL": "INFO",
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        check=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    for secret in ("AUTHCODE123", "STATE456", "TOKEN789"):
        assert secret not in output
    assert "Not Found: /integrations/xero/callback/?code=[redacted]" in result.stdout  # still logged, as JSON
    assert result.stderr == ""


def test_request_lines_are_readable_and_redacted_when_make_run_sets_the_console_format():
    """Issue 14: `make run` prints runserver's request lines as text, so the logins printed before stay readable."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import django, logging; django.setup(); "
        "logging.getLogger('django.server').info("
        "'\"%s\" %s %s', 'GET /invitations/k7Qm2xYpL0vN8rT4wZ1aB6cD/ HTTP/1.1', '200', '5120'); "
        "logging.getLogger('integrations.audit').info('integrations.audit.connected')"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "coordinoter.settings",
        "DJANGO_DEBUG": "true",
        "LOG_FORMAT": "console",
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        check=True,
    )
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith('  "GET /invitations/[redacted]/ HTTP/1.1" 200 5120')
    assert not lines[0].lstrip().startswith("{") and "k7Qm2xYpL0vN8rT4wZ1aB6cD" not in result.stdout
    assert "INFO    integrations.audit: integrations.audit.connected" in lines[1]


def test_invitation_tokens_are_redacted_when_a_request_path_carries_one():
    assert redact("POST /invitations/k7Qm2xYpL0vN8rT4wZ1aB6cD/ 302") == "POST /invitations/[redacted]/ 302"
