"""Tags an operator can trust: every play carries its component's tag, `--tags registry` selects the
registry after the prologue and nothing of Gitea, and a tag no play carries fails the run before
any host is touched, listing the tags that exist.

The run that must fail uses an inventory of hosts on the local connection: a regression that let
it go on would touch nothing but this machine, and fail at once on the missing bundle.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_tags import (
    COMPONENT_TAGS,
    PROLOGUE_TAGS,
)

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = ROOT / "playbooks"
DEMO = ROOT / "inventory" / "demo" / "hosts.yml"
ENTRY_PLAYBOOKS = (
    "site.yml",
    "upgrade.yml",
    "receipt.yml",
    "summary.yml",
    "preflight.yml",
    "verify.yml",
    "bundle.yml",
)
_PLAY = re.compile(r"^\s*play #\d+ \((?P<hosts>[^)]*)\): (?P<name>.*?)\tTAGS: \[(?P<tags>[^\]]*)\]$")
_TASK = re.compile(r"^\s{6}(?P<name>.*?)\tTAGS: \[(?P<tags>[^\]]*)\]$")


def _playbook(*args, inventory=DEMO):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )


def _listing(playbook, *args):
    """[(play name, play tags, [(task name, task tags)])] as --list-tasks shows them."""
    result = _playbook("--list-tasks", *args, str(PLAYBOOKS / playbook))
    assert result.returncode == 0, result.stdout + result.stderr
    plays = []
    for line in result.stdout.splitlines():
        if match := _PLAY.match(line):
            tags = {t.strip() for t in match["tags"].split(",") if t.strip()}
            plays.append((match["name"], tags, []))
        elif (match := _TASK.match(line)) and plays:
            plays[-1][2].append((match["name"], {t.strip() for t in match["tags"].split(",")}))
    assert plays, result.stdout
    return plays


# Every host on the local connection, every group of the island; no bundle at the path it names.
LOCAL_ISLAND = """
all:
  vars: {ansible_connection: local, island_domain: island.test, island_bundle_dir: /nonexistent/bundle}
  hosts:
    infra: {ansible_host: 10.99.0.10}
    server1: {ansible_host: 10.99.0.11}
    agent1: {ansible_host: 10.99.0.12}
  children:
    island_dns: {hosts: {infra: {}}}
    island_registry: {hosts: {infra: {}}}
    island_minio: {hosts: {infra: {}}}
    island_gitea: {hosts: {infra: {}}}
    k3s_servers: {hosts: {server1: {}}}
    k3s_agents: {hosts: {agent1: {}}}
"""


@pytest.fixture
def local_island(tmp_path):
    path = tmp_path / "hosts.yml"
    path.write_text(
        LOCAL_ISLAND.replace("vars: {", f"vars: {{ansible_python_interpreter: {sys.executable}, ", 1)
    )
    return path


@pytest.mark.parametrize("playbook", ["site.yml", "upgrade.yml", "receipt.yml", "verify.yml"])
def test_a_tag_no_play_carries_fails_before_any_host_is_touched_listing_the_tags(local_island, playbook):
    result = _playbook("--tags", "nosuchtag", str(PLAYBOOKS / playbook), inventory=local_island)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "--tags nosuchtag: no play of the island carries this tag" in out
    assert "The tags that exist: " + ", ".join(COMPONENT_TAGS) in out
    # The check is the first task of the run: no role's task started.
    assert re.findall(r"^TASK \[(.*?)\]", result.stdout, re.M) == [
        "Every tag given to --tags and --skip-tags is carried by a play"
    ]


def test_skipping_the_prologue_fails_naming_what_may_be_skipped(local_island):
    result = _playbook("--skip-tags", "preflight", str(PLAYBOOKS / "site.yml"), inventory=local_island)
    assert result.returncode != 0
    assert "--skip-tags preflight: would skip the prologue" in result.stdout


BUNDLE_PLAY = "The bundle is verified on the controller before any host is touched"


def test_tags_registry_selects_the_prologue_the_registry_and_nothing_of_gitea():
    plays = _listing("site.yml", "--tags", "registry")
    selected = {name: tasks for name, _tags, tasks in plays}
    registry = selected["The registry serves every image of the bundle under its upstream digest"]
    names = [name for name, _tags in registry]
    assert "registry : Secrets of the registry are known to the play" in names  # secrets.yml, imported
    assert "registry : The registry serves the bundle's images" in names
    # The prologue runs first: the model, the bundle verified, the upgrade guarded, preflight.
    assert any(n.startswith("bundle : Bundle is signed") for n, _ in selected[BUNDLE_PLAY])
    for tag in PROLOGUE_TAGS:
        assert any(tag in tags and "always" in tags for _name, tags, _tasks in plays), tag
    every_task = [(name, tags) for _n, _t, tasks in plays for name, tags in tasks]
    # Ansible validates every role's arguments whatever the tags (that task is tagged always);
    # nothing else of another component is selected.
    others = {"gitea", "k3s", "minio", "dns", "pki", "receipt"}
    leaked = [
        name
        for name, tags in every_task
        if tags & others and not name.split(" : ", 1)[-1].startswith("Validating arguments against arg spec")
    ]
    assert leaked == []
    assert not any(name.startswith("gitea : Gitea") for name, _tags in every_task)


@pytest.mark.parametrize("playbook", ENTRY_PLAYBOOKS)
def test_every_play_carries_a_tag_the_check_knows(playbook):
    for name, tags, _tasks in _listing(playbook):
        if name == "The requested tags name parts of the island":
            assert tags == {"always"}
            continue
        component = tags - {"always"}
        assert len(component) == 1, (name, tags)
        assert component <= set(COMPONENT_TAGS), (name, tags)


def test_the_known_tags_are_exactly_those_site_and_upgrade_carry():
    carried = set()
    for playbook in ("site.yml", "upgrade.yml"):
        for _name, tags, _tasks in _listing(playbook):
            carried |= tags
    assert carried - {"always"} == set(COMPONENT_TAGS)
