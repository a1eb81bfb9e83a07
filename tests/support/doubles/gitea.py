"""The Gitea double in tests: a throwaway CA, an app.ini as the gitea role writes it, the double
under /usr/bin/python3 on a free loopback port (through the doubles' launcher), and its admin CLI.

Used by tests/doubles/gitea and tests/integration (the Gitea modules, the receipt's services).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.doubles import SYSTEM_PYTHON, DoubleProcess, double_path, run_double
from tests.support.net import free_port
from tests.support.pki import server_pki

DOUBLE = double_path("gitea")
PYTHON = SYSTEM_PYTHON
ADMIN = "island-admin"
ADMIN_EMAIL = "admin@island.test"
# The server certificate names this host and 127.0.0.1 only: "localhost" is a TLS name mismatch.
SERVER_NAME = "gitea.island.test"


def make_pki(directory):
    """ca.crt, server.crt (SAN gitea.island.test, 127.0.0.1) and server.key in ``directory``."""
    return server_pki(directory, SERVER_NAME, (SERVER_NAME, "127.0.0.1"), common_name="island gitea test CA")


def write_secrets(directory):
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in ("secret_key", "internal_token", "jwt_secret", "lfs_jwt_secret"):
        path = directory / name
        # JWT secrets in the format `gitea generate secret JWT_SECRET` prints (unpadded base64url
        # of 32 bytes): Gitea replaces any other value and writes it into app.ini.
        jwt = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
        path.write_text((jwt if "jwt" in name else os.urandom(24).hex()) + "\n")
        path.chmod(0o600)
        out[name] = path
    return out


def app_ini(work, pki, secrets, port, *, overrides=None, drop=()):
    """app.ini as the gitea role renders it: sections -> {KEY: value}; ``overrides`` patches it
    ({section: {KEY: value}}), ``drop`` removes (section, KEY) pairs."""
    import getpass

    sections = {
        "": {"APP_NAME": "Island Git", "RUN_USER": getpass.getuser(), "WORK_PATH": str(work)},
        "server": {
            "PROTOCOL": "https",
            "DOMAIN": SERVER_NAME,
            "ROOT_URL": f"https://{SERVER_NAME}:{port}/",
            "HTTP_ADDR": "127.0.0.1",
            "HTTP_PORT": str(port),
            "CERT_FILE": str(pki["cert"]),
            "KEY_FILE": str(pki["key"]),
            "OFFLINE_MODE": "true",
            "DISABLE_SSH": "true",
            "LFS_START_SERVER": "false",
        },
        "database": {"DB_TYPE": "sqlite3", "PATH": str(Path(work) / "data" / "gitea.db")},
        "repository": {"ROOT": str(Path(work) / "data" / "gitea-repositories")},
        "security": {
            "INSTALL_LOCK": "true",
            "SECRET_KEY_URI": f"file:{secrets['secret_key']}",
            "INTERNAL_TOKEN_URI": f"file:{secrets['internal_token']}",
        },
        "oauth2": {"JWT_SECRET_URI": f"file:{secrets['jwt_secret']}"},
        "service": {"DISABLE_REGISTRATION": "true"},
        "cron.update_checker": {"ENABLED": "false"},
    }
    for section, values in (overrides or {}).items():
        sections.setdefault(section, {}).update(values)
    for section, key in drop:
        sections[section].pop(key, None)
    lines = []
    for section, values in sections.items():
        if section:
            lines.append(f"[{section}]")
        lines.extend(f"{k} = {v}" for k, v in values.items())
        lines.append("")
    return "\n".join(lines)


def double_env():
    env = dict(os.environ)
    if os.geteuid() == 0:
        # Tests run as root in containers; Gitea refuses root unless told this.
        env["I_AM_BEING_UNSAFE_RUNNING_AS_ROOT"] = "true"
    return env


class Gitea:
    """The double on 127.0.0.1:<free port> with its own work path, config and admin user."""

    def __init__(self, base, pki=None, overrides=None, drop=()):
        self.base = Path(base)
        self.work = self.base / "work"
        self.work.mkdir(parents=True, exist_ok=True)
        self.pki = pki or make_pki(self.base / "pki")
        self.secrets = write_secrets(self.base / "secrets")
        self.port = free_port()
        self.config = self.base / "app.ini"
        self.config.write_text(
            app_ini(self.work, self.pki, self.secrets, self.port, overrides=overrides, drop=drop)
        )
        self.url = f"https://127.0.0.1:{self.port}"
        self.proc = None
        self.log = self.base / "gitea.log"
        self.password = None
        self.token = None

    def cli(self, *args, check=True):
        proc = run_double(
            "gitea",
            [*args, "--config", str(self.config), "--work-path", str(self.work)],
            env=double_env(),
            timeout=None,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"gitea {' '.join(args)} failed: {proc.stderr}")
        return proc

    def start(self, timeout=20):
        self.proc = DoubleProcess(
            "gitea", ["web", "--config", str(self.config), "--work-path", str(self.work)],
            env=double_env(), log=self.log,
        ).start(lambda: self.api("GET", "/api/healthz"), timeout=timeout)  # fmt: skip
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.stop()
        self.proc = None

    def bootstrap_admin(self):
        """Create the admin as the role does: --random-password, password read from stdout."""
        out = self.cli(
            "admin",
            "user",
            "create",
            "--admin",
            "--username",
            ADMIN,
            "--email",
            ADMIN_EMAIL,
            "--random-password",
            "--random-password-length",
            "24",
            "--must-change-password=false",
        ).stdout
        line = next(x for x in out.splitlines() if x.startswith("generated random password is '"))
        self.password = line.split("'")[1]
        self.token = self.cli(
            "admin",
            "user",
            "generate-access-token",
            "--username",
            ADMIN,
            "--token-name",
            "island",
            "--scopes",
            "all",
            "--raw",
        ).stdout.strip()
        return self

    def api(self, method, path, body=None, auth=None, token=None):
        """(status, parsed JSON or None). ``auth``: (user, password) for basic authentication."""
        import base64

        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        if token:
            headers["Authorization"] = f"token {token}"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)  # noqa: S310 - https URL built here
        ctx = ssl.create_default_context(cafile=str(self.pki["ca"]))
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:  # noqa: S310 - https only
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None


# --- a throwaway PostgreSQL server (Debian's postgresql) for DB_TYPE = postgres -----------------
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)


def postgres_missing():
    """Why a PostgreSQL-backed double cannot be tested on this host, or '' when it can."""
    if PG_BIN is None or not (PG_BIN / "initdb").exists():
        return "needs Debian's postgresql (initdb under /usr/lib/postgresql/*/bin)"
    probe = subprocess.run([PYTHON, "-c", "import psycopg2"], capture_output=True, check=False)
    if probe.returncode != 0:
        return "needs python3-psycopg2 for /usr/bin/python3 (the double's PostgreSQL driver)"
    if os.geteuid() == 0 and subprocess.run(["id", "postgres"], capture_output=True, check=False).returncode:
        return "PostgreSQL refuses to run as root and there is no postgres user"
    return ""


class Postgres:
    """A PostgreSQL cluster in a temporary directory on 127.0.0.1:<free port>, TLS with the test
    PKI's server certificate (SAN 127.0.0.1 and gitea.island.test), a role and database for Gitea
    reachable only over TLS with scram-sha-256 (pg_hba hostssl), and local trust for the tests'
    own psql over the unix socket. Runs as the postgres user when the tests run as root."""

    def __init__(self, pki, user="gitea", password="gitea-db-secret", database="gitea"):  # noqa: S107 - a throwaway test server's password
        import tempfile

        # Under /tmp itself: the postgres user cannot enter pytest's 0700 directories.
        self.dir = Path(tempfile.mkdtemp(prefix="gitea-pg-"))
        self.ca = pki["ca"]
        self.data = self.dir / "data"
        self.port = free_port()
        self.user, self.password, self.database = user, password, database
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.run_as:
            subprocess.run(["chown", "-R", "postgres:", str(self.dir)], check=True)
        self._pg("initdb", "--auth=trust", "--username=postgres", "-D", str(self.data))
        for name in ("cert", "key"):
            target = self.data / f"server.{'crt' if name == 'cert' else 'key'}"
            target.write_bytes(Path(pki[name]).read_bytes())
            target.chmod(0o600)
            if self.run_as:
                subprocess.run(["chown", "postgres:", str(target)], check=True)
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.dir}'\n"
                "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
                "password_encryption = 'scram-sha-256'\n"
            )
        (self.data / "pg_hba.conf").write_text(
            f"local all postgres trust\nhostssl all {user} 127.0.0.1/32 scram-sha-256\n"
        )
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "postgres.log"), "-w", "start")
        # The password goes over stdin, never on a command line.
        self.psql(
            f"CREATE ROLE {user} LOGIN PASSWORD '{password}';\nCREATE DATABASE {database} OWNER {user};\n",
            database="postgres",
        )

    def _pg(self, program, *args):
        proc = subprocess.run(
            [*self.run_as, str(PG_BIN / program), *args], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise AssertionError(f"{program} failed: {proc.stdout}{proc.stderr}")
        return proc

    def psql(self, sql, database=None):
        """Run SQL as the superuser over the unix socket; returns psql's unaligned output."""
        proc = subprocess.run(
            [*self.run_as, str(PG_BIN / "psql"), "-X", "-q", "-A", "-t",
             "-v", "ON_ERROR_STOP=1", "-h", str(self.dir), "-p", str(self.port), "-U", "postgres",
             "-d", database or self.database],
            input=sql, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise AssertionError(f"psql failed: {proc.stderr}")
        return proc.stdout

    def new_database(self):
        """A fresh, empty database owned by the Gitea role; returns its name."""
        self.count = getattr(self, "count", 0) + 1
        name = f"{self.database}_{self.count}"
        self.psql(f"CREATE DATABASE {name} OWNER {self.user};\n", database="postgres")
        return name

    def database_settings(self, database, **changes):
        """[database] for the double, as the gitea role renders it for PostgreSQL."""
        return {
            "DB_TYPE": "postgres",
            "HOST": f"127.0.0.1:{self.port}",
            "NAME": f"{database}?sslrootcert={self.ca}",
            "USER": self.user,
            "PASSWD": self.password,
            "SSL_MODE": "verify-full",
            "DB_RETRIES": "2",
            "DB_RETRY_BACKOFF": "100ms",
            **changes,
        }

    def stop(self):
        subprocess.run(
            [*self.run_as, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.dir, ignore_errors=True)


# --- what the tests around the double share -------------------------------------------------------
def needs_gitea_double():
    """pytest mark: skip without /usr/bin/python3 or git-http-backend (the double serves git
    through it)."""
    import pytest

    return pytest.mark.skipif(
        not os.access("/usr/lib/git-core/git-http-backend", os.X_OK) or not os.access(PYTHON, os.X_OK),
        reason="needs /usr/bin/python3 and git-http-backend",
    )


# git with no system or global configuration, a fixed identity.
GIT_ENV = {
    "PATH": os.environ["PATH"],
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "island",
    "GIT_AUTHOR_EMAIL": "island@x.test",
    "GIT_COMMITTER_NAME": "island",
    "GIT_COMMITTER_EMAIL": "island@x.test",
}


def git(*args, cwd=None):
    """Run git under GIT_ENV; its stdout, stripped. A failure raises AssertionError with stderr."""
    proc = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {proc.stderr}")
    return proc.stdout.strip()


def running_gitea(base, pki, organization=None):
    """A started double under ``base`` with its admin bootstrapped as the role does, and
    ``organization`` created when given. The caller stops it."""
    server = Gitea(base, pki=pki).bootstrap_admin().start()
    if organization:
        server.api("POST", "/api/v1/orgs", {"username": organization}, token=server.token)
    return server


def git_env(gitea, home) -> dict:
    """The environment of a real git client of the double: no system or user configuration, the
    island CA trusted, an author and committer."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_SSL_CAINFO": str(gitea.pki["ca"]),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x.test",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x.test",
    }


def git_run(*args, cwd=None, env=None, check=True):
    """git ``args`` under ``env`` (git_env's, for a client of the double); the finished process, or
    an AssertionError with git's stderr when it fails and ``check`` is set."""
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {proc.stderr}")
    return proc
