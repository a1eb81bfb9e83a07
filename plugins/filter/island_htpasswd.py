"""htpasswd lines with bcrypt hashes that are stable across runs.

bcrypt salts are random, so hashing the same password twice gives two different lines and a
templated htpasswd file would change on every run. Here the salt is derived from the password and
the user (HMAC-SHA256), so an unchanged password gives the same line and a rerun changes nothing;
each user's hash still has its own salt. Runs on the controller (the `bcrypt` package travels with
paramiko in requirements.txt).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import bcrypt

_STANDARD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_BCRYPT = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_TO_BCRYPT = str.maketrans(_STANDARD, _BCRYPT)


def _salt(user: str, password: str, cost: int) -> bytes:
    raw = hmac.new(password.encode(), b"island-htpasswd:" + user.encode(), hashlib.sha256).digest()[:16]
    encoded = base64.b64encode(raw).decode().rstrip("=").translate(_TO_BCRYPT)
    # 22 characters carry 132 bits; bcrypt uses 128, so the last one keeps only its top 2 bits.
    encoded = encoded[:21] + _BCRYPT[_BCRYPT.index(encoded[21]) & 0x30]
    return f"$2b${cost:02d}${encoded}".encode()


def island_htpasswd_line(password, user, cost=10):
    """`user:$2b$10$...` for an htpasswd file (what CNCF distribution's htpasswd auth reads)."""
    if ":" in str(user) or not str(user):
        raise ValueError(f"htpasswd user name '{user}' must be non-empty and have no ':'")
    hashed = bcrypt.hashpw(str(password).encode(), _salt(str(user), str(password), int(cost)))
    return f"{user}:{hashed.decode()}"


class FilterModule:
    def filters(self):
        return {"island_htpasswd_line": island_htpasswd_line}
