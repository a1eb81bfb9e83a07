"""island_gitea and island_gitea_seed against the Gitea double, with real git bundles and the real
git client: convergence, check mode, diff, forward-only seeding, and clear failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_gitea import (
    BundleError,
    GiteaAPIError,
    GiteaAuthError,
    GiteaClient,
    GiteaTLSError,
    HistoryRewriteError,
    converge,
    ensure_password,
    seed_repository,
)

from tests.support.doubles.gitea import (
    ADMIN,
    GIT_ENV,
    PYTHON,
    git,
    needs_gitea_double,
    running_gitea,
)
from tests.support.playbook import ansible_doc, run_json_play

pytestmark = [
    pytest.mark.slow,
    needs_gitea_double(),
]


@pytest.fixture
def gitea(tmp_path, gitea_pki):
    server = running_gitea(tmp_path / "gitea", gitea_pki, organization="platform")
    yield server
    server.stop()


def connection(gitea, **auth):
    """The Gitea modules' connection options for the double, as the admin; ``auth``: password or token."""
    return {"url": gitea.url, "ca_file": str(gitea.pki["ca"]), "username": ADMIN, **auth}


def client_for(gitea, **kw):
    args = {"ca_file": str(gitea.pki["ca"]), "username": ADMIN, "token": gitea.token}
    args.update(kw)
    return GiteaClient(kw.pop("url", gitea.url), **{k: v for k, v in args.items() if k != "url"})


class Source:
    """A working repository the tests commit to and bundle from."""

    def __init__(self, path):
        self.path = Path(path)
        git("init", "-q", "-b", "main", str(self.path))

    def commit(self, message, branch=None):
        if branch:
            git("checkout", "-q", "-B", branch, cwd=self.path)
        (self.path / "file").write_text(message + "\n")
        git("add", "file", cwd=self.path)
        git("commit", "-qm", message, cwd=self.path)
        return git("rev-parse", "HEAD", cwd=self.path)

    def tag(self, name, annotated=True, ref="HEAD"):
        if annotated:
            git("tag", "-f", "-a", name, "-m", name, ref, cwd=self.path)
        else:
            git("tag", "-f", name, ref, cwd=self.path)
        return git("rev-parse", f"refs/tags/{name}", cwd=self.path)

    def bundle(self, path, *revs):
        git("bundle", "create", "-q", str(path), *(revs or ("--all",)), cwd=self.path)
        return str(path)

    def refs(self):
        out = git(
            "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads", "refs/tags", cwd=self.path
        )
        return {ref: sha for sha, ref in (line.split() for line in out.splitlines())}


def remote_refs(gitea, owner, name):
    env = dict(GIT_ENV, GIT_SSL_CAINFO=str(gitea.pki["ca"]))
    url = f"https://{ADMIN}:{gitea.token}@127.0.0.1:{gitea.port}/{owner}/{name}.git"
    out = subprocess.run(
        ["git", "ls-remote", url], env=env, capture_output=True, text=True, check=True
    ).stdout
    pairs = (line.split("\t") for line in out.splitlines())
    return {
        ref: sha for sha, ref in pairs if ref.startswith(("refs/heads/", "refs/tags/")) and "^{}" not in ref
    }


def _actions(result):
    return {r["ref"]: r["action"] for r in result.refs}


# --- island_gitea: organisations, teams, repositories ---------------------------------------------
DESIRED_ORGS = [
    {
        "name": "apps",
        "full_name": "Island applications",
        "visibility": "private",
        "teams": [
            {
                "name": "operators",
                "permission": "write",
                "includes_all_repositories": True,
                "units": ["repo.code", "repo.pulls"],
            },
            {"name": "auditors", "permission": "read", "description": "read only"},
        ],
    }
]
DESIRED_REPOS = [{"owner": "apps", "name": "cluster-config", "private": True, "description": "GitOps"}]


def test_converge_creates_orgs_teams_repos_and_a_rerun_changes_nothing(gitea):
    client = client_for(gitea)
    first = converge(client, DESIRED_ORGS, DESIRED_REPOS)
    assert first.changed
    assert [(i["kind"], i["name"], i["action"]) for i in first.items] == [
        ("organization", "apps", "create"),
        ("team", "apps/operators", "create"),
        ("team", "apps/auditors", "create"),
        ("repository", "apps/cluster-config", "create"),
    ]
    status, repo = gitea.api("GET", "/api/v1/repos/apps/cluster-config", token=gitea.token)
    assert status == 200 and repo["private"] is True and repo["description"] == "GitOps"
    teams = {t["name"]: t for t in gitea.api("GET", "/api/v1/orgs/apps/teams", token=gitea.token)[1]}
    assert teams["operators"]["permission"] == "write" and teams["operators"]["units"] == [
        "repo.code",
        "repo.pulls",
    ]
    second = converge(client, DESIRED_ORGS, DESIRED_REPOS)
    assert not second.changed
    assert {i["action"] for i in second.items} == {"unchanged"}


def test_converge_check_mode_writes_nothing_and_diff_shows_the_changed_fields(gitea):
    client = client_for(gitea)
    converge(client, DESIRED_ORGS, DESIRED_REPOS)
    orgs = json.loads(json.dumps(DESIRED_ORGS))
    orgs[0]["teams"][0]["permission"] = "admin"
    orgs[0]["full_name"] = "Apps"
    preview = converge(client, orgs, DESIRED_REPOS, check_mode=True)
    assert preview.changed
    assert preview.before["team apps/operators"]["permission"] == "write"
    assert preview.after["team apps/operators"]["permission"] == "admin"
    assert preview.after["organization apps"]["full_name"] == "Apps"
    assert "permission: 'write' -> 'admin'" in preview.summary()
    teams = {t["name"]: t for t in gitea.api("GET", "/api/v1/orgs/apps/teams", token=gitea.token)[1]}
    assert teams["operators"]["permission"] == "write"  # nothing written
    applied = converge(client, orgs, DESIRED_REPOS)
    assert [i["action"] for i in applied.items if i["action"] != "unchanged"] == ["update", "update"]
    teams = {t["name"]: t for t in gitea.api("GET", "/api/v1/orgs/apps/teams", token=gitea.token)[1]}
    assert teams["operators"]["permission"] == "admin"
    assert not converge(client, orgs, DESIRED_REPOS).changed


def test_converge_finds_teams_beyond_the_first_page(gitea):
    teams = [{"name": f"team{n:02d}", "permission": "read"} for n in range(55)]
    assert converge(client_for(gitea), [{"name": "big", "teams": teams}]).changed
    again = converge(client_for(gitea), [{"name": "big", "teams": teams}])
    assert not again.changed and len(again.items) == 56


def test_check_mode_on_an_empty_gitea_writes_nothing(gitea):
    preview = converge(client_for(gitea), DESIRED_ORGS, DESIRED_REPOS, check_mode=True)
    assert preview.changed and preview.before["organization apps"] is None
    assert gitea.api("GET", "/api/v1/orgs/apps", token=gitea.token)[0] == 404


def test_wrong_admin_password_fails_naming_the_user(gitea):
    client = client_for(gitea, token=None, password="not the password")
    with pytest.raises(GiteaAuthError, match=rf"refused the credentials of user {ADMIN}.*admin password"):
        converge(client, DESIRED_ORGS)


def test_tls_name_mismatch_fails_naming_the_host(gitea):
    client = client_for(gitea, url=f"https://localhost:{gitea.port}")
    with pytest.raises(GiteaTLSError, match=r"localhost.*Hostname mismatch|Hostname mismatch.*localhost"):
        converge(client, DESIRED_ORGS)


# --- island_gitea_password -----------------------------------------------------------------------
SUPPLIED = "the-operators-vault-password"


def test_a_supplied_password_is_set_through_the_api_and_a_rerun_changes_nothing(gitea):
    ca = str(gitea.pki["ca"])
    assert ensure_password(gitea.url, ca, gitea.token, ADMIN, SUPPLIED, check_mode=True)[0] is True
    # Check mode wrote nothing: the generated password still works, the supplied one does not.
    assert gitea.api("GET", "/api/v1/user", auth=(ADMIN, gitea.password))[0] == 200
    assert gitea.api("GET", "/api/v1/user", auth=(ADMIN, SUPPLIED))[0] == 401
    changed, msg = ensure_password(gitea.url, ca, gitea.token, ADMIN, SUPPLIED)
    assert changed and "was set" in msg
    assert gitea.api("GET", "/api/v1/user", auth=(ADMIN, SUPPLIED))[0] == 200
    assert ensure_password(gitea.url, ca, gitea.token, ADMIN, SUPPLIED) == (
        False,
        f"the supplied password of {ADMIN} works",
    )
    assert ensure_password(gitea.url, ca, gitea.token, ADMIN, SUPPLIED, check_mode=True)[0] is False


def test_a_changed_supplied_password_is_set_again(gitea):
    ca = str(gitea.pki["ca"])
    ensure_password(gitea.url, ca, gitea.token, ADMIN, SUPPLIED)
    assert ensure_password(gitea.url, ca, gitea.token, ADMIN, SUPPLIED + "-rotated")[0] is True
    assert gitea.api("GET", "/api/v1/user", auth=(ADMIN, SUPPLIED))[0] == 401


def test_a_password_gitea_refuses_fails_with_gitea_s_reason(gitea):
    with pytest.raises(
        GiteaAPIError, match=r"refused the supplied password of .*400: password must be at least 8"
    ):
        ensure_password(gitea.url, str(gitea.pki["ca"]), gitea.token, ADMIN, "short")


def test_a_wrong_token_fails_naming_the_credentials(gitea):
    with pytest.raises(GiteaAuthError, match=r"refused the credentials of the given token"):
        ensure_password(gitea.url, str(gitea.pki["ca"]), "0" * 40, ADMIN, SUPPLIED)


def test_the_password_module_keeps_the_password_out_of_its_output(gitea, tmp_path):
    task = {
        "island_gitea_password": {
            "url": gitea.url,
            "ca_file": str(gitea.pki["ca"]),
            "token": gitea.token,
            "username": ADMIN,
            "password": SUPPLIED,
        }
    }
    proc, (res,) = _play(tmp_path, [task])
    assert proc.returncode == 0 and res["changed"] is True
    assert SUPPLIED not in proc.stdout and gitea.token not in proc.stdout


# --- island_gitea_seed ---------------------------------------------------------------------------
def test_seeding_a_new_repository_pushes_every_branch_and_tag_then_reseeding_changes_nothing(gitea, tmp_path):
    src = Source(tmp_path / "src")
    src.commit("one")
    src.tag("v1")
    src.tag("light", annotated=False)
    src.commit("feature", branch="feature")
    git("checkout", "-q", "main", cwd=src.path)
    bundle = src.bundle(tmp_path / "b1.bundle")
    result = seed_repository(client_for(gitea), bundle, "platform", "config")
    assert result.created and result.changed
    assert set(_actions(result).values()) == {"create"}
    assert remote_refs(gitea, "platform", "config") == src.refs()
    _, repo = gitea.api("GET", "/api/v1/repos/platform/config", token=gitea.token)
    assert repo["private"] is True and repo["default_branch"] == "main"
    again = seed_repository(client_for(gitea), bundle, "platform", "config")
    assert not again.changed and set(_actions(again).values()) == {"unchanged"}


def test_a_second_bundle_with_new_commits_fast_forwards(gitea, tmp_path):
    src = Source(tmp_path / "src")
    base = src.commit("one")
    seed_repository(client_for(gitea), src.bundle(tmp_path / "b1.bundle"), "platform", "config")
    new = src.commit("two")
    src.tag("v2")
    result = seed_repository(client_for(gitea), src.bundle(tmp_path / "b2.bundle"), "platform", "config")
    assert _actions(result) == {"refs/heads/main": "fast-forward", "refs/tags/v2": "create"}
    main = next(r for r in result.refs if r["ref"] == "refs/heads/main")
    assert (main["old"], main["new"]) == (base, new)
    assert remote_refs(gitea, "platform", "config") == src.refs()
    # an incremental bundle (prerequisite: the commit Gitea already has) fast-forwards too
    newer = src.commit("three")
    incremental = src.bundle(tmp_path / "b3.bundle", f"{new}..main")
    result = seed_repository(client_for(gitea), incremental, "platform", "config")
    assert _actions(result) == {"refs/heads/main": "fast-forward"}
    assert remote_refs(gitea, "platform", "config")["refs/heads/main"] == newer


def test_a_bundle_that_rewrites_history_is_refused_and_the_repository_is_unchanged(gitea, tmp_path):
    src = Source(tmp_path / "src")
    src.commit("one")
    src.commit("two")
    src.tag("v1")
    seed_repository(client_for(gitea), src.bundle(tmp_path / "b1.bundle"), "platform", "config")
    before = remote_refs(gitea, "platform", "config")
    git("reset", "-q", "--hard", "HEAD~1", cwd=src.path)
    src.commit("two, rewritten")
    src.tag("v1")  # the tag moves with it
    src.commit("unrelated new branch", branch="extra")
    rewritten = src.bundle(tmp_path / "b2.bundle")
    with pytest.raises(HistoryRewriteError) as exc:
        seed_repository(client_for(gitea), rewritten, "platform", "config")
    message = str(exc.value)
    assert "platform/config" in message and "allow_force" in message
    assert f"refs/heads/main {before['refs/heads/main']} -> {src.refs()['refs/heads/main']}" in message
    assert f"refs/tags/v1 {before['refs/tags/v1']}" in message
    assert remote_refs(gitea, "platform", "config") == before  # not even the new branch was pushed

    forced = seed_repository(client_for(gitea), rewritten, "platform", "config", allow_force=True)
    assert _actions(forced) == {
        "refs/heads/extra": "create",
        "refs/heads/main": "forced",
        "refs/tags/v1": "forced",
    }
    assert remote_refs(gitea, "platform", "config") == src.refs()


def test_check_mode_lists_old_and_new_commits_and_writes_nothing(gitea, tmp_path):
    src = Source(tmp_path / "src")
    old = src.commit("one")
    preview = seed_repository(
        client_for(gitea), src.bundle(tmp_path / "b0.bundle"), "platform", "new", check_mode=True
    )
    assert preview.created and _actions(preview) == {"refs/heads/main": "create"}
    assert gitea.api("GET", "/api/v1/repos/platform/new", token=gitea.token)[0] == 404
    seed_repository(client_for(gitea), src.bundle(tmp_path / "b1.bundle"), "platform", "config")
    new = src.commit("two")
    bundle = src.bundle(tmp_path / "b2.bundle")
    preview = seed_repository(client_for(gitea), bundle, "platform", "config", check_mode=True)
    assert preview.refs == [{"ref": "refs/heads/main", "old": old, "new": new, "action": "fast-forward"}]
    assert preview.diff() == {"before": {"refs/heads/main": old}, "after": {"refs/heads/main": new}}
    assert "would update" in preview.summary()
    assert remote_refs(gitea, "platform", "config")["refs/heads/main"] == old


def test_a_corrupt_bundle_fails_with_gits_message_naming_the_file(gitea, tmp_path):
    src = Source(tmp_path / "src")
    src.commit("one")
    good = Path(src.bundle(tmp_path / "good.bundle")).read_bytes()
    corrupt = tmp_path / "corrupt.bundle"
    corrupt.write_bytes(good[: len(good) // 2 + 20])  # header intact, pack truncated
    with pytest.raises(BundleError, match=rf"bundle {corrupt} is corrupt: git fetch from it failed: .+"):
        seed_repository(client_for(gitea), str(corrupt), "platform", "config")
    # an incremental bundle whose prerequisite commit Gitea lacks fails `git bundle verify`
    first = git("rev-parse", "HEAD", cwd=src.path)
    src.commit("two")
    incremental = src.bundle(tmp_path / "incremental.bundle", f"{first}..main")
    with pytest.raises(BundleError, match=rf"git bundle verify {incremental} failed: .*prerequisite"):
        seed_repository(client_for(gitea), incremental, "platform", "config")
    garbage = tmp_path / "garbage.bundle"
    garbage.write_text("not a bundle\n")
    with pytest.raises(BundleError, match=rf"git bundle verify {garbage} failed: .*does not look like"):
        seed_repository(client_for(gitea), str(garbage), "platform", "config")
    assert gitea.api("GET", "/api/v1/repos/platform/config", token=gitea.token)[0] == 404


def test_seeding_with_a_wrong_password_or_a_mismatched_name_fails_clearly(gitea, tmp_path):
    src = Source(tmp_path / "src")
    src.commit("one")
    bundle = src.bundle(tmp_path / "b.bundle")
    with pytest.raises(GiteaAuthError):
        seed_repository(client_for(gitea, token=None, password="wrong"), bundle, "platform", "config")
    with pytest.raises(GiteaTLSError):
        seed_repository(
            client_for(gitea, url=f"https://localhost:{gitea.port}"), bundle, "platform", "config"
        )


def test_seeding_with_basic_auth_keeps_the_password_off_every_command_line(gitea, tmp_path, monkeypatch):
    """The password reaches git through GIT_ASKPASS and the environment, never through argv."""
    seen = []
    real_run = subprocess.run

    def spy(cmd, *args, **kwargs):
        seen.append(list(cmd))
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    src = Source(tmp_path / "src")
    src.commit("one")
    bundle = src.bundle(tmp_path / "b.bundle")
    client = client_for(gitea, token=None, password=gitea.password)
    result = seed_repository(client, bundle, "platform", "config")
    assert result.changed
    git_calls = [c for c in seen if c[0] == "git"]
    assert any("push" in c for c in git_calls)
    assert not [c for c in git_calls if any(gitea.password in part for part in c)]


# --- through ansible-playbook --------------------------------------------------------------------
def _play(tmp_path, tasks, *flags, interpreter=sys.executable):
    (tmp_path / "play.yml").write_text(
        json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}], indent=1)
    )
    return run_json_play(tmp_path / "play.yml", *flags, interpreter=interpreter)


def test_playbook_check_diff_then_apply_then_rerun_reports_no_change(gitea, tmp_path):
    src = Source(tmp_path / "src")
    src.commit("one")
    src.tag("v1")
    bundle = src.bundle(tmp_path / "b.bundle")
    conn = connection(gitea, password=gitea.password)
    tasks = [
        {
            "name": "Gitea holds the island organisations and repositories",
            "island_gitea": {**conn, "organizations": DESIRED_ORGS, "repositories": DESIRED_REPOS},
        },
        {
            "name": "Gitea holds the bundle's repository",
            "island_gitea_seed": {**conn, "bundle": bundle, "owner": "apps", "repository": "seeded"},
        },
    ]
    proc, (orgs, seeded) = _play(tmp_path, tasks, "--check", "--diff")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert orgs["changed"] and seeded["changed"] and seeded["created"]
    assert orgs["diff"]["after"]["organization apps"]["visibility"] == "private"
    assert seeded["diff"]["after"]["refs/heads/main"] == src.refs()["refs/heads/main"]
    assert gitea.api("GET", "/api/v1/orgs/apps", token=gitea.token)[0] == 404

    # in check mode the org does not exist yet, so the seed task must not depend on it: apply now
    proc, (orgs, seeded) = _play(tmp_path, tasks)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert orgs["changed"] and seeded["changed"]
    assert remote_refs(gitea, "apps", "seeded") == src.refs()
    assert gitea.password not in proc.stdout

    proc, (orgs, seeded) = _play(tmp_path, tasks)
    assert proc.returncode == 0
    assert not orgs["changed"] and not seeded["changed"]


def test_playbook_reports_a_wrong_password_as_a_clear_failure(gitea, tmp_path):
    task = {
        "name": "Gitea holds the island organisations",
        "island_gitea": {
            **connection(gitea, password="not the password"),
            "organizations": [{"name": "apps"}],
        },
    }
    proc, (res,) = _play(tmp_path, [task])
    assert proc.returncode != 0
    assert res["failed"] and res["error"] == "GiteaAuthError"
    assert f"refused the credentials of user {ADMIN}" in res["msg"]


@pytest.mark.parametrize("module", ["island_gitea", "island_gitea_seed", "island_gitea_password"])
def test_module_documentation_renders_with_ansible_doc(module):
    proc = ansible_doc("--json", module)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)[module]
    assert doc["doc"]["options"]["password"] and doc["examples"] and doc["return"]["msg"]


def _interpreters():
    """The Gitea host's Debian 12 system python3, and the oldest Python module_utils support (3.9)
    when one is installed ($ISLAND_OLDEST_PYTHON or python3.9 on PATH)."""
    import shutil

    found = [PYTHON]
    oldest = os.environ.get("ISLAND_OLDEST_PYTHON") or shutil.which("python3.9")
    if oldest:
        probe = subprocess.run(
            [oldest, "-c", "import sys; print(sys.version_info[:2] == (3, 9))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            found.append(oldest)
    return found


@pytest.mark.parametrize("interpreter", _interpreters())
def test_seed_module_runs_on_the_standard_library_of_the_host_python(gitea, tmp_path, interpreter):
    src = Source(tmp_path / "src")
    src.commit("one")
    task = {
        "name": "Gitea holds the bundle's repository",
        "island_gitea_seed": {
            **connection(gitea, token=gitea.token),
            "bundle": src.bundle(tmp_path / "b.bundle"),
            "owner": "platform",
            "repository": "config",
        },
    }
    proc, (res,) = _play(tmp_path, [task], interpreter=interpreter)
    assert proc.returncode == 0, (res.get("msg"), res.get("module_stderr"), res.get("module_stdout"))
    assert res["changed"] and res["refs"][0]["action"] == "create"
    assert remote_refs(gitea, "platform", "config") == src.refs()
