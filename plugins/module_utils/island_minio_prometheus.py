# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MinIO's Prometheus bearer token on the controller: made once, kept 0600, remade only when stale.

MinIO (RELEASE.2025-09-07T16-13-09Z) serves ``/minio/v2/metrics/cluster`` behind a bearer JWT
unless ``MINIO_PROMETHEUS_AUTH_TYPE=public`` (cmd/metrics-router.go). It takes the token from the
``Authorization`` header (golang-jwt v4 ``request.AuthorizationHeaderExtractor``: ``Bearer `` in any
case), accepts only HS256, HS384 or HS512, finds the account in the ``accessKey`` claim or else
``sub``, checks the HMAC with that account's secret key, then ``exp``/``iat``/``nbf`` when present
(internal/jwt/parser.go ``ParseWithClaims``, cmd/jwt.go ``metricsRequestAuthenticate``), and
requires ``iss`` to be ``prometheus`` (cmd/metrics.go ``AuthMiddleware``). The token is what
``mc admin prometheus generate`` makes (minio/mc cmd/utils.go ``getPrometheusToken``, release
RELEASE.2025-08-13T08-35-41Z): HS512 over ``{"exp", "sub": access key, "iss": "prometheus"}``,
signed with the account's secret key, valid 100 years.

The standard library suffices (base64url, JSON, HMAC-SHA512), so the controller needs no JWT
library. A token that does not verify with the current key (the root password changed), names
another account, lacks the issuer, or expires within ``renew_days`` is replaced; any other is kept,
so a rerun changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time

from ansible_collections.island.installer.plugins.module_utils.island_io import atomic_write, read_regular

ISSUER = "prometheus"
LIFETIME_DAYS = 100 * 365  # mc's defaultPrometheusJWTExpiry
FILE_MODE = 0o600
MAX_TOKEN_BYTES = 64 * 1024  # MinIO cuts a token to this length (internal/jwt base64BufferSize)
_DAY = 24 * 3600


class PrometheusTokenError(Exception):
    """The token file cannot be kept; the message says which file and why."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(signing_input: str, secret: str) -> str:
    return _b64(hmac.new(secret.encode(), signing_input.encode("ascii"), hashlib.sha512).digest())


def encode(access_key: str, secret: str, expires: int) -> str:
    """An HS512 JWT with ``exp``, ``sub`` and ``iss``, as ``mc admin prometheus generate`` makes it."""
    header = _b64(json.dumps({"alg": "HS512", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {"exp": int(expires), "iss": ISSUER, "sub": access_key}
    body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    return f"{header}.{body}.{_sign(f'{header}.{body}', secret)}"


def stale(token: str, access_key: str, secret: str, now: float, renew_days: int) -> str | None:  # noqa: PLR0911 - one reason per check
    """Why ``token`` must be made again (a sentence), or None when it serves as it is."""
    parts = token.split(".")
    if len(parts) != 3:
        return "the file does not hold a JWT"
    try:
        header = json.loads(_unb64(parts[0]))
        claims = json.loads(_unb64(parts[1]))
    except ValueError:
        return "the file does not hold a JWT"
    if not isinstance(header, dict) or header.get("alg") != "HS512" or not isinstance(claims, dict):
        return "the token is not an HS512 JWT"
    if not hmac.compare_digest(_sign(f"{parts[0]}.{parts[1]}", secret), parts[2]):
        return "the token is not signed with the current secret key (it changed)"
    if claims.get("sub") != access_key or "accessKey" in claims:
        return f"the token names another account than {access_key}"
    if claims.get("iss") != ISSUER:
        return f"the token's issuer is not {ISSUER!r}"
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp - now < renew_days * _DAY:
        return f"the token expires within {renew_days} days"
    return None


def converge(path, access_key, secret, *, renew_days=365, check_mode=False, now=None):
    """Keep a valid token at ``path`` (0600), or write a new one. Returns ``{"changed", "reason"}``;
    the token itself is never returned."""
    if not access_key or not secret:
        raise PrometheusTokenError("access_key and secret_key must not be empty")
    path = os.path.abspath(os.fspath(path))
    now = time.time() if now is None else now
    try:
        data = read_regular(path, MAX_TOKEN_BYTES)
    except FileNotFoundError:
        reason = f"{path} does not exist"
    except OSError as exc:
        raise PrometheusTokenError(
            f"{path} cannot be read ({exc.strerror}): it must be a plain file"
        ) from exc
    else:
        reason = stale(data.decode("ascii", errors="replace").strip(), access_key, secret, now, renew_days)
        if reason is None:
            mode_wrong = (os.stat(path).st_mode & 0o777) != FILE_MODE
            if mode_wrong and not check_mode:
                os.chmod(path, FILE_MODE)
            return {"changed": mode_wrong, "reason": f"mode set to 0600 on {path}" if mode_wrong else ""}
    if not check_mode:
        atomic_write(
            path, encode(access_key, secret, int(now) + LIFETIME_DAYS * _DAY).encode(), mode=FILE_MODE
        )
    return {"changed": True, "reason": reason}
