"""The common base of the test doubles (tests/doubles/<name>/<name>): what more than one double needs.

Not run on its own. Each double imports it with ONE line, ``from island_double import a, b``, and
tests/doubles/build.py replaces that line with this file's body, so every double ships as one
self-contained script (the bundle's binary, and the file the doubles' launcher runs). Standard library
only: the doubles run on Debian 12's /usr/bin/python3.

- Go value parsers: ``go_quote`` (strconv.Quote), ``go_parse_bool`` (strconv.ParseBool),
  ``go_parse_duration`` (time.ParseDuration, Go's error wording).
- A TLS server: ``tls_server_context`` from a certificate and key file, and ``TLSHTTPServer``, a
  threading HTTP server that does the TLS handshake in the request's thread, as Go's net/http does.
"""

import http.server
import json
import re
import ssl

# -------------------------------------------------------------------------------- Go value parsers


def go_quote(s: str) -> str:
    """strconv.Quote for the text the doubles print (a JSON string: the same for printable text)."""
    return json.dumps(s, ensure_ascii=False)


def go_parse_bool(text: str) -> bool | None:
    """strconv.ParseBool (go/src/strconv/atob.go); None where Go returns an error."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return None


# go/src/time/format.go unitMap: U+00B5 and U+03BC are both "micro".
GO_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def go_parse_duration(text: str) -> float:
    """time.ParseDuration (go/src/time/format.go): seconds; ValueError with Go's error wording."""
    s = text
    neg = False
    if s[:1] in ("+", "-"):
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f"time: invalid duration {go_quote(text)}")
    total = 0.0
    while s:
        m = re.match(r"(\d*)(?:\.(\d*))?", s)
        if not m or (not m.group(1) and not m.group(2)):
            raise ValueError(f"time: invalid duration {go_quote(text)}")
        number = float((m.group(1) or "0") + "." + (m.group(2) or "0"))
        s = s[m.end() :]
        unit = re.match(r"[^\d.]*", s).group(0)
        if not unit:
            raise ValueError(f"time: missing unit in duration {go_quote(text)}")
        if unit not in GO_DURATION_UNITS:
            raise ValueError(f"time: unknown unit {go_quote(unit)} in duration {go_quote(text)}")
        total += number * GO_DURATION_UNITS[unit]
        s = s[len(unit) :]
    return -total if neg else total


# ---------------------------------------------------------------------------------- the TLS server


def tls_server_context(
    cert_file, key_file, *, password=None, minimum=ssl.TLSVersion.TLSv1_2
) -> ssl.SSLContext:
    """A server context serving ``cert_file`` (the chain) with ``key_file``. Raises OSError or
    ssl.SSLError as load_cert_chain does; each double words the refusal as its upstream does."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if minimum is not None:
        context.minimum_version = minimum
    context.load_cert_chain(str(cert_file), str(key_file), password=password)
    return context


class TLSHTTPServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server; with ``ssl_context`` the TLS handshake happens in the request's own
    thread (so one slow client does not stop the accept loop), as Go's net/http serves TLS.

    ``tls_timeout`` is the socket timeout of a TLS connection (handshake and requests); a failed
    handshake goes to ``handshake_failed`` (silent here; Gitea logs it as net/http does)."""

    daemon_threads = True
    allow_reuse_address = True
    tls_timeout = 30.0

    def __init__(self, address, handler, ssl_context=None):
        self.ssl_context = ssl_context
        super().__init__(address, handler)

    def get_request(self):
        sock, addr = super().get_request()
        if self.ssl_context is None:
            return sock, addr
        sock.settimeout(self.tls_timeout)
        return self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def finish_request(self, request, client_address):
        if isinstance(request, ssl.SSLSocket):
            try:
                request.do_handshake()
            except (OSError, ssl.SSLError) as exc:
                self.handshake_failed(client_address, exc)
                return
        super().finish_request(request, client_address)

    def handshake_failed(self, client_address, exc) -> None:
        """A client whose TLS handshake failed; nothing is logged unless a double says so."""
