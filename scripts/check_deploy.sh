#!/usr/bin/env bash
# `make check-deploy`: Django's deployment checks under production settings, with throwaway secrets of the
# right shapes (nothing here is a real secret; production supplies its own through the environment).
set -eu
cd "$(dirname "$0")/.."
unset DJANGO_ALLOW_ASYNC_UNSAFE  # tests set it for the live server; production never does
key="$(.venv/bin/python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
DJANGO_DEBUG=false \
  DJANGO_SECRET_KEY="$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
  DJANGO_ALLOWED_HOSTS=portal.example.com \
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/coordinoter \
  REDIS_URL=redis://127.0.0.1:6379/0 \
  TOKEN_ENCRYPTION_KEYS="$key" \
  XERO_CLIENT_ID=check-deploy XERO_CLIENT_SECRET=check-deploy \
  XERO_REDIRECT_URI=https://portal.example.com/integrations/xero/callback/ \
  XERO_WEBHOOK_KEY=check-deploy METRICS_TOKEN=check-deploy \
  .venv/bin/python manage.py check --deploy --fail-level WARNING
