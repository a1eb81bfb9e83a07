"""`gitea dump`, `gitea admin regenerate hooks` and `gitea hook` of the Gitea double, as Gitea 1.26
has them: the archive's layout and types, what the dump refuses, a database dump sqlite3 loads
back, and the Backup and Restore page's procedure giving back the same refs."""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import stat
import subprocess
import tarfile
import zipfile

import pytest

from tests.support.doubles import SYSTEM_PYTHON, double_path, run_double
from tests.support.doubles.gitea import ADMIN, Gitea, double_env, needs_gitea_double
from tests.support.doubles.gitea import git_env as _git_env
from tests.support.doubles.gitea import git_run as _git

pytestmark = needs_gitea_double()


def _pushed(gitea, tmp_path, repo="apps"):
    """platform/<repo> with one commit on main and a tag v1, pushed over HTTPS; the work tree."""
    gitea.api("POST", "/api/v1/orgs", {"username": "platform"}, token=gitea.token)
    gitea.api("POST", "/api/v1/orgs/platform/repos", {"name": repo}, token=gitea.token)
    env = _git_env(gitea, tmp_path)
    work = tmp_path / f"work-{repo}"
    _git("clone", _remote(gitea, repo), str(work), env=env)
    (work / "README").write_text("island\n")
    _git("add", "README", cwd=work, env=env)
    _git("commit", "-qm", "first", cwd=work, env=env)
    _git("tag", "-a", "v1", "-m", "v1", cwd=work, env=env)
    _git("push", "origin", "HEAD:refs/heads/main", "v1", cwd=work, env=env)
    return work


def _remote(gitea, repo="apps"):
    return f"https://{ADMIN}:{gitea.token}@127.0.0.1:{gitea.port}/platform/{repo}.git"


def _refs(gitea, tmp_path, repo="apps"):
    return _git("ls-remote", _remote(gitea, repo), env=_git_env(gitea, tmp_path)).stdout


def _dump(gitea, *args):
    return run_double(
        "gitea",
        ["dump", *args, "--config", str(gitea.config), "--work-path", str(gitea.work)],
        env=double_env(),
    )


@pytest.fixture
def tempdir(tmp_path):
    path = tmp_path / "dump-tmp"
    path.mkdir()
    return path


@pytest.mark.slow
def test_a_zip_dump_holds_repos_the_database_app_ini_and_data_without_the_repositories(
    gitea, tmp_path, tempdir
):
    _pushed(gitea, tmp_path)
    (gitea.work / "log").mkdir()
    (gitea.work / "log" / "gitea.log").write_text("a log line\n")
    out = tmp_path / "gitea-dump.zip"
    proc = _dump(gitea, "--file", str(out), "--type", "zip", "--tempdir", str(tempdir))
    assert proc.returncode == 0, proc.stderr
    assert f"Finish dumping in file {out}" in proc.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert list(tempdir.iterdir()) == []  # the temporary gitea-db.sql is gone
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        assert archive.read("app.ini") == gitea.config.read_bytes()
        assert b"CREATE TABLE" in archive.read("gitea-db.sql")
    assert {"repos/platform/", "repos/platform/apps.git/", "repos/platform/apps.git/HEAD"} <= names
    assert {"gitea-db.sql", "app.ini", "data/gitea.db", "log/gitea.log"} <= names
    # the repositories are repos/, not a second time under data/; no custom/ (none exists)
    assert not any(n.startswith(("data/gitea-repositories", "custom/")) for n in names)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "mode"), [("tar", "r:"), ("tar.gz", "r:gz"), ("tar.xz", "r:xz"), ("tar.bz2", "r:bz2")]
)
def test_tar_types_are_the_same_tree_with_modes(gitea, tmp_path, tempdir, kind, mode):
    _pushed(gitea, tmp_path)
    out = tmp_path / f"dump.{kind}"
    proc = _dump(gitea, "-f", str(out), "--type", kind, "-t", str(tempdir), "--skip-log")
    assert proc.returncode == 0, proc.stderr
    with tarfile.open(out, mode) as archive:
        members = {m.name: m for m in archive.getmembers()}
    assert members["repos/platform/apps.git"].isdir()
    assert members["repos/platform/apps.git/HEAD"].isfile()
    assert {"gitea-db.sql", "app.ini", "data/gitea.db"} <= set(members)


def test_a_dump_to_stdout_is_a_zip_and_writes_no_file(gitea, tmp_path, tempdir):
    proc = subprocess.run(
        [
            *_dump_argv(gitea),
            "dump",
            "--file",
            "-",
            "--tempdir",
            str(tempdir),
            "--config",
            str(gitea.config),
        ],
        env=double_env(),
        capture_output=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Finish dumping to stdout" in proc.stderr.decode()
    with zipfile.ZipFile(io.BytesIO(proc.stdout)) as archive:
        assert "gitea-db.sql" in archive.namelist()
    assert not list(tmp_path.glob("gitea-dump-*"))


def _dump_argv(_gitea):
    return [SYSTEM_PYTHON, str(double_path("gitea"))]


def test_skip_flags_leave_their_part_out(gitea, tmp_path, tempdir):
    _pushed(gitea, tmp_path)
    (gitea.work / "custom" / "public").mkdir(parents=True)
    (gitea.work / "custom" / "public" / "robots.txt").write_text("User-agent: *\n")
    (gitea.work / "log").mkdir()
    (gitea.work / "log" / "gitea.log").write_text("x\n")
    full = tmp_path / "full.tar"
    assert _dump(gitea, "-f", str(full), "--type", "tar", "-t", str(tempdir)).returncode == 0
    with tarfile.open(full) as archive:
        names = set(archive.getnames())
    assert {"custom/public/robots.txt", "log/gitea.log", "gitea-db.sql", "data/gitea.db"} <= names
    skipped = tmp_path / "skipped.tar"
    proc = _dump(
        gitea,
        "-f",
        str(skipped),
        "--type",
        "tar",
        "-t",
        str(tempdir),
        "-R",
        "-L",
        "--skip-custom-dir",
        "--skip-db",
    )
    assert proc.returncode == 0, proc.stderr
    with tarfile.open(skipped) as archive:
        names = set(archive.getnames())
    assert not any(n.startswith(("repos/", "log/", "custom/")) for n in names)
    assert "gitea-db.sql" not in names and "data/gitea.db" not in names
    assert "app.ini" in names


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--type", "7z"], "Invalid output type"),
        (["--type", "tar.zst"], "--type tar.zst: not implemented by the Gitea test double"),
        (["--quiet", "--verbose"], "Option --quiet and --verbose cannot both be set"),
        (["--database", "postgres"], "the Gitea test double writes sqlite3 SQL only"),
        (["--no-such-flag"], "flag provided but not defined: -no-such-flag"),
    ],
)
def test_a_dump_refuses_what_gitea_refuses_and_writes_no_file(gitea, tmp_path, tempdir, args, expected):
    out = tmp_path / "refused.zip"
    proc = _dump(gitea, "-f", str(out), "-t", str(tempdir), *args)
    assert proc.returncode == 1
    assert expected in proc.stderr
    assert not out.exists()
    assert list(tempdir.iterdir()) == []


def test_a_dump_never_overwrites_a_file_and_needs_its_tempdir(gitea, tmp_path, tempdir):
    out = tmp_path / "there.zip"
    out.write_text("an older dump\n")
    proc = _dump(gitea, "-f", str(out), "--type", "zip", "-t", str(tempdir))
    assert proc.returncode == 1
    assert f'Dump file "{out}" exists' in proc.stderr
    assert out.read_text() == "an older dump\n"
    missing = tmp_path / "no-such-dir"
    fresh = tmp_path / "fresh.zip"
    proc = _dump(gitea, "-f", str(fresh), "--type", "zip", "-t", str(missing))
    assert proc.returncode == 1
    assert f"Path does not exist: {missing}" in proc.stderr
    assert not fresh.exists()  # a failed dump leaves no half archive


def test_a_dump_needs_an_installed_gitea_and_refuses_root(tmp_path, gitea_pki, tempdir):
    server = Gitea(tmp_path / "g", pki=gitea_pki, overrides={"security": {"INSTALL_LOCK": "false"}})
    proc = _dump(server, "-f", str(tmp_path / "x.zip"), "-t", str(tempdir))
    assert proc.returncode == 1
    assert "Unable to load config file for a installed Gitea instance" in proc.stderr
    if os.geteuid() == 0:
        env = {k: v for k, v in double_env().items() if k != "I_AM_BEING_UNSAFE_RUNNING_AS_ROOT"}
        ok = Gitea(tmp_path / "h", pki=gitea_pki)
        proc = run_double(
            "gitea", ["dump", "-f", str(tmp_path / "y.zip"), "--config", str(ok.config)], env=env
        )
        assert proc.returncode == 1
        assert "Gitea is not supposed to be run as root" in proc.stderr
        assert not (tmp_path / "y.zip").exists()


def test_the_sql_dump_loads_back_into_an_empty_database(gitea, tmp_path, tempdir):
    _pushed(gitea, tmp_path)
    out = tmp_path / "d.zip"
    assert _dump(gitea, "-f", str(out), "--type", "zip", "-t", str(tempdir)).returncode == 0
    with zipfile.ZipFile(out) as archive:
        sql = archive.read("gitea-db.sql").decode()
    loaded = tmp_path / "loaded.db"
    con = sqlite3.connect(loaded)
    con.executescript(sql)
    original = sqlite3.connect(gitea.work / "data" / "gitea.db")
    for table in ("user", "access_token", "team", "repository"):
        query = f"SELECT * FROM {table} ORDER BY id"  # noqa: S608 - table names from this list
        assert con.execute(query).fetchall() == original.execute(query).fetchall()


@pytest.mark.slow
def test_regenerated_hooks_call_this_gitea_and_refuse_a_push_gitea_did_not_start(gitea, tmp_path):
    work = _pushed(gitea, tmp_path)
    gitea.cli("admin", "regenerate", "hooks")
    hooks = gitea.work / "data" / "gitea-repositories" / "platform" / "apps.git" / "hooks"
    for name in ("pre-receive", "update", "post-receive", "proc-receive"):
        assert (hooks / name).stat().st_mode & 0o100
        assert (hooks / f"{name}.d" / "gitea").stat().st_mode & 0o100
        assert "# AUTO GENERATED BY GITEA, DO NOT MODIFY" in (hooks / name).read_text()
    gitea_hook = (hooks / "pre-receive.d" / "gitea").read_text()
    assert f"hook --config={gitea.config} pre-receive" in gitea_hook
    assert (hooks / "proc-receive.d" / "gitea").read_text() == ""
    env = _git_env(gitea, tmp_path)
    # through Gitea's git over HTTPS, the hooks pass the push
    (work / "more").write_text("more\n")
    _git("add", "more", cwd=work, env=env)
    _git("commit", "-qm", "second", cwd=work, env=env)
    _git("push", "origin", "HEAD:refs/heads/main", cwd=work, env=env)
    head = _git("rev-parse", "HEAD", cwd=work, env=env).stdout.strip()
    assert f"{head}\trefs/heads/main" in _refs(gitea, tmp_path)
    # straight into the bare repository, as Gitea does, the hook refuses it
    bare = hooks.parent
    _git("commit", "-q", "--allow-empty", "-m", "sideways", cwd=work, env=env)
    direct = _git(
        "push", f"file://{bare}", "HEAD:refs/heads/main", cwd=work, env={**env, **double_env()}, check=False
    )
    assert direct.returncode != 0
    assert "Rejecting changes as Gitea environment not set." in direct.stderr
    assert f"{head}\trefs/heads/main" in _refs(gitea, tmp_path)


@pytest.mark.slow
def test_the_documented_restore_gives_back_the_same_refs(gitea, tmp_path, tempdir):
    """docs.gitea.com administration/backup-and-restore: unpack, data/ and repos/ back in place,
    the database from gitea-db.sql with sqlite3, start, `gitea admin regenerate hooks`."""
    _pushed(gitea, tmp_path)
    before = _refs(gitea, tmp_path)
    out = tmp_path / "gitea-dump.tar.gz"
    assert _dump(gitea, "-f", str(out), "--type", "tar.gz", "-t", str(tempdir)).returncode == 0
    gitea.stop()
    data = gitea.work / "data"
    shutil.rmtree(data)
    unpacked = tmp_path / "unpacked"
    with tarfile.open(out, "r:gz") as archive:
        archive.extractall(unpacked, filter="data")
    shutil.move(unpacked / "data", data)
    (data / "gitea.db").unlink()
    shutil.move(unpacked / "repos", data / "gitea-repositories")
    sqlite3.connect(data / "gitea.db").executescript((unpacked / "gitea-db.sql").read_text())
    gitea.start()
    gitea.cli("admin", "regenerate", "hooks")
    assert _refs(gitea, tmp_path) == before
    assert gitea.api("GET", "/api/v1/repos/platform/apps", token=gitea.token)[0] == 200
    # and the restored repository takes pushes through its regenerated hooks
    env = _git_env(gitea, tmp_path)
    clone = tmp_path / "after"
    _git("clone", _remote(gitea), str(clone), env=env)
    (clone / "after").write_text("after\n")
    _git("add", "after", cwd=clone, env=env)
    _git("commit", "-qm", "after the restore", cwd=clone, env=env)
    _git("push", "origin", "HEAD:refs/heads/main", cwd=clone, env=env)


def test_hook_outside_gitea_is_refused_unless_app_ini_allows_it(tmp_path, gitea_pki):
    server = Gitea(tmp_path / "g", pki=gitea_pki)
    env = {k: v for k, v in double_env().items() if k != "SSH_ORIGINAL_COMMAND"}
    proc = run_double("gitea", ["hook", f"--config={server.config}", "pre-receive"], env=env, input="")
    assert proc.returncode == 1
    assert "Gitea: Rejecting changes as Gitea environment not set." in proc.stderr
    allowed = Gitea(
        tmp_path / "h",
        pki=gitea_pki,
        overrides={"security": {"ONLY_ALLOW_PUSH_IF_GITEA_ENVIRONMENT_SET": "false"}},
    )
    proc = run_double("gitea", ["hook", f"--config={allowed.config}", "pre-receive"], env=env, input="")
    assert proc.returncode == 0, proc.stderr
    internal = run_double(
        "gitea",
        ["hook", f"--config={server.config}", "pre-receive"],
        env={**env, "GITEA_INTERNAL_PUSH": "true"},
        input="",
    )
    assert internal.returncode == 0, internal.stderr
