"""The pki role's issue entry point as the service roles call it: one task (action
island_cert_issue) makes the key and CSR on the host, lets the CA judge and sign on the controller,
and installs the certificate; run through ansible-playbook against this machine."""

from __future__ import annotations

import getpass
import grp
import os
import stat
import sys

import pytest

from tests.support.island_pki import PASSPHRASE, openssl_verify
from tests.support.playbook import run_play_with_secret_vars

SANS = ["DNS:svc.island.internal", "IP:127.0.0.1"]

PLAYBOOK = """
- name: A service's island certificate through the pki role's issue entry point
  hosts: all
  gather_facts: false
  tasks:
    - name: Island CA exists
      island_ca:
        path: "{{ pki_dir }}"
        passphrase: "{{ ca_passphrase }}"
        domains: [island.internal]
        ip_ranges: [127.0.0.0/8]
      register: pki_ca
    - name: The service has its certificate
      ansible.builtin.include_role:
        name: pki
        tasks_from: issue
      vars:
        pki_issue_name: svc
        pki_issue_sans: "{{ sans }}"
        pki_issue_dir: "{{ host_dir }}"
        pki_issue_owner: "{{ owner }}"
        pki_issue_group: "{{ group }}"
        pki_issue_notify: The service restarts
  handlers:
    - name: The service restarts
      ansible.builtin.debug:
        msg: restarted
"""


def _run(tmp_path, sans=SANS, *extra, passphrase=PASSPHRASE):
    # The CA is made with the right passphrase; pki_passphrase is what the issuing task is given.
    variables = {
        "pki_dir": str(tmp_path / "ca"),
        "host_dir": str(tmp_path / "host" / "tls"),
        "ca_passphrase": PASSPHRASE,
        "pki_passphrase": passphrase,
        "sans": sans,
        "owner": getpass.getuser(),
        "group": grp.getgrgid(os.getgid()).gr_name,
        "ansible_python_interpreter": sys.executable,
    }
    return run_play_with_secret_vars(tmp_path, PLAYBOOK, variables, *extra)


def _task(report, prefix):
    for play in report["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].split(" : ", 1)[-1].startswith(prefix):
                return task["hosts"]["localhost"]
    raise AssertionError(f"no task named {prefix!r}... in {_names(report)}")


def _names(report):
    return [task["task"]["name"] for play in report["plays"] for task in play["tasks"]]


@pytest.mark.slow
def test_one_task_issues_installs_and_then_leaves_a_good_certificate_alone(tmp_path):
    proc, report = _run(tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    issued = _task(report, "The island certificate is current on the host for svc")
    assert issued["changed"] is True and "censored" in issued  # no_log: the CA passphrase passed
    assert _task(report, "Why the certificate is issued again")["msg"]["reason"] == "no certificate yet"
    assert "restarted" in proc.stdout  # the caller's handler is told
    crt, key = tmp_path / "host" / "tls" / "svc.crt", tmp_path / "host" / "tls" / "svc.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o640
    ok, output = openssl_verify(tmp_path / "ca" / "trust-bundle.pem", crt, crt)
    assert ok, output
    # pki_issued for a caller outside the island model
    assert "pki : Where the key and certificate are is known to the play for svc" in _names(report)

    before = crt.read_bytes()
    proc, report = _run(tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert report["stats"]["localhost"]["changed"] == 0
    assert crt.read_bytes() == before


@pytest.mark.slow
def test_a_good_certificate_needs_no_ca_key_and_a_due_one_names_the_wrong_passphrase(tmp_path):
    assert _run(tmp_path)[0].returncode == 0
    # Nothing to sign: the CA key is not decrypted, so a wrong passphrase goes unnoticed (island_ca
    # itself checks it every run).
    proc, report = _run(tmp_path, passphrase="not-the-passphrase")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert report["stats"]["localhost"]["changed"] == 0

    # Check mode with another name: the reason is shown, nothing is written.
    crt = tmp_path / "host" / "tls" / "svc.crt"
    before = crt.read_bytes()
    proc, report = _run(tmp_path, [*SANS, "DNS:svc2.island.internal"], "--check")
    assert proc.returncode == 0, proc.stdout[-4000:]
    shown = _task(report, "Why the certificate is issued again")
    assert "SAN set differs" in shown["msg"]["reason"]
    assert crt.read_bytes() == before

    # Signing is due and the passphrase is wrong: the failure says why, naming the key file, and
    # never shows the passphrase.
    proc, report = _run(tmp_path, [*SANS, "DNS:svc2.island.internal"], passphrase="not-the-passphrase")
    assert proc.returncode != 0
    failed = _task(report, "Why the certificate is issued again")
    assert "localhost svc: the island CA" in failed["msg"] and "could not be decrypted" in failed["msg"]
    assert "not-the-passphrase" not in proc.stdout + proc.stderr
    assert crt.read_bytes() == before
