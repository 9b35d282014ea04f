"""Sign up, sign in and link with Xero (OpenID Connect): callback.py (start, callback, sign in, link, unlink),
signup.py (sign up and its choice of organisation), common.py (what they share).

- Sign up: one consent for the identity and the accounting scopes; creates the user, an organisation named after
  the chosen Xero organisation, the admin membership and the Xero connection (bound as Connect binds).
- Sign in: the identity scopes only; signs in the user linked to that Xero user, throttled like every sign-in.
- Link: a user signed in with their password links their Xero login (then signs in with it); unlink in Settings.

Users are found by Xero's user id, never by email. An email that already belongs to an account is never taken
over: a sign-up with it is refused, and that person links Xero after signing in with their password.
The views sign the user in (django.contrib.auth.login); these services decide and write.
"""

from integrations.signin.services.callback import xero_identity_unlink, xero_signin_callback, xero_signin_start
from integrations.signin.services.common import SignInOutcome
from integrations.signin.services.signup import (
    xero_signup_choice_cancel,
    xero_signup_choice_expire,
    xero_signup_choose,
    xero_signup_pending_bind,
)

__all__ = [
    "SignInOutcome",
    "xero_identity_unlink",
    "xero_signin_callback",
    "xero_signin_start",
    "xero_signup_choice_cancel",
    "xero_signup_choice_expire",
    "xero_signup_choose",
    "xero_signup_pending_bind",
]
