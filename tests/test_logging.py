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


def test_one_search_finds_every_secret_the_substitutions_scrub_in_either_case():
    """`redact` returns a string untouched when the combined search finds nothing: that search must find whatever any
    of the substitutions would scrub, whatever the case of a case-insensitive key."""
    from coordinoter.logging import _ANY_SECRET, _SECRET_PATTERNS

    samples = [
        "Authorization: BEARER abc.def",
        "authorization: bearer abc",
        "jwt eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.sig here",
        "/callback/?code=abc&state=xyz",
        "/invitations/k7Qm2xYpL0vN8rT4wZ1aB6cD/",
        "REFRESH_TOKEN=abc",
        "{'Password': 'hunter2'}",
        'client_secret: "s3"',
        "push.chunk_created",
        "70784a63-d24b-46a9-a4db-0e70a274b056",
        "In Xero as INV-0001 (AUTHORISED)",
    ]
    for text in samples:
        scrubbed = any(pattern.search(text) for pattern in _SECRET_PATTERNS)
        assert bool(_ANY_SECRET.search(text)) == scrubbed, text
        assert (redact(text) != text) == scrubbed, text
    assert redact("Token: abc") == "Token: [redacted]" and redact("BEARER abc") == "BEARER [redacted]"


def test_filter_scrubs_every_extra_field_and_leaves_what_logging_fills_in_from_the_code():
    record = logging.LogRecord("invoices.push", logging.INFO, "/app/x.py", 1, "push.chunk_created", (), None)
    record.detail = "retrying with refresh_token=SECRET3"
    record.tenant_id = "70784a63-d24b-46a9-a4db-0e70a274b056"
    RedactSecretsFilter().filter(record)
    assert record.detail == "retrying with refresh_token=[redacted]"
    assert (record.name, record.pathname, record.tenant_id) == (
        "invoices.push",
        "/app/x.py",
        "70784a63-d24b-46a9-a4db-0e70a274b056",
    )
