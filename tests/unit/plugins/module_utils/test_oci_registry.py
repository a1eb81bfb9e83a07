"""Registry client behaviour that a healthy registry never shows: retries, redirects, lies.

A scripted HTTPS server stands in for the registry here (its answers are the ones the
distribution-spec v1.1 allows); the real registry is exercised in tests/integration.
"""

from __future__ import annotations

import http.server
import io
import ssl
import threading

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_oci import (
    AuthenticationError,
    DigestMismatchError,
    RegistryClient,
    RegistryError,
    RegistryUnreachableError,
)
from ansible_collections.island.installer.plugins.module_utils.island_oci_common import sha256_digest
from ansible_collections.island.installer.plugins.module_utils.island_oci_registry import parse_challenge

from tests.support.net import free_port
from tests.support.oci import make_pki


class Scripted:
    """An HTTPS server answering from a script: {(method, path-prefix): [answers...]}."""

    def __init__(self, pki, script, silently_close=False):
        self.script = {k: list(v) for k, v in script.items()}
        self.silently_close = silently_close
        self.seen = []
        self.port = free_port()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                owner.seen.append((self.command, self.path, dict(self.headers), body))
                matches = [
                    (len(prefix), answers)
                    for (method, prefix), answers in owner.script.items()
                    if method == self.command and self.path.startswith(prefix)
                ]
                if matches:  # the longest prefix wins; the last answer repeats
                    answers = max(matches, key=lambda m: m[0])[1]
                    status, headers, payload = answers.pop(0) if len(answers) > 1 else answers[0]
                else:
                    status, headers, payload = 404, {}, b""
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v.replace("{port}", str(owner.port)))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                if owner.silently_close:  # an idle timeout without `Connection: close`
                    self.close_connection = True

            do_GET = do_HEAD = do_PUT = do_POST = _answer

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(pki["cert"]), str(pki["key"]))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def client(self, pki, **kwargs):
        kwargs.setdefault("retries", 2)
        kwargs.setdefault("backoff", 0.01)
        return RegistryClient(f"127.0.0.1:{self.port}", ca_file=str(pki["ca"]), **kwargs)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def scripted(pki):
    servers = []

    def make(script, **kwargs):
        server = Scripted(pki, script, **kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def test_challenge_parsing_keeps_quoted_commas():
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:a/b:pull,push"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:a/b:pull,push",
    }
    assert parse_challenge('Basic realm="island"') == ("basic", {"realm": "island"})


def test_server_errors_are_retried_with_backoff_then_succeed(scripted, pki):
    server = scripted({("GET", "/v2/"): [(503, {}, b""), (502, {}, b""), (200, {}, b"{}")]})
    assert server.client(pki, retries=2).ping().status == 200
    assert len(server.seen) == 3


def test_server_errors_beyond_the_retries_fail_with_the_status_and_code(scripted, pki):
    error = b'{"errors":[{"code":"UNKNOWN","message":"disk full"}]}'
    server = scripted({("GET", "/v2/"): [(500, {}, error)]})
    with pytest.raises(RegistryError) as caught:
        server.client(pki, retries=1).ping()
    assert caught.value.status == 500 and "disk full" in str(caught.value)
    assert len(server.seen) == 2


def test_a_port_nobody_listens_on_is_unreachable_with_host_and_port(pki):
    port = free_port()
    client = RegistryClient(f"127.0.0.1:{port}", ca_file=str(pki["ca"]), retries=1, backoff=0.01)
    with pytest.raises(RegistryUnreachableError, match=f"127.0.0.1:{port}"):
        client.ping()


def test_forbidden_is_an_authentication_error(scripted, pki):
    denied = b'{"errors":[{"code":"DENIED","message":"tag is immutable"}]}'
    server = scripted({("GET", "/v2/"): [(200, {}, b"{}")], ("PUT", "/v2/a/manifests/"): [(403, {}, denied)]})
    with pytest.raises(AuthenticationError, match="tag is immutable") as caught:
        server.client(pki).put_manifest("a", "1", b"{}", "application/vnd.oci.image.manifest.v1+json")
    assert caught.value.status == 403


def test_a_registry_reporting_another_manifest_digest_is_caught(scripted, pki):
    server = scripted(
        {("PUT", "/v2/a/manifests/1"): [(201, {"Docker-Content-Digest": "sha256:" + "0" * 64}, b"")]}
    )
    with pytest.raises(DigestMismatchError, match="expected " + sha256_digest(b"{}")):
        server.client(pki).put_manifest("a", "1", b"{}", "application/vnd.oci.image.manifest.v1+json")


def test_a_manifest_fetched_by_digest_must_hash_to_that_digest(scripted, pki):
    wanted = sha256_digest(b'{"a":1}')
    server = scripted({("GET", "/v2/a/manifests/"): [(200, {"Content-Type": "x"}, b'{"a":2}')]})
    with pytest.raises(DigestMismatchError, match=wanted):
        server.client(pki).get_manifest("a", wanted)


def test_a_blob_upload_with_another_digest_in_the_answer_is_caught(scripted, pki):
    data = b"blob"
    server = scripted(
        {
            ("POST", "/v2/a/blobs/uploads/"): [(202, {"Location": "/v2/a/blobs/uploads/u1?_state=x"}, b"")],
            ("PUT", "/v2/a/blobs/uploads/u1"): [(201, {"Docker-Content-Digest": "sha256:" + "1" * 64}, b"")],
        }
    )
    with pytest.raises(DigestMismatchError):
        server.client(pki).upload_blob("a", sha256_digest(data), len(data), lambda: io.BytesIO(data))
    put = next(s for s in server.seen if s[0] == "PUT")
    assert put[1] == f"/v2/a/blobs/uploads/u1?_state=x&digest={sha256_digest(data).replace(':', '%3A')}"
    assert put[3] == data


def test_a_redirected_blob_download_does_not_carry_credentials_to_the_other_host(scripted, pki):
    storage = scripted({("GET", "/storage/blob"): [(200, {}, b"content")]})
    registry = scripted(
        {
            ("GET", "/v2/"): [(401, {"WWW-Authenticate": 'Basic realm="x"'}, b""), (200, {}, b"{}")],
            ("GET", "/v2/a/blobs/"): [
                (307, {"Location": f"https://localhost:{storage.port}/storage/blob"}, b"")
            ],
        }
    )
    client = registry.client(pki, username="u", password="p")
    client.ping()
    chunks = b"".join(client.get_blob_chunks("a", sha256_digest(b"content")))
    assert chunks == b"content"
    assert "Authorization" in registry.seen[-1][2]
    assert "Authorization" not in storage.seen[0][2]


def test_a_kept_alive_connection_closed_by_the_server_is_replaced_without_spending_a_retry(scripted, pki):
    data = b"streamed body"
    server = scripted(
        {
            ("GET", "/v2/"): [(200, {}, b"{}")],
            ("POST", "/v2/a/blobs/uploads/"): [(202, {"Location": "/v2/a/blobs/uploads/u1"}, b"")],
            ("PUT", "/v2/a/blobs/uploads/u1"): [(201, {"Docker-Content-Digest": sha256_digest(data)}, b"")],
        },
        silently_close=True,
    )
    client = server.client(pki, retries=0)
    client.ping()
    client.upload_blob("a", sha256_digest(data), len(data), lambda: io.BytesIO(data))
    put = next(s for s in server.seen if s[0] == "PUT")
    assert put[3] == data


def test_a_tag_list_in_pages_is_followed_to_its_last_page(scripted, pki):
    # distribution v3 pages tags as 2.8.2 pages the catalog: a Link to ?n=..&last=.. while more remain
    link = {"Link": '</v2/a/tags/list?last=2&n=2>; rel="next"'}
    server = scripted(
        {("GET", "/v2/a/tags/list"): [(200, link, b'{"tags":["1","2"]}'), (200, {}, b'{"tags":["3"]}')]}
    )
    assert server.client(pki).list_tags("a", page_size=2) == ["1", "2", "3"]
    assert [s[1] for s in server.seen] == ["/v2/a/tags/list?n=2", "/v2/a/tags/list?last=2&n=2"]


def test_a_listing_whose_next_page_is_itself_ends_and_one_without_json_is_named(scripted, pki):
    loop = {"Link": '</v2/_catalog?n=100>; rel="next"'}
    server = scripted({("GET", "/v2/_catalog"): [(200, loop, b'{"repositories":["a"]}')]})
    assert server.client(pki).list_repositories() == ["a"]
    assert len(server.seen) == 1
    broken = scripted({("GET", "/v2/_catalog"): [(200, {}, b"<html>")]})
    with pytest.raises(RegistryError) as caught:
        broken.client(pki).list_repositories()
    assert "list repositories" in str(caught.value) and "no JSON list" in str(caught.value)
