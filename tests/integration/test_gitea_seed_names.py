"""The gitea role never writes outside its seeding directory (issue 15, item 10): a git repository
of the bundle whose name is not a plain name (``../../../etc/cron.d/evil``) stops the seeding at its
first task, before the directory is even made. The verifier already refuses such a lock; this holds
whatever set the island_bundle fact.

The play runs the role's seeding tasks on localhost (local connection) with the seeding directory
under tmp_path, in check mode: a regression would still write nothing."""

from __future__ import annotations

import json

from tests.support.playbook import run_local_tasks

COMMIT = "3f786850e387550fdab836ed7e6dc881de23001b"


def _seed(tmp_path, name):
    bundle = {
        "files": [],
        "git": [{"name": name, "file": "git/app.bundle", "refs": {"refs/heads/main": COMMIT}}],
    }
    tasks = [
        {
            "name": "The bundle's repositories are seeded",
            "ansible.builtin.include_role": {"name": "gitea", "tasks_from": "seed"},
        }
    ]
    extra = {
        "island_bundle": bundle,
        "island_bundle_dir": str(tmp_path / "bundle"),
        "gitea_seed_dir": str(tmp_path / "seed" / "git"),
    }
    return run_local_tasks(tmp_path, tasks, "--check", "-e", json.dumps(extra))


def test_a_git_name_climbing_out_of_the_seeding_directory_stops_the_role_before_any_write(tmp_path):
    result = _seed(tmp_path, "../../../etc/cron.d/evil")

    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    assert 'the bundle\'s git repository "../../../etc/cron.d/evil" is not a plain name' in output
    assert not (tmp_path / "seed").exists()


def test_a_plain_git_name_passes_the_check(tmp_path):
    result = _seed(tmp_path, "island-config")

    output = " ".join((result.stdout + result.stderr).split())
    assert "is not a plain name" not in output
    assert "Every repository of the bundle is named by a plain name" in output
