"""The k3s double imports the airgap image archives of <data-dir>/agent/images/ at start, as k3s
v1.36 does (pkg/agent/containerd/containerd.go preloadImages): it logs each image an archive holds,
and an archive containerd could not import is an error for that file only, not for the node.

Archives come from an independent producer (skopeo's docker-archive transport) and from the test
bundle's own writer (tests/bundle/testbundle.py), so the double is not only checked against itself.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from testbundle import AIRGAP_ARCHIVE, ImageFactory, docker_save_archive, make_layer, zstd_compress

from tests.support.doubles.k3s import Node, messages, wait_for
from tests.support.net import free_port
from tests.support.oci import tar_of

pytestmark = pytest.mark.slow


def staged_layout(path: Path) -> Path:
    from ansible_collections.island.installer.plugins.module_utils.island_oci_layout import OCILayout

    factory = ImageFactory(OCILayout(str(path)))
    base = make_layer({"etc/base": b"base\n"})
    factory.image("docker.io/islandtest/tool:2.0", [base, make_layer({"usr/bin/tool": b"tool\n"})])
    factory.image("docker.io/library/plain:1", [base])
    return path


def start_agent_with_images(tmp_path: Path, archives: dict[str, bytes]) -> Node:
    """An agent whose server is a closed port: it imports its images, then retries the server."""
    node = Node(
        tmp_path,
        "agent",
        "agent",
        {
            "server": f"https://127.0.0.1:{free_port()}",
            "token": "secret",
            "node-name": "agent",
            "private-registry": str(tmp_path / "absent-registries.yaml"),
        },
    )
    images = node.data_dir / "agent" / "images"
    images.mkdir(parents=True)
    for name, data in archives.items():
        (images / name).write_bytes(data)
    node.start()
    wait_for(lambda: "Failed to validate connection" in node.log(), what="the agent past its image import")
    node.stop()
    return node


def test_agent_imports_the_test_bundles_airgap_archive_and_names_its_images(tmp_path):
    layout = staged_layout(tmp_path / "oci")
    archive = docker_save_archive(layout, ["docker.io/islandtest/tool:2.0", "docker.io/library/plain:1"])
    node = start_agent_with_images(tmp_path, {"k3s-airgap-images-amd64.tar": archive})
    path = node.data_dir / "agent" / "images" / "k3s-airgap-images-amd64.tar"
    log = messages(node.log())
    assert f"Importing images from {path}" in log
    assert f"double: imported image docker.io/islandtest/tool:2.0 from {path}" in log
    assert f"double: imported image docker.io/library/plain:1 from {path}" in log
    assert f"Imported images from {path} in " in log
    assert "Error encountered" not in log


def zstd_cli(data: bytes, *options: str) -> bytes:
    """The zstd command line's output for ``data`` on stdin (its size unknown to zstd, so the
    frame's window is what the options say)."""
    return subprocess.run(["zstd", "-q", "-c", *options], input=data, capture_output=True, check=True).stdout


@pytest.mark.parametrize(
    ("name", "compress"),
    [
        # the test bundle's archive, as the default bundle-spec.yml ships k3s's (zstd -16 --long=25)
        (AIRGAP_ARCHIVE, zstd_compress),
        # the zstd command line's defaults, under k3s's other zstd suffix, in two frames
        ("images.TZST", lambda data: zstd_cli(data[: len(data) // 2]) + zstd_cli(data[len(data) // 2 :])),
    ],
)
def test_agent_imports_zstd_archives_as_k3s_does(tmp_path, name, compress):
    assert AIRGAP_ARCHIVE.endswith(".tar.zst")
    layout = staged_layout(tmp_path / "oci")
    archive = compress(docker_save_archive(layout, ["docker.io/islandtest/tool:2.0"]))
    node = start_agent_with_images(tmp_path, {name: archive})
    path = node.data_dir / "agent" / "images" / name
    log = messages(node.log())
    assert f"double: imported image docker.io/islandtest/tool:2.0 from {path}" in log
    assert "Error encountered" not in log


def test_agent_imports_an_archive_written_by_skopeo(tmp_path):
    layout = staged_layout(tmp_path / "oci")
    archive = tmp_path / "skopeo.tar"
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--quiet",
            f"oci:{layout}:docker.io/islandtest/tool:2.0",
            f"docker-archive:{archive}:islandtest/tool:2.0",
        ],
        check=True,
        capture_output=True,
    )
    node = start_agent_with_images(tmp_path, {"tool.tar": archive.read_bytes()})
    log = messages(node.log())
    assert "double: imported image docker.io/islandtest/tool:2.0 from" in log
    assert "Error encountered" not in log


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("notes.tar", tar_of({"README": b"not an image\n"}), "unrecognized image format"),
        ("broken.tar.gz", b"\x1f\x8b not gzip at all", "not a readable tar archive"),
        ("images.zip", b"PK\x03\x04", "unhandled file type"),
        ("broken.tar.zst", b"\x28\xb5\x2f\xfd not zstd at all", "zstd: "),
        ("gzip-inside.tar.zst", b"\x1f\x8b\x08\x00", "zstd: invalid input: magic number mismatch"),
        # k3s decodes with a 32 MiB window limit (untar.MaxDecoderMemory): --long=27 frames are refused
        ("wide.tar.zst", zstd_cli(tar_of({"a": b"x" * 1000}), "--long=27"), "Frame requires too much memory"),
        (
            "missing-layer.tar",
            tar_of(
                {
                    "manifest.json": json.dumps(
                        [{"Config": "c.json", "RepoTags": ["x:1"], "Layers": ["l/layer.tar"]}]
                    ).encode(),
                    "c.json": json.dumps({"rootfs": {"diff_ids": ["sha256:" + "0" * 64]}}).encode(),
                }
            ),
            "l/layer.tar is listed but missing from the archive",
        ),
    ],
)
def test_an_archive_containerd_could_not_import_is_an_error_for_that_file_only(tmp_path, name, data, message):
    layout = staged_layout(tmp_path / "oci")
    good = docker_save_archive(layout, ["docker.io/islandtest/tool:2.0"])
    node = start_agent_with_images(tmp_path, {name: data, "zz-good.tar": good})
    log = messages(node.log())
    bad = node.data_dir / "agent" / "images" / name
    assert f"Error encountered while importing {bad}: " in log
    assert message in log
    assert f"Imported images from {bad}" not in log
    # as in k3s, the next archive is still imported and the agent goes on to join
    assert "double: imported image docker.io/islandtest/tool:2.0 from" in log
