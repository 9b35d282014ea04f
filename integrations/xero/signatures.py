"""Xero webhook signatures: base64(HMAC-SHA256(raw body, webhook key)). Pure: no I/O, no models.

https://developer.xero.com/documentation/guides/webhooks/configuring-your-server/ : hash the raw request bytes
before any JSON parsing, and compare in constant time (Xero's own sample uses a plain ==).
"""

import base64
import hashlib
import hmac
from collections.abc import Iterable


def webhook_signature(*, body: bytes, key: str) -> str:
    digest = hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def webhook_signature_valid(*, body: bytes, signature: str, keys: Iterable[str]) -> bool:
    """True if `signature` matches the body under any of `keys` (the current key, then the previous one while
    a rotation is under way). Every key is tried, so the time taken does not say which one matched."""
    if not signature:
        return False
    presented = signature.strip().encode("ascii", "replace")
    matched = False
    for key in keys:
        if not key:
            continue
        expected = webhook_signature(body=body, key=key).encode("ascii")
        matched |= hmac.compare_digest(expected, presented)
    return matched
