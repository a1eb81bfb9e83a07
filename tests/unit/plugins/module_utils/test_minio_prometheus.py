"""island_minio_prometheus: the token `mc admin prometheus generate` makes (HS512, exp, sub, iss
"prometheus"), written once 0600, kept while it verifies, remade when the key changed or it nears
its expiry, nothing written in check mode."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_minio_prometheus import (
    LIFETIME_DAYS,
    PrometheusTokenError,
    converge,
    encode,
)

NOW = 1_800_000_000


def _part(text):
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def test_the_token_is_hs512_over_exp_sub_and_iss_as_mc_makes_it():
    token = encode("island-root", "root-secret", NOW + 10)
    head, body, signature = token.split(".")
    assert _part(head) == {"alg": "HS512", "typ": "JWT"}
    assert _part(body) == {"exp": NOW + 10, "iss": "prometheus", "sub": "island-root"}
    expected = hmac.new(b"root-secret", f"{head}.{body}".encode(), hashlib.sha512).digest()
    assert base64.urlsafe_b64encode(expected).rstrip(b"=").decode() == signature
    assert "=" not in token  # unpadded base64url, as MinIO's RawURLEncoding wants


def test_a_token_is_written_once_0600_and_kept_on_a_rerun(tmp_path):
    path = tmp_path / "minio-prometheus-token"
    first = converge(path, "island-root", "root-secret", now=NOW)
    assert first == {"changed": True, "reason": f"{path} does not exist"}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    token = path.read_text()
    assert _part(token.split(".")[1])["exp"] == NOW + LIFETIME_DAYS * 24 * 3600
    assert converge(path, "island-root", "root-secret", now=NOW + 3600) == {"changed": False, "reason": ""}
    assert path.read_text() == token


@pytest.mark.parametrize(
    ("access_key", "secret", "later_days", "reason"),
    [
        ("island-root", "new-root-secret", 0, "not signed with the current secret key"),
        ("someone-else", "root-secret", 0, "names another account"),
        ("island-root", "root-secret", LIFETIME_DAYS - 100, "expires within 365 days"),
    ],
)
def test_a_stale_token_is_replaced(tmp_path, access_key, secret, later_days, reason):
    path = tmp_path / "token"
    converge(path, "island-root", "root-secret", now=NOW)
    old = path.read_text()
    result = converge(path, access_key, secret, now=NOW + later_days * 24 * 3600)
    assert result["changed"] and reason in result["reason"]
    assert path.read_text() != old


def test_check_mode_writes_nothing_and_says_why(tmp_path):
    path = tmp_path / "token"
    assert converge(path, "island-root", "root-secret", check_mode=True, now=NOW)["changed"]
    assert not path.exists()
    path.write_text("not a jwt")
    result = converge(path, "island-root", "root-secret", check_mode=True, now=NOW)
    assert result == {"changed": True, "reason": "the file does not hold a JWT"}
    assert path.read_text() == "not a jwt"


def test_a_wider_mode_is_narrowed_without_a_new_token(tmp_path):
    path = tmp_path / "token"
    converge(path, "island-root", "root-secret", now=NOW)
    token = path.read_text()
    path.chmod(0o644)
    assert converge(path, "island-root", "root-secret", now=NOW)["changed"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and path.read_text() == token


def test_empty_credentials_and_a_directory_are_refused(tmp_path):
    with pytest.raises(PrometheusTokenError, match="must not be empty"):
        converge(tmp_path / "t", "island-root", "")
    with pytest.raises(PrometheusTokenError, match="must be a plain file"):
        converge(tmp_path, "island-root", "root-secret")
