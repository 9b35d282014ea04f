"""integrations.xero.signatures: base64(HMAC-SHA256(raw body, key)), constant-time, current or previous key."""

import base64
import hashlib
import hmac

from integrations.xero.signatures import webhook_signature, webhook_signature_valid

BODY = b'{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"S0m3r4Nd0mt3xt"}'


def test_signature_matches_xero_formula_when_computed():
    expected = base64.b64encode(hmac.new(b"key-1", BODY, hashlib.sha256).digest()).decode()
    assert webhook_signature(body=BODY, key="key-1") == expected


def test_signature_valid_when_signed_with_current_key():
    assert webhook_signature_valid(body=BODY, signature=webhook_signature(body=BODY, key="now"), keys=["now", "old"])


def test_signature_valid_when_signed_with_previous_key_during_rotation():
    assert webhook_signature_valid(body=BODY, signature=webhook_signature(body=BODY, key="old"), keys=["now", "old"])


def test_signature_invalid_when_signed_with_another_key():
    assert not webhook_signature_valid(body=BODY, signature=webhook_signature(body=BODY, key="x"), keys=["now"])


def test_signature_invalid_when_body_changed_by_one_byte():
    signature = webhook_signature(body=BODY, key="now")
    assert not webhook_signature_valid(body=BODY.replace(b"S0m3", b"S0m4"), signature=signature, keys=["now"])


def test_signature_invalid_when_missing_or_no_key_configured():
    assert not webhook_signature_valid(body=BODY, signature="", keys=["now"])
    assert not webhook_signature_valid(body=BODY, signature=webhook_signature(body=BODY, key=""), keys=["", None])


def test_signature_invalid_when_not_ascii():
    assert not webhook_signature_valid(body=BODY, signature="ünïcode", keys=["now"])


def test_signature_is_over_raw_bytes_when_json_whitespace_differs():
    spaced = BODY.replace(b",", b", ")
    assert not webhook_signature_valid(body=spaced, signature=webhook_signature(body=BODY, key="k"), keys=["k"])
