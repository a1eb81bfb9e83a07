"""Bearer-token authentication against distribution configured with `auth: token`."""

from __future__ import annotations

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_oci import AuthenticationError, seed

from tests.support.oci import Registry, TokenServer, needs_registry, sha256

pytestmark = [needs_registry, pytest.mark.slow]


@pytest.fixture
def token_registry(tmp_path, pki):
    tokens = TokenServer(tmp_path / "tokens", pki)
    reg = Registry(tmp_path / "registry", pki)
    tokens.configure(reg)
    reg.start()
    reg.tokens = tokens
    yield reg
    reg.stop()
    tokens.stop()


def test_seeding_through_a_token_service_gets_scoped_tokens_and_keeps_digests(token_registry, layout):
    reg = token_registry
    result = seed(reg.client(), layout)
    assert result.changed
    scopes = {s for q in reg.tokens.requests for s in q.get("scope", [])}
    assert "repository:library/alpine:pull,push" in scopes
    # a cross-repository mount asks for pull on the source repository in the same token
    assert any(len(q.get("scope", [])) == 2 for q in reg.tokens.requests)
    assert all(q.get("service") == [TokenServer.service] for q in reg.tokens.requests)
    assert sum(len(r["blobs_mounted"]) for r in result.images) >= 2
    digests = {str(r): d["digest"] for r, d in layout.images()}
    # skopeo does the token dance on its own and reads the same digest
    assert sha256(reg.skopeo_raw("org/tool:1")) == digests["quay.io/org/tool:1"]
    mark = reg.log_mark()
    assert not seed(reg.client(), layout).changed
    assert reg.writes(mark) == []


def test_credentials_refused_by_the_token_service_are_an_authentication_error(token_registry, layout):
    with pytest.raises(AuthenticationError) as caught:
        seed(token_registry.client(password="wrong"), layout)
    assert "token service" in str(caught.value) and "refused" in str(caught.value)
    assert token_registry.writes() == []
