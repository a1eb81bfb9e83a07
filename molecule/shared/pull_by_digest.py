#!/usr/bin/python3
"""Test equipment: pull one image by digest over HTTPS, trusting only the OS trust store.

    pull-by-digest REGISTRY USER PASSWORD_FILE REPOSITORY DIGEST
    pull-by-digest --try-push REGISTRY USER PASSWORD_FILE REPOSITORY DIGEST

Fetches the manifest by digest (an image index's child manifests too) and every blob, and checks
each against its digest. --try-push starts a blob upload and prints the HTTP status. The password
is read from a file, never from the command line.
"""

import base64
import hashlib
import json
import sys
import urllib.error
import urllib.request

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def get(url, auth, accept=ACCEPT):
    request = urllib.request.Request(url, headers={"Authorization": auth, "Accept": accept})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (https URLs built here)
        return response.read()


def check(data, digest, what):
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    if actual != digest:
        sys.exit(f"{what}: got {actual}, expected {digest}")


def pull(base, auth, repo, digest):
    manifest = get(f"{base}/v2/{repo}/manifests/{digest}", auth)
    check(manifest, digest, f"manifest {repo}@{digest}")
    doc = json.loads(manifest)
    blobs = 0
    for child in doc.get("manifests", []):
        blobs += pull(base, auth, repo, child["digest"])
    for desc in [doc["config"], *doc["layers"]] if "config" in doc else []:
        check(get(f"{base}/v2/{repo}/blobs/{desc['digest']}", auth, "*/*"), desc["digest"], "blob")
        blobs += 1
    return blobs


def main(argv):
    try_push = argv[:1] == ["--try-push"]
    registry, user, password_file, repo, digest = argv[1:] if try_push else argv
    with open(password_file, encoding="utf-8") as handle:
        password = handle.read().strip()
    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    base = f"https://{registry}"
    if try_push:
        request = urllib.request.Request(  # noqa: S310 (https URL built here)
            f"{base}/v2/{repo}/blobs/uploads/", method="POST", headers={"Authorization": auth}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                print(f"HTTP {response.status}")
        except urllib.error.HTTPError as exc:
            print(f"HTTP {exc.code}")
        return
    print(f"{repo}@{digest}: {pull(base, auth, repo, digest)} blobs verified")


if __name__ == "__main__":
    main(sys.argv[1:])
