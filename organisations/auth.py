"""Sign-in by email. The throttle lives here, in the authentication backend, so every way to sign in with a
password (the portal's form, Django admin's login, a test client's login) is counted and refused alike."""

import hashlib
import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from organisations.identity import canonical_email
from organisations.throttle import Gate, throttle_clear, throttle_locked, throttle_record

logger = logging.getLogger("organisations.auth")

LOCKED_MESSAGE = "Too many failed sign-ins. Wait 15 minutes, or reset your password."


def user_for_email(email: str):
    """The account this address names: looked up by its canonical form (organisations.identity)."""
    canonical = canonical_email(email)
    if not canonical:
        return None
    return get_user_model().objects.filter(sign_in_email__canonical=canonical).first()


class EmailBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None or password is None:
            return None
        identity = canonical_email(username)
        address = client_ip(request) if request is not None else None
        if throttle_locked(gate=Gate.PASSWORD, identity=identity, address=address):
            _log("auth.sign_in.locked", identity=identity, address=address, level=logging.WARNING)
            return None  # even the right password: the form says why (sign_in_locked)
        user = user_for_email(username)
        if user is None:
            get_user_model()().set_password(password)  # same work as a real check, so timing reveals nothing
        elif user.check_password(password) and self.user_can_authenticate(user):
            throttle_clear(gate=Gate.PASSWORD, identity=identity)
            _log("auth.sign_in.succeeded", identity=identity, address=address, user_id=user.pk)
            return user
        throttle_record(gate=Gate.PASSWORD, identity=identity, address=address)
        _log("auth.sign_in.failed", identity=identity, address=address, level=logging.WARNING)
        return None


def sign_in_locked(*, request, username: str) -> bool:
    """For forms: whether the backend will refuse this sign-in because of the throttle (to say so)."""
    identity = canonical_email(username)
    address = client_ip(request) if request is not None else None
    locked = throttle_locked(gate=Gate.PASSWORD, identity=identity, address=address)
    if locked:
        _log("auth.sign_in.locked", identity=identity, address=address, level=logging.WARNING)
    return locked


def client_ip(request) -> str:
    """The address that sent the request: REMOTE_ADDR, or the entry our own proxies put in X-Forwarded-For."""
    if request is None:
        return "-"
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if proxies > 0 and len(forwarded) >= proxies:
        return forwarded[-proxies][:64]  # each of our proxies appended one; what the client wrote comes before
    return request.META.get("REMOTE_ADDR", "-")[:64]


def _log(event: str, *, identity: str, address: str | None, level: int = logging.INFO, **extra) -> None:
    """Security events for the audit of sign-ins: the identity as a digest (no address in the logs), the client."""
    logger.log(
        level,
        event,
        extra={
            "event": event,
            "identity": hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:16],
            "client": address or "-",
            **extra,
        },
    )
