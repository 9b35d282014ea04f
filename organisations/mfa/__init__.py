"""A TOTP second factor (RFC 6238) for staff on the administrative interfaces (OWASP ASVS 4.0.3 4.3.1).

models.py: the device (encrypted secret, last used time step) and hashed recovery codes. services.py: enrol,
verify (throttled, no replay), recovery codes, and the one decision "does this request still need a second
factor?". views.py: the enrolment and verification pages. middleware.py: sends unverified staff on /admin/ and
/support/ to those pages.
"""
