"""Xero identity: authorize pages, token endpoint, revocation, userinfo, discovery, /connections.

Paths are Xero's own (login.xero.com, identity.xero.com and api.xero.com folded onto one host):
GET  /identity/connect/authorize        login form, consent screen, organisation picker
POST /identity/connect/authorize        form posts of those pages
GET  /identity/logout                   forget the sandbox login session
GET  /identity/signup                   create a Xero login and its first organisation (Xero's sign-up)
POST /identity/signup                   its form post; then the consent screen of the open authorize request
GET  /identity/organisations/new        add an organisation to the logged-in Xero user
POST /identity/organisations/new        its form post; then back to the consent screen
POST /connect/token                     authorization_code and refresh_token grants
POST /connect/revocation                revoke a refresh token (removes the user's connections)
GET  /connect/userinfo                  OpenID Connect userinfo
GET  /.well-known/openid-configuration  discovery; jwks at /.well-known/openid-configuration/jwks
GET  /connections                       the user's connected tenants (?authEventId=)
DELETE /connections/{id}                disconnect one tenant by connection id
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from urllib.parse import parse_qs, unquote, urlencode, urlsplit, urlunsplit

from .jwt import JWTError, SigningKeys, at_hash
from .pages import esc, hidden, layout
from .server import Request, Response, html_response, json_response, plain_json, redirect
from .util import UTC, iso_utc_7, new_id

__all__ = ["SigningKeys", "register", "authenticate", "resolve_tenant", "require_scope"]

SESSION_COOKIE = "xero_sandbox_session"

SCOPE_TEXT = {
    "offline_access": "Stay connected (offline access) so the app can work when you are not logged in",
    "openid": "Your Xero user identity",
    "profile": "Your first name, last name and Xero user id",
    "email": "Your email address",
    "accounting.invoices": "View and manage invoices, credit notes, quotes, purchase orders and items",
    "accounting.invoices.read": "View invoices, credit notes, quotes, purchase orders and items",
    "accounting.payments": "View and manage payments, batch payments, overpayments and prepayments",
    "accounting.payments.read": "View payments, batch payments, overpayments and prepayments",
    "accounting.banktransactions": "View and manage bank transactions and transfers",
    "accounting.banktransactions.read": "View bank transactions and transfers",
    "accounting.manualjournals": "View and manage manual journals",
    "accounting.manualjournals.read": "View manual journals",
    "accounting.classicexpenses": "View and manage expense claims and receipts",
    "accounting.classicexpenses.read": "View expense claims and receipts",
    "accounting.contacts": "View and manage your contacts",
    "accounting.contacts.read": "View your contacts",
    "accounting.settings": "View and manage your organisation settings, chart of accounts and tax rates",
    "accounting.settings.read": "View your organisation settings, chart of accounts and tax rates",
    "accounting.attachments": "View and manage attachments",
    "accounting.attachments.read": "View attachments",
    "accounting.journals.read": "View journals",
    "accounting.reports.aged.read": "View aged reports",
    "accounting.reports.balancesheet.read": "View balance sheet reports",
    "accounting.reports.profitandloss.read": "View profit and loss reports",
    "accounting.reports.trialbalance.read": "View trial balance reports",
    "accounting.reports.banksummary.read": "View bank summary reports",
    "accounting.reports.executivesummary.read": "View executive summary reports",
    "accounting.transactions": "View and manage your business transactions",
    "accounting.transactions.read": "View your business transactions",
    "accounting.reports.read": "View your reports",
}
LEGACY_ONLY = {"accounting.transactions", "accounting.transactions.read", "accounting.reports.read"}
GRANULAR_ONLY = {
    s
    for s in SCOPE_TEXT
    if s.split(".")[0] == "accounting"
    and s.split(".")[1] in ("invoices", "payments", "banktransactions", "manualjournals", "classicexpenses")
} | {s for s in SCOPE_TEXT if s.startswith("accounting.reports.") and s != "accounting.reports.read"}


def allowed_scopes(scope_set: str) -> set:
    everything = set(SCOPE_TEXT)
    if scope_set == "granular":
        return everything - LEGACY_ONLY
    if scope_set == "legacy":
        return everything - GRANULAR_ONLY
    return everything


def needs_tenants(scopes) -> bool:
    return any(s.startswith("accounting.") for s in scopes)


# ---------------------------------------------------------------- Xero-shaped auth errors


def problem(status: int, title: str, detail: str, request: Request, headers: list | None = None) -> Response:
    return json_response(
        {
            "Type": None,
            "Title": title,
            "Status": status,
            "Detail": detail,
            "Instance": request.correlation_id,
            "Extensions": {},
        },
        status,
        headers,
    )


def unauthorized(request: Request, detail: str = "AuthenticationUnsuccessful", error: str = "") -> Response:
    challenge = 'Bearer error="invalid_token"' + (f', error_description="{error}"' if error else "")
    return problem(401, "Unauthorized", detail, request, [("WWW-Authenticate", challenge)])


def forbidden(request: Request) -> Response:
    return problem(403, "Forbidden", "AuthenticationUnsuccessful", request)


def authenticate(app, request: Request):
    """Validate the bearer access token. Returns a context dict or a 401 Response."""
    header = request.header("Authorization") or ""
    if not header.lower().startswith("bearer "):
        return unauthorized(request)
    token = header[7:].strip()
    try:
        claims = app.keys.verify(token)
    except JWTError:
        return unauthorized(request)
    record = app.store.get("access", claims.get("jti", ""))
    if record is None or claims.get("iss") != app.base_url:
        return unauthorized(request)
    now = app.clock.now()
    if now >= record["exp"]:
        when = dt.datetime.fromtimestamp(record["exp"], UTC).strftime("%m/%d/%Y %H:%M:%S")
        return unauthorized(request, f"TokenExpired: token expired at {when}", f"The token expired at '{when}'")
    return {
        "user_id": record["user_id"],
        "client_id": record["client_id"],
        "grant_id": record["grant_id"],
        "scopes": claims.get("scope", []),
        "claims": claims,
        "jti": claims["jti"],
    }


def require_scope(request: Request, ctx: dict, any_of: tuple):
    if any(scope in ctx["scopes"] for scope in any_of):
        return None
    return problem(
        401,
        "Unauthorized",
        "AuthorizationUnsuccessful",
        request,
        [("WWW-Authenticate", f'Bearer error="insufficient_scope", scope="{" ".join(any_of)}"')],
    )


def owner_key(user_id: str, client_id: str) -> str:
    return f"{user_id}|{client_id}"


def active_connections(app, user_id: str, client_id: str) -> list:
    rows = app.store.find("connection", k1=owner_key(user_id, client_id))
    return sorted((c for c in rows if c["active"]), key=lambda c: c["createdDateUtc"])


def resolve_tenant(app, request: Request, ctx: dict):
    """The tenant named by xero-tenant-id, if this user connected it to this app; else a 403."""
    tenant_id = (request.header("xero-tenant-id") or "").strip().lower()
    if not tenant_id:
        return forbidden(request)
    for connection in active_connections(app, ctx["user_id"], ctx["client_id"]):
        if connection["tenantId"] == tenant_id:
            org = app.store.get("org", tenant_id)
            if org is not None:
                request.tenant_id = tenant_id
                return org
    return forbidden(request)


# ---------------------------------------------------------------- pages


def error_page(message: str, status: int = 400) -> Response:
    body = (
        f'<p class="error">{esc(message)}</p>'
        '<p class="note">Nothing has been sent back to the application. '
        "Check the client id, redirect URI and scopes it was registered with.</p>"
    )
    return html_response(layout("Sorry, something went wrong", body, nav=False), status)


def login_page(app, authreq: dict, error: str = "", email: str = "") -> Response:
    settings = app.settings.s
    body = (
        f"<p>Log in to Xero to connect <strong>{esc(settings.app_name)}</strong>.</p>"
        + (f'<p class="error">{esc(error)}</p>' if error else "")
        + '<form method="post" action="/identity/connect/authorize" id="login-form">'
        + hidden("request_id", authreq["id"])
        + hidden("step", "login")
        + f'<label>Email address <input type="email" name="email" id="email" value="{esc(email)}" '
        'autocomplete="username" required></label>'
        + '<label>Password <input type="password" name="password" id="password" '
        'autocomplete="current-password" required></label>'
        + '<button type="submit" id="login-submit">Log in</button></form>'
        + '<p class="note">Sandbox login: demo@sandbox.test / sandbox</p>'
        + f'<p>New to Xero? <a href="/identity/signup?{urlencode({"request_id": authreq["id"]})}" '
        'id="create-account">Create an account</a></p>'
    )
    return html_response(layout("Log in to Xero", body, nav=False), 401 if error else 200)


def consent_page(app, authreq: dict, user: dict, error: str = "") -> Response:
    settings = app.settings.s
    scopes = authreq["scope"]
    items = "".join(f"<li>{esc(SCOPE_TEXT.get(s, s))} <span class=note>({esc(s)})</span></li>" for s in scopes)
    picker = ""
    if needs_tenants(scopes):
        single = authreq.get("bulk_connect") is False
        kind = "radio" if single else "checkbox"
        rows = []
        for tenant_id in user["tenants"]:
            org = app.store.get("org", tenant_id)
            if org is None:
                continue
            rows.append(
                f'<label><input type="{kind}" name="tenant" value="{esc(tenant_id)}" '
                f'data-name="{esc(org["Name"])}"> {esc(org["Name"])} '
                f'<span class="note">({esc(org["CountryCode"])}, {esc(org["BaseCurrency"])})</span></label>'
            )
        legend = "Select the organisation to connect" if single else "Select organisations to connect"
        if not rows:
            rows.append('<p class="note">You have no organisations yet.</p>')
        add = (
            f'<p><a href="/identity/organisations/new?{urlencode({"request_id": authreq["id"]})}" '
            'id="add-organisation">Add an organisation</a></p>'
        )
        picker = f"<fieldset><legend>{legend}</legend>{''.join(rows)}{add}</fieldset>"
    body = (
        f'<p>Logged in as {esc(user["email"])}. <a href="/identity/logout">Not you?</a></p>'
        f"<p><strong>{esc(settings.app_name)}</strong> wants access to:</p><ul>{items}</ul>"
        + (f'<p class="error">{esc(error)}</p>' if error else "")
        + '<form method="post" action="/identity/connect/authorize" id="consent-form">'
        + hidden("request_id", authreq["id"])
        + hidden("step", "consent")
        + picker
        + '<button type="submit" name="action" value="allow" id="allow">Allow access</button> '
        '<button type="submit" name="action" value="cancel" class="secondary" id="cancel">Cancel</button>' + "</form>"
    )
    return html_response(layout(f"Connect {settings.app_name} to Xero", body, nav=False), 400 if error else 200)


# ---------------------------------------------------------------- sign-up: new logins and new organisations

COUNTRY_NAMES = {"AU": "Australia", "GB": "United Kingdom"}


def _country_select(selected: str) -> str:
    options = "".join(
        f'<option value="{code}"{" selected" if code == selected else ""}>{esc(name)}</option>'
        for code, name in COUNTRY_NAMES.items()
    )
    return f'<label>Country <select name="country" id="country">{options}</select></label>'


def signup_page(app, request_id: str, error: str = "", form: dict | None = None) -> Response:
    form = form or {}
    body = (
        "<p>Create a Xero login and your first organisation (a sandbox trial).</p>"
        + (f'<p class="error">{esc(error)}</p>' if error else "")
        + '<form method="post" action="/identity/signup" id="signup-form">'
        + hidden("request_id", request_id)
        + f'<label>First name <input name="first_name" id="first_name" value="{esc(form.get("first_name"))}" '
        "required></label>"
        + f'<label>Last name <input name="last_name" id="last_name" value="{esc(form.get("last_name"))}" '
        "required></label>"
        + f'<label>Email address <input type="email" name="email" id="email" value="{esc(form.get("email"))}" '
        'autocomplete="username" required></label>'
        + '<label>Password <input type="password" name="password" id="password" autocomplete="new-password" '
        'minlength="8" required></label>' + f'<label>Organisation name <input name="organisation" id="organisation" '
        f'value="{esc(form.get("organisation"))}" required></label>'
        + _country_select(form.get("country") or "AU")
        + '<button type="submit" id="signup-submit">Create account</button></form>'
    )
    return html_response(layout("Create a Xero account", body, nav=False), 400 if error else 200)


def _session_cookie(session_id: str) -> tuple:
    return ("Set-Cookie", f"{SESSION_COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Lax")


def _open_authreq(app, request_id: str):
    authreq = app.store.get("authreq", request_id or "")
    if authreq is None or app.clock.now() - authreq["created"] > 3600:
        return None
    return authreq


def signup_get(app, request: Request) -> Response:
    return signup_page(app, request.q("request_id") or "")


def signup_post(app, request: Request) -> Response:
    from . import seed

    form = request.form()
    fields = {k: (form.get(k) or "").strip() for k in ("first_name", "last_name", "email", "organisation", "country")}
    password = form.get("password") or ""
    request_id = form.get("request_id") or ""
    if not all(fields[k] for k in ("first_name", "last_name", "email", "organisation")) or "@" not in fields["email"]:
        return signup_page(app, request_id, "Fill in every field.", fields)
    if len(password) < 8:
        return signup_page(app, request_id, "Choose a password of at least 8 characters.", fields)
    email = fields["email"].lower()
    with app.store.tx():
        if app.store.find("user", k1=email):
            return signup_page(app, request_id, "A Xero login already uses this email address. Log in instead.", fields)
        tenant = seed.add_organisation(app, name=fields["organisation"][:255], country=fields["country"])
        user = seed.add_user(
            app,
            email=email,
            password=password,
            first_name=fields["first_name"][:100],
            last_name=fields["last_name"][:100],
            tenants=[tenant],
        )
        session = {"id": secrets.token_urlsafe(24), "user_id": user["id"], "auth_time": int(app.clock.now())}
        app.store.put("session", session["id"], session)
    authreq = _open_authreq(app, request_id)
    if authreq is not None:
        response = consent_page(app, authreq, user)
    else:
        body = (
            f"<p>Your Xero login {esc(email)} and the organisation {esc(fields['organisation'])} are ready. "
            "Go back to the application and sign in with Xero.</p>"
        )
        response = html_response(layout("Account created", body, nav=False))
    response.headers.append(_session_cookie(session["id"]))
    return response


def organisation_page(app, request_id: str, error: str = "", name: str = "") -> Response:
    body = (
        "<p>Add a new organisation to your Xero login.</p>"
        + (f'<p class="error">{esc(error)}</p>' if error else "")
        + '<form method="post" action="/identity/organisations/new" id="organisation-form">'
        + hidden("request_id", request_id)
        + f'<label>Organisation name <input name="organisation" id="organisation" value="{esc(name)}" '
        "required></label>"
        + _country_select("AU")
        + '<button type="submit" id="organisation-submit">Add organisation</button></form>'
    )
    return html_response(layout("Add an organisation", body, nav=False), 400 if error else 200)


def organisation_new_get(app, request: Request) -> Response:
    user, _ = current_user(app, request)
    request_id = request.q("request_id") or ""
    if user is None:
        authreq = _open_authreq(app, request_id)
        return login_page(app, authreq) if authreq else error_page("Log in to Xero first.", 401)
    return organisation_page(app, request_id)


def organisation_new_post(app, request: Request) -> Response:
    from . import seed

    form = request.form()
    request_id = form.get("request_id") or ""
    user, _ = current_user(app, request)
    if user is None:
        return error_page("Log in to Xero first.", 401)
    name = (form.get("organisation") or "").strip()[:255]
    if not name:
        return organisation_page(app, request_id, "Give the organisation a name.")
    with app.store.tx():
        tenant = seed.add_organisation(app, name=name, country=form.get("country") or "AU")
        user["tenants"] = [*user["tenants"], tenant]
        app.store.put("user", user["id"], user, k1=user["email"].lower())
    authreq = _open_authreq(app, request_id)
    if authreq is not None:
        return consent_page(app, authreq, user)
    body = f"<p>{esc(name)} was added to your Xero login.</p><p><a href='/'>Back to the sandbox</a></p>"
    return html_response(layout("Organisation added", body, nav=False))


def add_query(url: str, params: dict) -> str:
    parts = urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urlencode({k: v for k, v in params.items() if v is not None})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def current_user(app, request: Request):
    session_id = request.cookie(SESSION_COOKIE)
    if not session_id:
        return None, None
    session = app.store.get("session", session_id)
    if session is None:
        return None, None
    return app.store.get("user", session["user_id"]), session


def authorize_get(app, request: Request) -> Response:
    settings = app.settings.s
    client_id = request.q("client_id") or ""
    redirect_uri = request.q("redirect_uri") or ""
    if client_id != settings.client_id:
        return error_page("unauthorized_client : Unknown client or client not enabled")
    if redirect_uri not in settings.redirect_uris:
        return error_page("unauthorized_client : Invalid redirect_uri")
    state = request.q("state")
    scopes = [s for s in (request.q("scope") or "").split() if s]
    if not scopes or any(s not in allowed_scopes(settings.scope_set) for s in scopes):
        return error_page("Invalid scope for client")
    if request.q("response_type") != "code":
        return redirect(add_query(redirect_uri, {"error": "unsupported_response_type", "state": state}))
    challenge = request.q("code_challenge")
    method = request.q("code_challenge_method") or ("plain" if challenge else None)
    if challenge and method != "S256":
        return redirect(
            add_query(
                redirect_uri,
                {
                    "error": "invalid_request",
                    "error_description": "code_challenge_method must be S256",
                    "state": state,
                },
            )
        )
    acr = request.q("acr_values") or ""
    authreq = {
        "id": secrets.token_urlsafe(16),
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": list(dict.fromkeys(scopes)),
        "state": state,
        "nonce": request.q("nonce"),
        "challenge": challenge,
        "method": method,
        "bulk_connect": False if "bulk_connect:false" in acr else None,
        "created": app.clock.now(),
    }
    app.store.put("authreq", authreq["id"], authreq)
    user, _ = current_user(app, request)
    if user is None:
        return login_page(app, authreq)
    return consent_page(app, authreq, user)


def authorize_post(app, request: Request) -> Response:
    form = request.form()
    authreq = app.store.get("authreq", form.get("request_id", ""))
    if authreq is None or app.clock.now() - authreq["created"] > 3600:
        return error_page("This sign-in request has expired or is unknown. Start again from the application.")
    step = form.get("step")
    if step == "login":
        email = (form.get("email") or "").strip().lower()
        users = app.store.find("user", k1=email)
        user = users[0] if users else None
        if user is None or not hmac.compare_digest(user["password"], form.get("password") or ""):
            return login_page(app, authreq, "Your email or password is incorrect", email)
        session = {"id": secrets.token_urlsafe(24), "user_id": user["id"], "auth_time": int(app.clock.now())}
        app.store.put("session", session["id"], session)
        response = consent_page(app, authreq, user)
        response.headers.append(("Set-Cookie", f"{SESSION_COOKIE}={session['id']}; Path=/; HttpOnly; SameSite=Lax"))
        return response
    user, session = current_user(app, request)
    if user is None:
        return login_page(app, authreq)
    redirect_uri, state = authreq["redirect_uri"], authreq["state"]
    if form.get("action") != "allow":
        app.store.delete("authreq", authreq["id"])
        return redirect(add_query(redirect_uri, {"error": "access_denied", "state": state}))
    chosen = request.form_lists().get("tenant", [])
    chosen = [t for t in dict.fromkeys(chosen) if t in user["tenants"]]
    if needs_tenants(authreq["scope"]):
        if not chosen:
            return consent_page(app, authreq, user, "Select at least one organisation to connect.")
        if authreq.get("bulk_connect") is False and len(chosen) > 1:
            return consent_page(app, authreq, user, "Select only one organisation.")
    else:
        chosen = []
    auth_event_id = new_id()
    now = app.clock.now()
    with app.store.tx():
        connect_tenants(app, user["id"], authreq["client_id"], chosen, auth_event_id, now)
        code = secrets.token_urlsafe(32)
        app.store.put(
            "code",
            code,
            {
                "client_id": authreq["client_id"],
                "redirect_uri": redirect_uri,
                "scope": authreq["scope"],
                "user_id": user["id"],
                "auth_event_id": auth_event_id,
                "challenge": authreq["challenge"],
                "method": authreq["method"],
                "nonce": authreq["nonce"],
                "created": now,
                "used": False,
                "session_id": session["id"],
                "auth_time": session["auth_time"],
            },
        )
        app.store.delete("authreq", authreq["id"])
    return redirect(
        add_query(
            redirect_uri,
            {
                "code": code,
                "scope": " ".join(authreq["scope"]),
                "state": state,
                "session_state": hashlib.sha256(session["id"].encode()).hexdigest()[:43],
            },
        )
    )


def connect_tenants(app, user_id: str, client_id: str, tenant_ids: list, auth_event_id: str, now: float):
    key = owner_key(user_id, client_id)
    existing = {c["tenantId"]: c for c in app.store.find("connection", k1=key)}
    for tenant_id in tenant_ids:
        org = app.store.get("org", tenant_id)
        connection = existing.get(tenant_id) or {
            "id": new_id(),
            "tenantId": tenant_id,
            "tenantType": "ORGANISATION",
            "createdDateUtc": now,
            "user_id": user_id,
            "client_id": client_id,
        }
        connection.update(authEventId=auth_event_id, tenantName=org["Name"], updatedDateUtc=now, active=True)
        app.store.put("connection", connection["id"], connection, tenant=tenant_id, k1=key, k2=tenant_id)


def logout(app, request: Request) -> Response:
    session_id = request.cookie(SESSION_COOKIE)
    if session_id:
        app.store.delete("session", session_id)
    target = request.q("post_logout_redirect_uri")
    if target and target in app.settings.s.redirect_uris:
        return redirect(target, headers=[("Set-Cookie", f"{SESSION_COOKIE}=; Path=/; Max-Age=0")])
    return html_response(
        layout("Logged out", "<p>You have been logged out of the sandbox Xero.</p>", nav=False),
        headers=[("Set-Cookie", f"{SESSION_COOKIE}=; Path=/; Max-Age=0")],
    )


# ---------------------------------------------------------------- token endpoint


def token_error(error: str, status: int = 400, description: str | None = None) -> Response:
    body = {"error": error}
    if description:
        body["error_description"] = description
    return plain_json(body, status)


def client_credentials(request: Request, form: dict):
    header = request.header("Authorization") or ""
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip()).decode("utf-8")
        except ValueError:
            return None, None
        client_id, _, secret = decoded.partition(":")
        return unquote(client_id), unquote(secret)
    return form.get("client_id"), form.get("client_secret")


def authenticate_client(app, request: Request, form: dict):
    settings = app.settings.s
    client_id, secret = client_credentials(request, form)
    if client_id != settings.client_id:
        return None
    if secret is None or secret == "":
        return client_id if client_id in settings.public_clients else None
    if not hmac.compare_digest(secret, settings.client_secret):
        return None
    return client_id


def issue_tokens(app, grant: dict, nonce: str | None = None, with_refresh: bool = True) -> dict:
    settings = app.settings.s
    user = app.store.get("user", grant["user_id"])
    now = int(app.clock.now())
    jti = secrets.token_hex(16).upper()
    exp = now + settings.access_token_lifetime
    claims = {
        "nbf": now,
        "exp": exp,
        "iss": app.base_url,
        "aud": f"{app.base_url}/resources",
        "client_id": grant["client_id"],
        "sub": user["sub"],
        "auth_time": grant["auth_time"],
        "xero_userid": user["id"],
        "global_session_id": grant["session_id"],
        "sid": grant["session_id"],
        "jti": jti,
        "authentication_event_id": grant["auth_event_id"],
        "scope": grant["scope"],
        "amr": ["pwd"],
        "iat": now,
    }
    access_token = app.keys.sign(claims)
    app.store.put(
        "access",
        jti,
        {
            "jti": jti,
            "grant_id": grant["id"],
            "user_id": user["id"],
            "client_id": grant["client_id"],
            "exp": exp,
            "iat": now,
        },
        k1=owner_key(user["id"], grant["client_id"]),
        k2=grant["id"],
    )
    result = {
        "access_token": access_token,
        "expires_in": settings.access_token_lifetime,
        "token_type": "Bearer",
        "scope": " ".join(grant["scope"]),
    }
    if "offline_access" in grant["scope"] and with_refresh:
        refresh = secrets.token_hex(32)
        app.store.put(
            "refresh",
            refresh,
            {
                "grant_id": grant["id"],
                "client_id": grant["client_id"],
                "created": app.clock.now(),
                "replaced_at": None,
                "replaced_by": None,
                "revoked": False,
            },
            k2=grant["id"],
        )
        result["refresh_token"] = refresh
    if "openid" in grant["scope"]:
        id_claims = {
            "nbf": now,
            "exp": now + settings.id_token_lifetime,
            "iss": app.base_url,
            "aud": grant["client_id"],
            "iat": now,
            "at_hash": at_hash(access_token),
            "sid": grant["session_id"],
            "sub": user["sub"],
            "auth_time": grant["auth_time"],
            "xero_userid": user["id"],
            "global_session_id": grant["session_id"],
            "amr": ["pwd"],
        }
        if nonce:
            id_claims["nonce"] = nonce
        if "email" in grant["scope"]:
            id_claims.update(email=user["email"], preferred_username=user["email"])
        if "profile" in grant["scope"]:
            id_claims.update(
                given_name=user["first_name"],
                family_name=user["last_name"],
                name=f"{user['first_name']} {user['last_name']}",
            )
        result["id_token"] = app.keys.sign(id_claims)
    return result


def token_endpoint(app, request: Request) -> Response:
    form = request.form()
    client_id = authenticate_client(app, request, form)
    if client_id is None:
        return token_error("invalid_client")
    grant_type = form.get("grant_type")
    with app.store.tx():
        if grant_type == "authorization_code":
            result = exchange_code(app, client_id, form)
        elif grant_type == "refresh_token":
            result = refresh(app, client_id, form)
        else:
            return token_error("unsupported_grant_type")
    if isinstance(result, Response):
        return result
    response = plain_json(result)
    response.headers += [("Cache-Control", "no-store, no-cache, max-age=0"), ("Pragma", "no-cache")]
    return response


VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def exchange_code(app, client_id: str, form: dict):
    settings = app.settings.s
    code = app.store.get("code", form.get("code") or "")
    if code is None or code["used"] or code["client_id"] != client_id:
        return token_error("invalid_grant")
    if app.clock.now() - code["created"] > settings.code_lifetime:
        return token_error("invalid_grant")
    if form.get("redirect_uri") != code["redirect_uri"]:
        return token_error("invalid_grant")
    if code["challenge"]:
        verifier = form.get("code_verifier") or ""
        if not VERIFIER.match(verifier):
            return token_error("invalid_grant")
        computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=")
        if not hmac.compare_digest(computed.decode("ascii"), code["challenge"]):
            return token_error("invalid_grant")
    elif client_id in settings.public_clients and not form.get("client_secret"):
        return token_error("invalid_grant")
    code["used"] = True
    app.store.put("code", form["code"], code)
    grant = {
        "id": new_id(),
        "user_id": code["user_id"],
        "client_id": client_id,
        "scope": code["scope"],
        "auth_event_id": code["auth_event_id"],
        "session_id": code["session_id"],
        "auth_time": code["auth_time"],
        "created": app.clock.now(),
        "revoked": False,
    }
    app.store.put("grant", grant["id"], grant, k1=owner_key(grant["user_id"], client_id))
    return issue_tokens(app, grant, code["nonce"])


def refresh(app, client_id: str, form: dict):
    settings = app.settings.s
    token = form.get("refresh_token") or ""
    record = app.store.get("refresh", token)
    if record is None or record["revoked"] or record["client_id"] != client_id:
        return token_error("invalid_grant")
    grant = app.store.get("grant", record["grant_id"])
    now = app.clock.now()
    if grant is None or grant["revoked"] or now - record["created"] > settings.refresh_idle:
        return token_error("invalid_grant")
    if record["replaced_by"] is None:
        result = issue_tokens(app, grant)
        record.update(replaced_at=now, replaced_by=result["refresh_token"])
        app.store.put("refresh", token, record, k2=grant["id"])
        return result
    if now - record["replaced_at"] > settings.refresh_grace:
        return token_error("invalid_grant")
    # Within the grace period: a valid token set again, pointing at the newest refresh token of the chain.
    head_token, head = record["replaced_by"], app.store.get("refresh", record["replaced_by"])
    while head is not None and head["replaced_by"] is not None:
        head_token, head = head["replaced_by"], app.store.get("refresh", head["replaced_by"])
    if head is None or head["revoked"] or now - head["created"] > settings.refresh_idle:
        return token_error("invalid_grant")
    result = issue_tokens(app, grant, with_refresh=False)
    result["refresh_token"] = head_token
    return result


def revocation_endpoint(app, request: Request) -> Response:
    form = request.form()
    client_id = authenticate_client(app, request, form)
    if client_id is None:
        return token_error("invalid_client")
    token = form.get("token") or ""
    grant = None
    record = app.store.get("refresh", token)
    if record is not None and record["client_id"] == client_id:
        grant = app.store.get("grant", record["grant_id"])
    elif token.count(".") == 2:
        try:
            claims = app.keys.verify(token)
            access = app.store.get("access", claims.get("jti", ""))
            grant = app.store.get("grant", access["grant_id"]) if access else None
        except JWTError:
            grant = None
    if grant is not None and grant["client_id"] == client_id:
        revoke_user_app(app, grant["user_id"], client_id)
    return Response(200, b"")


def revoke_user_app(app, user_id: str, client_id: str) -> dict:
    """Revoke every token set of this user for this app and remove all its connections."""
    key = owner_key(user_id, client_id)
    counts = {"grants": 0, "connections": 0}
    with app.store.tx():
        for grant in app.store.find("grant", k1=key):
            if not grant["revoked"]:
                grant["revoked"] = True
                app.store.put("grant", grant["id"], grant, k1=key)
                counts["grants"] += 1
        for connection in app.store.find("connection", k1=key):
            if connection["active"]:
                connection["active"] = False
                connection["updatedDateUtc"] = app.clock.now()
                app.store.put(
                    "connection",
                    connection["id"],
                    connection,
                    tenant=connection["tenantId"],
                    k1=key,
                    k2=connection["tenantId"],
                )
                counts["connections"] += 1
    return counts


# ---------------------------------------------------------------- userinfo, discovery


def userinfo(app, request: Request) -> Response:
    ctx = authenticate(app, request)
    if isinstance(ctx, Response):
        return ctx
    if "openid" not in ctx["scopes"]:
        return problem(
            403,
            "Forbidden",
            "insufficient_scope",
            request,
            [("WWW-Authenticate", 'Bearer error="insufficient_scope"')],
        )
    user = app.store.get("user", ctx["user_id"])
    info = {"sub": user["sub"], "xero_userid": user["id"]}
    if "profile" in ctx["scopes"]:
        info.update(
            given_name=user["first_name"],
            family_name=user["last_name"],
            name=f"{user['first_name']} {user['last_name']}",
        )
    if "email" in ctx["scopes"]:
        info.update(email=user["email"], preferred_username=user["email"])
    return plain_json(info)


def discovery(app, request: Request) -> Response:
    base = app.base_url
    return plain_json(
        {
            "issuer": base,
            "jwks_uri": f"{base}/.well-known/openid-configuration/jwks",
            "authorization_endpoint": f"{base}/identity/connect/authorize",
            "token_endpoint": f"{base}/connect/token",
            "userinfo_endpoint": f"{base}/connect/userinfo",
            "end_session_endpoint": f"{base}/identity/logout",
            "revocation_endpoint": f"{base}/connect/revocation",
            "scopes_supported": sorted(allowed_scopes(app.settings.s.scope_set)),
            "claims_supported": [
                "sub",
                "xero_userid",
                "email",
                "given_name",
                "family_name",
                "name",
                "preferred_username",
                "global_session_id",
                "authentication_event_id",
            ],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "request_parameter_supported": False,
        }
    )


def jwks(app, request: Request) -> Response:
    return plain_json(app.keys.jwks())


# ---------------------------------------------------------------- connections


def render_connection(connection: dict) -> dict:
    return {
        "id": connection["id"],
        "authEventId": connection["authEventId"],
        "tenantId": connection["tenantId"],
        "tenantType": connection["tenantType"],
        "tenantName": connection["tenantName"],
        "createdDateUtc": iso_utc_7(connection["createdDateUtc"]),
        "updatedDateUtc": iso_utc_7(connection["updatedDateUtc"]),
    }


def connections_get(app, request: Request) -> Response:
    ctx = authenticate(app, request)
    if isinstance(ctx, Response):
        return ctx
    connections = active_connections(app, ctx["user_id"], ctx["client_id"])
    event = request.q("authEventId")
    if event:
        connections = [c for c in connections if c["authEventId"].lower() == event.strip().lower()]
    return plain_json([render_connection(c) for c in connections])


def connections_delete(app, request: Request, connection_id: str) -> Response:
    ctx = authenticate(app, request)
    if isinstance(ctx, Response):
        return ctx
    wanted = connection_id.strip().lower()
    connections = active_connections(app, ctx["user_id"], ctx["client_id"])
    for connection in connections:
        if connection["id"] == wanted:
            connection["active"] = False
            connection["updatedDateUtc"] = app.clock.now()
            app.store.put(
                "connection",
                connection["id"],
                connection,
                tenant=connection["tenantId"],
                k1=owner_key(ctx["user_id"], ctx["client_id"]),
                k2=connection["tenantId"],
            )
            return Response(204, b"")
    if any(wanted in (c["tenantId"], c["authEventId"]) for c in connections):
        return forbidden(request)
    return problem(404, "NotFound", "Connection not found", request)


def register(app) -> None:
    r = app.router
    r.add("GET", "/identity/connect/authorize", lambda req: authorize_get(app, req))
    r.add("POST", "/identity/connect/authorize", lambda req: authorize_post(app, req))
    r.add("GET", "/identity/logout", lambda req: logout(app, req))
    r.add("GET", "/identity/signup", lambda req: signup_get(app, req))
    r.add("POST", "/identity/signup", lambda req: signup_post(app, req))
    r.add("GET", "/identity/organisations/new", lambda req: organisation_new_get(app, req))
    r.add("POST", "/identity/organisations/new", lambda req: organisation_new_post(app, req))
    r.add("POST", "/connect/token", lambda req: token_endpoint(app, req))
    r.add("POST", "/connect/revocation", lambda req: revocation_endpoint(app, req))
    r.add("GET", "/connect/userinfo", lambda req: userinfo(app, req))
    r.add("GET", "/.well-known/openid-configuration", lambda req: discovery(app, req))
    r.add("GET", "/.well-known/openid-configuration/jwks", lambda req: jwks(app, req))
    r.add("GET", "/connections", lambda req: connections_get(app, req))
    r.add(
        "DELETE",
        "/connections/{connection_id}",
        lambda req, connection_id: connections_delete(app, req, connection_id),
    )


def parse_redirect(url: str) -> dict:
    """Query parameters of a redirect URL as a flat dict (helper for tests and tools)."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
