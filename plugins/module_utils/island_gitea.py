# Copyright: island installer contributors
# Gitea administration for the island: a small REST client (organisations, teams, repositories)
# and repository seeding from git bundles through the real git client.
#
# Runs on Python 3.9+ with the standard library only: the modules run ON the Gitea host (Debian 12
# system python3). Secrets never reach a command line: the REST client sends them in headers, and
# git gets them from a GIT_ASKPASS helper that reads them from its environment.
#
# Gitea facts used here (go-gitea/gitea, templates/swagger/v1_json.tmpl, 1.26 line):
#   GET  /api/v1/user                       200 the authenticated user
#   GET  /api/v1/orgs/{org}                 200 | 404
#   POST /api/v1/orgs                       201 (CreateOrgOption: username, full_name, description,
#                                           website, location, visibility) | 422 exists
#   PATCH /api/v1/orgs/{org}                200 (EditOrgOption)
#   GET  /api/v1/orgs/{org}/teams           200 list (an "Owners" team always exists)
#   POST /api/v1/orgs/{org}/teams           201 (CreateTeamOption: name, description, permission
#                                           read|write|admin, includes_all_repositories,
#                                           can_create_org_repo, units, units_map)
#   PATCH /api/v1/teams/{id}                200 (EditTeamOption)
#   GET  /api/v1/repos/{owner}/{repo}       200 | 404
#   POST /api/v1/orgs/{org}/repos           201 | 409 exists;  POST /api/v1/user/repos likewise
#   PATCH /api/v1/repos/{owner}/{repo}      200 (EditRepoOption)
#   PATCH /api/v1/admin/users/{username}    200 (EditUserOption: source_id, login_name required) |
#                                           400 password shorter than MIN_PASSWORD_LENGTH |
#                                           403 not a site admin | 404 | 422 binding
# Authentication: "Authorization: token <t>" or basic auth; a bad password or token is 401 with
# {"message": ..., "url": ...}.
from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request


# --- Errors --------------------------------------------------------------------------------------
class GiteaError(Exception):
    """Base of every error of this module; ``str()`` is a message for an operator."""


class GiteaAuthError(GiteaError):
    """Gitea refused the credentials (wrong admin password or token)."""


class GiteaTLSError(GiteaError):
    """The server's certificate did not verify against the CA file, or does not name the host."""


class GiteaAPIError(GiteaError):
    """Gitea answered a request with an unexpected status."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class GiteaConfigError(GiteaError):
    """The desired state given to the module is inconsistent."""


class BundleError(GiteaError):
    """A git bundle that is missing or fails `git bundle verify`."""


class GitError(GiteaError):
    """A git command failed for another reason."""


class HistoryRewriteError(GiteaError):
    """Seeding would rewrite history (non-fast-forward branch or moved tag) and allow_force is off."""


# --- REST client ---------------------------------------------------------------------------------
class GiteaClient:
    """Gitea's REST API over HTTPS, TLS always verified (against ``ca_file`` when given)."""

    @classmethod
    def from_params(cls, params):
        """The client a module's options describe (module_utils/island_argspec GITEA_* and TLS)."""
        return cls(
            params["url"],
            params["ca_file"],
            username=params.get("username"),
            password=params.get("password"),
            token=params.get("token"),
        )

    def __init__(self, url, ca_file=None, *, username=None, password=None, token=None, timeout=30):
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme.lower() == "http":
            raise GiteaConfigError(
                f"url {url!r} is plain http, which would carry the admin token and account passwords in "
                f"clear: give Gitea's https:// URL (the gitea role serves TLS with the island certificate; "
                f"ca_file names the island CA)"
            )
        if parsed.scheme.lower() != "https" or not parsed.hostname:
            raise GiteaConfigError(f"url {url!r} is not an https URL (https://<host>[:port])")
        self.url = url.rstrip("/")
        self.host = parsed.hostname
        self.ca_file = ca_file
        self.username = username
        self.password = password
        self.token = token
        self.timeout = timeout
        if ca_file and not os.access(ca_file, os.R_OK):
            raise GiteaConfigError(f"ca_file {ca_file} is not a readable file")
        self._ssl = ssl.create_default_context(cafile=ca_file)
        self._me = None

    def who(self):
        return f"user {self.username}" if self.username and not self.token else "the given token"

    def _headers(self):
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"token {self.token}"
        elif self.username is not None:
            raw = f"{self.username}:{self.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        return headers

    def request(self, method, path, body=None):
        """Returns (status, parsed JSON or None). Raises typed errors for TLS, 401 and transport."""
        headers = self._headers()
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)  # noqa: S310 - URL checked to be https in __init__
        try:
            with urllib.request.urlopen(req, context=self._ssl, timeout=self.timeout) as resp:  # noqa: S310 - idem
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise self._tls_error(reason) from exc
            raise GiteaAPIError(f"cannot reach Gitea at {self.url}: {reason}") from exc
        except ssl.SSLCertVerificationError as exc:
            raise self._tls_error(exc) from exc
        except OSError as exc:
            raise GiteaAPIError(f"cannot reach Gitea at {self.url}: {exc}") from exc
        try:
            obj = json.loads(raw) if raw else None
        except ValueError:
            obj = {"message": raw[:200].decode("utf-8", "replace")}
        if status == 401:
            raise GiteaAuthError(
                f"Gitea at {self.url} refused the credentials of {self.who()} ({_message(obj)}): "
                "check the admin password or token"
            )
        return status, obj

    def _tls_error(self, exc):
        detail = getattr(exc, "verify_message", None) or str(exc)
        return GiteaTLSError(
            f"TLS verification of {self.url} failed: {detail}. The server certificate must name "
            f"{self.host} and chain to the CA in ca_file ({self.ca_file or 'system trust store'})"
        )

    def call(self, method, path, body=None, expect=(200,), missing_ok=False):
        status, obj = self.request(method, path, body)
        if missing_ok and status == 404:
            return None
        if status not in expect:
            raise GiteaAPIError(f"{method} {path} answered {status}: {_message(obj)}", status)
        return obj

    def list(self, path, limit=50):
        """Every item of a paged list endpoint (?page from 1, ?limit at most 50 in Gitea)."""
        items, page = [], 1
        while True:
            batch = self.call("GET", f"{path}?page={page}&limit={limit}")
            items.extend(batch)
            if len(batch) < limit:
                return items
            page += 1

    def me(self):
        if self._me is None:
            self._me = self.call("GET", "/api/v1/user")
        return self._me

    def get_repo(self, owner, name):
        return self.call("GET", f"/api/v1/repos/{_q(owner)}/{_q(name)}", missing_ok=True)

    def create_repo(self, owner, fields):
        """Create ``owner/name`` under an organisation or, when ``owner`` is the authenticated user,
        under that user."""
        if self.call("GET", f"/api/v1/orgs/{_q(owner)}", missing_ok=True) is not None:
            path = f"/api/v1/orgs/{_q(owner)}/repos"
        elif self.me()["login"].lower() == owner.lower():
            path = "/api/v1/user/repos"
        else:
            raise GiteaConfigError(
                f"cannot create repository {owner}/{fields['name']}: {owner} is neither an organisation "
                f"nor the authenticated user {self.me()['login']}"
            )
        return self.call("POST", path, fields, expect=(201,))


def _q(part):
    return urllib.parse.quote(part, safe="")


def _message(obj):
    if isinstance(obj, dict) and obj.get("message"):
        return str(obj["message"])
    return json.dumps(obj)[:200] if obj is not None else "empty body"


# --- The administrator's password, as the operator supplies it ---------------------------------
def ensure_password(url, ca_file, token, username, password, *, check_mode=False):
    """Make ``password`` the password of ``username``, never through a command line.

    Gitea 1.26's CLI takes a password only on argv (``admin user create --password``), so the
    password is set through the REST API instead: PATCH /api/v1/admin/users/{username} with
    EditUserOption (routers/api/v1/admin/user.go EditUser; modules/structs/admin_user.go:
    source_id and login_name are required, 0 and the user's name for a local user; a password
    shorter than MIN_PASSWORD_LENGTH is 400). The decision is made by trying the password: basic
    auth on GET /api/v1/user answers 200 when it already works (nothing to do), 401 when it does
    not. Check mode stops after that test. After a change the password is tried again.

    Returns (changed, message)."""
    probe = GiteaClient(url, ca_file, username=username, password=password)
    try:
        me = probe.call("GET", "/api/v1/user")
    except GiteaAuthError:
        me = None
    if me is not None:
        if str(me.get("login", "")).lower() != username.lower():
            raise GiteaConfigError(f"basic auth as {username} answered as user {me.get('login')!r}")
        return False, f"the supplied password of {username} works"
    if check_mode:
        return True, f"the supplied password of {username} does not work yet: it would be set"
    admin = GiteaClient(url, ca_file, token=token)
    body = {"source_id": 0, "login_name": username, "password": password, "must_change_password": False}
    status, obj = admin.request("PATCH", f"/api/v1/admin/users/{_q(username)}", body)
    if status != 200:
        raise GiteaAPIError(
            f"Gitea at {url} refused the supplied password of {username} "
            f"(PATCH /api/v1/admin/users/{username} answered {status}: {_message(obj)})",
            status,
        )
    try:
        probe.call("GET", "/api/v1/user")
    except GiteaAuthError as exc:
        raise GiteaAPIError(
            f"Gitea at {url} accepted the password of {username} but does not let it log in: {exc}"
        ) from exc
    return True, f"the supplied password of {username} was set"


# --- Desired state: organisations, teams, repositories -----------------------------------------
ORG_FIELDS = ("full_name", "description", "website", "location", "visibility")
TEAM_FIELDS = ("description", "permission", "includes_all_repositories", "can_create_org_repo", "units")
REPO_FIELDS = ("description", "website", "private", "default_branch")


def _differences(current, desired, fields):
    """[(field, old, new)] for each field the user set (not None) that differs."""
    out = []
    for field in fields:
        want = desired.get(field)
        if want is None:
            continue
        have = current.get(field) if current else None
        if field == "units":
            want, have = sorted(want), sorted(have or [])
        if have != want:
            out.append((field, have, want))
    return out


def _reason(diffs):
    return "; ".join(f"{f}: {old!r} -> {new!r}" for f, old, new in diffs)


class StateResult:
    def __init__(self, check_mode):
        self.check_mode = check_mode
        self.items = []
        self.before = {}
        self.after = {}

    @property
    def changed(self):
        return any(i["action"] != "unchanged" for i in self.items)

    def add(self, kind, name, action, reason, *, before, after):
        self.items.append({"kind": kind, "name": name, "action": action, "reason": reason})
        key = f"{kind} {name}"
        self.before[key] = before
        self.after[key] = after

    def summary(self):
        changed = [i for i in self.items if i["action"] != "unchanged"]
        if not changed:
            return f"all {len(self.items)} organisations, teams and repositories as desired"
        verb = "would change" if self.check_mode else "changed"
        parts = ", ".join(f"{i['action']} {i['kind']} {i['name']} ({i['reason']})" for i in changed)
        return f"{len(changed)} of {len(self.items)} objects {verb}: {parts}"


def _pick(obj, fields):
    if obj is None:
        return None
    return {f: obj.get(f) for f in fields}


def converge(client, organizations=(), repositories=(), check_mode=False):
    """Make Gitea hold the organisations (with their teams) and repositories described; nothing is
    deleted. Each entry is compared field by field, only on the fields given (None = keep)."""
    result = StateResult(check_mode)
    for org in organizations:
        _converge_org(client, org, result)
    for repo in repositories:
        _converge_repo(client, repo, result)
    return result


def _converge_org(client, org, result):
    name = org["name"]
    current = client.call("GET", f"/api/v1/orgs/{_q(name)}", missing_ok=True)
    fields = {f: org.get(f) for f in ORG_FIELDS if org.get(f) is not None}
    if current is None:
        after = dict(fields)
        result.add("organization", name, "create", "absent", before=None, after=after)
        if not result.check_mode:
            client.call("POST", "/api/v1/orgs", {"username": name, **fields}, expect=(201,))
        teams_now = []
    else:
        diffs = _differences(current, fields, ORG_FIELDS)
        before = _pick(current, ORG_FIELDS)
        if diffs:
            result.add(
                "organization", name, "update", _reason(diffs), before=before, after={**before, **fields}
            )
            if not result.check_mode:
                client.call("PATCH", f"/api/v1/orgs/{_q(name)}", {f: new for f, _, new in diffs})
        else:
            result.add("organization", name, "unchanged", "", before=before, after=before)
        teams_now = client.list(f"/api/v1/orgs/{_q(name)}/teams")
    by_name = {t["name"].lower(): t for t in teams_now}
    for team in org.get("teams") or []:
        _converge_team(client, name, team, by_name.get(team["name"].lower()), result)


def _team_body(team):
    body = {f: team.get(f) for f in TEAM_FIELDS if team.get(f) is not None}
    if "units" in body:
        body["units_map"] = {u: team.get("permission") or "read" for u in body["units"]}
    return body


def _converge_team(client, org, team, current, result):
    label = f"{org}/{team['name']}"
    body = _team_body(team)
    wanted = {f: team.get(f) for f in TEAM_FIELDS if team.get(f) is not None}
    if current is None:
        result.add("team", label, "create", "absent", before=None, after=wanted)
        if not result.check_mode:
            client.call(
                "POST", f"/api/v1/orgs/{_q(org)}/teams", {"name": team["name"], **body}, expect=(201,)
            )
        return
    before = _pick(current, TEAM_FIELDS)
    before["units"] = sorted(before.get("units") or [])
    diffs = _differences(current, wanted, TEAM_FIELDS)
    if _record_update(result, "team", label, before=before, wanted=wanted, diffs=diffs):
        client.call("PATCH", f"/api/v1/teams/{int(current['id'])}", {"name": current["name"], **body})


def _record_update(result, kind, label, *, before, wanted, diffs):
    """Record an existing object as unchanged or to update; True when it must be patched now."""
    if not diffs:
        result.add(kind, label, "unchanged", "", before=before, after=before)
        return False
    result.add(kind, label, "update", _reason(diffs), before=before, after={**before, **wanted})
    return not result.check_mode


def _converge_repo(client, repo, result):
    owner, name = repo["owner"], repo["name"]
    label = f"{owner}/{name}"
    wanted = {f: repo.get(f) for f in REPO_FIELDS if repo.get(f) is not None}
    current = client.get_repo(owner, name)
    if current is None:
        result.add("repository", label, "create", "absent", before=None, after=wanted)
        if not result.check_mode:
            client.create_repo(owner, {"name": name, **wanted})
        return
    before = _pick(current, REPO_FIELDS)
    diffs = _differences(current, wanted, REPO_FIELDS)
    if _record_update(result, "repository", label, before=before, wanted=wanted, diffs=diffs):
        client.call("PATCH", f"/api/v1/repos/{_q(owner)}/{_q(name)}", {f: new for f, _, new in diffs})


# --- Seeding from git bundles --------------------------------------------------------------------
ASKPASS = """#!/bin/sh
# Answers git's credential prompts from the environment: the secret is never on a command line.
case "$1" in
  Username*) printf '%s\\n' "$ISLAND_GIT_USERNAME" ;;
  *) printf '%s\\n' "$ISLAND_GIT_PASSWORD" ;;
esac
"""


class Git:
    """The git client in a private temporary directory: a scratch bare repository, an askpass
    helper, no system or global git configuration (no stray credential helpers)."""

    def __init__(self, ca_file=None, username=None, secret=None, timeout=600):
        self.tmp = tempfile.mkdtemp(prefix="island-gitea-seed-")
        self.repo = os.path.join(self.tmp, "scratch.git")
        askpass = os.path.join(self.tmp, "askpass.sh")
        fd = os.open(askpass, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
        with os.fdopen(fd, "w") as handle:
            handle.write(ASKPASS)
        self.timeout = timeout
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.tmp,
            "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": askpass,
            "ISLAND_GIT_USERNAME": username or "island",
            "ISLAND_GIT_PASSWORD": secret or "",
        }
        if ca_file:
            self.env["GIT_SSL_CAINFO"] = ca_file
        self.run("init", "--quiet", "--bare", self.repo, cwd=self.tmp)

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def run(self, *args, cwd=None, check=True):
        try:
            proc = subprocess.run(
                ["git", *args],
                cwd=cwd or self.repo,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise GitError(f"git {args[0]} failed: {exc}") from exc
        if check and proc.returncode != 0:
            raise GitError(f"git {args[0]} failed: {proc.stderr.strip()}")
        return proc

    def remote(self, *args, url):
        """A git command that talks to ``url``; TLS and authentication failures become typed."""
        proc = self.run(*args, check=False)
        if proc.returncode == 0:
            return proc
        err = proc.stderr.strip()
        low = err.lower()
        if "ssl" in low or "certificate" in low or "subject name" in low:
            raise GiteaTLSError(f"git {args[0]} {url}: TLS verification failed: {err}")
        if "authentication failed" in low or "could not read username" in low or "401" in low:
            raise GiteaAuthError(f"git {args[0]} {url}: Gitea refused the credentials: {err}")
        raise GitError(f"git {args[0]} {url} failed: {err}")


def _parse_refs(text, peeled=False):
    refs = {}
    for line in text.splitlines():
        sha, _, ref = line.strip().partition(" ") if " " in line else line.strip().partition("\t")
        ref = ref.strip()
        if not peeled and ref.endswith("^{}"):
            continue
        if ref.startswith(("refs/heads/", "refs/tags/")) or ref == "HEAD":
            refs[ref] = sha
    return refs


def bundle_prerequisites(path):
    """Commits a bundle needs but does not contain (lines '-<sha>' of the bundle header). A file
    that is no bundle has none here; `git bundle verify` then says what is wrong with it."""
    out = []
    with open(path, "rb") as handle:
        first = handle.readline()
        if not first.startswith(b"# v") or b"git bundle" not in first:
            return out
        for raw in handle:
            line = raw.rstrip(b"\n")
            if not line:
                break
            if line.startswith(b"-"):
                out.append(line[1:].split(b" ")[0].decode())
    return out


class SeedResult:
    def __init__(self, repository, check_mode):
        self.repository = repository
        self.check_mode = check_mode
        self.created = False
        self.refs = []

    @property
    def changed(self):
        return self.created or any(r["action"] != "unchanged" for r in self.refs)

    def to_dict(self):
        return {
            "repository": self.repository,
            "created": self.created,
            "refs": self.refs,
            "changed": self.changed,
        }

    def diff(self):
        return {
            "before": {r["ref"]: r["old"] for r in self.refs},
            "after": {r["ref"]: r["new"] for r in self.refs},
        }

    def summary(self):
        moved = [r for r in self.refs if r["action"] != "unchanged"]
        if not moved and not self.created:
            return f"{self.repository}: all {len(self.refs)} refs of the bundle already present"
        verb = "would update" if self.check_mode else "updated"
        parts = ", ".join(f"{r['ref']} {r['action']} {_short(r['old'])} -> {_short(r['new'])}" for r in moved)
        created = " (repository created)" if self.created else ""
        if self.created and self.check_mode:
            created = " (repository would be created)"
        return f"{self.repository}{created}: {len(moved)} of {len(self.refs)} refs {verb}: {parts}"


def _short(sha):
    return sha[:12] if sha else "absent"


def _default_branch(refs):
    heads = sorted(r[len("refs/heads/") :] for r in refs if r.startswith("refs/heads/"))
    head_sha = refs.get("HEAD")
    matching = [b for b in heads if refs[f"refs/heads/{b}"] == head_sha]
    for choice in ("main", "master"):
        if choice in matching or (not matching and choice in heads):
            return choice
    return (matching or heads or ["main"])[0]


def seed_repository(
    client, bundle, owner, name, *, allow_force=False, check_mode=False, private=True, timeout=600
):
    """Make ``owner/name`` on Gitea hold every branch and tag of ``bundle``.

    Branches move only forward (the remote commit must be an ancestor of the bundle's) and tags
    never move, unless ``allow_force``. Refs the remote has and the bundle lacks are kept. Nothing is
    pushed when any ref is refused; the push of the accepted refs is atomic."""
    label = f"{owner}/{name}"
    result = SeedResult(label, check_mode)
    if not os.path.isfile(bundle):
        raise BundleError(f"bundle {bundle} for {label} does not exist or is not a file")
    prerequisites = bundle_prerequisites(bundle)
    url = f"{client.url}/{_q(owner)}/{_q(name)}.git"
    with Git(client.ca_file, client.username, client.token or client.password, timeout) as git:
        if not prerequisites:
            _verify_bundle(git, bundle)
        listed = git.run("bundle", "list-heads", bundle, check=False)
        if listed.returncode != 0:
            raise BundleError(f"git bundle list-heads {bundle} failed: {listed.stderr.strip()}")
        bundle_refs = _parse_refs(listed.stdout)
        wanted = {r: s for r, s in bundle_refs.items() if r != "HEAD"}
        if not wanted:
            raise BundleError(f"bundle {bundle} holds no branch or tag")
        exists = client.get_repo(owner, name) is not None
        remote = _remote_refs(git, url) if exists else {}
        if remote and (prerequisites or any(r in remote and remote[r] != wanted[r] for r in wanted)):
            # Old commits for the ancestry checks, and what an incremental bundle builds on.
            git.remote("fetch", "--quiet", "--no-tags", url, "+refs/*:refs/island-remote/*", url=url)
        if prerequisites:
            # An incremental bundle is verified against what Gitea holds, fetched just above.
            _verify_bundle(git, bundle)
        # `git bundle verify` checks the header and the prerequisites only; index-pack, run by the
        # fetch, checks every object of the pack.
        fetched = git.run(
            "fetch", "--quiet", "--no-tags", bundle, "+refs/*:refs/island-bundle/*", check=False
        )
        if fetched.returncode != 0:
            raise BundleError(
                f"bundle {bundle} is corrupt: git fetch from it failed: {fetched.stderr.strip()}"
            )
        refspecs = _plan(git, label, wanted, remote, allow_force=allow_force, result=result)
        if not exists:
            result.created = True
            if not check_mode:
                branch = _default_branch(bundle_refs)
                client.create_repo(owner, {"name": name, "private": private, "default_branch": branch})
        if check_mode or not refspecs:
            return result
        git.remote("push", "--quiet", "--atomic", url, *refspecs, url=url)
        after = _remote_refs(git, url)
        wrong = [r["ref"] for r in result.refs if after.get(r["ref"]) != r["new"]]
        if wrong:
            raise GitError(
                f"after the push, {label} does not hold the bundle's commits for: {', '.join(wrong)}"
            )
    return result


def _verify_bundle(git, bundle):
    verify = git.run("bundle", "verify", bundle, check=False)
    if verify.returncode != 0:
        raise BundleError(f"git bundle verify {bundle} failed: {verify.stderr.strip()}")


def _remote_refs(git, url):
    refs = _parse_refs(git.remote("ls-remote", url, url=url).stdout)
    refs.pop("HEAD", None)
    return refs


def _plan(git, label, wanted, remote, *, allow_force, result):
    """Classify every ref of the bundle into ``result.refs``; return the refspecs to push. Raises
    HistoryRewriteError, before anything is pushed, for rewrites without ``allow_force``."""
    refused, refspecs = [], []
    for ref in sorted(wanted):
        new, old = wanted[ref], remote.get(ref)
        action = _classify(git, ref, old, new)
        if action == "rewrite":
            if not allow_force:
                refused.append(f"{ref} {old} -> {new}")
            action = "forced"
        result.refs.append({"ref": ref, "old": old, "new": new, "action": action})
        if action != "unchanged":
            plus = "+" if action == "forced" else ""
            refspecs.append(f"{plus}refs/island-bundle/{ref[len('refs/') :]}:{ref}")
    if refused:
        raise HistoryRewriteError(
            f"refusing to rewrite history of {label} (set allow_force to allow): "
            + "; ".join(refused)
            + ". Nothing was pushed."
        )
    return refspecs


def _classify(git, ref, old, new):
    """unchanged | create | fast-forward | rewrite."""
    if old is None:
        return "create"
    if old == new:
        return "unchanged"
    if ref.startswith("refs/tags/"):
        return "rewrite"
    have_old = git.run("cat-file", "-e", f"{old}^{{commit}}", check=False).returncode == 0
    if not have_old:
        return "rewrite"
    check = git.run("merge-base", "--is-ancestor", old, new, check=False)
    if check.returncode == 0:
        return "fast-forward"
    if check.returncode == 1:
        return "rewrite"
    raise GitError(f"git merge-base --is-ancestor {old} {new} failed: {check.stderr.strip()}")
