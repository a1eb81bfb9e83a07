"""The Gitea double refuses what Gitea 1.26 refuses, never rewrites app.ini, answers the REST API
with Gitea's status codes, and serves git over HTTPS to the real git client."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.doubles import SYSTEM_PYTHON, double_path, run_double
from tests.support.doubles.gitea import ADMIN, Gitea, double_env, needs_gitea_double
from tests.support.doubles.gitea import git_env as _git_env
from tests.support.doubles.gitea import git_run as _git

pytestmark = needs_gitea_double()


def _web(server, env=None):
    """Run `gitea web` on a config the double must refuse: it exits at once."""
    return run_double(
        "gitea",
        ["web", "--config", str(server.config), "--work-path", str(server.work)],
        env=env or double_env(),
    )


def test_version_prints_the_upstream_line():
    out = run_double("gitea", ["--version"])
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Gitea version 1.26.2 built with ")


# --- app.ini refusals ----------------------------------------------------------------------------
def _bad_settings(tmp):
    """(id, overrides, drop, expected message) for settings Gitea 1.26 refuses or would act on."""
    missing = tmp / "nope"
    empty = tmp / "empty"  # written by the test: a secret file with only a newline
    return [
        ("unknown-db-type", {"database": {"DB_TYPE": "oracle"}}, (), "Unknown database type"),
        ("no-db-type", {}, [("database", "DB_TYPE")], "Unknown database type"),
        ("install-lock-false", {"security": {"INSTALL_LOCK": "false"}}, (), "INSTALL_LOCK is not true"),
        ("install-lock-missing", {}, [("security", "INSTALL_LOCK")], "web installer"),
        ("protocol-typo", {"server": {"PROTOCOL": "htps"}}, (), "PROTOCOL = 'htps'"),
        ("https-without-cert", {}, [("server", "CERT_FILE")], "needs CERT_FILE"),
        ("https-without-key", {}, [("server", "KEY_FILE")], "needs KEY_FILE"),
        ("cert-unreadable", {"server": {"CERT_FILE": str(missing)}}, (), "not a readable file"),
        (
            "secret-key-both",
            {"security": {"SECRET_KEY": "inline"}},
            (),
            "Cannot specify both SECRET_KEY_URI and SECRET_KEY",
        ),
        (
            "internal-token-both",
            {"security": {"INTERNAL_TOKEN": "inline"}},
            (),
            "Cannot specify both INTERNAL_TOKEN_URI and INTERNAL_TOKEN",
        ),
        (
            "jwt-secret-both",
            {"oauth2": {"JWT_SECRET": "inline"}},
            (),
            "Cannot specify both JWT_SECRET_URI and JWT_SECRET",
        ),
        (
            "lfs-jwt-secret-both",
            {"server": {"LFS_JWT_SECRET": "a", "LFS_JWT_SECRET_URI": f"file:{empty}"}},
            (),
            "Cannot specify both LFS_JWT_SECRET_URI and LFS_JWT_SECRET",
        ),
        ("secret-file-missing", {"security": {"SECRET_KEY_URI": f"file:{missing}"}}, (), "Failed to read"),
        ("secret-file-empty", {"security": {"INTERNAL_TOKEN_URI": f"file:{empty}"}}, (), "the file is empty"),
        (
            "secret-uri-not-file",
            {"security": {"SECRET_KEY_URI": "https://vault/secret"}},
            (),
            "Unsupported URI-Scheme",
        ),
        ("root-url-not-url", {"server": {"ROOT_URL": "git.island.test"}}, (), "Invalid ROOT_URL"),
        (
            "internal-token-would-be-written",
            {},
            [("security", "INTERNAL_TOKEN_URI")],
            "write it into app.ini",
        ),
        ("lfs-secret-would-be-written", {"server": {"LFS_START_SERVER": "true"}}, (), "LFS_JWT_SECRET"),
        ("run-user-differs", {"": {"RUN_USER": "git-nobody"}}, (), "Expect user 'git-nobody'"),
        ("http-port-not-a-port", {"server": {"HTTP_PORT": "http"}}, (), "HTTP_PORT"),
    ]


@pytest.mark.parametrize("case", [c[0] for c in _bad_settings(Path("/unused"))])
def test_web_refuses_settings_gitea_refuses_and_leaves_app_ini_alone(tmp_path, gitea_pki, case):
    (tmp_path / "empty").write_text("\n")
    _, overrides, drop, expected = next(c for c in _bad_settings(tmp_path) if c[0] == case)
    server = Gitea(tmp_path / "g", pki=gitea_pki, overrides=overrides, drop=drop)
    before = server.config.read_bytes()
    proc = _web(server)
    assert proc.returncode == 1, proc.stderr
    assert expected in proc.stderr
    assert server.config.read_bytes() == before


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can show the root refusal")
def test_running_as_root_is_refused_unless_told_it_is_unsafe(tmp_path, gitea_pki):
    server = Gitea(tmp_path / "g", pki=gitea_pki)
    env = {k: v for k, v in os.environ.items() if k != "I_AM_BEING_UNSAFE_RUNNING_AS_ROOT"}
    proc = _web(server, env)
    assert proc.returncode == 1
    assert "not supposed to be run as root" in proc.stderr


@pytest.mark.slow
def test_app_ini_is_byte_identical_after_start_cli_and_stop(tmp_path, gitea_pki):
    server = Gitea(tmp_path / "g", pki=gitea_pki)
    before = server.config.read_bytes()
    mtime = server.config.stat().st_mtime_ns
    server.bootstrap_admin().start()
    assert server.api("POST", "/api/v1/orgs", {"username": "platform"}, token=server.token)[0] == 201
    server.stop()
    assert server.config.read_bytes() == before
    assert server.config.stat().st_mtime_ns == mtime


# --- admin CLI -----------------------------------------------------------------------------------
def test_admin_commands_need_an_installed_gitea_and_take_global_flags_first_or_last(tmp_path, gitea_pki):
    locked = Gitea(tmp_path / "a", pki=gitea_pki, overrides={"security": {"INSTALL_LOCK": "false"}})
    proc = locked.cli("admin", "user", "list", check=False)
    assert proc.returncode == 1 and "installed Gitea instance" in proc.stderr
    server = Gitea(tmp_path / "b", pki=gitea_pki).bootstrap_admin()
    first = run_double(
        "gitea", ["-c", str(server.config), "admin", "user", "list", "--admin"], env=double_env()
    )
    assert first.returncode == 0, first.stderr
    assert ADMIN in first.stdout


def test_admin_user_create_has_no_password_file_flag_and_checks_flags_like_upstream(tmp_path, gitea_pki):
    server = Gitea(tmp_path / "g", pki=gitea_pki)
    base = ["admin", "user", "create", "--username", "a", "--email", "a@x.test"]
    proc = server.cli(*base, "--password-file", "/etc/passwd", check=False)
    assert proc.returncode == 1 and "flag provided but not defined: -password-file" in proc.stderr
    proc = server.cli(*base, "--password", "p4ssw0rd!", "--random-password", check=False)
    assert "cannot set both -random-password and -password flags" in proc.stderr
    proc = server.cli(*base, check=False)
    assert "must set either password or random-password flag" in proc.stderr
    proc = server.cli("admin", "user", "create", "--username", "a", "--random-password", check=False)
    assert proc.returncode == 1 and "email" in proc.stderr


def test_admin_user_create_random_password_prints_it_and_the_first_user_need_not_change_it(
    tmp_path, gitea_pki
):
    server = Gitea(tmp_path / "g", pki=gitea_pki).bootstrap_admin()
    assert len(server.password) == 24
    listing = server.cli("admin", "user", "list", "--admin").stdout.splitlines()
    assert listing[0].split() == ["ID", "Username", "Email", "IsActive"]
    assert listing[1].split() == ["1", ADMIN, "admin@island.test", "true"]
    create = ["admin", "user", "create"]
    again = server.cli(*create, "--username", ADMIN, "--email", "b@x.test", "--random-password", check=False)
    assert again.returncode == 1 and "user already exists" in again.stderr
    second = server.cli(*create, "--username", "dev", "--email", "dev@x.test", "--random-password")
    assert "New user 'dev' has been successfully created!" in second.stdout
    full = server.cli("admin", "user", "list").stdout.splitlines()
    assert full[0].split() == ["ID", "Username", "Email", "IsActive", "IsAdmin", "2FA"]
    assert [line.split()[1] for line in full[1:]] == [ADMIN, "dev"]


def test_generate_access_token_refuses_a_reused_name_and_unknown_scopes(tmp_path, gitea_pki):
    server = Gitea(tmp_path / "g", pki=gitea_pki).bootstrap_admin()
    token_args = ["admin", "user", "generate-access-token", "--username", ADMIN, "--token-name", "island"]
    again = server.cli(*token_args, "--scopes", "all", check=False)
    assert again.returncode == 1 and "access token name has been used already" in again.stderr
    generate = ["admin", "user", "generate-access-token", "-u", ADMIN]
    bad = server.cli(*generate, "-t", "x", "--scopes", "write:everything", check=False)
    assert bad.returncode == 1 and "invalid access token scope" in bad.stderr
    plain = server.cli(*generate, "-t", "y", "--scopes", "read:user")
    assert plain.stdout.startswith("Access token was successfully created: ")
    raw = server.cli(*generate, "-t", "z", "--raw")
    assert len(raw.stdout.strip()) == 40


# --- REST API ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_api_answers_with_gitea_status_codes_and_error_bodies(gitea):
    t = gitea.token
    assert gitea.api("GET", "/api/v1/version") == (200, {"version": "1.26.2"})
    status, body = gitea.api("GET", "/api/healthz")
    assert status == 200 and body["status"] == "pass"
    assert gitea.api("GET", "/api/v1/user")[0] == 401
    status, body = gitea.api("GET", "/api/v1/user", auth=(ADMIN, "wrong password"))
    assert status == 401 and set(body) == {"message", "url"} and "password is invalid" in body["message"]
    assert gitea.api("GET", "/api/v1/user", token="0" * 40)[0] == 401
    status, body = gitea.api("GET", "/api/v1/user", auth=(ADMIN, gitea.password))
    assert status == 200 and body["login"] == ADMIN and body["is_admin"] is True

    assert gitea.api("GET", "/api/v1/orgs/platform", token=t)[0] == 404
    status, org = gitea.api(
        "POST", "/api/v1/orgs", {"username": "platform", "visibility": "private"}, token=t
    )
    assert status == 201 and org["name"] == "platform" and org["visibility"] == "private"
    assert gitea.api("POST", "/api/v1/orgs", {"username": "platform"}, token=t)[0] == 422
    assert gitea.api("POST", "/api/v1/orgs", {"username": "x", "visibility": "secret"}, token=t)[0] == 422
    status, org = gitea.api("PATCH", "/api/v1/orgs/platform", {"description": "the platform"}, token=t)
    assert status == 200 and org["description"] == "the platform"

    status, teams = gitea.api("GET", "/api/v1/orgs/platform/teams", token=t)
    assert status == 200 and [x["name"] for x in teams] == ["Owners"]
    body = {"name": "ops", "permission": "write", "units": ["repo.code"], "includes_all_repositories": True}
    status, team = gitea.api("POST", "/api/v1/orgs/platform/teams", body, token=t)
    assert status == 201 and team["permission"] == "write" and team["units"] == ["repo.code"]
    assert gitea.api("POST", "/api/v1/orgs/platform/teams", body, token=t)[0] == 422
    assert (
        gitea.api("POST", "/api/v1/orgs/platform/teams", {**body, "name": "x", "permission": "god"}, token=t)[
            0
        ]
        == 422
    )
    status, team = gitea.api("PATCH", f"/api/v1/teams/{team['id']}", {"permission": "read"}, token=t)
    assert status == 200 and team["permission"] == "read"

    status, repo = gitea.api(
        "POST", "/api/v1/orgs/platform/repos", {"name": "apps", "private": True}, token=t
    )
    assert status == 201 and repo["full_name"] == "platform/apps" and repo["empty"] is True
    assert gitea.api("POST", "/api/v1/orgs/platform/repos", {"name": "apps"}, token=t)[0] == 409
    assert gitea.api("GET", "/api/v1/repos/platform/apps", token=t)[0] == 200
    status, body = gitea.api("GET", "/api/v1/repos/platform/nope", token=t)
    assert status == 404 and body["message"] == "The target couldn't be found."
    status, repo = gitea.api("PATCH", "/api/v1/repos/platform/apps", {"description": "apps"}, token=t)
    assert status == 200 and repo["description"] == "apps"
    status, repo = gitea.api("POST", "/api/v1/user/repos", {"name": "mine"}, token=t)
    assert status == 201 and repo["owner"]["login"] == ADMIN
    # a private organisation's repository is invisible without credentials
    assert gitea.api("GET", "/api/v1/repos/platform/apps")[0] == 401


@pytest.mark.slow
def test_lists_are_paged_as_in_gitea(gitea):
    for n in range(4):
        gitea.api("POST", "/api/v1/orgs", {"username": f"org{n}"}, token=gitea.token)
    status, first = gitea.api("GET", "/api/v1/orgs?page=1&limit=3", token=gitea.token)
    _, second = gitea.api("GET", "/api/v1/orgs?page=2&limit=3", token=gitea.token)
    assert status == 200 and [o["name"] for o in first + second] == ["org0", "org1", "org2", "org3"]


@pytest.mark.slow
def test_a_token_without_organization_scope_is_forbidden(gitea):
    read_only = gitea.cli(
        "admin",
        "user",
        "generate-access-token",
        "-u",
        ADMIN,
        "-t",
        "ro",
        "--scopes",
        "read:organization",
        "--raw",
    ).stdout.strip()
    assert gitea.api("GET", "/api/v1/orgs", token=read_only)[0] == 200
    assert gitea.api("POST", "/api/v1/orgs", {"username": "x"}, token=read_only)[0] == 403


@pytest.mark.slow
def test_state_survives_a_restart(gitea):
    gitea.api("POST", "/api/v1/orgs", {"username": "platform"}, token=gitea.token)
    gitea.api("POST", "/api/v1/orgs/platform/repos", {"name": "apps"}, token=gitea.token)
    gitea.stop()
    gitea.start()
    assert gitea.api("GET", "/api/v1/user", auth=(ADMIN, gitea.password))[0] == 200
    assert gitea.api("GET", "/api/v1/repos/platform/apps", token=gitea.token)[0] == 200


# --- git over HTTPS ------------------------------------------------------------------------------
@pytest.mark.slow
def test_real_git_clones_and_pushes_over_https_with_auth_and_the_island_ca(gitea, tmp_path):
    t = gitea.token
    gitea.api("POST", "/api/v1/orgs", {"username": "platform"}, token=t)
    gitea.api("POST", "/api/v1/orgs/platform/repos", {"name": "apps", "private": True}, token=t)
    env = _git_env(gitea, tmp_path)
    anonymous = f"{gitea.url}/platform/apps.git"
    authed = f"https://{ADMIN}:{t}@127.0.0.1:{gitea.port}/platform/apps.git"

    refused = _git("clone", anonymous, str(tmp_path / "anon"), env=env, check=False)
    assert refused.returncode != 0
    assert "Authentication failed" in refused.stderr or "could not read Username" in refused.stderr
    _git("clone", authed, str(tmp_path / "work"), env=env)
    work = tmp_path / "work"
    (work / "README").write_text("island\n")
    _git("add", "README", cwd=work, env=env)
    _git("commit", "-qm", "first", cwd=work, env=env)
    _git("tag", "-a", "v1", "-m", "v1", cwd=work, env=env)
    _git("push", "origin", "HEAD:refs/heads/main", "v1", cwd=work, env=env)
    listed = _git("ls-remote", authed, env=env).stdout
    head = _git("rev-parse", "HEAD", cwd=work, env=env).stdout.strip()
    assert f"{head}\trefs/heads/main" in listed and "refs/tags/v1" in listed
    # an anonymous push is refused even for a public repository
    gitea.api("POST", "/api/v1/orgs/platform/repos", {"name": "public"}, token=t)
    pushed = _git(
        "push", f"{gitea.url}/platform/public.git", "HEAD:refs/heads/main", cwd=work, env=env, check=False
    )
    assert pushed.returncode != 0
    # a wrong password is refused
    wrong = f"https://{ADMIN}:wrong@127.0.0.1:{gitea.port}/platform/apps.git"
    assert _git("ls-remote", wrong, env=env, check=False).returncode != 0
    # force push is allowed, as in Gitea without branch protection
    _git("commit", "-q", "--amend", "-m", "rewritten", cwd=work, env=env)
    _git("push", "--force", "origin", "HEAD:refs/heads/main", cwd=work, env=env)
    new_head = _git("rev-parse", "HEAD", cwd=work, env=env).stdout.strip()
    assert f"{new_head}\trefs/heads/main" in _git("ls-remote", authed, env=env).stdout
    # the bare repository lives where Gitea keeps it
    assert (gitea.work / "data" / "gitea-repositories" / "platform" / "apps.git" / "HEAD").is_file()


@pytest.mark.slow
def test_a_push_larger_than_gits_post_buffer_arrives_chunked_and_intact(gitea, tmp_path):
    gitea.api("POST", "/api/v1/user/repos", {"name": "big"}, token=gitea.token)
    env = _git_env(gitea, tmp_path)
    work = tmp_path / "big"
    _git("init", "-q", "-b", "main", str(work), env=env)
    (work / "blob").write_bytes(os.urandom(3 * 1024 * 1024))  # > http.postBuffer (1 MiB): chunked
    _git("add", "blob", cwd=work, env=env)
    _git("commit", "-qm", "big", cwd=work, env=env)
    url = f"https://{ADMIN}:{gitea.token}@127.0.0.1:{gitea.port}/{ADMIN}/big.git"
    _git("push", url, "main", cwd=work, env=env)
    _git("clone", "-q", url, str(tmp_path / "copy"), env=env)
    assert (tmp_path / "copy" / "blob").read_bytes() == (work / "blob").read_bytes()


@pytest.mark.slow
def test_git_refuses_a_server_certificate_without_the_island_ca(gitea, tmp_path):
    gitea.api("POST", "/api/v1/user/repos", {"name": "r"}, token=gitea.token)
    env = _git_env(gitea, tmp_path)
    env.pop("GIT_SSL_CAINFO")
    proc = _git("ls-remote", f"{gitea.url}/{ADMIN}/r.git", env=env, check=False)
    assert proc.returncode != 0 and "certificate" in proc.stderr.lower()


# --- PostgreSQL ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("database", "expected"),
    [
        ({"DB_TYPE": "mysql"}, "implements sqlite3 and postgres only"),
        ({"DB_TYPE": "postgres", "SSL_MODE": "prefer"}, 'pq: unsupported sslmode "prefer"'),
        ({"DB_TYPE": "postgres", "SCHEMA": "gitea"}, "SCHEMA"),
        ({"DB_TYPE": "postgres", "NAME": "gitea?sslpassword=x"}, "'sslpassword' is not implemented"),
        ({"DB_TYPE": "postgres", "HOST": "db:port"}, "the port is not a number"),
    ],
    ids=["mysql", "sslmode-libpq-only", "schema", "name-param", "host-port"],
)
def test_web_refuses_database_settings_gitea_or_lib_pq_refuse(tmp_path, gitea_pki, database, expected):
    server = Gitea(tmp_path / "g", pki=gitea_pki, overrides={"database": database})
    proc = _web(server)
    assert proc.returncode == 1
    assert expected in proc.stderr


@pytest.mark.slow
def test_on_postgresql_the_state_lives_in_the_database_over_verified_tls(tmp_path, gitea_pki, postgres):
    database = postgres.new_database()
    server = Gitea(
        tmp_path / "g", pki=gitea_pki, overrides={"database": postgres.database_settings(database)}
    )
    server.bootstrap_admin().start()
    try:
        assert server.api("POST", "/api/v1/orgs", {"username": "platform"}, token=server.token)[0] == 201
        assert "ORM engine initialization successful!" in server.log.read_text()
    finally:
        server.stop()
    # Gitea's tables, in PostgreSQL, over a hostssl-only scram-sha-256 rule; no SQLite file.
    rows = postgres.psql('SELECT name, type FROM "user" ORDER BY id;', database=database).split()
    assert rows == [f"{ADMIN}|0", "platform|1"]
    assert not (server.work / "data" / "gitea.db").exists()
    # The state survives a restart: the token made before still works.
    server.start()
    try:
        status, me = server.api("GET", "/api/v1/user", token=server.token)
        assert status == 200 and me["login"] == ADMIN
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"PASSWD": "wrong"}, 'pq: password authentication failed for user "gitea"'),
        ({"HOST": f"127.0.0.1:{1}"}, "dial tcp 127.0.0.1:1: connect: connection refused"),
        ({"SSL_MODE": "disable"}, "no encryption"),
        ({"HOST": "localhost:{port}"}, 'does not match host name "localhost"'),
        # Without sslrootcert lib/pq trusts the system roots only, which lack the test CA.
        ({"NAME": "{database}"}, "certificate verify failed"),
    ],
    ids=["wrong-password", "unreachable", "server-wants-tls", "tls-name-mismatch", "system-roots-only"],
)
def test_web_refuses_to_start_when_the_database_refuses_it(tmp_path, gitea_pki, postgres, changes, expected):
    database = postgres.new_database()
    changes = {k: v.format(port=postgres.port, database=database) for k, v in changes.items()}
    server = Gitea(
        tmp_path / "g", pki=gitea_pki, overrides={"database": postgres.database_settings(database, **changes)}
    )
    proc = _web(server)
    assert proc.returncode == 1
    assert "ORM engine initialization attempt #1/2 failed. Error: " in proc.stderr
    assert "InitDBEngine(ctx) failed: " in proc.stderr
    assert expected in proc.stderr.splitlines()[-1]
    cli = server.cli("admin", "user", "list", check=False)
    assert cli.returncode == 1
    assert "unable to initialize the database using the configuration in" in cli.stderr
    assert expected in cli.stderr


# --- PATCH /api/v1/admin/users/{username} --------------------------------------------------------
@pytest.mark.slow
def test_admin_edit_user_sets_a_password_with_upstreams_status_codes(gitea):
    t, path = gitea.token, f"/api/v1/admin/users/{ADMIN}"
    new = "a-password-from-the-vault"
    body = {"source_id": 0, "login_name": ADMIN, "password": new, "must_change_password": False}
    assert gitea.api("PATCH", path, body)[0] == 401
    assert gitea.api("PATCH", "/api/v1/admin/users/nobody", body, token=t)[0] == 404
    status, err = gitea.api("PATCH", path, {**body, "login_name": ""}, token=t)
    assert status == 422 and "LoginName" in err["message"]
    assert gitea.api("PATCH", path, {**body, "password": "x" * 256}, token=t)[0] == 422
    assert gitea.api("PATCH", path, {**body, "source_id": "0"}, token=t)[0] == 422
    status, err = gitea.api("PATCH", path, {**body, "password": "short"}, token=t)
    assert status == 400 and err["message"] == "password must be at least 8 characters"
    # Nothing above changed the password.
    assert gitea.api("GET", "/api/v1/user", auth=(ADMIN, gitea.password))[0] == 200

    status, user = gitea.api("PATCH", path, body, token=t)
    assert status == 200 and user["login"] == ADMIN and user["login_name"] == ADMIN
    assert gitea.api("GET", "/api/v1/user", auth=(ADMIN, new))[0] == 200
    assert gitea.api("GET", "/api/v1/user", auth=(ADMIN, gitea.password))[0] == 401

    # must_change_password is applied: basic auth is then refused until the password changes.
    assert gitea.api("PATCH", path, {**body, "password": "", "must_change_password": True}, token=t)[0] == 200
    assert gitea.api("GET", "/api/v1/user", auth=(ADMIN, new))[0] == 403


@pytest.mark.slow
def test_admin_edit_user_needs_a_site_admin_and_the_admin_scope(gitea):
    gitea.cli("admin", "user", "create", "--username", "bob", "--email", "bob@island.test",
              "--random-password", "--must-change-password=false")  # fmt: skip
    bob = gitea.cli(
        "admin", "user", "generate-access-token", "--username", "bob", "--scopes", "all", "--raw"
    ).stdout.strip()
    body = {"source_id": 0, "login_name": ADMIN, "password": "a-long-enough-password"}
    status, err = gitea.api("PATCH", f"/api/v1/admin/users/{ADMIN}", body, token=bob)
    assert status == 403 and err["message"] == "user should be the site admin"
    narrow = gitea.cli(
        "admin", "user", "generate-access-token", "--username", ADMIN, "--token-name", "narrow",
        "--scopes", "read:admin", "--raw",
    ).stdout.strip()  # fmt: skip
    assert gitea.api("PATCH", f"/api/v1/admin/users/{ADMIN}", body, token=narrow)[0] == 403


def test_min_password_length_comes_from_app_ini(tmp_path, gitea_pki):
    server = Gitea(tmp_path / "g", pki=gitea_pki, overrides={"security": {"MIN_PASSWORD_LENGTH": "20"}})
    server.bootstrap_admin().start()
    try:
        body = {"source_id": 0, "login_name": ADMIN, "password": "only-sixteen-chr"}
        status, err = server.api("PATCH", f"/api/v1/admin/users/{ADMIN}", body, token=server.token)
        assert status == 400 and err["message"] == "password must be at least 20 characters"
    finally:
        server.stop()


# --- [oauth2] JWT_SECRET (modules/setting/oauth2.go loadOAuth2From, 1.26 line) -------------------
def _read_only_web(server):
    """`gitea web` with app.ini read-only to the double, as the gitea role installs it (root:gitea
    0640): a bind mount read-only when running as root (root writes through any mode), else 0440."""
    command = [SYSTEM_PYTHON, str(double_path("gitea")), "web", "--config", str(server.config),
               "--work-path", str(server.work)]  # fmt: skip
    if os.geteuid() != 0:
        server.config.chmod(0o440)
        return subprocess.run(
            command, check=False, env=double_env(), capture_output=True, text=True, timeout=30
        )
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"root cannot make app.ini read-only here (unshare --mount: {probe.stderr!r})")
    wrapped = ["unshare", "--mount", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"',
               str(server.config), *command]  # fmt: skip
    return subprocess.run(wrapped, check=False, env=double_env(), capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(
    "oauth2",
    [
        pytest.param({}, id="rs256-default-no-secret"),
        pytest.param({"JWT_SIGNING_ALGORITHM": "RS256"}, id="rs256-no-secret"),
        pytest.param({"JWT_SIGNING_ALGORITHM": "HS256"}, id="hs256-no-secret"),
        pytest.param(
            {"JWT_SECRET": "0123456789abcdef0123456789abcdef0123456789abcdef"}, id="hex-not-base64url-32"
        ),
        pytest.param({"JWT_SECRET": base64.urlsafe_b64encode(bytes(32)).decode()}, id="padded-base64url"),
    ],
)
def test_without_a_valid_jwt_secret_gitea_exits_when_app_ini_is_read_only(tmp_path, gitea_pki, oauth2):
    server = Gitea(
        tmp_path / "g", pki=gitea_pki, overrides={"oauth2": oauth2}, drop=[("oauth2", "JWT_SECRET_URI")]
    )
    before = server.config.read_bytes()
    proc = _read_only_web(server)
    assert proc.returncode == 1, proc.stderr
    assert (
        f'save oauth2.JWT_SECRET failed: failed to save "{server.config}": open {server.config}: '
        in proc.stderr
    )
    assert "permission denied" in proc.stderr or "read-only file system" in proc.stderr
    assert server.config.read_bytes() == before


def test_without_a_jwt_secret_gitea_writes_one_into_a_writable_app_ini(tmp_path, gitea_pki):
    server = Gitea(tmp_path / "g", pki=gitea_pki, drop=[("oauth2", "JWT_SECRET_URI")])
    server.config.chmod(0o644)
    proc = server.cli("admin", "user", "list", "--admin")
    assert proc.returncode == 0, proc.stderr
    text = server.config.read_text()
    oauth2 = text.split("[oauth2]", 1)[1].split("[", 1)[0]
    secret = next(
        line.split("=", 1)[1].strip() for line in oauth2.splitlines() if line.startswith("JWT_SECRET =")
    )
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32
    assert server.config.stat().st_mode & 0o777 == 0o600
    # The next start reads it and writes nothing.
    after = server.config.read_bytes()
    assert server.cli("admin", "user", "list", "--admin").returncode == 0
    assert server.config.read_bytes() == after


def test_with_oauth2_disabled_no_jwt_secret_is_needed(tmp_path, gitea_pki):
    server = Gitea(tmp_path / "g", pki=gitea_pki, overrides={"oauth2": {"ENABLED": "false"}},
                   drop=[("oauth2", "JWT_SECRET_URI")])  # fmt: skip
    before = server.config.read_bytes()
    proc = server.cli("admin", "user", "list", "--admin", check=False)
    assert proc.returncode == 0, proc.stderr
    assert server.config.read_bytes() == before


def test_the_role_s_generated_jwt_secret_file_is_accepted_on_a_read_only_app_ini(tmp_path, gitea_pki):
    """The gitea role writes `gitea generate secret JWT_SECRET` into a file and names it by
    JWT_SECRET_URI in a read-only app.ini: Gitea starts and writes nothing."""
    server = Gitea(tmp_path / "g", pki=gitea_pki)
    made = run_double("gitea", ["generate", "secret", "JWT_SECRET"])
    assert made.returncode == 0, made.stderr
    server.secrets["jwt_secret"].write_text(made.stdout)
    before = server.config.read_bytes()
    server.config.chmod(0o440)
    proc = server.cli("admin", "user", "list", "--admin", check=False)
    assert proc.returncode == 0, proc.stderr
    assert server.config.read_bytes() == before


# --- [metrics] (modules/setting/metrics.go, routers/web/metrics.go, modules/metrics/collector.go) --
def _scrape(server, authorization=None):
    """(status, content type, body) of GET /metrics over the double's TLS, verified."""
    import ssl
    import urllib.error
    import urllib.request

    headers = {"Authorization": authorization} if authorization else {}
    req = urllib.request.Request(server.url + "/metrics", headers=headers)  # noqa: S310 - https URL built here
    ctx = ssl.create_default_context(cafile=str(server.pki["ca"]))
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:  # noqa: S310 - https only
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def _gauges(body):
    return {
        line.split("{")[0].split()[0]: line.rsplit(" ", 1)[1]
        for line in body.splitlines()
        if line and not line.startswith("#")
    }


def test_metrics_are_not_routed_unless_enabled(gitea):
    assert _scrape(gitea)[0] == 404


def test_metrics_need_exactly_the_bearer_token_and_count_what_gitea_counts(tmp_path, gitea_pki):
    token = "m3tricsT0ken"
    overrides = {
        "metrics": {"ENABLED": "true", "TOKEN": token},
        # /metrics is routed ahead of the sign-in middlewares: REQUIRE_SIGNIN_VIEW does not apply
        "service": {"REQUIRE_SIGNIN_VIEW": "true"},
    }
    server = Gitea(tmp_path / "g", pki=gitea_pki, overrides=overrides).bootstrap_admin().start()
    try:
        t = server.token
        assert server.api("POST", "/api/v1/orgs", {"username": "platform"}, token=t)[0] == 201
        assert server.api("POST", "/api/v1/orgs/platform/repos", {"name": "apps"}, token=t)[0] == 201
        team = {"name": "ops", "permission": "write", "units": ["repo.code"]}
        assert server.api("POST", "/api/v1/orgs/platform/teams", team, token=t)[0] == 201
        for wrong in (
            None,
            f"Bearer {token}x",
            f"bearer {token}",
            f"token {token}",
            f"Bearer  {token}",
            token,
        ):
            status, ctype, body = _scrape(server, wrong)
            assert (status, ctype, body) == (401, "text/plain; charset=utf-8", "\n"), wrong
        # an API token of the administrator is no metrics token either
        assert _scrape(server, f"Bearer {t}")[0] == 401

        status, ctype, body = _scrape(server, f"Bearer {token}")
        assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
        assert (
            "# TYPE gitea_users gauge" in body and "# HELP gitea_repositories Number of Repositories" in body
        )
        assert 'gitea_build_info{goarch="' in body and 'version="1.26.2"} 1' in body
        # one individual user (the organisation is not one), the Owners team and ops
        assert _gauges(body) == {
            "gitea_build_info": "1",
            "gitea_organizations": "1",
            "gitea_repositories": "1",
            "gitea_teams": "2",
            "gitea_users": "1",
        }
    finally:
        server.stop()


def test_metrics_without_a_token_are_open_to_anyone(tmp_path, gitea_pki):
    server = Gitea(tmp_path / "g", pki=gitea_pki, overrides={"metrics": {"ENABLED": "true"}}).start()
    try:
        status, _, body = _scrape(server)
        assert status == 200 and "gitea_users 0" in body
    finally:
        server.stop()
