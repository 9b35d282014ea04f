"""Settings from command-line flags and XERO_SANDBOX_* environment variables.

Every flag has an environment variable; a flag wins over the environment. Runtime-changeable
settings live in ``Settings`` and can be changed through the admin API (/_sandbox/settings).
"""

from __future__ import annotations

import argparse
import os
import threading
from dataclasses import asdict, dataclass, field

DEFAULT_CLIENT_ID = "coordinoter-dev"
DEFAULT_CLIENT_SECRET = "dev-secret-not-for-production"
DEFAULT_WEBHOOK_KEY = "sandbox-webhook-signing-key-not-for-production"
DEFAULT_REDIRECT_URIS = (
    "http://localhost:8000/integrations/xero/callback/",
    "http://127.0.0.1:8000/integrations/xero/callback/",
    # Sign in / sign up with Xero comes back to its own URI (an app may register up to 50).
    "http://localhost:8000/accounts/xero/callback/",
    "http://127.0.0.1:8000/accounts/xero/callback/",
)
DEFAULT_LIMITS = {"concurrent": 5, "minute": 60, "day": 5000, "app_minute": 10000}
SCOPE_SETS = ("granular", "legacy", "mixed")


@dataclass
class Settings:
    """Everything that may change while the sandbox runs (admin API: GET/POST /_sandbox/settings)."""

    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    redirect_uris: list = field(default_factory=lambda: list(DEFAULT_REDIRECT_URIS))
    app_name: str = "Coordinoter (sandbox)"
    scope_set: str = "granular"
    public_clients: list = field(default_factory=list)  # client ids allowed without a secret (PKCE apps)
    access_token_lifetime: int = 1800
    extra_orgs: int = 0  # more AU-style organisations beside the two seeded ones (fairness benchmarks)
    id_token_lifetime: int = 300
    code_lifetime: int = 300
    refresh_grace: int = 1800
    refresh_idle: int = 60 * 86400
    time_scale: float = 1.0
    latency_ms: float = 0.0
    latency_per_invoice_ms: float = 0.0
    limits: dict = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    idempotency_window: float = 360.0  # real seconds at time scale 1; divided by the time scale
    max_body_bytes: int = int(3.5 * 1024 * 1024)
    webhook_url: str = ""
    webhook_key: str = DEFAULT_WEBHOOK_KEY
    webhook_batch_ms: float = 500.0
    webhook_batch_max: int = 100
    webhook_timeout: float = 5.0
    webhook_retry_interval: float = 900.0  # seconds between retries at time scale 1 (divided by it)
    webhook_retry_for: float = 86400.0  # give up and disable after this long (divided by time scale)
    webhook_duplicate: float = 0.0  # share of deliveries sent twice (0..1); true means 1
    webhook_out_of_order: bool = False
    webhook_categories: list = field(default_factory=lambda: ["INVOICE", "CONTACT"])

    def snapshot(self) -> dict:
        data = asdict(self)
        data["client_secret"] = "***"
        data["webhook_key"] = "***" if self.webhook_key else ""
        return data


@dataclass
class Config:
    host: str = "127.0.0.1"
    port: int = 8001
    public_url: str = ""
    state: str = ":memory:"
    admin_token: str = ""
    faults: list = field(default_factory=list)
    quiet: bool = False
    settings: Settings = field(default_factory=Settings)

    def base_url(self, bound_port: int | None = None) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"  # noqa: S104
        return f"http://{host}:{bound_port or self.port}"


class SettingsBox:
    """Thread-safe holder of the live Settings."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._lock = threading.Lock()

    @property
    def s(self) -> Settings:
        return self._settings

    def update(self, changes: dict) -> list:
        """Apply known fields; returns the list of unknown names (ignored)."""
        unknown = []
        with self._lock:
            for key, value in changes.items():
                if not hasattr(self._settings, key):
                    unknown.append(key)
                    continue
                current = getattr(self._settings, key)
                if key == "limits":
                    merged = dict(current)
                    merged.update({k: int(v) for k, v in value.items()})
                    value = merged
                elif key == "webhook_duplicate":
                    value = 1.0 if value is True else (0.0 if value is False else float(value))
                elif key == "redirect_uris" and isinstance(value, str):
                    value = split_list(value)
                elif isinstance(current, bool):
                    value = bool(value)
                elif isinstance(current, int) and not isinstance(current, bool):
                    value = int(value)
                elif isinstance(current, float):
                    value = float(value)
                if key == "time_scale" and value <= 0:
                    raise ValueError("time_scale must be positive")
                if key == "scope_set" and value not in SCOPE_SETS:
                    raise ValueError(f"scope_set must be one of {SCOPE_SETS}")
                setattr(self._settings, key, value)
        return unknown


def split_list(value: str) -> list:
    return [part for part in value.replace(",", " ").split() if part]


def parse_limits(text: str) -> dict:
    limits = dict(DEFAULT_LIMITS)
    for part in split_list(text):
        name, _, number = part.partition("=")
        name = name.strip().replace("-", "_")
        if name not in limits:
            raise argparse.ArgumentTypeError(f"unknown limit {name!r}; known: {', '.join(limits)}")
        limits[name] = int(number)
    return limits


def _env(name: str, default=None):
    return os.environ.get("XERO_SANDBOX_" + name, default)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m xero_sandbox",
        description="A faithful local Xero: identity, Accounting API, rate limits, faults, webhooks, UI.",
    )
    p.add_argument("--host", default=_env("HOST", "127.0.0.1"), help="bind address [XERO_SANDBOX_HOST]")
    p.add_argument(
        "--port",
        type=int,
        default=int(_env("PORT", "8001")),
        help="port, 0 picks a free one [XERO_SANDBOX_PORT]",
    )
    p.add_argument(
        "--public-url",
        default=_env("PUBLIC_URL", ""),
        help="URL the sandbox is reached at (issuer, links); default http://HOST:PORT [XERO_SANDBOX_PUBLIC_URL]",
    )
    p.add_argument("--client-id", default=_env("CLIENT_ID", DEFAULT_CLIENT_ID), help="[XERO_SANDBOX_CLIENT_ID]")
    p.add_argument(
        "--client-secret",
        default=_env("CLIENT_SECRET", DEFAULT_CLIENT_SECRET),
        help="[XERO_SANDBOX_CLIENT_SECRET]",
    )
    p.add_argument(
        "--redirect-uri",
        action="append",
        dest="redirect_uris",
        default=None,
        help="allowed redirect URI, repeatable [XERO_SANDBOX_REDIRECT_URIS, comma-separated]",
    )
    p.add_argument(
        "--app-name",
        default=_env("APP_NAME", "Coordinoter (sandbox)"),
        help="app name shown on consent and as ProviderName [XERO_SANDBOX_APP_NAME]",
    )
    p.add_argument(
        "--scope-set",
        choices=SCOPE_SETS,
        default=_env("SCOPE_SET", "granular"),
        help="scopes the app may request: granular (apps created from March 2026), legacy "
        "(broad accounting.transactions), mixed [XERO_SANDBOX_SCOPE_SET]",
    )
    p.add_argument("--webhook-url", default=_env("WEBHOOK_URL", ""), help="[XERO_SANDBOX_WEBHOOK_URL]")
    p.add_argument("--webhook-key", default=_env("WEBHOOK_KEY", DEFAULT_WEBHOOK_KEY), help="[XERO_SANDBOX_WEBHOOK_KEY]")
    p.add_argument(
        "--webhook-batch-ms",
        type=float,
        default=float(_env("WEBHOOK_BATCH_MS", "500")),
        help="collect events this long before a delivery [XERO_SANDBOX_WEBHOOK_BATCH_MS]",
    )
    p.add_argument(
        "--time-scale",
        type=float,
        default=float(_env("TIME_SCALE", "1")),
        help="divides rate-limit windows, idempotency window, latency and webhook retry "
        "intervals [XERO_SANDBOX_TIME_SCALE]",
    )
    p.add_argument(
        "--latency-ms",
        type=float,
        default=float(_env("LATENCY_MS", "0")),
        help="fixed latency per Accounting call, before time scale [XERO_SANDBOX_LATENCY_MS]",
    )
    p.add_argument(
        "--latency-per-invoice-ms",
        type=float,
        default=float(_env("LATENCY_PER_INVOICE_MS", "0")),
        help="extra latency per invoice in the request [XERO_SANDBOX_LATENCY_PER_INVOICE_MS]",
    )
    p.add_argument(
        "--rate-limits",
        type=parse_limits,
        default=parse_limits(_env("RATE_LIMITS", "")),
        help="override limits, e.g. 'minute=60,day=5000,concurrent=5,app_minute=10000' [XERO_SANDBOX_RATE_LIMITS]",
    )
    p.add_argument(
        "--extra-orgs",
        type=int,
        default=int(_env("EXTRA_ORGS", "0")),
        help="seed this many more AU-style organisations, 'Extra Org NN (AU)' [XERO_SANDBOX_EXTRA_ORGS]",
    )
    p.add_argument(
        "--access-token-lifetime",
        type=int,
        default=int(_env("ACCESS_TOKEN_LIFETIME", "1800")),
        help="seconds (real time) [XERO_SANDBOX_ACCESS_TOKEN_LIFETIME]",
    )
    p.add_argument(
        "--fault",
        action="append",
        dest="faults",
        default=None,
        help="fault rule, repeatable, e.g. '503,share=0.1' or '500,count=2,path=/api.xro/2.0/Invoices' "
        "[XERO_SANDBOX_FAULTS, ';'-separated]",
    )
    p.add_argument(
        "--state",
        default=_env("STATE", ":memory:"),
        help="SQLite file for state, or :memory: [XERO_SANDBOX_STATE]",
    )
    p.add_argument(
        "--admin-token",
        default=_env("ADMIN_TOKEN", ""),
        help="if set, /_sandbox/* requires header X-Sandbox-Admin-Token [XERO_SANDBOX_ADMIN_TOKEN]",
    )
    p.add_argument(
        "--quiet",
        action="store_true",
        default=_env("QUIET", "") not in ("", "0", "false"),
        help="no access log [XERO_SANDBOX_QUIET]",
    )
    return p


def config_from_args(argv=None) -> Config:
    args = build_parser().parse_args(argv)
    redirect_uris = args.redirect_uris
    if redirect_uris is None:
        env = _env("REDIRECT_URIS")
        redirect_uris = split_list(env) if env else list(DEFAULT_REDIRECT_URIS)
    faults = args.faults
    if faults is None:
        env = _env("FAULTS", "")
        faults = [part.strip() for part in env.split(";") if part.strip()]
    settings = Settings(
        client_id=args.client_id,
        client_secret=args.client_secret,
        redirect_uris=redirect_uris,
        app_name=args.app_name,
        scope_set=args.scope_set,
        access_token_lifetime=args.access_token_lifetime,
        extra_orgs=args.extra_orgs,
        time_scale=args.time_scale,
        latency_ms=args.latency_ms,
        latency_per_invoice_ms=args.latency_per_invoice_ms,
        limits=args.rate_limits,
        webhook_url=args.webhook_url,
        webhook_key=args.webhook_key,
        webhook_batch_ms=args.webhook_batch_ms,
    )
    if settings.time_scale <= 0:
        raise SystemExit("--time-scale must be positive")
    return Config(
        host=args.host,
        port=args.port,
        public_url=args.public_url,
        state=args.state,
        admin_token=args.admin_token,
        faults=faults,
        quiet=args.quiet,
        settings=settings,
    )
