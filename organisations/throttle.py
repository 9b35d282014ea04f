"""One throttle for every way to sign in: counts per canonical identity and per client address in the Django cache
(Redis in production, shared by every process; local memory without Redis).

Gates:
- PASSWORD: the authentication backend (organisations.auth.EmailBackend), so the portal's sign-in, Django admin's
  login and anything else calling django.contrib.auth.authenticate() share one count. Failures count; a success
  clears the identity's count.
- PASSWORD_RESET: every reset request counts, whether or not the address has an account.
- XERO: "Sign in with Xero" (issue 11) calls throttle_locked / throttle_record / throttle_clear with the
  canonical email of the Xero user (canonical_email of the id token's email claim) and the client address, the
  same way the backend does.
- MFA: the second factor for staff (organisations.mfa.services.totp_verify) counts failed codes per user id and
  per address: MFA_FAILURE_LIMIT (5) failures lock the user out of the second step for MFA_FAILURE_WINDOW_SECONDS
  (15 minutes), even for a right code.

With the cache unreachable every gate stays open and the outage is logged (auth.throttle.unavailable at ERROR): an
outage must not lock every customer out, and each password guess still costs a full hash.
"""

import hashlib
import logging
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger("organisations.auth")


class Gate(StrEnum):
    PASSWORD = "password"
    PASSWORD_RESET = "password_reset"
    XERO = "xero"
    MFA = "mfa"


@dataclass(frozen=True)
class Limits:
    per_identity: int
    per_address: int
    window_seconds: int


def gate_limits(gate: Gate) -> Limits:
    if gate == Gate.PASSWORD_RESET:
        return Limits(
            per_identity=settings.PASSWORD_RESET_LIMIT,
            per_address=settings.PASSWORD_RESET_IP_LIMIT,
            window_seconds=settings.PASSWORD_RESET_WINDOW_SECONDS,
        )
    if gate == Gate.MFA:
        return Limits(
            per_identity=settings.MFA_FAILURE_LIMIT,
            per_address=settings.MFA_FAILURE_IP_LIMIT,
            window_seconds=settings.MFA_FAILURE_WINDOW_SECONDS,
        )
    return Limits(
        per_identity=settings.LOGIN_FAILURE_LIMIT,
        per_address=settings.LOGIN_FAILURE_IP_LIMIT,
        window_seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS,
    )


def _identity_key(gate: Gate, identity: str) -> str:
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"throttle:{gate}:id:{digest}"


def _address_key(gate: Gate, address: str) -> str:
    return f"throttle:{gate}:ip:{address[:64]}"


def _keys(gate: Gate, identity: str, address: str | None) -> list[tuple[str, int]]:
    limits = gate_limits(gate)
    keys = [(_identity_key(gate, identity), limits.per_identity)]
    if address:  # no request (a management command, a test's client.login): no address to count
        keys.append((_address_key(gate, address), limits.per_address))
    return keys


def throttle_locked(*, gate: Gate, identity: str, address: str | None) -> bool:
    """True while the identity or the address has used up its allowance in this gate's window."""
    try:
        return any((cache.get(key) or 0) >= limit for key, limit in _keys(gate, identity, address))
    except Exception as exc:  # noqa: BLE001 - any cache backend failure
        _unavailable(exc)
        return False


def throttle_record(*, gate: Gate, identity: str, address: str | None) -> None:
    """Count one attempt (a failed sign-in, a reset request) against the identity and the address."""
    window = gate_limits(gate).window_seconds
    try:
        for key, _ in _keys(gate, identity, address):
            if not cache.add(key, 1, timeout=window):
                try:
                    cache.incr(key)
                except ValueError:  # expired between add and incr
                    cache.set(key, 1, timeout=window)
    except Exception as exc:  # noqa: BLE001 - any cache backend failure
        _unavailable(exc)


def throttle_take(*, gate: Gate, identity: str, address: str | None) -> bool:
    """For gates where every request counts: False if the allowance is used up, else count this one."""
    if throttle_locked(gate=gate, identity=identity, address=address):
        return False
    throttle_record(gate=gate, identity=identity, address=address)
    return True


def throttle_clear(*, gate: Gate, identity: str) -> None:
    """A success: the identity's count starts again (the address keeps its count)."""
    try:
        cache.delete(_identity_key(gate, identity))
    except Exception as exc:  # noqa: BLE001 - any cache backend failure
        _unavailable(exc)


def _unavailable(exc: Exception) -> None:
    logger.error("auth.throttle.unavailable", extra={"event": "auth.throttle.unavailable", "error": type(exc).__name__})


# ---------------------------------------------------------------- rate limits on signed-in writes


def rate_limit_take(*, scope: str, subject: str, limit: int, window_seconds: int) -> bool:
    """A fixed-window allowance of `limit` per `window_seconds` for one subject (a user id) in one scope (support
    requests, writes). False when used up; otherwise counts this one. Open when the cache is unreachable."""
    key = f"ratelimit:{scope}:{subject}"
    try:
        if cache.add(key, 1, timeout=window_seconds):
            return True
        try:
            count = cache.incr(key)
        except ValueError:
            cache.set(key, 1, timeout=window_seconds)
            return True
        return count <= limit
    except Exception as exc:  # noqa: BLE001 - any cache backend failure
        _unavailable(exc)
        return True
