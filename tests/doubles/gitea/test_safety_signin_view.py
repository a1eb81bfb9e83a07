"""[service] REQUIRE_SIGNIN_VIEW (issue 15, item 17), as Gitea 1.26 applies it: the API answers an
anonymous caller 403 "Only signed in user is allowed to call APIs." (routers/api/v1/api.go, the
API router's VerifyAuthWithOptions{SignInRequired: setting.Service.RequireSignInView}), /version
included; git over HTTPS asks for credentials even for a public repository (routers/web/repo/
githttp.go: askAuth when the pull is not public or RequireSignInView); /api/healthz stays open."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support.doubles.gitea import ADMIN, Gitea


@pytest.fixture
def signin_gitea(tmp_path, gitea_pki):
    server = Gitea(tmp_path / "gitea", pki=gitea_pki, overrides={"service": {"REQUIRE_SIGNIN_VIEW": "true"}})
    server.bootstrap_admin().start()
    yield server
    server.stop()


def _git(gitea, tmp_path, *args):
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_SSL_CAINFO": str(gitea.pki["ca"]),
    }
    return subprocess.run(["git", *args], env=env, capture_output=True, text=True, check=False)


def test_an_anonymous_api_call_is_refused_and_a_signed_in_one_answers(signin_gitea):
    status, body = signin_gitea.api("GET", "/api/v1/version")
    assert (status, body) == (403, {"message": "Only signed in user is allowed to call APIs."})
    assert signin_gitea.api("GET", "/api/v1/orgs/island")[0] == 403
    status, body = signin_gitea.api("GET", "/api/v1/version", token=signin_gitea.token)
    assert status == 200 and body["version"]
    assert signin_gitea.api("GET", "/api/v1/user", token=signin_gitea.token)[1]["login"] == ADMIN


def test_healthz_stays_open(signin_gitea):
    assert signin_gitea.api("GET", "/api/healthz")[0] == 200


def test_a_public_repository_needs_credentials_to_clone(signin_gitea, tmp_path):
    token = signin_gitea.token
    signin_gitea.api("POST", "/api/v1/orgs", {"username": "platform"}, token=token)
    status, _ = signin_gitea.api("POST", "/api/v1/orgs/platform/repos", {"name": "public"}, token=token)
    assert status == 201
    anonymous = _git(signin_gitea, tmp_path, "ls-remote", f"{signin_gitea.url}/platform/public.git")
    assert anonymous.returncode != 0
    assert "could not read Username" in anonymous.stderr
    authed = f"https://{ADMIN}:{token}@127.0.0.1:{signin_gitea.port}/platform/public.git"
    assert _git(signin_gitea, tmp_path, "ls-remote", authed).returncode == 0


def test_without_the_setting_a_public_repository_and_the_version_stay_anonymous(gitea, tmp_path):
    assert gitea.api("GET", "/api/v1/version")[0] == 200
    gitea.api("POST", "/api/v1/orgs", {"username": "platform"}, token=gitea.token)
    gitea.api("POST", "/api/v1/orgs/platform/repos", {"name": "public"}, token=gitea.token)
    assert _git(gitea, tmp_path, "ls-remote", f"{gitea.url}/platform/public.git").returncode == 0
