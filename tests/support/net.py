"""Loopback network helpers: a free port, and waiting until a port or a URL answers."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port(family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM) -> int:
    """A port nobody holds on 127.0.0.1 (or ::1 for AF_INET6) right now, for a server to bind."""
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    with socket.socket(family, kind) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def free_tcp_and_udp_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 right now (for a DNS server)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


def wait_until(
    ready: Callable[[], object],
    timeout: float = 20,
    interval: float = 0.1,
    what: str = "the condition",
    alive: Callable[[], None] | None = None,
):
    """Call ``ready`` until it returns something true (returned) or ``timeout`` seconds pass.

    ``ready`` raising OSError counts as "not yet". ``alive``, when given, is called first on every
    round and raises when the thing waited for cannot come any more (a process that exited).
    """
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None:
            alive()
        try:
            result = ready()
        except OSError:
            result = None
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} did not happen within {timeout} s")
        time.sleep(interval)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when a TCP connection to host:port succeeds now."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 20) -> None:
    """Wait until something accepts TCP connections on host:port."""
    wait_until(lambda: port_open(port, host), timeout=timeout, what=f"a listener on {host}:{port}")
