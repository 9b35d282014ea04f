"""Talking to Xero: the app's credentials and URLs, scopes, sign-in with Xero, webhooks, reconciliation, the rate
limiter, the push, the outbound engine and the token store."""

from coordinoter.env import env_bool, env_int, env_str
from coordinoter.settings.base import SITE_URL

# Xero. Every URL defaults to the real Xero; `make run` points them at xero_sandbox.
XERO_CLIENT_ID = env_str("XERO_CLIENT_ID")
XERO_CLIENT_SECRET = env_str("XERO_CLIENT_SECRET")
XERO_REDIRECT_URI = env_str("XERO_REDIRECT_URI", f"{SITE_URL}/integrations/xero/callback/")
XERO_AUTHORIZE_URL = env_str("XERO_AUTHORIZE_URL", "https://login.xero.com/identity/connect/authorize")
XERO_TOKEN_URL = env_str("XERO_TOKEN_URL", "https://identity.xero.com/connect/token")
XERO_REVOCATION_URL = env_str("XERO_REVOCATION_URL", "https://identity.xero.com/connect/revocation")
XERO_CONNECTIONS_URL = env_str("XERO_CONNECTIONS_URL", "https://api.xero.com/connections")
XERO_API_URL = env_str("XERO_API_URL", "https://api.xero.com/api.xro/2.0")
# Where "Open in Xero" links go; {short_code} and {invoice_id} are filled in.
XERO_INVOICE_DEEP_LINK = env_str(
    "XERO_INVOICE_DEEP_LINK",
    "https://go.xero.com/organisationlogin/default.aspx?shortcode={short_code}"
    "&redirecturl=/AccountsReceivable/View.aspx?InvoiceID={invoice_id}",
)
try:  # fail at start-up, not on every batch page, when the template is malformed
    XERO_INVOICE_DEEP_LINK.format(short_code="!abc", invoice_id="00000000-0000-0000-0000-000000000000")
except (KeyError, IndexError, ValueError) as exc:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"XERO_INVOICE_DEEP_LINK must use only {{short_code}} and {{invoice_id}}: {exc}"
    ) from exc
XERO_GRANULAR_SCOPES = "offline_access openid profile email accounting.invoices accounting.contacts accounting.settings"
XERO_LEGACY_SCOPES = (
    "offline_access openid profile email accounting.transactions accounting.contacts accounting.settings"
)
XERO_SCOPES = env_str("XERO_SCOPES", XERO_GRANULAR_SCOPES)
if XERO_SCOPES == "legacy":
    XERO_SCOPES = XERO_LEGACY_SCOPES
XERO_USE_PKCE = env_bool("XERO_USE_PKCE", True)
# Sign in / sign up with Xero (OpenID Connect): its own redirect URI (register it with the Xero app beside
# XERO_REDIRECT_URI), the issuer whose /.well-known/openid-configuration names the id_token keys, and the scopes.
# Sign-in asks only for the identity; sign-up asks for XERO_SCOPES (identity plus accounting) in one consent.
XERO_SIGNIN_REDIRECT_URI = env_str("XERO_SIGNIN_REDIRECT_URI", f"{SITE_URL}/accounts/xero/callback/")
XERO_SIGNIN_SCOPES = env_str("XERO_SIGNIN_SCOPES", "openid profile email")
XERO_OIDC_ISSUER = env_str("XERO_OIDC_ISSUER", "https://identity.xero.com")
XERO_OIDC_CACHE_SECONDS = env_int("XERO_OIDC_CACHE_SECONDS", 3600)
XERO_OIDC_LEEWAY_SECONDS = env_int("XERO_OIDC_LEEWAY_SECONDS", 60)
XERO_WEBHOOK_KEY = env_str("XERO_WEBHOOK_KEY")
XERO_WEBHOOK_KEY_PREVIOUS = env_str("XERO_WEBHOOK_KEY_PREVIOUS")
# The webhook receiver refuses bodies above this (413); Xero's deliveries are a few KB.
WEBHOOK_MAX_BODY_BYTES = env_int("WEBHOOK_MAX_BODY_BYTES", 256 * 1024)
# Who applies a resource fetched after a webhook or a reconciliation poll, by event category: the invoices app
# registers here, so integrations never imports invoices.
XERO_RESOURCE_APPLIERS = {
    "INVOICE": "invoices.services.apply.invoices_apply_from_xero",
    "CONTACT": "invoices.services.apply.contacts_apply_from_xero",
    # Polled only (reconciliation): the webhook inbox takes INVOICE and CONTACT events.
    "CREDITNOTE": "invoices.services.apply.credit_notes_apply_from_xero",
}
# Which Xero versions we hold, by event category: the invoices app's selector, named here like the appliers. The webhook
# inbox does not fetch a resource for an event older than the version we hold (issue 15); a category missing here is
# always fetched.
XERO_RESOURCE_VERSIONS = {"INVOICE": "invoices.selectors.invoice_versions_held"}
# Categories reconciliation polls only for organisations the named function says have something to update: a tenant
# that never sent a credit note spends none of its 5,000 daily calls on GET /CreditNotes.
XERO_RECONCILE_GATES = {"CREDITNOTE": "invoices.services.apply.credit_notes_to_reconcile"}
# Reconciliation costs what it must (issue 15): a tenant whose webhooks arrive in sequence is polled once every
# XERO_RECONCILE_QUIET_SECONDS; a gap in the webhooks' sequence numbers (still open after WEBHOOK_GAP_GRACE_SECONDS),
# a delivery we failed to process, or activity (a push) with no webhook within XERO_RECONCILE_ACTIVITY_GRACE_SECONDS
# brings it forward to XERO_RECONCILE_SOON_SECONDS. The beat fan-out runs every XERO_RECONCILE_EVERY_SECONDS and
# queues at most XERO_RECONCILE_PAGE_SIZE due tenants, spread over that interval. Divided by XERO_TIME_SCALE like
# Xero's own windows (benchmarks only).
XERO_RECONCILE_EVERY_SECONDS = env_int("XERO_RECONCILE_EVERY_SECONDS", 60)
XERO_RECONCILE_PAGE_SIZE = env_int("XERO_RECONCILE_PAGE_SIZE", 500)
XERO_RECONCILE_QUIET_SECONDS = env_int("XERO_RECONCILE_QUIET_SECONDS", 86400) / float(env_str("XERO_TIME_SCALE", "1"))
XERO_RECONCILE_SOON_SECONDS = env_int("XERO_RECONCILE_SOON_SECONDS", 300) / float(env_str("XERO_TIME_SCALE", "1"))
XERO_RECONCILE_ACTIVITY_GRACE_SECONDS = env_int("XERO_RECONCILE_ACTIVITY_GRACE_SECONDS", 600) / float(
    env_str("XERO_TIME_SCALE", "1")
)
WEBHOOK_GAP_GRACE_SECONDS = env_int("WEBHOOK_GAP_GRACE_SECONDS", 120) / float(env_str("XERO_TIME_SCALE", "1"))
# Least time between two fetches for one tenant's webhook events (more events in between share one GET).
WEBHOOK_FETCH_INTERVAL_SECONDS = float(env_str("WEBHOOK_FETCH_INTERVAL_SECONDS", "2"))
# Handled webhook events are kept this long for support, then purged by the inbox sweeper.
WEBHOOK_EVENT_RETENTION_DAYS = env_int("WEBHOOK_EVENT_RETENTION_DAYS", 30)
XERO_HTTP_TIMEOUT_SECONDS = float(env_str("XERO_HTTP_TIMEOUT_SECONDS", "30"))
# Xero's limits and windows (https://developer.xero.com/documentation/guides/oauth2/limits/). XERO_TIME_SCALE > 1
# only against xero_sandbox run with the same --time-scale: every Xero window and wait is divided by it.
XERO_TIME_SCALE = float(env_str("XERO_TIME_SCALE", "1"))
XERO_RATE_LIMITS = {
    "concurrent": env_int("XERO_RATE_CONCURRENT", 5),
    "minute": env_int("XERO_RATE_MINUTE", 60),
    "day": env_int("XERO_RATE_DAY", 5000),
    "app_minute": env_int("XERO_RATE_APP_MINUTE", 10000),
}
XERO_RATE_MINUTE_SECONDS = 60 / XERO_TIME_SCALE
XERO_RATE_DAY_SECONDS = 86400 / XERO_TIME_SCALE
XERO_RATE_GUARD_SECONDS = float(env_str("XERO_RATE_GUARD_SECONDS", "1")) / XERO_TIME_SCALE
XERO_RATE_SLOT_TTL_SECONDS = XERO_HTTP_TIMEOUT_SECONDS + 15  # a killed worker's slot frees itself after this
XERO_RATE_LIMIT_PREFIX = env_str("XERO_RATE_LIMIT_PREFIX", "xero:rl")
# Background calls (webhook fetches, reconciliation, keep-alive and connection checks) share at most this part of
# the app minute and wait once the app's calls reach the rest of it (integrations/xero/ratelimit/, issue 15).
XERO_BACKGROUND_SHARE = float(env_str("XERO_BACKGROUND_SHARE", "0.2"))
# A tenant's own background calls wait until this long after its last customer call, so a push keeps the tenant's
# whole minute and the webhook fetches of its echoes come after it (integrations/xero/ratelimit, issue 15).
XERO_CUSTOMER_QUIET_SECONDS = float(env_str("XERO_CUSTOMER_QUIET_SECONDS", "5")) / XERO_TIME_SCALE
XERO_IDEMPOTENCY_WINDOW_SECONDS = 360 / XERO_TIME_SCALE  # Xero keeps an Idempotency-Key 6 minutes
# The push: a chunk's lease outlives its call; the sweeper re-dispatches expired leases and stalled tenants.
PUSH_LEASE_SECONDS = float(env_str("PUSH_LEASE_SECONDS", str(XERO_HTTP_TIMEOUT_SECONDS + 30)))
PUSH_SWEEP_SECONDS = float(env_str("PUSH_SWEEP_SECONDS", "30"))
XERO_RETRY_BASE_SECONDS = float(env_str("XERO_RETRY_BASE_SECONDS", "2"))
XERO_RETRY_MAX_SECONDS = float(env_str("XERO_RETRY_MAX_SECONDS", "300"))
# The outbound engine (integrations/outbound/): an operation's lease outlives its call; a result that cannot be
# confirmed after OUTBOUND_MAX_LOOKUPS lookups, or a write Xero never answered in OUTBOUND_MAX_SENDS tries, stops in
# needs_attention instead of looping.
OUTBOUND_LEASE_SECONDS = float(env_str("OUTBOUND_LEASE_SECONDS", str(XERO_HTTP_TIMEOUT_SECONDS + 30)))
OUTBOUND_MAX_LOOKUPS = env_int("OUTBOUND_MAX_LOOKUPS", 4)
OUTBOUND_MAX_SENDS = env_int("OUTBOUND_MAX_SENDS", 8)
OUTBOUND_SWEEP_SECONDS = float(env_str("OUTBOUND_SWEEP_SECONDS", "30"))
# An invoice whose sends went unanswered and which was then not found is sent again under a new key at most this
# many times; after that it needs attention.
PUSH_MAX_REQUEUES = env_int("PUSH_MAX_REQUEUES", 3)
# Token store: refresh this long before the 30-minute access token expires; the beat keep-alive refreshes
# refresh tokens older than XERO_KEEPALIVE_AFTER_DAYS (Xero's idle expiry is 60 days); OAuth state lifetime.
XERO_REFRESH_AHEAD_SECONDS = env_int("XERO_REFRESH_AHEAD_SECONDS", 300)
XERO_KEEPALIVE_AFTER_DAYS = env_int("XERO_KEEPALIVE_AFTER_DAYS", 7)
# The daily check of every connection is spread over the day: the beat fan-out runs every window and checks the
# connections whose own time of day falls in it, a page of them at a time.
XERO_KEEPALIVE_WINDOW_SECONDS = env_int("XERO_KEEPALIVE_WINDOW_SECONDS", 600)
XERO_KEEPALIVE_PAGE_SIZE = env_int("XERO_KEEPALIVE_PAGE_SIZE", 500)
XERO_OAUTH_STATE_TTL_SECONDS = env_int("XERO_OAUTH_STATE_TTL_SECONDS", 600)
