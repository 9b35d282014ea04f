"""Who a sign-in names: one canonical form of an email address, used for the user lookup AND the throttle's key.

NFKC folds compatibility characters (the long s "ſ" is an "s", full-width letters are letters) and casefold
folds case the Unicode way ("ß" is "ss"). PostgreSQL's UPPER() folds more than Python's lower() does ("ı" is "I"
there), so comparing in SQL with iexact and counting in Python with lower() let look-alike addresses sign in to
one account with a fresh allowance each. Both now go through canonical_email(), and SignInEmail stores its result
with a unique index.
"""

import logging
import unicodedata

from django.db import IntegrityError, transaction

logger = logging.getLogger("organisations.auth")


def canonical_email(value: str) -> str:
    """NFKC_Casefold of the address (NFKC, casefold, NFKC again), trimmed."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value or "").casefold())
    return folded.strip()


def sign_in_email_sync(*, user) -> None:
    """Keep the user's SignInEmail row equal to canonical_email(user.email). Called on every save of a user.

    An address that folds to one another account already holds is not taken over: the first account keeps it
    (it is one account), and the clash is logged for support.
    """
    from organisations.models import SignInEmail

    canonical = canonical_email(user.email or "")[:254]
    if not canonical:
        SignInEmail.objects.filter(user=user).delete()
        return
    try:
        with transaction.atomic():
            SignInEmail.objects.update_or_create(user=user, defaults={"canonical": canonical})
    except IntegrityError:
        logger.warning(
            "auth.identity.conflict",
            extra={"event": "auth.identity.conflict", "user_id": user.pk},
        )
