"""Enrolment, verification and the session's memory of it. Codes and secrets are never logged."""

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

import pyotp
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from organisations.auth import client_ip
from organisations.mfa.models import RecoveryCode, TotpDevice
from organisations.throttle import Gate, throttle_clear, throttle_locked, throttle_record

logger = logging.getLogger("organisations.auth")

SESSION_VERIFIED_AT = "mfa_verified_at"
SESSION_VERIFIED_USER = "mfa_verified_user"
ISSUER = "Coordinoter"
RECOVERY_CODE_COUNT = 10
STEP_SECONDS = 30
DRIFT_STEPS = 1  # one step either side: a phone clock up to 30 s off still works


class Verification(StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    LOCKED = "locked"


@dataclass(frozen=True)
class Enrolment:
    secret: str
    uri: str


# ---------------------------------------------------------------- which requests need it


def mfa_protected_path(path: str) -> bool:
    return any(path.startswith(prefix) for prefix in settings.MFA_PROTECTED_PREFIXES)


def mfa_session_verified(request: HttpRequest) -> bool:
    session = request.session
    return session.get(SESSION_VERIFIED_AT) is not None and session.get(SESSION_VERIFIED_USER) == request.user.pk


def mfa_session_mark(request: HttpRequest) -> None:
    request.session[SESSION_VERIFIED_AT] = int(time.time())
    request.session[SESSION_VERIFIED_USER] = request.user.pk


def mfa_session_clear(session) -> None:
    session.pop(SESSION_VERIFIED_AT, None)
    session.pop(SESSION_VERIFIED_USER, None)


def mfa_redirect_url(request: HttpRequest) -> str | None:
    """The one decision: None when this request may go on; else where an unverified staff user must go first."""
    user = request.user
    if not user.is_authenticated or not user.is_staff or mfa_session_verified(request):
        return None
    name = "mfa:verify" if totp_device_confirmed(user=user) else "mfa:enrol"
    return f"{reverse(name)}?{urlencode({'next': request.get_full_path()})}"


def safe_next(request: HttpRequest, value: str | None) -> str:
    if value and url_has_allowed_host_and_scheme(value, {request.get_host()}, require_https=request.is_secure()):
        return value
    return reverse("integrations:support_console" if getattr(request, "is_support", False) else "admin:index")


# ---------------------------------------------------------------- devices


def totp_device_confirmed(*, user) -> bool:
    return TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).exists()


def totp_uri(*, secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def totp_enrolment_start(*, user) -> Enrolment:
    """A pending device for a user without a confirmed one (the same secret on every reload until confirmed)."""
    device, _ = TotpDevice.objects.get_or_create(user=user, defaults={"secret": pyotp.random_base32()})
    if device.confirmed_at is not None:
        raise ValueError("This user already has a confirmed device; its secret is never shown again.")
    return Enrolment(secret=device.secret, uri=totp_uri(secret=device.secret, email=user.email))


def totp_device_set(*, user, secret: str) -> TotpDevice:
    """A confirmed device with a known secret (the demo's seed; an operator's restore)."""
    device, _ = TotpDevice.objects.update_or_create(
        user=user, defaults={"secret": secret, "confirmed_at": timezone.now(), "last_used_step": None}
    )
    return device


def _matching_step(secret: str, code: str, now: float) -> int | None:
    code = "".join(code.split())
    if not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    current = int(now) // STEP_SECONDS
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _identity(user) -> str:
    return f"user:{user.pk}"


def _claim_step(device: TotpDevice, step: int) -> bool:
    """Atomically move last_used_step forward; False when this step (or a later one) was already used."""
    return bool(
        TotpDevice.objects.filter(Q(last_used_step__isnull=True) | Q(last_used_step__lt=step), pk=device.pk).update(
            last_used_step=step
        )
    )


def totp_verify(*, request: HttpRequest, code: str, now: float | None = None) -> Verification:
    """Check a code (or a recovery code) for the signed-in user; on success the session is marked verified.
    Failures count in the MFA gate (5 lock the user for 15 minutes); a used code is refused within its window."""
    user = request.user
    address = client_ip(request)
    identity = _identity(user)
    if throttle_locked(gate=Gate.MFA, identity=identity, address=address):
        logger.warning("auth.mfa.locked", extra={"event": "auth.mfa.locked", "user_id": user.pk})
        return Verification.LOCKED
    device = TotpDevice.objects.filter(user=user).first()
    accepted = False
    if device is not None:
        step = _matching_step(device.secret, code, time.time() if now is None else now)
        if step is not None and _claim_step(device, step):
            accepted = True
            if device.confirmed_at is None:
                device.confirmed_at = timezone.now()
                device.save(update_fields=["confirmed_at"])
        elif step is None and device.confirmed_at is not None:
            accepted = recovery_code_use(user=user, code=code)
    if not accepted:
        throttle_record(gate=Gate.MFA, identity=identity, address=address)
        logger.warning("auth.mfa.refused", extra={"event": "auth.mfa.refused", "user_id": user.pk})
        return Verification.REFUSED
    throttle_clear(gate=Gate.MFA, identity=identity)
    mfa_session_mark(request)
    logger.info("auth.mfa.verified", extra={"event": "auth.mfa.verified", "user_id": user.pk})
    return Verification.ACCEPTED


# ---------------------------------------------------------------- recovery codes


def _recovery_hash(code: str) -> str:
    normalised = "".join(code.split()).replace("-", "").lower()
    return hashlib.sha256(normalised.encode()).hexdigest()


@transaction.atomic
def recovery_codes_issue(*, user) -> list[str]:
    """Ten fresh single-use codes (any earlier ones stop working); only their hashes are stored."""
    RecoveryCode.objects.filter(user=user).delete()
    codes = [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODE_COUNT)]
    RecoveryCode.objects.bulk_create(RecoveryCode(user=user, code_hash=_recovery_hash(c)) for c in codes)
    return codes


def recovery_code_use(*, user, code: str) -> bool:
    used = RecoveryCode.objects.filter(user=user, code_hash=_recovery_hash(code), used_at__isnull=True).update(
        used_at=timezone.now()
    )
    if used:
        logger.warning(
            "auth.mfa.recovery_code_used", extra={"event": "auth.mfa.recovery_code_used", "user_id": user.pk}
        )
    return bool(used)
