"""Password hashing: PBKDF2-HMAC-SHA256 with a per-user random salt.

Stored as `pbkdf2_sha256$<iterations>$<salt b64>$<hash b64>`, so the iteration count can rise later
without invalidating existing hashes.

>>> stored = hash_password("correct horse")
>>> verify_password("correct horse", stored), verify_password("wrong", stored)
(True, False)
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

ITERATIONS = 600_000  # OWASP 2023 guidance for PBKDF2-HMAC-SHA256
MIN_ITERATIONS = 200_000
_SCHEME = "pbkdf2_sha256"


class PasswordHashError(ValueError):
    """A stored password hash is malformed."""


def _derive(password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)


def hash_password(password: str, iterations: int = ITERATIONS) -> str:
    if iterations < MIN_ITERATIONS:
        raise ValueError(f"PBKDF2 needs at least {MIN_ITERATIONS} iterations, got {iterations}")
    salt = secrets.token_bytes(16)
    digest = _derive(password, salt, iterations)
    b64 = base64.b64encode
    return f"{_SCHEME}${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored`, compared in constant time."""
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != _SCHEME:
            raise ValueError(f"unknown scheme {scheme!r}")
        rounds = int(iterations)
        salt_bytes, expected = base64.b64decode(salt, validate=True), base64.b64decode(digest, validate=True)
    except ValueError as e:
        raise PasswordHashError(f"malformed password hash: {e}") from e
    return hmac.compare_digest(_derive(password, salt_bytes, rounds), expected)


@functools.cache
def dummy_hash() -> str:
    """Verified against when the username is unknown, so a login takes as long for a missing account
    as for a wrong password and does not reveal which accounts exist."""
    return hash_password(secrets.token_hex(16))
