"""The island PKI modules: in-process (results, check mode, errors) and end to end via ansible-playbook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.island.installer.plugins.modules import (
    island_ca,
    island_cert,
    island_cert_sign,
    island_csr,
)

from tests.support import ROOT
from tests.support.island_pki import PASSPHRASE, openssl_verify, snapshot, tls_fetch, tls_server
from tests.support.modules import ModuleFail, run_module
from tests.support.playbook import ansible_doc, run_play_with_secret_vars

SANS = ["DNS:git.island.internal", "IP:127.0.0.1"]


def _ca_args(tmp_path, **extra):
    args = {"path": str(tmp_path / "ca"), "passphrase": PASSPHRASE, "domains": ["island.internal"]}
    args["ip_ranges"] = ["127.0.0.0/8"]
    args.update(extra)
    return args


def _sign_args(ca, csr, **extra):
    """island_cert_sign's arguments: ``csr`` signed by the intermediate of the island_ca result."""
    return {
        "csr": csr["csr"],
        "ca_cert_path": ca["intermediate_cert_path"],
        "ca_key_path": ca["intermediate_key_path"],
        "ca_certificate": ca["intermediate_certificate"],
        "ca_passphrase": PASSPHRASE,
        **extra,
    }


def _flow(tmp_path, sans=SANS, check_mode=False):
    """CA, then key+CSR on the 'host', then sign, then install; returns the four results."""
    ca = run_module(island_ca, _ca_args(tmp_path), check_mode=check_mode, diff=True)
    key, crt = tmp_path / "host" / "git.key", tmp_path / "host" / "git.crt"
    key.parent.mkdir(exist_ok=True)
    csr = run_module(island_csr, {"path": str(key), "subject_alt_names": sans}, check_mode=check_mode)
    signed = run_module(
        island_cert_sign,
        _sign_args(
            ca, csr, current_certificate=crt.read_text() if crt.exists() else "", requester="host1 gitea"
        ),
        check_mode=check_mode,
        diff=True,
    )
    installed = None
    if signed["certificate"]:
        installed = run_module(
            island_cert,
            {
                "path": str(crt),
                "certificate": signed["certificate"],
                "chain": signed["chain"],
                "key_path": str(key),
            },
            check_mode=check_mode,
            diff=True,
        )
    return ca, csr, signed, installed


def test_the_modules_issue_once_and_then_report_no_change(tmp_path):
    ca, csr, signed, installed = _flow(tmp_path)
    assert [r["changed"] for r in (ca, csr, signed, installed)] == [True, True, True, True]
    assert signed["reason"] == "no certificate yet"
    assert signed["subject_alt_names"] == ["dns:git.island.internal", "ip:127.0.0.1"]
    assert installed["reason"] == "no certificate file yet"
    assert csr["key_created"] is True
    ca, csr, signed, installed = _flow(tmp_path)
    assert [r["changed"] for r in (ca, csr, signed, installed)] == [False, False, False, False]
    assert signed["reason"] is None and ca["reason"] is None


def test_module_results_never_carry_the_passphrase_or_a_private_key(tmp_path):
    results = _flow(tmp_path)
    text = json.dumps(results)
    assert PASSPHRASE not in text
    assert "PRIVATE KEY" not in text


def test_island_ca_returns_the_trust_bundle_and_the_signing_paths(tmp_path):
    ca = run_module(island_ca, _ca_args(tmp_path, next_root_generation=2))
    assert ca["trusted_root_generations"] == [1, 2]
    assert ca["trust_bundle"].count("BEGIN CERTIFICATE") == 2
    assert Path(ca["trust_bundle_path"]).read_text() == ca["trust_bundle"]
    assert ca["intermediate_cert_path"].endswith("intermediate-r1-i1.crt")
    assert ca["name_constraints"] == {"domains": ["island.internal"], "ip_ranges": ["127.0.0.0/8"]}


def test_check_mode_through_the_modules_writes_nothing_and_diffs_subject_sans_and_expiry(tmp_path):
    _flow(tmp_path)
    before = snapshot(tmp_path)
    _, _, signed, installed = _flow(tmp_path, sans=[*SANS, "DNS:code.island.internal"], check_mode=True)
    assert snapshot(tmp_path) == before
    assert signed["changed"]
    assert signed["reason"] == "SAN set differs: +dns:code.island.internal"
    assert signed["diff"]["before"]["subject_alt_names"] == ["dns:git.island.internal", "ip:127.0.0.1"]
    assert signed["diff"]["after"]["subject_alt_names"] == [
        "dns:git.island.internal",
        "ip:127.0.0.1",
        "dns:code.island.internal",
    ]
    assert (
        signed["diff"]["before"]["subject"] == signed["diff"]["after"]["subject"] == "CN=git.island.internal"
    )
    assert "not_after" in signed["diff"]["before"] and "not_after" in signed["diff"]["after"]
    # Check mode returns the current certificate, so installing it predicts no further change.
    assert installed is not None and not installed["changed"]


def test_check_mode_on_a_fresh_island_predicts_every_change_and_writes_nothing(tmp_path):
    (tmp_path / "host").mkdir()
    ca, csr, signed, installed = _flow(tmp_path, check_mode=True)
    assert ca["changed"] and csr["changed"] and signed["changed"]
    assert signed["reason"] == "no certificate yet"
    assert signed["certificate"] == ""
    assert signed["diff"]["after"]["issuer"] == "CN=Island Intermediate CA R1-I1,O=Island"
    assert installed is None
    assert os.listdir(tmp_path) == ["host"]
    assert os.listdir(tmp_path / "host") == []


def test_check_mode_previews_an_intermediate_rotation_as_reissues_and_writes_nothing(tmp_path):
    _flow(tmp_path)
    before = snapshot(tmp_path)
    ca = run_module(island_ca, _ca_args(tmp_path, intermediate_generation=2), check_mode=True)
    assert ca["changes"] == ["created intermediate CA R1-I2"]
    csr = run_module(island_csr, {"path": str(tmp_path / "host" / "git.key"), "subject_alt_names": SANS})
    signed = run_module(
        island_cert_sign,
        _sign_args(ca, csr, current_certificate=(tmp_path / "host" / "git.crt").read_text()),
        check_mode=True,
    )
    assert signed["changed"]
    assert signed["reason"].startswith("issuing CA changed")
    assert signed["diff"]["after"]["issuer"] == "CN=Island Intermediate CA R1-I2,O=Island"
    # The certificate and chain handed back fit together, so installing them predicts no change.
    installed = run_module(
        island_cert,
        {
            "path": str(tmp_path / "host" / "git.crt"),
            "certificate": signed["certificate"],
            "chain": signed["chain"],
            "key_path": str(tmp_path / "host" / "git.key"),
        },
        check_mode=True,
    )
    assert not installed["changed"]
    assert snapshot(tmp_path) == before


def test_without_ca_files_outside_check_mode_signing_fails_and_says_to_run_island_ca(tmp_path):
    ca = run_module(island_ca, _ca_args(tmp_path), check_mode=True)
    csr = run_module(island_csr, {"path": str(tmp_path / "k.key"), "subject_alt_names": SANS})
    with pytest.raises(ModuleFail) as err:
        run_module(island_cert_sign, _sign_args(ca, csr))
    assert "run island_ca first" in err.value.args[0]["msg"]


def test_a_wrong_passphrase_fails_the_module_naming_the_key_file_and_the_ca_is_untouched(tmp_path):
    _flow(tmp_path)
    before = snapshot(tmp_path / "ca")
    with pytest.raises(ModuleFail) as err:
        run_module(island_ca, _ca_args(tmp_path, passphrase="wrong"))
    failure = err.value.args[0]
    assert failure["error"] == "PassphraseError"
    assert "root-r1.key" in failure["msg"] and "wrong passphrase" in failure["msg"]
    assert snapshot(tmp_path / "ca") == before


def test_a_csr_outside_the_island_fails_the_sign_module_naming_the_requester_and_name(tmp_path):
    ca, _, _, _ = _flow(tmp_path)
    key = tmp_path / "host" / "evil.key"
    csr = run_module(island_csr, {"path": str(key), "subject_alt_names": ["DNS:login.example.com"]})
    with pytest.raises(ModuleFail) as err:
        run_module(island_cert_sign, _sign_args(ca, csr, requester="host7 registry"))
    failure = err.value.args[0]
    assert failure["error"] == "NameConstraintError"
    assert "CSR from host7 registry asks for dns:login.example.com" in failure["msg"]


def _python_with_cryptography(python):
    if python is None or not os.path.exists(python):
        return False
    probe = subprocess.run([python, "-c", "import cryptography"], capture_output=True, check=False)
    return probe.returncode == 0


PLAYBOOK = """
- name: Island PKI from CA to installed certificate
  hosts: all
  gather_facts: false
  tasks:
    - name: Island CA exists
      island_ca:
        path: "{{ pki_dir }}"
        passphrase: "{{ pki_passphrase }}"
        domains: [island.internal]
        ip_ranges: [127.0.0.0/8]
        intermediate_generation: "{{ intermediate_generation }}"
      register: ca
    - name: Gitea has a key and a CSR, and its current certificate is read
      island_csr:
        path: "{{ host_dir }}/git.key"
        directory: {mode: "0750"}
        subject_alt_names: "{{ sans }}"
        certificate_path: "{{ host_dir }}/git.crt"
      register: csr
    - name: Island CA has signed the certificate
      island_cert_sign:
        csr: "{{ csr.csr }}"
        current_certificate: "{{ csr.certificate | default('', true) }}"
        ca_cert_path: "{{ ca.intermediate_cert_path }}"
        ca_key_path: "{{ ca.intermediate_key_path }}"
        ca_certificate: "{{ ca.intermediate_certificate }}"
        ca_passphrase: "{{ pki_passphrase }}"
        requester: "{{ inventory_hostname }} gitea"
      register: signed
    - name: Gitea's certificate is installed
      island_cert:
        path: "{{ host_dir }}/git.crt"
        certificate: "{{ signed.certificate }}"
        chain: "{{ signed.chain }}"
        key_path: "{{ host_dir }}/git.key"
      when: signed.certificate | length > 0
"""


def _playbook(tmp_path, python, sans, *extra, passphrase=PASSPHRASE, intermediate_generation=1):
    variables = {
        "pki_dir": str(tmp_path / "ca"),
        "host_dir": str(tmp_path / "host"),
        "pki_passphrase": passphrase,
        "sans": sans,
        "intermediate_generation": intermediate_generation,
        "ansible_python_interpreter": python,
    }
    return run_play_with_secret_vars(tmp_path, PLAYBOOK, variables, *extra)


def _stats(report):
    return report["stats"]["localhost"]


def _task(report, name):
    for play in report["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] == name:
                return task["hosts"]["localhost"]
    raise AssertionError(f"task {name!r} not in the report")


HOST_PYTHONS = [
    pytest.param(sys.executable, id="controller-python"),
    pytest.param("/usr/bin/python3", id="system-python3"),
]


@pytest.mark.slow
@pytest.mark.parametrize("python", HOST_PYTHONS)
def test_ansible_playbook_issues_a_working_certificate_then_reruns_with_zero_changes(tmp_path, python):
    if not _python_with_cryptography(python):
        pytest.skip(f"{python} has no cryptography library")
    # the host directory is made by island_csr (directory:)

    # Day 0 preview: predicts the CA, the key and the certificate, writes nothing.
    proc, report = _playbook(tmp_path, python, SANS, "--check", "--diff")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert _stats(report)["changed"] == 3
    assert _task(report, "Island CA has signed the certificate")["reason"] == "no certificate yet"
    assert not (tmp_path / "ca").exists()
    assert not (tmp_path / "host").exists()  # island_csr would make it (directory:), check mode did not

    proc, report = _playbook(tmp_path, python, SANS)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert _stats(report)["changed"] == 4
    assert (tmp_path / "host").stat().st_mode & 0o7777 == 0o750
    trust = tmp_path / "ca" / "trust-bundle.pem"
    crt, key = tmp_path / "host" / "git.crt", tmp_path / "host" / "git.key"
    ok, out = openssl_verify(trust, crt, untrusted_file=crt)
    assert ok, out
    with tls_server(crt, key) as port:
        assert tls_fetch(port, trust, "git.island.internal") == b"island\n"

    before = snapshot(tmp_path / "ca") | {"host/" + k: v for k, v in snapshot(tmp_path / "host").items()}
    proc, report = _playbook(tmp_path, python, SANS)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert _stats(report)["changed"] == 0
    after = snapshot(tmp_path / "ca") | {"host/" + k: v for k, v in snapshot(tmp_path / "host").items()}
    assert after == before

    proc, report = _playbook(tmp_path, python, [*SANS, "DNS:code.island.internal"], "--check", "--diff")
    assert proc.returncode == 0, proc.stdout[-4000:]
    signed = _task(report, "Island CA has signed the certificate")
    assert signed["changed"] and signed["reason"] == "SAN set differs: +dns:code.island.internal"
    assert _stats(report)["changed"] == 1
    after = snapshot(tmp_path / "ca") | {"host/" + k: v for k, v in snapshot(tmp_path / "host").items()}
    assert after == before

    # Intermediate rotation: previewed without writing, then applied, then converged.
    proc, report = _playbook(tmp_path, python, SANS, "--check", "--diff", intermediate_generation=2)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert _stats(report)["changed"] == 2
    assert _task(report, "Island CA has signed the certificate")["reason"].startswith("issuing CA changed")
    after = snapshot(tmp_path / "ca") | {"host/" + k: v for k, v in snapshot(tmp_path / "host").items()}
    assert after == before
    proc, report = _playbook(tmp_path, python, SANS, intermediate_generation=2)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert _stats(report)["changed"] == 3
    assert _task(report, "Island CA exists")["changes"] == ["created intermediate CA R1-I2"]
    assert crt.read_text().endswith((tmp_path / "ca" / "intermediate-r1-i2.crt").read_text())
    ok, out = openssl_verify(trust, crt, untrusted_file=crt)
    assert ok, out
    proc, report = _playbook(tmp_path, python, SANS, intermediate_generation=2)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert _stats(report)["changed"] == 0


@pytest.mark.slow
def test_ansible_playbook_with_a_wrong_passphrase_fails_clearly_and_never_shows_the_passphrase(tmp_path):
    # the host directory is made by island_csr (directory:)
    proc, _ = _playbook(tmp_path, sys.executable, SANS)
    assert proc.returncode == 0, proc.stdout[-4000:]
    before = snapshot(tmp_path / "ca")
    wrong = "hunter2-not-the-passphrase"
    proc, report = _playbook(tmp_path, sys.executable, SANS, "-vvv", passphrase=wrong)
    assert proc.returncode != 0
    failed = _task(report, "Island CA exists")
    assert failed["failed"]
    assert "root-r1.key could not be decrypted: wrong passphrase" in failed["msg"]
    assert wrong not in proc.stdout + proc.stderr
    assert snapshot(tmp_path / "ca") == before


@pytest.mark.parametrize("name", ["island_ca", "island_csr", "island_cert_sign", "island_cert"])
def test_module_documentation_renders_with_ansible_doc(name):
    proc = ansible_doc("--json", name)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)[name]
    assert doc["doc"]["module"] == name
    assert doc["examples"].strip()
    assert doc["return"]
    assert doc["doc"]["attributes"]["check_mode"]["support"] == "full"


def test_a_host_without_cryptography_gets_a_clear_missing_library_message(tmp_path, monkeypatch):
    # The module_utils must still import there, so the module can say what is missing.
    code = (
        "import sys; sys.modules['cryptography'] = None; "
        "from ansible_collections.island.installer.plugins.module_utils import island_pki; "
        "print(island_pki.HAS_CRYPTOGRAPHY)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "collections")}
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "False"

    from ansible_collections.island.installer.plugins.module_utils import island_pki as pki_utils

    monkeypatch.setattr(pki_utils, "HAS_CRYPTOGRAPHY", False)
    monkeypatch.setattr(pki_utils, "CRYPTOGRAPHY_IMPORT_ERROR", ImportError("No module named 'cryptography'"))
    with pytest.raises(ModuleFail) as err:
        run_module(island_csr, {"path": str(tmp_path / "k.key"), "subject_alt_names": SANS})
    assert "cryptography >= 3.4" in err.value.args[0]["msg"]
    assert not (tmp_path / "k.key").exists()


def test_an_installed_certificate_is_recorded_once_for_island_metrics(tmp_path):
    # The record island-metrics reads (roles/monitoring): one file per certificate, named after the
    # certificate's file name and a digest of its path, holding the path. island_cert writes it once
    # the certificate is installed; island_csr writes it for a certificate already there (an island
    # converged before records existed); a rerun is no change; check mode writes none.
    ca = run_module(island_ca, _ca_args(tmp_path))
    key, crt, records = tmp_path / "k.key", tmp_path / "k.crt", tmp_path / "island" / "certificates"
    csr_args = {
        "path": str(key),
        "subject_alt_names": SANS,
        "certificate_path": str(crt),
        "record_dir": str(records),
    }
    csr = run_module(island_csr, csr_args)
    assert not records.exists()  # no certificate yet: nothing to watch
    signed = run_module(island_cert_sign, _sign_args(ca, csr, current_certificate="", requester="h k"))
    cert_args = {"path": str(crt), "certificate": signed["certificate"], "chain": signed["chain"],
                 "key_path": str(key), "record_dir": str(records)}  # fmt: skip
    preview = run_module(island_cert, cert_args, check_mode=True)
    assert preview["changed"] and not records.exists()
    installed = run_module(island_cert, cert_args)
    files = list(records.iterdir())
    assert installed["changed"] and len(files) == 1 and files[0].name.startswith("k.crt.")
    assert files[0].read_text() == f"{crt}\n" and oct(files[0].stat().st_mode & 0o777) == "0o644"
    assert "record " in installed["reason"]
    assert not run_module(island_cert, cert_args)["changed"]
    assert not run_module(island_csr, csr_args)["changed"] and list(records.iterdir()) == files
    # a certificate installed before records existed is recorded by island_csr on the next run
    files[0].unlink()
    preview = run_module(island_csr, csr_args, check_mode=True)
    assert preview["changed"] and not list(records.iterdir())
    again = run_module(island_csr, csr_args)
    assert again["changed"] and [f.name for f in records.iterdir()] == [files[0].name]
