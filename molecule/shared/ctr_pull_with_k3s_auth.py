#!/usr/bin/python3
"""Test equipment: pull an image with Debian's ctr through the hosts.toml files k3s rendered, with
the credentials k3s hands containerd.

k3s puts registry auth in containerd's CRI configuration, never in hosts.toml; ctr does not read
the CRI configuration, and takes credentials only as `--user user[:password]`. So this helper reads
the credentials from /etc/rancher/k3s/registries.yaml exactly as k3s keys them (configs under the
mirror ENDPOINT's host[:port]), passes only the user name on ctr's command line, and answers ctr's
password prompt through a pseudo-terminal once echo is off: the password is never in argv.

usage: ctr_pull_with_k3s_auth.py REFERENCE@DIGEST HOSTS_DIR [CONTAINERD_ADDRESS]
"""

import os
import pty
import select
import sys
import termios
import time
import urllib.parse

import yaml


def credentials(reference):
    with open("/etc/rancher/k3s/registries.yaml") as handle:
        registries = yaml.safe_load(handle)
    upstream = reference.split("/", 1)[0]
    mirror = registries["mirrors"].get(upstream) or registries["mirrors"]["*"]
    endpoint = urllib.parse.urlsplit(mirror["endpoint"][0]).netloc
    auth = registries.get("configs", {}).get(endpoint, {}).get("auth")
    if not auth:
        sys.exit(f"registries.yaml has no auth under configs[{endpoint!r}] (the mirror of {upstream})")
    return auth["username"], auth["password"]


def main():
    reference, hosts_dir = sys.argv[1], sys.argv[2]
    address = sys.argv[3] if len(sys.argv) > 3 else "/run/containerd/containerd.sock"
    user, password = credentials(reference)
    argv = [
        "ctr",
        "--address",
        address,
        "-n",
        "test",
        "image",
        "pull",
        "--snapshotter",
        "native",
        "--hosts-dir",
        hosts_dir,
        "--user",
        user,
        reference,
    ]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)  # noqa: S606 (ctr runs in the pty's child, with an argument list)
    output, answered, deadline = b"", False, time.monotonic() + 120
    while time.monotonic() < deadline:
        # Answer the prompt once ctr has turned echo off, so the password is not echoed back.
        if not answered and b"Password:" in output and not termios.tcgetattr(fd)[3] & termios.ECHO:
            os.write(fd, password.encode() + b"\n")
            answered = True
            continue
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            output += data
    _, status = os.waitpid(pid, 0)
    text = output.decode(errors="replace").replace(password, "********")
    print(text)
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
