"""RS256 JSON Web Tokens signed with a key generated on first start (kept in the state store)."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_b64(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class JWTError(Exception):
    pass


class SigningKeys:
    def __init__(self, store):
        pem = store.meta_get("signing_key")
        if pem is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode("ascii")
            store.meta_set("signing_key", pem)
        self.private_key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
        self.public_key = self.private_key.public_key()
        numbers = self.public_key.public_numbers()
        self.public_jwk = {"kty": "RSA", "e": _int_b64(numbers.e), "n": _int_b64(numbers.n)}
        thumb = json.dumps(self.public_jwk, sort_keys=True, separators=(",", ":")).encode()
        self.kid = hashlib.sha256(thumb).hexdigest()[:32].upper()

    def jwks(self) -> dict:
        return {
            "keys": [
                dict(
                    self.public_jwk,
                    kid=self.kid,
                    use="sig",
                    alg="RS256",
                    x5t=b64url(hashlib.sha256(self.kid.encode()).digest()[:20]),
                )
            ]
        }

    def sign(self, claims: dict) -> str:
        header = {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self.private_key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return signing_input + "." + b64url(signature)

    def verify(self, token: str) -> dict:
        """Check the signature and return the claims (expiry is the caller's business)."""
        try:
            header_b64, claims_b64, signature_b64 = token.split(".")
            header = json.loads(b64url_decode(header_b64))
            if header.get("alg") != "RS256":
                raise JWTError("unsupported alg")
            self.public_key.verify(
                b64url_decode(signature_b64),
                f"{header_b64}.{claims_b64}".encode("ascii"),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            return json.loads(b64url_decode(claims_b64))
        except (ValueError, InvalidSignature, UnicodeDecodeError) as exc:
            raise JWTError(str(exc) or "invalid token") from exc


def at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return b64url(digest[: len(digest) // 2])
