"""island_bundle_verify end to end: called by short name from a real ansible-playbook run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support import playbook as runner
from tests.support.bundle import make_signed_bundle
from tests.support.playbook import ansible_doc, ansible_env


def run_playbook(
    tmp_path: Path, tasks: str, *extra: str, interpreter: str = sys.executable
) -> subprocess.CompletedProcess:
    playbook = tmp_path / "playbook.yml"
    playbook.write_text(
        "- name: Verify island bundles\n"
        "  hosts: localhost\n"
        "  gather_facts: false\n"
        "  tasks:\n" + textwrap.indent(textwrap.dedent(tasks), "    ")
    )
    env = ansible_env(
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"),
        ANSIBLE_REMOTE_TEMP=str(tmp_path / "ansible-remote"),
    )
    return runner.run_playbook(
        playbook, "-c", "local", "-e", f"ansible_python_interpreter={interpreter}", *extra, env=env
    )


def test_the_module_verifies_by_short_name_in_a_playbook_and_reports_each_outcome(tmp_path):
    good = make_signed_bundle(tmp_path / "good")
    bad = make_signed_bundle(tmp_path / "bad")
    k3s = bad.root / "bin/k3s"
    k3s.write_bytes(k3s.read_bytes()[:-1] + b"!")
    (bad.root / "files/unlisted").write_bytes(b"x")
    out = tmp_path / "results"
    out.mkdir()
    tasks = f"""
    - name: A signed, intact bundle verifies
      island_bundle_verify:
        bundle_dir: {good.root}
        allowed_signers: {good.allowed_signers}
        workers: 2
      register: good_result

    - name: A corrupt bundle is refused
      island_bundle_verify:
        bundle_dir: {bad.root}
        allowed_signers: {bad.allowed_signers}
      register: bad_result
      ignore_errors: true

    - name: An unchecked signature is reported
      island_bundle_verify:
        bundle_dir: {good.root}
        skip_signature: true
      register: skipped_result

    - name: Check mode runs the same verification
      island_bundle_verify:
        bundle_dir: {good.root}
        allowed_signers: {good.allowed_signers}
      check_mode: true
      register: check_result

    - name: Results are kept for the test
      ansible.builtin.copy:
        content: "{{{{ {{'good': good_result, 'bad': bad_result, 'skipped': skipped_result,
                     'check': check_result}} | to_json }}}}"
        dest: {out}/results.json
        mode: "0600"
    """

    run = run_playbook(tmp_path, tasks)

    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads((out / "results.json").read_text())

    good_result = results["good"]
    assert good_result["changed"] is False
    assert good_result["lock"] == good.lock
    assert good_result["bundle"]["version"] == "2026.11.0"
    assert good_result["files_verified"] == len(good.lock["files"])
    assert good_result["bytes_verified"] == sum(f["size"] for f in good.lock["files"])
    assert good_result["signature"]["checked"] is True
    assert good_result["signature"]["principals"] == "release@island.example"
    assert good_result["signature_skipped"] is False

    bad_result = results["bad"]
    assert bad_result["failed"] is True
    assert bad_result["changed"] is False
    assert {p["path"]: p["problem"] for p in bad_result["problems"]} == {
        "bin/k3s": "sha256",
        "files/unlisted": "extra",
    }
    assert "bin/k3s: corrupt: expected sha256" in bad_result["msg"]

    assert results["skipped"]["signature_skipped"] is True
    assert results["skipped"]["signature"] == {"checked": False}
    assert "[WARNING]: SIGNATURE NOT CHECKED" in " ".join((run.stdout + run.stderr).split())

    assert results["check"]["changed"] is False
    assert results["check"]["files_verified"] == len(good.lock["files"])


def test_a_play_stops_on_an_untrusted_bundle_with_the_reason_in_its_output(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    bundle.signature_path.unlink()
    tasks = f"""
    - name: The bundle is verified before anything else
      island_bundle_verify:
        bundle_dir: {bundle.root}
        allowed_signers: {bundle.allowed_signers}

    - name: Nothing after a refused bundle runs
      ansible.builtin.file:
        path: {tmp_path}/must-not-exist
        state: touch
        mode: "0600"
    """

    run = run_playbook(tmp_path, tasks)

    assert run.returncode == 2, run.stdout + run.stderr
    assert "no signature file" in run.stdout
    assert not (tmp_path / "must-not-exist").exists()


def test_allowed_signers_is_required_unless_the_signature_is_skipped(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    tasks = f"""
    - name: Missing allowed_signers is an argument error
      island_bundle_verify:
        bundle_dir: {bundle.root}
    """

    run = run_playbook(tmp_path, tasks)

    assert run.returncode == 2
    assert "allowed_signers" in run.stdout


def test_a_python_without_pyyaml_and_cryptography_gets_a_message_saying_which_interpreter_to_use(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    bare = tmp_path / "bare-python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    probe = subprocess.run([str(bare / "bin/python"), "-c", "import yaml"], capture_output=True, check=False)
    assert probe.returncode != 0, "the bare interpreter unexpectedly has PyYAML"
    tasks = f"""
    - name: The module runs under a Python without its libraries
      island_bundle_verify:
        bundle_dir: {bundle.root}
        allowed_signers: {bundle.allowed_signers}
    """

    run = run_playbook(tmp_path, tasks, interpreter=str(bare / "bin/python"))

    assert run.returncode == 2
    output = " ".join(run.stdout.split())
    assert "PyYAML and cryptography" in output
    assert "ansible_playbook_python" in output


def test_ansible_doc_renders_the_module_documentation():
    run = ansible_doc("island_bundle_verify")

    assert run.returncode == 0, run.stderr
    for option in ("bundle_dir", "allowed_signers", "skip_signature", "workers"):
        assert option in run.stdout
    assert "RETURN VALUES" in run.stdout
    assert "files_verified" in run.stdout
