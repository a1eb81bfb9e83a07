"""The receipt against real services: Debian's CNCF distribution registry (tests.support.oci.Registry,
seeded by the island's own seeding engine) and the Gitea double (git's git-http-backend serving
real repositories, seeded by island_gitea_seed's code), through the island_receipt module.

Shows: what each reference's tag resolves to is read by HEAD, a moved tag and a missing image are
recorded beside the lock's digest; each repository's branches and tags are read and compared with
the lock; an unreachable registry, a refused registry account and a refused Gitea token fail the
module naming the service; check mode on an island not up yet warns instead."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_gitea import (
    GiteaClient,
    seed_repository,
)
from ansible_collections.island.installer.plugins.module_utils.island_oci import OCILayout, seed
from ansible_collections.island.installer.plugins.modules import island_receipt

from tests.support.doubles.gitea import git, needs_gitea_double, running_gitea
from tests.support.modules import ModuleFail, run_module
from tests.support.oci import ImageFactory, make_layer, needs_registry

pytestmark = [
    pytest.mark.slow,
    needs_registry,
    needs_gitea_double(),
]


def make_repo(path):
    """A repository with main, a second branch and an annotated tag; returns its refs as the lock
    lists them (``git bundle list-heads``: a tag is its tag object)."""
    git("init", "-q", "-b", "main", str(path))
    for n in range(2):
        (path / "file").write_text(f"{n}\n")
        git("add", "file", cwd=path)
        git("commit", "-qm", f"commit {n}", cwd=path)
    git("tag", "-a", "v1", "-m", "v1", cwd=path)
    git("branch", "release", cwd=path)
    out = git("for-each-ref", "--format=%(objectname) %(refname)", "refs/heads", "refs/tags", cwd=path)
    return {ref: sha for sha, ref in (line.split() for line in out.splitlines())}


@pytest.fixture
def gitea(tmp_path, gitea_pki):
    server = running_gitea(tmp_path / "gitea", gitea_pki, organization="island")
    yield server
    server.stop()


@pytest.fixture
def island(tmp_path, registry, gitea, pki, gitea_pki):
    """A registry seeded with two of three lock images, one of them later moved; Gitea seeded
    with one of two lock repositories, whose main then moved on in the bundle."""
    layout = OCILayout(str(tmp_path / "layout"))
    factory = ImageFactory(layout)
    base = make_layer({"etc/os-release": b"ID=island-test\n"})
    alpine = factory.image("docker.io/library/alpine:3.20", [base, make_layer({"a": b"1"})], label="a")
    tool = factory.image("ghcr.io/org/tool:1", [base, make_layer({"t": b"1"})], label="t")
    seed(registry.client(), [layout])
    # The registry's tool:1 moves to another image, the lock still names the first one.
    moved = OCILayout(str(tmp_path / "moved"))
    ImageFactory(moved).image("ghcr.io/org/tool:1", [base, make_layer({"t": b"2"})], label="t2")
    seed(registry.client(), [moved])

    source = tmp_path / "src"
    refs = make_repo(source)
    bundle = tmp_path / "config.bundle"
    git("bundle", "create", "-q", str(bundle), "--all", cwd=source)
    client = GiteaClient(gitea.url, str(gitea.pki["ca"]), token=gitea.token)
    seed_repository(client, str(bundle), "island", "config")
    # The next bundle's main is one commit ahead: the lock says so, Gitea does not hold it yet.
    (source / "file").write_text("2\n")
    git("commit", "-qam", "commit 2", cwd=source)
    lock_refs = dict(refs, **{"refs/heads/main": git("rev-parse", "HEAD", cwd=source)})

    ca_dir = tmp_path / "pki"
    ca_dir.mkdir()
    (ca_dir / "trust-bundle.pem").write_text(Path(pki["ca"]).read_text() + Path(gitea_pki["ca"]).read_text())
    lock = {
        "bundle": {"name": "island", "version": "2"},
        "components": {},
        "images": [
            {"reference": "docker.io/library/alpine:3.20", "digest": alpine["digest"]},
            {"reference": "ghcr.io/org/tool:1", "digest": tool["digest"]},
            {"reference": "docker.io/library/absent:1", "digest": "sha256:" + "0" * 64},
        ],
        "git": [
            {"name": "config", "file": "git/config.bundle", "refs": lock_refs},
            {"name": "absent", "file": "git/absent.bundle", "refs": {"refs/heads/main": "1" * 40}},
        ],
    }
    args = {
        "path": str(tmp_path / "island-receipt.json"),
        "bundle": lock,
        "island_domain": "island.test",
        "hosts": [{"name": "infra1", "address": "127.0.0.1", "groups": ["island_registry", "island_gitea"]}],
        "ca_dir": str(ca_dir),
        "registries": [{"host": "infra1", "registry": registry.address}],
        "registry_username": registry.user,
        "registry_password": registry.password,
        "gitea": [{"host": "infra1", "url": gitea.url}],
        "gitea_token": gitea.token,
    }
    return {"args": args, "refs": refs, "lock_refs": lock_refs, "alpine": alpine, "tool": tool}


def test_the_receipt_records_served_digests_and_refs_beside_the_lock(island, registry, gitea):
    result = run_module(island_receipt, island["args"])
    assert result["changed"]
    doc = result["receipt"]
    images = {i["reference"]: i for i in doc["images"]}
    alpine = images["docker.io/library/alpine:3.20"]
    assert alpine["served"] == {"infra1": {"digest": island["alpine"]["digest"], "state": "as locked"}}
    tool = images["ghcr.io/org/tool:1"]
    assert tool["digest_in_lock"] == island["tool"]["digest"]
    served = tool["served"]["infra1"]
    assert served["state"] == "different digest" and served["digest"] != island["tool"]["digest"]
    # The digest recorded is the one an independent client (skopeo) reads for the tag.
    raw = registry.skopeo_raw("org/tool:1")
    assert served["digest"] == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert images["docker.io/library/absent:1"]["served"]["infra1"] == {"digest": None, "state": "missing"}

    repos = {r["name"]: r for r in doc["git"]}
    config = repos["config"]["served"]["infra1"]
    assert config["state"] == "refs differ"
    assert config["refs"] == island["refs"]  # branches and tags as Gitea holds them (tag object ids)
    assert repos["config"]["refs_in_lock"] == island["lock_refs"]
    assert repos["absent"]["served"]["infra1"] == {"refs": {}, "state": "missing"}

    text = Path(island["args"]["path"]).read_text()
    assert registry.password not in text and gitea.token not in text
    assert (
        "different digest on infra1" in result["msg"]
        and "git island/absent missing on infra1" in result["msg"]
    )
    # Nothing moved: a rerun writes nothing.
    assert not run_module(island_receipt, island["args"])["changed"]


def test_the_registry_password_and_gitea_token_can_come_from_their_files(island, registry, gitea, tmp_path):
    args = dict(island["args"])
    (tmp_path / "registry-pull-password").write_text(registry.password + "\n")
    (tmp_path / "gitea-admin-token").write_text(gitea.token + "\n")
    args.pop("registry_password")
    args.pop("gitea_token")
    args["registry_password_file"] = str(tmp_path / "registry-pull-password")
    args["gitea_token_file"] = str(tmp_path / "gitea-admin-token")
    assert run_module(island_receipt, args)["receipt"]["images"]


def test_an_unreachable_registry_fails_naming_it_and_check_mode_only_warns(island, registry):
    registry.stop()
    with pytest.raises(ModuleFail) as failed:
        run_module(island_receipt, island["args"])
    msg = failed.value.args[0]["msg"]
    assert f"registry {registry.address}" in msg and "unreachable" in msg
    assert not Path(island["args"]["path"]).exists()
    preview = run_module(island_receipt, island["args"], check_mode=True)
    assert preview["changed"] and "would be written after the real run" in preview["msg"]
    assert not Path(island["args"]["path"]).exists()


def test_a_refused_registry_account_fails_naming_the_registry_and_the_account(island, registry):
    args = dict(island["args"], registry_password="not the password")
    with pytest.raises(ModuleFail) as failed:
        run_module(island_receipt, args)
    msg = failed.value.args[0]["msg"]
    assert f"registry {registry.address}" in msg and "authentication refused" in msg
    assert "not the password" not in msg


def test_a_token_gitea_refuses_fails_naming_gitea(island, gitea):
    args = dict(island["args"], gitea_token="0" * 40)
    with pytest.raises(ModuleFail) as failed:
        run_module(island_receipt, args)
    msg = failed.value.args[0]["msg"]
    assert f"Gitea at {gitea.url}" in msg and "refused the credentials" in msg
    assert not Path(island["args"]["path"]).exists()
