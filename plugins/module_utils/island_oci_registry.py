# Copyright: island installer contributors
# A registry client for the distribution API v2 on the standard library alone (http.client + ssl),
# so that modules run on ansible-core without `requests`.
#
# Protocol facts relied on, checked against distribution 2.8.2 (the Debian `docker-registry`
# package the tests run) and the OCI distribution-spec v1.1:
# - `GET /v2/` answers 200, or 401 with `WWW-Authenticate: Basic realm=..` (htpasswd) or
#   `Bearer realm=..,service=..,scope=..` (token auth); tokens come from `GET <realm>?service=&scope=`
#   as JSON `{"token": ..}` or `{"access_token": ..}` (docker token spec).
# - Manifests: HEAD/GET need an `Accept` listing every type the client understands, or distribution
#   2.8.2 falls back to a schema1 conversion (Docker types) or 404 (OCI types). PUT takes the
#   exact bytes with `Content-Type` equal to the manifest's mediaType and answers 201 with
#   `Docker-Content-Digest` = sha256 of those bytes.
# - Blobs: `HEAD /v2/<name>/blobs/<digest>` is 200/404 per repository. Upload: `POST
#   /v2/<name>/blobs/uploads/` -> 202 + Location (absolute in 2.8.2, with a `_state` query that
#   must be kept), then `PUT <Location>&digest=<d>` with the whole body -> 201 + Docker-Content-Digest.
#   Cross-repository mount: `POST ..uploads/?mount=<d>&from=<repo>` -> 201 when mounted, 202 plus a
#   fresh upload session when not (the blob is unknown in `from`, or not readable for us).
# - Errors: JSON `{"errors": [{"code", "message", "detail"}]}`.
from __future__ import annotations

import base64
import http.client
import json
import random
import ssl
import threading
import time
import urllib.parse

from ansible_collections.island.installer.plugins.module_utils.island_oci_common import (
    MANIFEST_ACCEPT,
    AuthenticationError,
    DigestMismatchError,
    OCIError,
    RegistryError,
    RegistryUnreachableError,
    TLSError,
    sha256_digest,
)

CHUNK = 1024 * 1024
USER_AGENT = "island-installer-oci/1"
_REDIRECTS = (301, 302, 303, 307, 308)


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def error_codes(self):
        try:
            doc = json.loads(self.body.decode("utf-8"))
            return [(e.get("code"), e.get("message")) for e in doc.get("errors") or []]
        except (ValueError, AttributeError):
            return []


class _Retry(Exception):
    """A transient failure (connection error or 5xx) worth another attempt.

    ``stale``: a kept-alive connection the server had closed failed before any answer; resending
    at once on a new connection is safe and does not count as a retry (as urllib3 does).
    """

    def __init__(self, cause, stale=False):
        self.cause = cause
        self.stale = stale
        super().__init__(str(cause))


def parse_challenge(header):
    """Parse `WWW-Authenticate` into (scheme, {param: value}); quoted values may contain commas."""
    scheme, _, rest = (header or "").strip().partition(" ")
    params = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " ,":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lower()
        i = eq + 1
        if i < n and rest[i] == '"':
            end = i + 1
            value = []
            while end < n and rest[end] != '"':
                if rest[end] == "\\" and end + 1 < n:
                    end += 1
                value.append(rest[end])
                end += 1
            params[key] = "".join(value)
            i = end + 1
        else:
            end = rest.find(",", i)
            end = n if end < 0 else end
            params[key] = rest[i:end].strip()
            i = end
    return scheme.lower(), params


class RegistryClient:
    """Talks to ONE registry (``host:port``) over HTTPS verified against ``ca_file``.

    TLS verification cannot be switched off. Safe to share between threads: each thread keeps its
    own keep-alive connection, authentication state is shared.
    """

    def __init__(
        self, registry, *, ca_file=None, username=None, password=None, retries=3, backoff=0.5, timeout=300.0
    ):
        self.registry = registry
        host, _, port = registry.rpartition(":")
        if not host or not port.isdigit():
            host, port = registry, "443"
        self.host = host.strip("[]")
        self.port = int(port)
        self.ca_file = ca_file
        self.username = username
        self.password = password
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self.timeout = timeout
        try:
            self._ssl = ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise TLSError(f"cannot load CA file {ca_file}: {exc}") from None
        self._ssl.check_hostname = True
        self._ssl.verify_mode = ssl.CERT_REQUIRED
        self._local = threading.local()
        self._lock = threading.Lock()
        self._challenge = None  # (scheme, params) from the registry's last 401
        self._tokens = {}  # scope string -> bearer token

    # -- connections ------------------------------------------------------------------------------
    def _conn(self, host, port):
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        conn = conns.get((host, port))
        if conn is None:
            conn = http.client.HTTPSConnection(
                host, port, context=self._ssl, timeout=self.timeout, blocksize=CHUNK
            )
            conns[(host, port)] = conn
        return conn

    def _drop(self, host, port):
        conns = getattr(self._local, "conns", {})
        conn = conns.pop((host, port), None)
        if conn is not None:
            conn.close()

    def close(self):
        for key in list(getattr(self._local, "conns", {})):
            self._drop(*key)

    # -- authentication ---------------------------------------------------------------------------
    def _basic(self):
        raw = "{}:{}".format(self.username or "", self.password or "").encode("utf-8")
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def _auth_header(self, scope):
        with self._lock:
            challenge = self._challenge
            if challenge is None:
                return None
            if challenge[0] == "basic":
                return self._basic() if self.username is not None else None
            token = self._tokens.get(scope)
            params = challenge[1]
        if token is None and scope:
            # Bearer: fetch the token for a new scope up front instead of collecting a 401 first.
            token = self._fetch_token(params, [s for s in scope.split(" ") if s])
            with self._lock:
                self._tokens[scope] = token
        return "Bearer " + token if token else None

    def _authenticate(self, response, scope, sent_auth):
        """Handle a 401: remember the challenge, fetch a token if needed; False if hopeless.

        A 401 to a request that carried Basic credentials means they were refused; a 401 to a
        Bearer token may mean it expired, so one fresh token is tried (the caller bounds retries).
        """
        scheme, params = parse_challenge(response.header("www-authenticate"))
        with self._lock:
            self._challenge = (scheme, params)
        if scheme == "basic":
            return self.username is not None and not sent_auth
        if scheme == "bearer":
            scopes = [s for s in (scope or "").split(" ") if s]
            if params.get("scope") and params["scope"] not in scopes:
                scopes.append(params["scope"])
            token = self._fetch_token(params, scopes)
            with self._lock:
                self._tokens[scope] = token
            return True
        return False

    def _fetch_token(self, params, scopes):
        realm = params.get("realm")
        if not realm:
            raise AuthenticationError(f"{self.registry} sent a Bearer challenge without realm")
        query = []
        if params.get("service"):
            query.append(("service", params["service"]))
        query.extend(("scope", s) for s in scopes)
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "https":
            raise AuthenticationError(f"refusing token realm {realm}: not https")
        headers = {"User-Agent": USER_AGENT}
        if self.username is not None:
            headers["Authorization"] = self._basic()
        target = parts.path + ("?" + parts.query if parts.query else "")
        response = self._send((parts.hostname, parts.port or 443), "GET", target, headers=headers, body=None)
        if response.status in (401, 403):
            raise AuthenticationError(
                "token service {} refused the credentials of {!r} for {} (HTTP {})".format(
                    realm, self.username, " ".join(scopes), response.status
                ),
                status=response.status,
            )
        if response.status != 200:
            raise RegistryError(
                f"token service {realm} answered HTTP {response.status}", status=response.status
            )
        try:
            doc = json.loads(response.body.decode("utf-8"))
            return doc.get("token") or doc["access_token"]
        except (ValueError, KeyError) as exc:
            raise AuthenticationError(f"token service {realm} sent no token: {exc}") from None

    # -- requests ---------------------------------------------------------------------------------
    def _send(self, where, method, target, *, headers, body, stream=False):
        """One HTTP exchange on this thread's connection; connection errors become _Retry."""
        host, port = where
        conn = self._conn(host, port)
        where = f"{host}:{port}"
        reused = conn.sock is not None
        try:
            conn.request(method, target, body=body, headers=headers)
            raw = conn.getresponse()
            headers_out = {k.lower(): v for k, v in raw.getheaders()}
            if stream and raw.status == 200:
                return Response(raw.status, headers_out, raw)
            data = raw.read()
        except ssl.SSLCertVerificationError as exc:
            self._drop(host, port)
            reason = exc.verify_message or str(exc.reason)
            if "mismatch" in reason:
                hint = (
                    f"the registry certificate is not valid for the name {host!r} (name mismatch: "
                    f"{reason}); reach the registry by a name its certificate carries"
                )
            else:
                hint = (
                    f"the registry certificate is not trusted by {self.ca_file or 'the system trust store'} "
                    f"({reason}); give the CA that signed it"
                )
            raise TLSError(f"TLS verification of {where} failed: {hint}") from None
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:
            self._drop(host, port)
            raise _Retry(f"{where}: connection closed during TLS ({exc})", stale=reused) from None
        except ssl.SSLError as exc:
            self._drop(host, port)
            raise TLSError(f"TLS with {where} failed: {exc}") from None
        except (OSError, http.client.HTTPException) as exc:
            self._drop(host, port)
            stale = reused and isinstance(
                exc,
                (
                    http.client.RemoteDisconnected,
                    BrokenPipeError,
                    ConnectionResetError,
                    ConnectionAbortedError,
                ),
            )
            raise _Retry(f"{where}: {exc or type(exc).__name__}", stale=stale) from None
        if raw.will_close:
            self._drop(host, port)
        return Response(raw.status, headers_out, data)

    def request(
        self, method, path, *, headers=None, body=None, scope=None, stream=False, retry=True, image=None
    ):
        """Send a request to the registry, handling auth, redirects (GET/HEAD) and retries.

        ``body`` is bytes, or a callable that returns a fresh file-like object for each attempt
        (streamed from disk). Returns a Response; 5xx and connection errors are retried with
        exponential backoff when ``retry`` is true, then raised as RegistryError or
        RegistryUnreachableError.
        """
        attempts = (self.retries + 1) if retry else 1
        last = None
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.backoff * (2 ** (attempt - 1)) * (1 + random.random() / 4))  # noqa: S311 - jitter, not crypto
            try:
                response = self._request_once(
                    method, path, headers=headers, body=body, scope=scope, stream=stream, image=image
                )
            except _Retry as exc:
                last = exc
                continue
            if response.status >= 500 or response.status == 429:
                last = RegistryError(
                    "{} {} answered HTTP {} {}".format(
                        method, path.split("?")[0], response.status, _codes_text(response)
                    ),
                    image=image,
                    status=response.status,
                    codes=[c for c, _ in response.error_codes()],
                )
                if stream and hasattr(response.body, "close"):
                    response.body.close()
                if attempt + 1 < attempts:
                    continue
                raise last
            return response
        if isinstance(last, _Retry):
            raise RegistryUnreachableError(
                f"registry {self.registry} unreachable after {attempts} attempt(s): {last.cause}",
                image=image,
            )
        raise last

    def _request_once(self, method, path, *, headers, body, scope, stream, image):
        host, port, target = self._split(path)
        reauthenticated = fresh_tried = False
        for _ in range(5):  # first try, stale connection, authentication, redirects
            hdrs = {"User-Agent": USER_AGENT}
            hdrs.update(headers or {})
            auth = self._auth_header(scope) if (host, port) == (self.host, self.port) else None
            if auth:
                hdrs["Authorization"] = auth
            payload = body() if callable(body) else body
            try:
                response = self._send((host, port), method, target, headers=hdrs, body=payload, stream=stream)
            except _Retry as exc:
                if not exc.stale or fresh_tried:
                    raise
                fresh_tried = True
                continue
            finally:
                if payload is not None and hasattr(payload, "close"):
                    payload.close()
            if response.status == 401 and (host, port) == (self.host, self.port):
                if not reauthenticated and self._authenticate(response, scope, bool(auth)):
                    reauthenticated = True
                    continue
                raise AuthenticationError(
                    "authentication refused by registry {} for user {!r} ({} {}: {})".format(
                        self.registry, self.username, method, target.split("?")[0], _codes_text(response)
                    ),
                    image=image,
                    status=401,
                    codes=[c for c, _ in response.error_codes()],
                )
            if response.status == 403:
                raise AuthenticationError(
                    "registry {} denied {} {} to user {!r}: {}".format(
                        self.registry, method, target.split("?")[0], self.username, _codes_text(response)
                    ),
                    image=image,
                    status=403,
                    codes=[c for c, _ in response.error_codes()],
                )
            if response.status in _REDIRECTS and method in ("GET", "HEAD"):
                location = response.header("location")
                if stream and hasattr(response.body, "close"):
                    response.body.read()
                new = urllib.parse.urljoin(f"https://{host}:{port}{target}", location)
                parts = urllib.parse.urlsplit(new)
                if parts.scheme != "https":
                    raise RegistryError(f"refusing redirect to {new}: not https", image=image)
                host, port = parts.hostname, parts.port or 443
                target = parts.path + ("?" + parts.query if parts.query else "")
                continue
            return response
        return response

    def _split(self, path):
        if path.startswith("https://") or path.startswith("http://"):
            parts = urllib.parse.urlsplit(path)
            if parts.scheme != "https":
                raise RegistryError(f"refusing plain-http URL {path}")
            target = parts.path + ("?" + parts.query if parts.query else "")
            return parts.hostname, parts.port or 443, target
        return self.host, self.port, path

    # -- API --------------------------------------------------------------------------------------
    def ping(self):
        response = self.request("GET", "/v2/", scope="")
        if response.status != 200:
            raise RegistryError(
                f"{self.registry} does not speak the distribution API v2 "
                f"(GET /v2/ -> HTTP {response.status})",
                status=response.status,
            )
        return response

    @staticmethod
    def scope(repo, push=False):
        return "repository:{}:{}".format(repo, "pull,push" if push else "pull")

    def _manifest_request(self, method, repo, reference, image):
        return self.request(
            method,
            f"/v2/{repo}/manifests/{reference}",
            headers={"Accept": MANIFEST_ACCEPT},
            scope=self.scope(repo),
            image=image,
        )

    def head_manifest(self, repo, reference, image=None):
        """(digest, media_type, size) of the manifest ``reference`` (tag or digest) in ``repo``, or None."""
        response = self._manifest_request("HEAD", repo, reference, image)
        if response.status == 404:
            return None
        _expect(response, (200,), f"HEAD manifest {repo}:{reference}", image)
        digest = response.header("docker-content-digest")
        if not digest:  # spec v1.1 says SHOULD; fetch and hash when a registry leaves it out
            data, media_type, digest = self.get_manifest(repo, reference, image=image)
            return digest, media_type, len(data)
        return digest, response.header("content-type"), int(response.header("content-length", "0"))

    def get_manifest(self, repo, reference, image=None):
        """(bytes, media_type, digest) exactly as the registry stores them."""
        response = self._manifest_request("GET", repo, reference, image)
        _expect(response, (200,), f"GET manifest {repo}:{reference}", image)
        digest = sha256_digest(response.body)
        if reference.startswith("sha256:") and reference != digest:
            raise DigestMismatchError(
                f"manifest {repo}@{reference} from {self.registry} hashes to {digest}", image=image
            )
        _check_claimed_digest(
            response,
            digest,
            image,
            lambda claimed: (
                f"registry {self.registry} says manifest {repo}:{reference} is {claimed} "
                f"but its bytes hash to {digest}"
            ),
        )
        return response.body, response.header("content-type"), digest

    def put_manifest(self, repo, reference, data, media_type, image=None):
        """PUT exact manifest bytes; checks the registry's Docker-Content-Digest against ours."""
        digest = sha256_digest(data)
        response = self.request(
            "PUT",
            f"/v2/{repo}/manifests/{reference}",
            headers={"Content-Type": media_type, "Content-Length": str(len(data))},
            body=data,
            scope=self.scope(repo, push=True),
            image=image,
        )
        _expect(response, (201,), f"PUT manifest {repo}:{reference}", image)
        _check_claimed_digest(
            response,
            digest,
            image,
            lambda claimed: (
                f"registry {self.registry} stored manifest {repo}:{reference} as {claimed}, expected {digest}"
            ),
        )
        return digest

    def head_blob(self, repo, digest, image=None):
        response = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scope=self.scope(repo), image=image)
        if response.status == 404:
            return False
        _expect(response, (200,), f"HEAD blob {repo}@{digest}", image)
        return True

    def mount_blob(self, repo, digest, from_repo, image=None):
        """Try a cross-repository mount: (True, None) when mounted (201), else (False, upload URL)."""
        query = urllib.parse.urlencode({"mount": digest, "from": from_repo})
        response = self.request(
            "POST",
            f"/v2/{repo}/blobs/uploads/?{query}",
            headers={"Content-Length": "0"},
            body=b"",
            scope=f"{self.scope(repo, push=True)} {self.scope(from_repo)}",
            image=image,
        )
        _expect(response, (201, 202), f"mount blob {digest} from {from_repo} into {repo}", image)
        if response.status == 201:
            return True, None
        return False, response.header("location")

    def start_upload(self, repo, image=None):
        response = self.request(
            "POST",
            f"/v2/{repo}/blobs/uploads/",
            headers={"Content-Length": "0"},
            body=b"",
            scope=self.scope(repo, push=True),
            image=image,
        )
        _expect(response, (202,), f"start upload in {repo}", image)
        location = response.header("location")
        if not location:
            raise RegistryError(f"registry {self.registry} sent no upload Location", image=image)
        return location

    def upload_blob(self, repo, digest, size, opener, *, image=None, location=None):
        """Upload one blob, body streamed from ``opener()`` (a fresh file-like object per attempt).

        Monolithic upload: POST for a session, then one PUT with the whole body streamed in 1 MiB
        blocks (memory stays flat whatever the size). A failed attempt restarts from a new session
        (distribution 2.8.2 does not keep partial monolithic uploads), with backoff. The reader may
        verify the blob against its name (HashingReader) and raise BlobCorruptError afterwards.
        """
        attempts = self.retries + 1
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.backoff * (2 ** (attempt - 1)))
                location = None
            try:
                if location is None:
                    location = self.start_upload(repo, image=image)
                sep = "&" if "?" in location else "?"
                target = location + sep + urllib.parse.urlencode({"digest": digest})
                reader_box = []

                def body(_box=reader_box):
                    reader = opener()
                    _box.append(reader)
                    return reader

                response = self.request(
                    "PUT",
                    target,
                    headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                    body=body,
                    scope=self.scope(repo, push=True),
                    retry=False,
                    image=image,
                )
                if reader_box and hasattr(reader_box[-1], "verify"):
                    reader_box[-1].verify()
            except (RegistryUnreachableError, _Retry) as exc:
                if attempt + 1 < attempts:
                    continue
                if isinstance(exc, _Retry):
                    raise RegistryUnreachableError(
                        f"registry {self.registry} unreachable: {exc.cause}", image=image
                    ) from None
                raise
            except RegistryError as exc:
                if (exc.status or 0) >= 500 and attempt + 1 < attempts:
                    continue
                raise
            if response.status >= 500 and attempt + 1 < attempts:
                continue
            if response.status == 400 and any(c == "DIGEST_INVALID" for c, _ in response.error_codes()):
                raise DigestMismatchError(
                    f"registry {self.registry} computed another digest than {digest} for the uploaded blob",
                    image=image,
                )
            _expect(response, (201,), f"upload blob {digest} to {repo}", image)
            claimed = response.header("docker-content-digest")
            if claimed and claimed != digest:
                raise DigestMismatchError(
                    f"registry {self.registry} stored blob {digest} as {claimed}", image=image
                )
            return digest
        raise OCIError("unreachable")  # pragma: no cover

    def get_blob_chunks(self, repo, digest, image=None):
        """Yield the blob's bytes in chunks (redirects followed, Authorization not forwarded)."""
        response = self.request(
            "GET", f"/v2/{repo}/blobs/{digest}", scope=self.scope(repo), stream=True, image=image
        )
        _expect(response, (200,), f"GET blob {repo}@{digest}", image)
        raw = response.body
        try:
            yield from iter(lambda: raw.read(CHUNK), b"")
        except (OSError, http.client.HTTPException) as exc:
            raise RegistryUnreachableError(
                f"download of {repo}@{digest} from {self.registry} broke off: {exc}", image=image
            ) from None
        finally:
            raw.close()

    def _pages(self, path, key, scope, what, image=None):
        """Every entry of a paginated list (catalog, tags), following `Link: <..>; rel="next"`.

        distribution 2.8.2 pages the catalog (registry/handlers/catalog.go: `n`, default 100, and a
        Link header to `?last=<last entry>&n=<n>` while more remain) and lists every tag at once;
        v3 pages tags the same way. A 404 (an unknown repository) is an empty list.
        """
        entries, target, seen = [], path, set()
        while target and target not in seen:
            seen.add(target)
            response = self.request("GET", target, scope=scope, image=image)
            if response.status == 404:
                return entries
            _expect(response, (200,), what, image)
            try:
                entries.extend(json.loads(response.body.decode("utf-8")).get(key) or [])
            except (ValueError, AttributeError) as exc:
                raise RegistryError(
                    f"{what}: {self.registry} answered no JSON list ({exc})", image=image
                ) from None
            target = _next_link(response.header("link"))
        return entries

    def list_repositories(self, page_size=100):
        """Every repository of the registry (GET /v2/_catalog, all pages)."""
        return self._pages(
            f"/v2/_catalog?n={int(page_size)}", "repositories", "registry:catalog:*", "list repositories"
        )

    def list_tags(self, repo, image=None, page_size=None):
        query = f"?n={int(page_size)}" if page_size else ""
        return self._pages(
            f"/v2/{repo}/tags/list{query}", "tags", self.scope(repo), f"list tags of {repo}", image
        )


def _next_link(header):
    """The target of a `Link: <url>; rel="next"` header (RFC 8288), or None."""
    for part in (header or "").split(","):
        url, _, params = part.strip().partition(";")
        if url.startswith("<") and url.endswith(">") and 'rel="next"' in params.replace(" ", ""):
            target = urllib.parse.urlsplit(url[1:-1])
            return target.path + ("?" + target.query if target.query else "")
    return None


def _codes_text(response):
    codes = response.error_codes()
    if not codes:
        return f"HTTP {response.status}"
    return "; ".join(f"{c}: {m}" for c, m in codes)


def _check_claimed_digest(response, digest, image, message):
    """The registry's Docker-Content-Digest, when it sends one, must be ``digest``.

    ``message(claimed)`` says what is wrong.
    """
    claimed = response.header("docker-content-digest")
    if claimed and claimed != digest:
        raise DigestMismatchError(message(claimed), image=image)


def _expect(response, statuses, what, image):
    if response.status in statuses:
        return
    body = getattr(response.body, "read", None)
    if body is not None:
        response.body = response.body.read()
    raise RegistryError(
        f"{what} failed: HTTP {response.status} ({_codes_text(response)})",
        image=image,
        status=response.status,
        codes=[c for c, _ in response.error_codes()],
    )
