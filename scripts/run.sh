#!/usr/bin/env bash
# `make run`: the whole product on one machine. SQLite, and one thread of the web process running the tasks and
# the beat schedule (coordinoter/queue.py) with the rate limiter in process, unless DATABASE_URL / REDIS_URL are
# set; then PostgreSQL, Redis and real Celery workers and beat.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export DJANGO_DEBUG="${DJANGO_DEBUG:-true}"
export PYTHONUNBUFFERED=1
# Readable request lines on the console (production logs one JSON object per line): the logins stay on screen.
export LOG_FORMAT="${LOG_FORMAT:-console}"

WEB_HOST="${WEB_HOST:-127.0.0.1}"; WEB_PORT="${WEB_PORT:-8000}"
SANDBOX_HOST="${SANDBOX_HOST:-127.0.0.1}"; SANDBOX_PORT="${SANDBOX_PORT:-8001}"
SANDBOX_URL="http://${SANDBOX_HOST}:${SANDBOX_PORT}"
export SITE_URL="${SITE_URL:-http://${WEB_HOST}:${WEB_PORT}}"

# The app talks to the sandbox Xero exactly as it would to the real one: only URLs and credentials differ.
# These are the sandbox's public development credentials, not secrets (docs/sandbox.md).
export XERO_CLIENT_ID="${XERO_CLIENT_ID:-coordinoter-dev}"
export XERO_CLIENT_SECRET="${XERO_CLIENT_SECRET:-dev-secret-not-for-production}"
export XERO_WEBHOOK_KEY="${XERO_WEBHOOK_KEY:-dev-webhook-key-not-for-production}"
export XERO_REDIRECT_URI="${XERO_REDIRECT_URI:-${SITE_URL}/integrations/xero/callback/}"
export XERO_SIGNIN_REDIRECT_URI="${XERO_SIGNIN_REDIRECT_URI:-${SITE_URL}/accounts/xero/callback/}"
export XERO_OIDC_ISSUER="${XERO_OIDC_ISSUER:-${SANDBOX_URL}}"
export XERO_AUTHORIZE_URL="${XERO_AUTHORIZE_URL:-${SANDBOX_URL}/identity/connect/authorize}"
export XERO_TOKEN_URL="${XERO_TOKEN_URL:-${SANDBOX_URL}/connect/token}"
export XERO_REVOCATION_URL="${XERO_REVOCATION_URL:-${SANDBOX_URL}/connect/revocation}"
export XERO_CONNECTIONS_URL="${XERO_CONNECTIONS_URL:-${SANDBOX_URL}/connections}"
export XERO_API_URL="${XERO_API_URL:-${SANDBOX_URL}/api.xro/2.0}"
# (Set in two steps: a "}" inside ${VAR:-...} would end the expansion early.)
SANDBOX_DEEP_LINK="${SANDBOX_URL}/app/{short_code}/invoicing/view/{invoice_id}"
export XERO_INVOICE_DEEP_LINK="${XERO_INVOICE_DEEP_LINK:-$SANDBOX_DEEP_LINK}"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

# Our bytecode written once, as a deploy does: where PYTHONDONTWRITEBYTECODE is set, every process (web, each worker,
# beat, the sandbox) would compile all of our modules again at each start and never write them down.
$BIN/python -m compileall -q coordinoter integrations invoices organisations xero_sandbox >/dev/null
echo "==> Migrating the database (${DATABASE_URL:-SQLite: db.sqlite3})"
$BIN/python manage.py migrate --noinput -v 0
echo "==> Seeding demo data"
$BIN/python manage.py seed_demo

if [ -f xero_sandbox/__main__.py ]; then
  echo "==> Starting the sandbox Xero on ${SANDBOX_URL}"
  $BIN/python -m xero_sandbox --host "$SANDBOX_HOST" --port "$SANDBOX_PORT" \
    --client-id "$XERO_CLIENT_ID" --client-secret "$XERO_CLIENT_SECRET" \
    --redirect-uri "$XERO_REDIRECT_URI" --redirect-uri "$XERO_SIGNIN_REDIRECT_URI" \
    --webhook-url "${SITE_URL}/integrations/xero/webhooks/" --webhook-key "$XERO_WEBHOOK_KEY" \
    --state "${SANDBOX_STATE:-.sandbox-state.sqlite3}" &
  pids+=($!)
fi

if [ -n "${REDIS_URL:-}" ]; then
  echo "==> Starting Celery workers and beat (broker ${REDIS_URL%%@*})"
  $BIN/celery -A coordinoter worker -Q default,xero,webhooks -c "${WORKER_CONCURRENCY:-4}" --loglevel INFO &
  pids+=($!)
  $BIN/celery -A coordinoter beat --loglevel INFO --schedule "${TMPDIR:-/tmp}/coordinoter-beat-schedule" &
  pids+=($!)
else
  echo "==> No REDIS_URL: one thread of the web process runs background tasks and the beat schedule;"
  echo "    Xero's rate limits are enforced by the same limiter, in process"
fi

cat <<MSG

  Coordinoter is starting on ${SITE_URL}   (WEB_PORT=${WEB_PORT})
  Sandbox Xero:     ${SANDBOX_URL}   (SANDBOX_PORT=${SANDBOX_PORT}; Xero login demo@sandbox.test / sandbox)
  Logins (password: demo):
    admin@acme.test, accountant@acme.test      Acme Care (admin@acme.test is also accountant of Bolt Services)
    admin@bolt.test, accountant@bolt.test      Bolt Services
    support@coordinoter.test                   Coordinoter support staff; its two-step code (staff pages ask for
                                               one): $BIN/python manage.py totp_code support@coordinoter.test
  Emails (invitations, digests, support replies) are printed here, on this console.
  Press Ctrl-C to stop everything.

MSG
$BIN/python manage.py runserver "${WEB_HOST}:${WEB_PORT}" --noreload &
pids+=($!)
wait -n "${pids[@]}"
