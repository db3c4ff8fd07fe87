"""Password hashing with the standard library's scrypt (memory-hard; no extra dependency).

Stored form: ``scrypt$<n>$<r>$<p>$<salt, base64>$<hash, base64>`` so the cost can be raised
later and old hashes still verify (`needs_rehash` says when to re-hash at the next login).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCRYPT_N = 2**14  # CPU/memory cost: 16 MiB with r=8
SCRYPT_R = 8
SCRYPT_P = 1
HASH_BYTES = 32
SALT_BYTES = 16
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # scrypt's time does not depend much on length, but bound the input anyway


class PasswordPolicyError(ValueError):
    """A password too short, too long or too obvious; the message is bilingual."""


def check_password_policy(password: str, *, email: str | None = None) -> None:
    """Raise PasswordPolicyError unless `password` is acceptable."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise PasswordPolicyError(
            f"Mật khẩu phải có ít nhất {MIN_PASSWORD} ký tự / password must have at least "
            f"{MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise PasswordPolicyError(
            f"Mật khẩu quá dài (tối đa {MAX_PASSWORD}) / password too long (at most {MAX_PASSWORD})")
    if len(set(password)) < 4:
        raise PasswordPolicyError("Mật khẩu quá đơn giản / password too simple")
    if email and password.strip().lower() == email.strip().lower():
        raise PasswordPolicyError("Mật khẩu không được trùng e-mail / password must differ from e-mail")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=HASH_BYTES,
                          maxmem=256 * 1024 * 1024)


def hash_password(password: str) -> str:
    """A new salted scrypt hash of `password` (policy not checked here)."""
    if len(password) > MAX_PASSWORD:
        raise PasswordPolicyError("password too long")
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """True when `password` matches the stored hash; False for any malformed hash."""
    if not isinstance(password, str) or len(password) > MAX_PASSWORD:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(expected, actual)


def needs_rehash(stored: str) -> bool:
    """True when the stored hash used weaker parameters than today's."""
    try:
        scheme, n, r, p, _, _ = stored.split("$")
        return scheme != "scrypt" or (int(n), int(r), int(p)) < (SCRYPT_N, SCRYPT_R, SCRYPT_P)
    except ValueError:
        return True


_DUMMY = hash_password(secrets.token_urlsafe(16))


def dummy_verify(password: str) -> None:
    """Spend the time of one verification (for unknown users, so timing does not tell them apart)."""
    verify_password(password, _DUMMY)
