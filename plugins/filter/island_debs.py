"""The bundle's Debian packages for one host (debs/<release>/, docs/bundle-format.md), and which of
them the host must still install.

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


def island_debs_pending(debs, dpkg_query):
    """The packages of ``debs`` the host does not have installed at the bundle's version, from the
    output of ``dpkg-query -W -f '${Package}\\t${Version}\\t${db:Status-Abbrev}\\n'`` (a package
    counts only when its status is ``ii``: selected install, installed)."""
    installed = {}
    for line in str(dpkg_query or "").splitlines():
        fields = line.split("\t")
        if len(fields) >= 3 and fields[2].strip() == "ii":
            installed[fields[0].split(":", 1)[0]] = fields[1]
    return [
        f"{deb['package']} {deb['version']}"
        + (
            f" (installed: {installed[deb['package']]})"
            if deb["package"] in installed
            else " (not installed)"
        )
        for deb in debs
        if installed.get(deb["package"]) != deb["version"]
    ]


class FilterModule:
    def filters(self):
        return {
            "island_debs": island_debs,
            "island_debs_files": island_debs_files,
            "island_debs_releases": island_debs_releases,
            "island_os_codename": island_os_codename,
            "island_debs_pending": island_debs_pending,
        }
