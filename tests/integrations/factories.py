"""Xero connections in a given state, built through the token store (the only writer of token fields)."""

import base64
import datetime as dt
import json
import secrets
from typing import Any

from django.db import transaction
from django.utils import timezone

from integrations.models import XeroConnection
from integrations.xero import tokens
from integrations.xero.types import TokenSet


def fake_jwt(**claims: Any) -> str:
    """An unsigned JWT-shaped access token carrying the claims we read (authentication_event_id, xero_userid)."""

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    payload = {"jti": secrets.token_hex(8), **claims}
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(payload)}.{secrets.token_urlsafe(16)}"


TENANT_ID = "70784a63-d24b-46a9-a4db-0e70a274b056"
TENANT_NAME = "Maple Florists Ltd"
CONNECTION_ID = "e1eede29-f875-4a5d-8470-17f6a29a88b1"
AUTH_EVENT_ID = "d99ecdfe-391d-43d2-b834-17636ba90e8d"
XERO_USER_ID = "7f1c2d3e-aaaa-4bbb-8ccc-000000000001"


def make_token_set(
    *, expires_in: int = 1800, auth_event_id: str = AUTH_EVENT_ID, xero_user_id: str = XERO_USER_ID
) -> TokenSet:
    return TokenSet(
        access_token=fake_jwt(authentication_event_id=auth_event_id, xero_userid=xero_user_id),
        refresh_token="rt-" + secrets.token_hex(16),
        expires_at=timezone.now() + dt.timedelta(seconds=expires_in),
        scopes=("offline_access", "accounting.invoices", "accounting.contacts", "accounting.settings"),
        authentication_event_id=auth_event_id,
        xero_user_id=xero_user_id,
    )


def make_connection(
    *,
    organisation,
    status: str = XeroConnection.Status.ACTIVE,
    tenant_id: str = TENANT_ID,
    tenant_name: str = TENANT_NAME,
    connection_id: str = CONNECTION_ID,
    expires_in: int = 1800,
    xero_user_id: str = XERO_USER_ID,
    token_set: TokenSet | None = None,
    refresh_issued_days_ago: int = 0,
) -> XeroConnection:
    now = timezone.now()
    with transaction.atomic():
        connection = XeroConnection.objects.create(
            organisation=organisation,
            status=status,
            tenant_id=tenant_id,
            tenant_name=tenant_name,
            tenant_type="ORGANISATION",
            tenant_short_code="!mF3pq",
            base_currency="NZD",
            connection_id=connection_id,
            auth_event_id=AUTH_EVENT_ID,
            xero_user_id=xero_user_id,
            connected_at=now - dt.timedelta(days=3),
            status_changed_at=now - dt.timedelta(days=3),
        )
        tokens.connection_tokens_save(
            connection=connection,
            token_set=token_set or make_token_set(expires_in=expires_in, xero_user_id=xero_user_id),
        )
        if refresh_issued_days_ago:
            XeroConnection.objects.filter(pk=connection.pk).update(
                refresh_token_issued_at=now - dt.timedelta(days=refresh_issued_days_ago)
            )
    connection.refresh_from_db()
    return connection


def token_response(
    *,
    refresh_token: str | None = None,
    auth_event_id: str = AUTH_EVENT_ID,
    xero_user_id: str = XERO_USER_ID,
    expires_in: int = 1800,
) -> dict:
    """A body like Xero's token endpoint answer."""
    return {
        "access_token": fake_jwt(authentication_event_id=auth_event_id, xero_userid=xero_user_id),
        "expires_in": expires_in,
        "token_type": "Bearer",
        "refresh_token": refresh_token or "rt-" + secrets.token_hex(16),
        "scope": "offline_access openid profile email accounting.invoices accounting.contacts accounting.settings",
    }
