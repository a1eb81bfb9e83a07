#!/usr/bin/env python3
"""Benchmark: the island bundle verifier against ``sha256sum -c`` on the same files.

Creates (or reuses) a bundle of a few large files and many small ones in /var/tmp, writes and
signs its lock, warms the page cache by reading every file once, then times, in one run:

* ``sha256sum -c`` over a checksum list of every file of the bundle (the coreutils baseline);
* ``verify_bundle()``: signature, lock, sizes and sha256 of every file, unlisted-file check.

It prints both throughputs in MB/s (10^6 bytes per second) and their ratio (best of --repeat runs
each). Not part of pytest: timings depend on the machine. Usage::

    /tmp/v1/bin/python benchmarks/bundle_verify.py [--dir /var/tmp/island-bundle-bench] [--rebuild]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ansible_collections.island.installer.plugins.module_utils.island_bundle import (
    default_workers,
    sign,
    verify_bundle,
    write_lock,
)
from ansible_collections.island.installer.plugins.module_utils.island_bundle_lock import LOCK_NAME, load_lock
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

MIB = 1024 * 1024
CHUNK = 8 * MIB
LARGE_FILES = {  # a few large files: a binary, the air-gap image archive, a big git bundle
    "bin/k3s": 700 * MIB,
    "k3s/k3s-airgap-images-amd64.tar": 600 * MIB,
    "git/platform.bundle": 250 * MIB,
}
SMALL_BLOBS = 1800  # many small ones: OCI blobs from 1 KiB to 1 MiB, named by digest
MANIFESTS = 200
MIN_TOTAL = 2 * 1000**3


def _write_random(path: Path, size: int, rng: random.Random) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        left = size
        while left:
            block = rng.randbytes(min(CHUNK, left))
            digest.update(block)
            handle.write(block)
            left -= len(block)
    return digest.hexdigest()


def build_bundle(bundle: Path) -> None:
    """Write the bundle's files. Deterministic content: a rebuild gives the same bundle."""
    rng = random.Random(20261121)  # noqa: S311 - benchmark data, not a secret
    shutil.rmtree(bundle, ignore_errors=True)
    for rel, size in LARGE_FILES.items():
        (bundle / rel).parent.mkdir(parents=True, exist_ok=True)
        _write_random(bundle / rel, size, rng)
    blobs = bundle / "oci/blobs/sha256"
    blobs.mkdir(parents=True)
    (bundle / "oci/oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (bundle / "oci/index.json").write_text('{"schemaVersion":2,"manifests":[]}')
    for index in range(SMALL_BLOBS):
        size = int(1024 + (MIB - 1024) * rng.random() ** 2)
        tmp = blobs / f".tmp-{index}"
        tmp.rename(blobs / _write_random(tmp, size, rng))
    manifests = bundle / "files/manifests"
    manifests.mkdir(parents=True)
    for index in range(MANIFESTS):
        (manifests / f"configmap-{index:03}.yaml").write_text(
            f"apiVersion: v1\nkind: ConfigMap\n# {index}\n" * 20
        )


def prepare(work: Path, rebuild: bool) -> tuple[Path, Path, dict]:
    """The bundle (built once, then reused), its signed lock, allowed_signers, a sha256sum list."""
    bundle = work / "bundle"
    work.mkdir(parents=True, exist_ok=True)
    if rebuild or not (bundle / LOCK_NAME).exists():
        print(f"building the bundle in {bundle} ...", flush=True)
        build_bundle(bundle)
        started = time.monotonic()
        write_lock(bundle, name="benchmark", version="1")
        print(f"write_lock hashed the bundle in {time.monotonic() - started:.1f} s", flush=True)
    else:
        print(f"reusing the bundle in {bundle} (--rebuild to start over)", flush=True)
    lock = load_lock((bundle / LOCK_NAME).read_bytes())
    key = Ed25519PrivateKey.generate()
    key_path = work / "signing-key"
    key_path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()))
    key_path.chmod(0o600)
    sign(bundle, key_path)
    public = key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    signers = work / "allowed_signers"
    signers.write_text(f'bench@island namespaces="island-bundle" {public}\n')
    sums = work / "sha256sums"
    sums.write_text("".join(f"{f['sha256']}  {f['path']}\n" for f in lock["files"]))
    return bundle, signers, lock


def warm_cache(bundle: Path, lock: dict) -> None:
    buffer = bytearray(CHUNK)
    for entry in lock["files"]:
        with (bundle / entry["path"]).open("rb", buffering=0) as handle:
            while handle.readinto(buffer):
                pass


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_sha256sum(bundle: Path, sums: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``sha256sum -c``."""
    cpu = _children_cpu()
    started = time.monotonic()
    subprocess.run(["sha256sum", "--quiet", "-c", str(sums)], cwd=bundle, check=True)
    return time.monotonic() - started, _children_cpu() - cpu


def time_verifier(bundle: Path, signers: Path, workers: int | None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of all threads) of ``verify_bundle``."""
    cpu = time.process_time()
    result = verify_bundle(bundle, allowed_signers=signers, workers=workers)
    return result.seconds, time.process_time() - cpu


def best(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return min(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # A fixed, reusable place: building 2 GB takes longer than verifying it.
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp/island-bundle-bench"))  # noqa: S108
    parser.add_argument("--rebuild", action="store_true", help="build the bundle again")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, best is kept")
    parser.add_argument("--workers", type=int, default=None, help="verifier threads (default: CPUs)")
    args = parser.parse_args()

    bundle, signers, lock = prepare(args.dir, args.rebuild)
    total = sum(f["size"] for f in lock["files"])
    if total < MIN_TOTAL:
        print(f"the bundle holds only {total} bytes; run with --rebuild", file=sys.stderr)
        return 1
    sizes = sorted((f["size"] for f in lock["files"]), reverse=True)
    print(
        f"bundle: {len(sizes)} files, {total / 1e9:.2f} GB; largest {sizes[0] / MIB:.0f} MiB,"
        f" {sum(1 for s in sizes if s <= MIB)} files of 1 MiB or less"
    )
    print(f"CPUs available: {default_workers()}; verifier workers: {args.workers or default_workers()}")
    warm_cache(bundle, lock)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    baseline, baseline_cpu = best(
        [time_sha256sum(bundle, args.dir / "sha256sums") for _ in range(args.repeat)]
    )
    workers = args.workers or default_workers()
    ours, ours_cpu = best([time_verifier(bundle, signers, workers) for _ in range(args.repeat)])
    single, single_cpu = best([time_verifier(bundle, signers, 1) for _ in range(args.repeat)])
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def line(label: str, wall: float, cpu: float) -> str:
        return f"{label:<28}: {wall:6.2f} s  {total / wall / 1e6:7.0f} MB/s   CPU {cpu:6.2f} s"

    print(line("sha256sum -c", baseline, baseline_cpu))
    print(line("verify_bundle, 1 worker", single, single_cpu))
    print(line(f"verify_bundle, {workers} workers", ours, ours_cpu))
    print(f"ratio verify_bundle / sha256sum -c (wall): {baseline / ours:.2f}x (target: 3x)")
    print(f"ratio of CPU time per byte, sha256sum -c / verify_bundle: {baseline_cpu / ours_cpu:.2f}x")
    print(f"peak RSS: {rss_before // 1024} MiB before verifying, {rss_after // 1024} MiB after")
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
