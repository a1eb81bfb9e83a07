"""The bundle's Debian packages for one host (debs/<release>/, docs/bundle-format.md); which of them
the host must still install is decided on the host (module island_debs_install).

The builder names every file as apt does, ``<package>_<version>_<architecture>.deb`` (the version's
epoch ':' as ``%3a``), and the lock signs those names, so the package and version a host compares
with its own come from the verified lock, not from reading each archive on the host.
"""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError
from ansible_collections.island.installer.plugins.module_utils.island_bundle_debs import DEB_NAME_RE


def island_debs(lock_files, release, dest_dir):
    """The lock's files under debs/<release>/, each as ``src`` (its bundle path), ``dest`` (in
    ``dest_dir`` on the host), ``package``, ``version`` and ``architecture``, by package name."""
    prefix = f"debs/{release}/"
    out = []
    for entry in lock_files or []:
        path = entry["path"] if isinstance(entry, dict) else str(entry)
        if not path.startswith(prefix):
            continue
        name = path[len(prefix) :]
        match = DEB_NAME_RE.fullmatch(name)
        if not match:
            raise AnsibleFilterError(
                f"the bundle's {path} is not named <package>_<version>_<architecture>.deb as the builder "
                "names Debian packages; rebuild the bundle with the builder"
            )
        out.append(
            {
                "src": path,
                "dest": f"{str(dest_dir).rstrip('/')}/{name}",
                "package": match["package"],
                "version": match["version"].replace("%3a", ":"),
                "architecture": match["arch"],
            }
        )
    return sorted(out, key=lambda deb: deb["package"])


def island_debs_files(debs):
    """``island_debs`` entries as island_install ``files``: root's, 0644."""
    return [
        {"src": d["src"], "dest": d["dest"], "owner": "root", "group": "root", "mode": "0644"} for d in debs
    ]


def island_os_codename(os_release):
    """VERSION_CODENAME of an /etc/os-release text (os-release(5)), or '' when it has none."""
    match = re.search(r"""^VERSION_CODENAME=["']?([A-Za-z0-9._-]*)["']?\s*$""", str(os_release or ""), re.M)
    return match.group(1) if match else ""


def island_debs_releases(lock_files):
    """The Debian releases the bundle carries packages for (debs/<release>/)."""
    paths = (entry["path"] if isinstance(entry, dict) else str(entry) for entry in lock_files or [])
    return sorted({path.split("/")[1] for path in paths if path.startswith("debs/") and path.count("/") >= 2})


def island_debs_codenames(hosts, hostvars, read_result):
    """{host: Debian codename} for ``hosts``: preflight's ``island_preflight.os_codename`` fact, or
    in a run without preflight the os-release the role read into the registered ``read_result``
    (an island_install result with ``read``); '' when neither says."""
    out = {}
    for host in hosts or []:
        host_vars = hostvars[host]
        preflight = (host_vars.get("ansible_facts") or {}).get("island_preflight") or {}
        if "os_codename" in preflight:
            out[host] = str(preflight["os_codename"] or "")
            continue
        read = (host_vars.get(read_result) or {}).get("read") or {}
        out[host] = island_os_codename(read.get("/etc/os-release", ""))
    return out


def island_debs_missing(hosts_releases, lock_files, packages, what="journal"):
    """One message for each host (``hosts_releases`` maps it to its Debian codename, '' when
    unknown) whose release the bundle carries not every one of ``packages`` for; [] when all fit.
    Checked once for all hosts before any of them changes."""
    releases = island_debs_releases(lock_files)
    problems = []
    for host, release in sorted(dict(hosts_releases or {}).items()):
        carried = {deb["package"] for deb in island_debs(lock_files, release, "/")} if release else set()
        missing = [package for package in packages if package not in carried]
        if release and not missing:
            continue
        problems.append(
            f"{what} on {host}: the bundle has no Debian packages {', '.join(missing)} for "
            f"{release or 'the release of this host (no VERSION_CODENAME in /etc/os-release)'} (it carries "
            f"packages for: {', '.join(releases) or 'none'}); build the bundle with a debs section for this "
            "release (docs/bundle-spec.md), or take the host out of the island"
        )
    return problems


class FilterModule:
    def filters(self):
        return {
            "island_debs": island_debs,
            "island_debs_files": island_debs_files,
            "island_debs_missing": island_debs_missing,
            "island_debs_codenames": island_debs_codenames,
            "island_debs_releases": island_debs_releases,
            "island_os_codename": island_os_codename,
        }
