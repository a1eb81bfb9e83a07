"""The island_registry_seed module as Ansible runs it: check mode, diff, idempotence, failures."""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

from tests.support.oci import make_layer, needs_registry, run, sha256
from tests.support.playbook import ansible_doc, run_json_play

pytestmark = [needs_registry, pytest.mark.slow]


def _oldest_python():
    """The oldest Python the module must run on (3.9): $ISLAND_OLDEST_PYTHON, else python3.9."""
    candidate = os.environ.get("ISLAND_OLDEST_PYTHON") or shutil.which("python3.9")
    if not candidate:
        return None
    probe = run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 9))"])
    return candidate if probe.returncode == 0 and probe.stdout.strip() == "True" else None


def _play(tmp_path, registry, layout, *flags, interpreter=sys.executable, **overrides):
    args = {
        "registry": registry.address,
        "ca_file": str(registry.pki["ca"]),
        "username": registry.user,
        "password": registry.password,
        "layout": layout.path,
    }
    args.update(overrides)
    (tmp_path / "vars.json").write_text(json.dumps({"seed_args": args}))
    (tmp_path / "play.yml").write_text(
        "- hosts: localhost\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - name: The island registry holds the bundle's images\n"
        "      island_registry_seed: '{{ seed_args }}'\n"
    )
    proc, (res,) = run_json_play(
        tmp_path / "play.yml", "-e", f"@{tmp_path / 'vars.json'}", *flags, interpreter=interpreter
    )
    return proc, res


def test_module_check_mode_diff_then_seed_then_rerun_reports_no_change(tmp_path, registry, layout):
    proc, res = _play(tmp_path, registry, layout, "--check", "--diff")
    assert proc.returncode == 0, res
    assert res["changed"] and "would change" in res["msg"]
    key = f"{registry.address}/library/alpine:3.20"
    assert res["diff"]["before"][key] is None
    assert (
        res["diff"]["after"][key]
        == dict((str(r), d["digest"]) for r, d in layout.images())["docker.io/library/alpine:3.20"]
    )
    assert registry.writes() == []
    assert "correct horse" not in proc.stdout

    proc, res = _play(tmp_path, registry, layout)
    assert proc.returncode == 0 and res["changed"], res
    assert {i["action"] for i in res["images"]} == {"create"}

    mark = registry.log_mark()
    proc, res = _play(tmp_path, registry, layout, "--diff")
    assert proc.returncode == 0 and not res["changed"], res
    assert registry.writes(mark) == []


def test_module_reports_a_moved_tag_as_old_and_new_digest_in_diff(tmp_path, registry, layout):
    _play(tmp_path, registry, layout)
    old = sha256(registry.skopeo_raw("org/tool:1"))
    moved = layout.factory.image("quay.io/org/tool:1", [make_layer({"bin/t": b"tool v2"})], label="t2")
    new = moved["digest"]
    proc, res = _play(tmp_path, registry, layout, "--check", "--diff")
    assert proc.returncode == 0, res
    key = f"{registry.address}/org/tool:1"
    assert (res["diff"]["before"][key], res["diff"]["after"][key]) == (old, new)
    assert [i["image"] for i in res["images"] if i["changed"]] == ["quay.io/org/tool:1"]
    assert sha256(registry.skopeo_raw("org/tool:1")) == old


def test_module_failure_names_the_cause(tmp_path, registry, layout):
    proc, res = _play(tmp_path, registry, layout, password="wrong")
    assert proc.returncode != 0
    assert res["failed"] and res["error"] == "AuthenticationError"
    assert "authentication refused" in res["msg"] and registry.address in res["msg"]


def test_module_runs_on_python_3_9_with_the_standard_library_only(tmp_path, registry, layout):
    python = _oldest_python()
    if python is None:
        pytest.skip("no Python 3.9 (set ISLAND_OLDEST_PYTHON to one)")
    proc, res = _play(tmp_path, registry, layout, interpreter=python)
    assert proc.returncode == 0 and res["changed"], res
    proc, res = _play(tmp_path, registry, layout, interpreter=python)
    assert proc.returncode == 0 and not res["changed"], res


def test_module_documentation_renders_with_ansible_doc():
    proc = ansible_doc("--json", "island_registry_seed")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["island_registry_seed"]
    assert set(doc["doc"]["options"]) == {
        "registry",
        "ca_file",
        "username",
        "password",
        "layout",
        "docker_archives",
        "images",
        "repository_rule",
        "repository_prefix",
        "workers",
        "retries",
    }
    assert doc["doc"]["options"]["repository_rule"]["default"] == "strip_host"
    assert "images" in doc["return"] and "island_registry_seed:" in doc["examples"]
