"""Service names and stable htpasswd lines."""

from __future__ import annotations

import bcrypt
import pytest
from ansible_collections.island.installer.plugins.filter.island_htpasswd import island_htpasswd_line
from ansible_collections.island.installer.plugins.filter.island_names import island_service_name


def test_service_names_derive_from_the_island_domain():
    assert island_service_name("registry", "island.internal") == "registry.island.internal"
    assert island_service_name("registry", "island.internal.", {"registry": "cr"}) == "cr.island.internal"


def test_an_unknown_service_name_is_refused():
    with pytest.raises(ValueError, match="unknown island service 'ftp'"):
        island_service_name("ftp", "island.internal")


def test_an_htpasswd_line_is_stable_and_verifies_with_bcrypt():
    first = island_htpasswd_line("s3cret-password", "island-node")
    assert first == island_htpasswd_line("s3cret-password", "island-node", existing=first)
    user, hashed = first.split(":", 1)
    assert user == "island-node"
    assert hashed.startswith("$2b$10$")
    assert bcrypt.checkpw(b"s3cret-password", hashed.encode())
    assert not bcrypt.checkpw(b"wrong", hashed.encode())


def test_a_changed_password_or_user_changes_the_line():
    line = island_htpasswd_line("a-password", "user-a")
    assert island_htpasswd_line("b-password", "user-a") != line
    assert island_htpasswd_line("a-password", "user-b").split(":", 1)[1] != line.split(":", 1)[1]


def test_a_user_name_with_a_colon_is_refused():
    with pytest.raises(ValueError, match="must be non-empty and have no ':'"):
        island_htpasswd_line("x", "a:b")
