"""Sign-in by email, with a throttle against password guessing."""

import hashlib
import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache

logger = logging.getLogger("organisations.auth")


class EmailBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None or password is None:
            return None
        user_model = get_user_model()
        user = user_model.objects.filter(email__iexact=username.strip()).order_by("pk").first()
        if user is None:
            user_model().set_password(password)  # same work as a real check, so timing reveals nothing
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None


def client_ip(request) -> str:
    """The address that sent the request: REMOTE_ADDR, or the entry our own proxies put in X-Forwarded-For."""
    if request is None:
        return "-"
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if proxies > 0 and len(forwarded) >= proxies:
        return forwarded[-proxies]  # each of our proxies appended one; what the client wrote comes before
    return request.META.get("REMOTE_ADDR", "-")


def _email_key(email: str) -> str:
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return f"login-fail:email:{digest}"


def _keys(email: str, ip: str) -> list[tuple[str, int]]:
    return [(_email_key(email), settings.LOGIN_FAILURE_LIMIT), (f"login-fail:ip:{ip}", settings.LOGIN_FAILURE_IP_LIMIT)]


def login_is_locked(*, email: str, ip: str) -> bool:
    """True while the email or the address has failed too often. With the cache unreachable (Redis down) sign-in
    stays open and the outage is logged: locking every user out is worse than a few minutes without the throttle
    (each guess still costs a full password hash)."""
    try:
        return any((cache.get(key) or 0) >= limit for key, limit in _keys(email, ip))
    except Exception as exc:  # noqa: BLE001 - any cache backend failure
        _throttle_unavailable(exc)
        return False


def login_failure_record(*, email: str, ip: str) -> None:
    try:
        for key, _ in _keys(email, ip):
            if not cache.add(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS):
                try:
                    cache.incr(key)
                except ValueError:
                    cache.set(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    except Exception as exc:  # noqa: BLE001 - any cache backend failure
        _throttle_unavailable(exc)


def login_failures_clear(*, email: str) -> None:
    try:
        cache.delete(_email_key(email))
    except Exception as exc:  # noqa: BLE001 - any cache backend failure
        _throttle_unavailable(exc)


def _throttle_unavailable(exc: Exception) -> None:
    logger.error("auth.throttle.unavailable", extra={"event": "auth.throttle.unavailable", "error": type(exc).__name__})
