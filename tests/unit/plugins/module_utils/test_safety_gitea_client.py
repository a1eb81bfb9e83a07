"""The Gitea client speaks HTTPS only (issue 15, item 17): plain http would carry the admin token and
account passwords in clear across the island network."""

from __future__ import annotations

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_gitea import (
    GiteaClient,
    GiteaConfigError,
    ensure_password,
)


@pytest.mark.parametrize("url", ["http://git.island.test", "HTTP://git.island.test:3000/", "http://10.0.0.1"])
def test_a_plain_http_url_is_refused_with_the_fix(url):
    with pytest.raises(GiteaConfigError) as caught:
        GiteaClient(url, token="t")
    message = str(caught.value)
    assert url in message
    assert "https://" in message
    assert "plain http" in message


def test_ensure_password_refuses_plain_http_before_any_request():
    with pytest.raises(GiteaConfigError, match="plain http"):
        ensure_password("http://127.0.0.1:9", None, "t", "user", "password")


@pytest.mark.parametrize("url", ["ftp://git.island.test", "https://", "git.island.test"])
def test_other_schemes_and_hostless_urls_are_still_refused(url):
    with pytest.raises(GiteaConfigError, match="is not an https URL"):
        GiteaClient(url, token="t")


def test_an_https_url_is_accepted():
    client = GiteaClient("https://git.island.test/", token="t")
    assert client.url == "https://git.island.test"
