"""Log filters: a request id on every record, and token material scrubbed before anything is written."""

import contextvars
import logging
import re

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# Bearer headers, JWT-looking strings, and key=value pairs whose key names a secret. Case-insensitive parts are
# scoped `(?i:...)`, so the patterns also compile as one alternation (`_ANY_SECRET`).
_SECRET_SOURCES = [
    r"((?i:bearer)\s+)[A-Za-z0-9._~+/=-]+",
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
    # OAuth callback query strings: the authorization code and state are single-use, but never worth logging.
    r"([?&](?:code|state|code_challenge)=)[^&\s\"']+",
    # An invitation link's token (organisations.people.services): runserver logs every request's path.
    r"(/invitations/)[A-Za-z0-9_-]{16,}",
    r"((?i:access_token|refresh_token|id_token|client_secret|code_verifier|password|token)"
    r"[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+",
]
_SECRET_PATTERNS = [re.compile(source) for source in _SECRET_SOURCES]
# One search says whether a string needs scrubbing at all: nearly every logged string does not, and one pass over it
# costs a fifth of five substitutions.
_ANY_SECRET = re.compile("|".join(f"(?:{source})" for source in _SECRET_SOURCES))
# What logging itself fills in from the code that logs (the logger's name, the file and function, the level): never
# data, so never scrubbed.
_FROM_CODE = frozenset(
    {
        "msg",
        "message",
        "exc_text",
        "name",
        "levelname",
        "pathname",
        "filename",
        "module",
        "funcName",
        "threadName",
        "processName",
        "taskName",
    }
)


def redact(text: str) -> str:
    if not _ANY_SECRET.search(text):
        return text
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[redacted]", text)
    return text


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        for key, value in list(record.__dict__.items()):
            if isinstance(value, str) and key not in _FROM_CODE:
                record.__dict__[key] = redact(value)
        return True


class ConsoleFormatter(logging.Formatter):
    """`make run`'s readable lines (LOG_FORMAT=console): the time, then runserver's request line as it is
    ("GET /batches/ HTTP/1.1" 200 5120), or the level, logger and message of anything else. The same filters
    (request id, redaction) run before it; production keeps one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        when = self.formatTime(record, "%H:%M:%S")
        if record.name == "django.server":
            line = f"{when}  {record.getMessage()}"
        else:
            line = f"{when}  {record.levelname:<7} {record.name}: {record.getMessage()}"
        if record.exc_text:
            line += "\n" + record.exc_text
        return line
