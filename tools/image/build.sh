#!/usr/bin/env bash
# Builds a test image: a Debian rootfs from debootstrap, with systemd as PID 1, python3 and sshd,
# imported with `docker import`. Nothing is pulled from a registry.
#
#   tools/image/build.sh IMAGE_TAG [SUITE]
#
# SUITE is the Debian release: bookworm (Debian 12, the default; packages from packages.txt) or
# another one with its own list, packages-SUITE.txt (trixie: Debian 13).
set -euo pipefail

tag=${1:?usage: build.sh IMAGE_TAG [SUITE]}
suite=${2:-bookworm}
here=$(cd "$(dirname "$0")" && pwd)
package_list=$here/packages.txt
[ "$suite" = bookworm ] || package_list=$here/packages-$suite.txt
[ -f "$package_list" ] || { echo "no package list for Debian $suite: write $package_list" >&2; exit 1; }
work=$(mktemp -d /var/tmp/island-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs

packages=$(grep -v -e '^#' -e '^$' "$package_list" | tr '\n' ' ')
echo "island-test image: debootstrap $suite (minbase), then: $packages"
log=$work/build.log
fail() { tail -n 40 "$log" >&2; echo "test image build failed: $1 (last 40 lines of its log above)" >&2; exit 1; }
debootstrap --variant=minbase "$suite" "$root" >"$log" 2>&1 || fail "debootstrap"
# apt inside the chroot resolves dependencies properly; services must not start while it runs.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
trap 'umount "$root/proc" 2>/dev/null || true; rm -rf "$work"' EXIT
# shellcheck disable=SC2086 # the package list is meant to split into words
chroot "$root" env DEBIAN_FRONTEND=noninteractive sh -c \
  "apt-get update -qq && apt-get install -y -qq --no-install-recommends $packages" >>"$log" 2>&1 ||
  fail "apt-get install in the image"
# PyPI packages the test doubles need beyond Debian's (tests/doubles/*/pip-requirements.txt), into
# the image's system python, as the doubles run on /usr/bin/python3. The wheels are fetched by the
# host's pip (which knows how this machine reaches PyPI) and installed in the image offline, for the
# image's Python version. Only into an image whose package list carries python3-pip: the pins are
# resolved against Debian 12's python3 packages.
cat "$here"/../../tests/doubles/*/pip-requirements.txt 2>/dev/null | grep -v -e '^#' -e '^$' >"$work/pip-requirements.txt" || true
if [ -s "$work/pip-requirements.txt" ] && [ -x "$root/usr/bin/pip3" ]; then
  mkdir -p "$root/tmp/wheels"
  image_python=$(chroot "$root" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  python3 -m pip download --quiet --only-binary=:all: --implementation cp --python-version "$image_python" \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    --platform any -d "$root/tmp/wheels" -r "$work/pip-requirements.txt" >>"$log" 2>&1 ||
    fail "pip download of the doubles' packages"
  cp "$work/pip-requirements.txt" "$root/tmp/pip-requirements.txt"
  chroot "$root" env PIP_CONFIG_FILE=/dev/null python3 -m pip install --quiet --no-index \
    --find-links /tmp/wheels --break-system-packages -r /tmp/pip-requirements.txt >>"$log" 2>&1 ||
    fail "pip install of the doubles' packages in the image"
  rm -rf "$root/tmp/wheels" "$root/tmp/pip-requirements.txt"
fi
umount "$root/proc"
rm -f "$root/usr/sbin/policy-rc.d"

# Each container gets its own machine id and SSH host keys at first boot, not the image's.
: >"$root/etc/machine-id"
rm -f "$root"/etc/ssh/ssh_host_*
mkdir -p "$root/etc/systemd/system/ssh.service.d"
cat >"$root/etc/systemd/system/ssh.service.d/hostkeys.conf" <<'UNIT'
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
UNIT
chroot "$root" systemctl enable ssh.service >/dev/null 2>&1
# Units that have no meaning in a container and only slow boot or fail.
for unit in getty.target systemd-udevd.service systemd-udev-trigger.service \
  systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer e2scrub_reap.service \
  containerd.service; do
  chroot "$root" systemctl mask "$unit" >/dev/null 2>&1 || true
done
# containerd is installed for the k3s tests, which start it with their own configuration.
chroot "$root" systemctl unmask containerd.service >/dev/null 2>&1 || true
chroot "$root" systemctl disable containerd.service >/dev/null 2>&1 || true
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* \
  "$root"/usr/share/man/* "$root"/var/cache/debconf/*-old

tar --numeric-owner -C "$root" -c . |
  docker import \
    --change 'ENV container=docker' \
    --change 'CMD ["/sbin/init"]' \
    - "$tag" >/dev/null
echo "island-test image: imported as $tag"
