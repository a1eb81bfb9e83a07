#!/usr/bin/env python3
"""Benchmark: seed a fresh registry from an OCI layout, island engine against skopeo.

    /tmp/v1/bin/python benchmarks/registry_seed.py [--rounds 3] [--workers 4] [--cache /var/tmp/...]

Builds (once, cached) an OCI layout of 12 images of about 1 GB in all, random incompressible
data in uncompressed tar layers: two 150 MB base layers each shared by six images, one 2 MB layer
shared by all, and a 55-60 MB unique layer per image. Each round starts a fresh CNCF distribution
registry (Debian `docker-registry`, TLS with a throwaway CA, htpasswd auth) on new storage, and
seeds it (a) with island_oci.seed and (b) with one `skopeo copy oci:<layout>:<ref> docker://...`
per image, alternating which goes first. Then it times the reseed of unchanged content.

Targets: cold seeding at most 0.8 of skopeo's time; reseed of the images under 0.5 s.
Not part of pytest (it writes ~3 GB and takes minutes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from ansible_collections.island.installer.plugins.module_utils.island_oci import (
    ImageReference,
    OCILayout,
    seed,
)

from tests.support.oci import Registry, make_pki

MB = 1024 * 1024
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
IMAGES = 12


def random_layer(path, size, seed_text):
    """An uncompressed tar holding one file of random bytes; written once, reused from the cache."""
    if path.exists():
        return
    tmp = path.with_suffix(".tmp")
    data_path = path.with_suffix(".data")
    with open(data_path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 * MB)
            f.write(os.urandom(n))
            left -= n
    with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        info = tar.gettarinfo(str(data_path), arcname=f"data/{seed_text}")
        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
        with open(data_path, "rb") as f:
            tar.addfile(info, f)
    data_path.unlink()
    tmp.rename(path)


def build_layout(cache):
    """The benchmark layout; rebuilt only when missing."""
    layout_dir = cache / "layout"
    layout = OCILayout(str(layout_dir))
    if layout.exists() and len(layout.images()) == IMAGES:
        return layout
    raw = cache / "layers"
    raw.mkdir(parents=True, exist_ok=True)
    specs = {"base-a": 150 * MB, "base-b": 150 * MB, "common": 2 * MB}
    for i in range(IMAGES):
        specs[f"unique-{i}"] = (55 + (i % 6)) * MB
    for name, size in specs.items():
        random_layer(raw / f"{name}.tar", size, name)
    layout.init()
    digests = {}
    for name in specs:
        digests[name] = _store_file(layout, raw / f"{name}.tar")
    for i in range(IMAGES):
        names = ["base-a" if i < IMAGES // 2 else "base-b", "common", f"unique-{i}"]
        layers = [{"mediaType": LAYER_TAR, "digest": digests[n][0], "size": digests[n][1]} for n in names]
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [digests[n][0] for n in names]},
            }
        ).encode()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": layout.write_blob(config),
                    "size": len(config),
                },
                "layers": layers,
            }
        ).encode()
        desc = {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": layout.write_blob(manifest),
            "size": len(manifest),
        }
        layout.set_image(ImageReference.parse(f"docker.io/bench/img{i}:1"), desc)
    return layout


def _store_file(layout, path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(4 * MB), b""):
            h.update(chunk)
    digest = "sha256:" + h.hexdigest()
    target = Path(layout.blob_path(digest))
    if not target.exists():
        shutil.copyfile(path, target)
    return digest, path.stat().st_size


def run_ours(registry, layout, workers):
    client = registry.client(retries=3)
    start = time.perf_counter()
    result = seed(client, layout, workers=workers)
    elapsed = time.perf_counter() - start
    client.close()
    return elapsed, result


def run_skopeo(registry, layout):
    start = time.perf_counter()
    for ref, _desc in layout.images():
        subprocess.run(
            [
                "skopeo",
                "copy",
                "--quiet",
                *registry.skopeo_args("dest-"),
                f"oci:{layout.path}:{ref}",
                f"docker://{registry.address}/{ref.path}:{ref.tag}",
            ],
            check=True,
            capture_output=True,
        )
    return time.perf_counter() - start


def fresh_registry(workroot, pki, name):
    reg = Registry(workroot / name, pki)
    return reg.start()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    # A fixed cache path is the point: the 1 GB of random layers is built once per machine.
    parser.add_argument("--cache", default="/var/tmp/island-bench-registry-seed")  # noqa: S108
    args = parser.parse_args()

    cache = Path(args.cache)
    t0 = time.perf_counter()
    layout = build_layout(cache)
    total = sum(p.stat().st_size for p in Path(layout.path, "blobs", "sha256").iterdir())
    print(
        f"layout: {len(layout.images())} images, {total / MB:.0f} MiB of unique blobs "
        f"({time.perf_counter() - t0:.1f} s to prepare)"
    )

    workroot = Path(tempfile.mkdtemp(prefix="island-bench-", dir="/var/tmp"))
    pki = make_pki(workroot / "pki")
    ours, theirs = [], []
    try:
        for rnd in range(args.rounds):
            order = ("ours", "skopeo") if rnd % 2 == 0 else ("skopeo", "ours")
            for who in order:
                reg = fresh_registry(workroot, pki, f"r{rnd}-{who}")
                try:
                    if who == "ours":
                        elapsed, result = run_ours(reg, layout, args.workers)
                        ours.append(elapsed)
                        d = result.to_dict()
                        detail = f"{d['blobs_uploaded']} uploaded, {d['blobs_mounted']} mounted"
                    else:
                        elapsed = run_skopeo(reg, layout)
                        theirs.append(elapsed)
                        detail = f"{len(layout.images())} skopeo copy runs"
                    rate = total / MB / elapsed
                    print(f"round {rnd + 1} cold {who:6s}: {elapsed:6.2f} s  ({rate:5.0f} MiB/s; {detail})")
                    if rnd == args.rounds - 1 and who == order[-1]:
                        reseed(reg, layout, args.workers)
                finally:
                    reg.stop()
                    shutil.rmtree(workroot / f"r{rnd}-{who}", ignore_errors=True)
        mo, mt = statistics.median(ours), statistics.median(theirs)
        print(
            f"cold seeding, median of {args.rounds}: ours {mo:.2f} s, skopeo {mt:.2f} s, "
            f"ratio {mo / mt:.2f} (target <= 0.80)"
        )
    finally:
        shutil.rmtree(workroot, ignore_errors=True)


def reseed(reg, layout, workers):
    """Everything present: time our unchanged run and skopeo's, on the same registry."""
    # The registry now holds everything (seeded by whichever ran last); make sure of it first.
    run_ours(reg, layout, workers)
    times = []
    for _ in range(5):
        mark = reg.log_mark()
        elapsed, result = run_ours(reg, layout, workers)
        if result.changed or reg.writes(mark):
            raise SystemExit("reseed wrote to the registry")
        times.append(elapsed)
    skopeo_time = run_skopeo(reg, layout)
    best = min(times)
    print(
        f"reseed of {len(layout.images())} unchanged images: ours {statistics.median(times):.3f} s "
        f"(best {best:.3f} s, target < 0.5 s, no writes), skopeo {skopeo_time:.2f} s"
    )


if __name__ == "__main__":
    main()
