"""Host side of the bundle's Debian packages: which the host still lacks, and the apt call that
installs them from their files with no package source (module island_debs_install).

Note that this module util is PRIVATE to this repository; it can change at any time.
Shipped to hosts with the module, so it runs on the hosts' system Python (3.9+).
"""

from __future__ import annotations

# dpkg-query(1) of dpkg 1.21: one line per package asked; db:Status-Abbrev is "ii " for a package
# selected for install and installed.
DPKG_QUERY_FORMAT = "${Package}\\t${Version}\\t${db:Status-Abbrev}\\n"


class DebsError(Exception):
    """The host's packages cannot be read or installed; the message names what and why."""


def dpkg_query_argv(debs):
    return ["dpkg-query", "-W", "-f", DPKG_QUERY_FORMAT, *[deb["package"] for deb in debs]]


def pending_debs(debs, dpkg_query):
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


def apt_install_argv(debs, sources_list, sources_parts):
    """apt-get install of the given files. -o Dir::Etc::SourceList / SourceParts: apt reads no
    source but the empty list (apt.conf(5), apt 2.6), so nothing is downloaded and nothing but the
    given files can be installed; an unmet dependency fails naming it. --force-confold keeps a
    configuration file the operator changed."""
    return [
        "apt-get",
        "install",
        "--yes",
        "--quiet",
        "--no-install-recommends",
        "-o",
        f"Dir::Etc::SourceList={sources_list}",
        "-o",
        f"Dir::Etc::SourceParts={sources_parts}",
        "-o",
        "Dpkg::Options::=--force-confold",
        *[deb["dest"] for deb in debs],
    ]
