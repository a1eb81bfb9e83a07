"""The repository builds into one collection artifact that installs offline and runs from the
installed copy: its modules by their fully qualified names, its playbooks as island.installer.<name>.

Everything runs outside the checkout, with a configuration that sets neither `library` nor
`roles_path`, a HOME of its own (so no collection installed elsewhere on this machine answers), and
ANSIBLE_COLLECTIONS_SCAN_SYS_PATH off (the test venv puts the checkout's collections/ on sys.path).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
VERSION = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
LOCK = {
    "schema_version": 1,
    "bundle": {"name": "island", "version": "2026.12.0"},
    "files": [],
    "components": {"k3s": {"version": "v1.36.3+k3s1", "files": ["bin/k3s"]}},
    "images": [],
    "git": [],
}

pytestmark = pytest.mark.slow


def _run(args, env, cwd):
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the artifact, the environment and working directory of a controller that installed it)."""
    base = tmp_path_factory.mktemp("collection")
    dist, collections, home, work = (base / d for d in ("dist", "collections", "home", "work"))
    for d in (dist, home, work):
        d.mkdir()
    (work / "ansible.cfg").write_text(
        "[defaults]\nstdout_callback = default\ncallback_result_format = yaml\nnocows = true\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k != "PYTHONPATH"}
    env.update(
        HOME=str(home),
        ANSIBLE_CONFIG=str(work / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
        ANSIBLE_NOCOLOR="1",
    )
    built = _run(
        [str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(dist), str(ROOT)], env, work
    )
    assert built.returncode == 0, built.stdout + built.stderr
    artifact = dist / f"island-installer-{VERSION}.tar.gz"
    assert artifact.is_file(), built.stdout
    done = _run(
        [
            str(BIN / "ansible-galaxy"),
            "collection",
            "install",
            "--offline",
            str(artifact),
            "-p",
            str(collections),
        ],
        env,
        work,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return artifact, env, work, collections / "ansible_collections" / "island" / "installer"


def test_the_artifact_holds_the_collection_and_none_of_the_test_and_build_tree(installed):
    artifact, _env, _work, _path = installed
    with tarfile.open(artifact) as tar:
        names = tar.getnames()
    top = {n.split("/", 1)[0] for n in names}
    assert {"plugins", "roles", "playbooks", "meta", "MANIFEST.json", "FILES.json"} <= top
    for absent in ("tests", "molecule", ".cache", "collections", "benchmarks", "tools", "inventory", ".git"):
        assert absent not in top, absent
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    for path in (
        "plugins/modules/island_upgrade_plan.py",
        "plugins/module_utils/island_upgrade.py",
        "plugins/filter/island_tags.py",
        "roles/bundle/tasks/main.yml",
        "playbooks/site.yml",
        "meta/runtime.yml",
    ):
        assert path in names, path


def test_a_module_runs_by_its_fully_qualified_name_from_the_installed_copy(installed):
    _artifact, env, work, path = installed
    doc = _run([str(BIN / "ansible-doc"), "island.installer.island_upgrade_plan"], env, work)
    assert doc.returncode == 0, doc.stderr
    assert f"({path}/plugins/modules/island_upgrade_plan.py)" in doc.stdout

    def plan(running):
        """(succeeded, what the module answered) for server1 running k3s ``running``."""
        record = {"component": "k3s", "version": running, "sha256": "a" * 64}
        args = {"lock": LOCK, "hosts": {"server1": {"components": ["k3s"], "records": {"k3s": record}}}}
        command = ["localhost", "-m", "island.installer.island_upgrade_plan", "-a", json.dumps(args)]
        result = _run(
            [str(BIN / "ansible"), *command], dict(env, ANSIBLE_CALLBACK_RESULT_FORMAT="json"), work
        )
        head, _, answer = result.stdout.partition(" => ")
        assert answer, result.stdout + result.stderr
        return result.returncode == 0 and head == "localhost | SUCCESS", json.loads(answer)

    ok, answer = plan("v1.35.4+k3s1")
    assert ok, answer
    assert answer["lines"] == ["server1: k3s v1.35.4+k3s1 -> v1.36.3+k3s1 (upgrade)"]
    assert answer["components"]["k3s"]["hosts_to_change"] == ["server1"]
    # The same module refuses a downgrade, naming it: its module_utils came along in the artifact.
    ok, answer = plan("v1.37.0+k3s1")
    assert not ok
    assert "v1.37.0+k3s1" in answer["msg"] and "downgrade" in answer["msg"]


def test_a_playbook_runs_as_island_installer_site_with_the_collections_filters(installed, tmp_path):
    _artifact, env, work, path = installed
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"infra": {"ansible_connection": "local"}}}}))
    # Roles and modules resolve in the playbook's own collection, the filters by their fully
    # qualified names: nothing but the installed collection is on any plugin path.
    listed = _run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), "island.installer.site", "--list-tasks"],
        env,
        work,
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert f"playbook: {path}/playbooks/site.yml" in listed.stdout
    assert "island.installer.registry : Secrets of the registry are known" in listed.stdout
    refused = _run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), "island.installer.site", "--tags", "nosuchtag"],
        env,
        work,
    )
    assert refused.returncode != 0
    assert "--tags nosuchtag: no play of the island carries this tag" in refused.stdout
