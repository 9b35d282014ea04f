"""Admin / test API under /_sandbox (JSON in, JSON out). Not part of Xero.

If the sandbox was started with --admin-token, every call needs header X-Sandbox-Admin-Token.
"""

from __future__ import annotations

import hmac
import json
import time

from . import ledger
from .faults import FaultError
from .identity import connect_tenants, issue_tokens, owner_key, render_connection, revoke_user_app
from .server import Request, Response, plain_json
from .util import dumps, new_id


def body(request: Request) -> dict:
    if not request.body.strip():
        return {}
    data = json.loads(request.body)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def error(message: str, status: int = 400) -> Response:
    return plain_json({"error": message}, status)


def dump(value):
    return json.loads(dumps(value))


def tenants(app) -> list:
    return [
        {
            "tenantId": o["OrganisationID"],
            "name": o["Name"],
            "shortCode": o["ShortCode"],
            "baseCurrency": o["BaseCurrency"],
            "countryCode": o["CountryCode"],
            "invoices": app.store.count("invoice", o["OrganisationID"]),
            "contacts": app.store.count("contact", o["OrganisationID"]),
        }
        for o in app.store.find("org")
    ]


def find_org(app, key: str):
    key = key.strip()
    for org in app.store.find("org"):
        if key.lower() in (
            org["OrganisationID"],
            org["ShortCode"].lower(),
            org["Name"].lower(),
            org["CountryCode"].lower(),
        ):
            return org
    return None


def state(app, request: Request) -> Response:
    connections = [
        dict(render_connection(c), active=c["active"], user=c["user_id"], clientId=c["client_id"])
        for c in app.store.find("connection")
    ]
    grants = [
        {
            "id": g["id"],
            "user": g["user_id"],
            "clientId": g["client_id"],
            "scope": g["scope"],
            "authEventId": g["auth_event_id"],
            "revoked": g["revoked"],
        }
        for g in app.store.find("grant")
    ]
    users = [{"id": u["id"], "email": u["email"], "tenants": u["tenants"]} for u in app.store.find("user")]
    return plain_json(
        {
            "base_url": app.base_url,
            "clock_offset_seconds": app.clock.offset,
            "settings": app.settings.s.snapshot(),
            "tenants": tenants(app),
            "users": users,
            "connections": connections,
            "grants": grants,
            "rate_limits": app.limiter.snapshot(),
            "faults": app.faults.list(),
            "idempotency_keys": app.idempotency.snapshot(),
            "webhooks": app.webhooks.snapshot(include_bodies=False) | {"deliveries": len(app.webhooks.deliveries)},
        }
    )


def tenant_resource(app, request: Request, tenant: str, kind: str) -> Response:
    org = find_org(app, tenant)
    if org is None:
        return error("unknown tenant", 404)
    tid = org["OrganisationID"]
    if kind == "invoices":
        items = [ledger.render_invoice(app, d) for d in app.store.find("invoice", tenant=tid)]
    elif kind == "contacts":
        items = [ledger.render_contact(app, d) for d in app.store.find("contact", tenant=tid)]
    elif kind == "accounts":
        items = [ledger.render_account(d) for d in ledger.accounts(app, tid)]
    elif kind == "taxrates":
        items = [ledger.render_taxrate(d) for d in app.store.find("taxrate", tenant=tid)]
    else:
        return plain_json(dump(ledger.render_organisation(org)))
    return plain_json(dump(items))


def settings(app, request: Request) -> Response:
    if request.method == "POST":
        changes = body(request)
        try:
            unknown = app.settings.update(changes)
        except (ValueError, TypeError) as exc:
            return error(str(exc))
        if "time_scale" in changes:
            app.limiter.reset()
        if "webhook_url" in changes or "webhook_key" in changes:
            app.webhooks.retry_now()
        if unknown:
            return error(f"unknown settings: {', '.join(unknown)}")
    return plain_json(app.settings.s.snapshot())


def faults(app, request: Request, fault_id: str | None = None) -> Response:
    if request.method == "POST":
        try:
            data = body(request)
            rules = data.get("rules") if isinstance(data.get("rules"), list) else [data]
            added = [app.faults.add(rule) for rule in rules]
        except (FaultError, ValueError, TypeError) as exc:
            return error(str(exc))
        return plain_json(added if len(added) > 1 else added[0], 201)
    if request.method == "DELETE":
        if fault_id is None:
            app.faults.clear()
        elif not app.faults.remove(fault_id):
            return error("unknown fault id", 404)
        return Response(204)
    return plain_json(app.faults.list())


def expire_tokens(app, request: Request) -> Response:
    """Body: {} or {"all": true} for every token; {"tenant_id": ...}; {"user": email}; {"jti": ...}."""
    data = body(request)
    now = app.clock.now() - 1
    users = None
    if data.get("user"):
        users = {u["id"] for u in app.store.find("user", k1=str(data["user"]).lower())}
    owners = None
    tenant = data.get("tenant_id") or data.get("tenant")
    if tenant:
        org = find_org(app, tenant)
        if org is None:
            return error("unknown tenant", 404)
        owners = {
            owner_key(c["user_id"], c["client_id"]) for c in app.store.find("connection", k2=org["OrganisationID"])
        }
    count = 0
    with app.store.tx():
        for token in app.store.find("access"):
            if token["exp"] <= now:
                continue
            if data.get("jti") and token["jti"] != data["jti"]:
                continue
            if users is not None and token["user_id"] not in users:
                continue
            if owners is not None and owner_key(token["user_id"], token["client_id"]) not in owners:
                continue
            token["exp"] = now
            app.store.put(
                "access",
                token["jti"],
                token,
                k1=owner_key(token["user_id"], token["client_id"]),
                k2=token["grant_id"],
            )
            count += 1
    return plain_json({"expired": count})


def clock(app, request: Request) -> Response:
    if request.method == "POST":
        data = body(request)
        app.clock.advance(float(data.get("advance_seconds", data.get("advance", 0))))
    return plain_json({"offset_seconds": app.clock.offset, "now": app.clock.now()})


def disconnect(app, request: Request) -> Response:
    """Simulate a disconnect made on Xero's side: {"tenant_id": ..., "user": optional email}."""
    data = body(request)
    org = find_org(app, data.get("tenant_id") or data.get("tenant") or "")
    if org is None:
        return error("unknown tenant", 404)
    count = 0
    with app.store.tx():
        for connection in app.store.find("connection", k2=org["OrganisationID"]):
            if connection["active"]:
                connection["active"] = False
                connection["updatedDateUtc"] = app.clock.now()
                app.store.put(
                    "connection",
                    connection["id"],
                    connection,
                    tenant=connection["tenantId"],
                    k1=owner_key(connection["user_id"], connection["client_id"]),
                    k2=connection["tenantId"],
                )
                count += 1
    return plain_json({"disconnected": count})


def revoke(app, request: Request) -> Response:
    data = body(request)
    users = app.store.find("user", k1=str(data.get("user", "demo@sandbox.test")).lower())
    if not users:
        return error("unknown user", 404)
    return plain_json(revoke_user_app(app, users[0]["id"], data.get("client_id") or app.settings.s.client_id))


BULK_SCOPE = "offline_access accounting.invoices accounting.contacts accounting.settings"


def bulk_connect(app, request: Request) -> Response:
    """A fast path for benchmarks with thousands of tenants: what a consent per tenant would leave behind, without
    the browser round trips. Body: {"tenants": [ids] or "count": N (the first N organisations), "scope": optional}.
    Each tenant gets its own Xero user (bulk-<n>@sandbox.test, so GET /connections lists one tenant), grant,
    connection and token set. Answers [{tenantId, tenantName, id, authEventId, access_token, refresh_token,
    expires_in, scope}]."""
    data = body(request)
    wanted = data.get("tenants") or [o["OrganisationID"] for o in app.store.find("org")][: int(data.get("count", 0))]
    unknown = [t for t in wanted if app.store.get("org", t) is None]
    if unknown:
        return error(f"unknown tenants: {unknown[:3]}", 404)
    scope = str(data.get("scope") or BULK_SCOPE).split()
    client_id = app.settings.s.client_id
    now = app.clock.now()
    out = []
    with app.store.tx():
        for position, tenant_id in enumerate(wanted):
            email = f"bulk-{position}-{tenant_id[:8]}@sandbox.test"
            user = {
                "id": new_id(),
                "email": email,
                "password": new_id(),
                "first_name": "Bulk",
                "last_name": str(position),
                "sub": new_id().replace("-", ""),
                "tenants": [tenant_id],
            }
            app.store.put("user", user["id"], user, k1=email)
            auth_event_id = new_id()
            connect_tenants(app, user["id"], client_id, [tenant_id], auth_event_id, now)
            grant = {
                "id": new_id(),
                "user_id": user["id"],
                "client_id": client_id,
                "scope": scope,
                "auth_event_id": auth_event_id,
                "session_id": new_id(),
                "auth_time": int(now),
                "created": now,
                "revoked": False,
            }
            app.store.put("grant", grant["id"], grant, k1=owner_key(user["id"], client_id))
            issued = issue_tokens(app, grant)
            connection = app.store.find("connection", k1=owner_key(user["id"], client_id))[0]
            out.append({**render_connection(connection), **issued})
    return plain_json(out)


def webhooks(app, request: Request, action: str | None = None) -> Response:
    hooks = app.webhooks
    if action is None:
        return plain_json(hooks.snapshot(include_bodies=False) | {"deliveries": len(hooks.deliveries)})
    if action == "deliveries":
        if request.method == "DELETE":
            with hooks.cond:
                hooks.deliveries.clear()
            return Response(204)
        return plain_json(hooks.snapshot()["deliveries"])
    if action == "intent-to-receive":
        data = body(request)
        return plain_json(hooks.intent_to_receive(data.get("url"), data.get("key"), int(data.get("rounds", 2))))
    if action == "enable":
        hooks.enable()
        return plain_json({"enabled": True})
    if action == "flush":
        hooks.flush()
        data = body(request)
        idle = hooks.wait_idle(float(data.get("timeout", 10))) if data.get("wait", True) else None
        return plain_json({"flushed": True, "idle": idle})
    if action == "retry":
        hooks.retry_now()
        return plain_json({"retrying": True})
    return error("unknown action", 404)


def requests_log(app, request: Request) -> Response:
    if request.method == "DELETE":
        with app.request_log_lock:
            app.request_log.clear()
        return Response(204)
    with app.request_log_lock:
        entries = list(app.request_log)
        if request.q("drain"):  # hand over and forget in one step (a long run reads the log as it goes)
            app.request_log.clear()
    tenant = request.q("tenant_id")
    if tenant:
        entries = [e for e in entries if e["tenant_id"] == tenant]
    return plain_json(entries)


def reset(app, request: Request) -> Response:
    data = body(request)
    keep = data.get("keep_settings", True)
    if not keep:
        from dataclasses import replace

        app.settings._settings = replace(app.initial_settings)
    app.reset()
    return plain_json({"reset": True, "tenants": tenants(app)})


def register(app) -> None:
    from dataclasses import replace

    app.initial_settings = replace(app.settings.s)
    r = app.router

    def add(method, path, handler):
        def guarded(request: Request, **params):
            token = app.config.admin_token
            if token and not hmac.compare_digest(request.header("X-Sandbox-Admin-Token") or "", token):
                return error("admin token required", 401)
            try:
                return handler(app, request, **params)
            except (ValueError, KeyError) as exc:
                return error(f"bad request: {exc}")

        r.add(method, "/_sandbox" + path, guarded)

    add("GET", "/health", lambda a, q: plain_json({"ok": True, "base_url": a.base_url, "time": time.time()}))
    add("GET", "/state", state)
    add("POST", "/reset", reset)
    add("GET", "/tenants", lambda a, q: plain_json(tenants(a)))
    add("GET", "/tenants/{tenant}", lambda a, q, tenant: tenant_resource(a, q, tenant, "organisation"))
    add("GET", "/tenants/{tenant}/{kind}", tenant_resource)
    add("GET", "/settings", settings)
    add("POST", "/settings", settings)
    add("GET", "/faults", faults)
    add("POST", "/faults", faults)
    add("DELETE", "/faults", faults)
    add("DELETE", "/faults/{fault_id}", faults)
    add("POST", "/tokens/expire", expire_tokens)
    add("GET", "/clock", clock)
    add("POST", "/clock", clock)
    add("POST", "/connections/disconnect", disconnect)
    add("POST", "/revoke", revoke)
    add("POST", "/bulk-connect", bulk_connect)
    add("GET", "/ratelimits", lambda a, q: plain_json(a.limiter.snapshot()))
    add("POST", "/ratelimits/reset", lambda a, q: (a.limiter.reset(), plain_json({"reset": True}))[1])
    add("GET", "/webhooks", webhooks)
    add("GET", "/webhooks/{action}", webhooks)
    add("POST", "/webhooks/{action}", webhooks)
    add("DELETE", "/webhooks/{action}", webhooks)
    add("GET", "/requests", requests_log)
    add("DELETE", "/requests", requests_log)
