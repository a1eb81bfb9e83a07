"""htpasswd lines: a random bcrypt salt, and an existing line kept while it still verifies (issue 15,
item 12). A salt derived from the password would be a fast password oracle."""

from __future__ import annotations

import bcrypt
import pytest
from ansible_collections.island.installer.plugins.filter.island_htpasswd import island_htpasswd_line


def _hash(line):
    return line.split(":", 1)[1]


def test_two_fresh_lines_for_the_same_password_have_different_salts():
    first = island_htpasswd_line("s3cret-password", "island-node")
    second = island_htpasswd_line("s3cret-password", "island-node")
    # bcrypt's modular crypt: $2b$10$ then 22 characters of salt, then the hash.
    assert _hash(first)[7:29] != _hash(second)[7:29]
    for line in (first, second):
        assert bcrypt.checkpw(b"s3cret-password", _hash(line).encode())
        assert not bcrypt.checkpw(b"wrong", _hash(line).encode())


def test_the_salt_is_not_derived_from_the_password_and_user():
    # The former salt: HMAC-SHA256(password, "island-htpasswd:" + user) in bcrypt's base64, a fast oracle.
    import base64
    import hashlib
    import hmac

    standard = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    crypt = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    raw = hmac.new(b"pw", b"island-htpasswd:u", hashlib.sha256).digest()[:16]
    derived = base64.b64encode(raw).decode().translate(str.maketrans(standard, crypt))[:21]
    assert all(_hash(island_htpasswd_line("pw", "u"))[7:28] != derived for _ in range(3))


def test_an_existing_line_that_still_verifies_is_kept_byte_for_byte():
    existing = island_htpasswd_line("s3cret-password", "island-node")
    content = f"other:$2b$10$abcdefghijklmnopqrstuvabcdefghijklmnopqrstuvwxyzABCDE\n{existing}\n"
    assert island_htpasswd_line("s3cret-password", "island-node", existing=content) == existing
    assert island_htpasswd_line("s3cret-password", "island-node", existing=existing) == existing


def test_a_line_whose_password_changed_is_replaced():
    existing = island_htpasswd_line("old-password", "island-node")
    line = island_htpasswd_line("new-password", "island-node", existing=existing + "\n")
    assert line != existing
    assert bcrypt.checkpw(b"new-password", _hash(line).encode())


def test_a_line_of_another_user_or_cost_or_a_garbled_one_is_not_kept():
    other_user = island_htpasswd_line("pw", "someone-else")
    assert island_htpasswd_line("pw", "island-node", existing=other_user).startswith("island-node:")
    cheap = island_htpasswd_line("pw", "island-node", cost=4)
    assert _hash(island_htpasswd_line("pw", "island-node", existing=cheap)).startswith("$2b$10$")
    for garbled in ("island-node:", "island-node:not-a-hash", "island-node:$2b$10$short", ""):
        line = island_htpasswd_line("pw", "island-node", existing=garbled)
        assert bcrypt.checkpw(b"pw", _hash(line).encode())


def test_a_user_name_with_a_colon_is_still_refused():
    with pytest.raises(ValueError, match="must be non-empty and have no ':'"):
        island_htpasswd_line("x", "a:b", existing="")
