"""Host checks for the preflight role: what a host is, and what stands in the island's way.

Runs on managed hosts with their system Python (3.9+), stdlib only. Every check returns problems as
sentences that say what was found and what to do; the role prefixes the host name.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import shutil
import socket
import subprocess
import time

from ansible_collections.island.installer.plugins.module_utils.island_preflight_firewall import check_firewall

# TCP state 0A is LISTEN (include/net/tcp_states.h); an unconnected UDP socket bound to a port is 07.
_TCP_LISTEN = "0A"
_UDP_UNCONNECTED = "07"
_PROC_NET = (
    ("tcp", "tcp", socket.AF_INET),
    ("tcp6", "tcp", socket.AF_INET6),
    ("udp", "udp", socket.AF_INET),
    ("udp6", "udp", socket.AF_INET6),
)


def read_os_release(path="/etc/os-release"):
    """Parse os-release(5) into a dict of its keys."""
    values = {}
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            line = raw.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, _, value = line.partition("=")
            values[key] = value.strip().strip('"').strip("'")
    return values


# The OS families the roles keep per-family settings for (roles/pki/vars/<family>.yml), as Ansible's
# own distribution facts name them (ansible/module_utils/facts/system/distribution.py OS_FAMILY_MAP,
# ansible-core 2.19), recognised by os-release's ID or ID_LIKE.
OS_FAMILIES = {
    "Debian": ("debian", "ubuntu", "raspbian", "linuxmint", "devuan", "kali", "pop"),
    "RedHat": ("rhel", "centos", "fedora", "rocky", "almalinux", "ol", "amzn", "scientific"),
}


def os_family(os_release):
    """The Ansible OS family of an os-release, or None when it is none of OS_FAMILIES."""
    ids = [os_release.get("ID", ""), *os_release.get("ID_LIKE", "").split()]
    for family, members in OS_FAMILIES.items():
        if any(value.lower() in members for value in ids if value):
            return family
    return None


def _major(version):
    """The release a VERSION_ID names: Debian's is the major version alone ("12"; a point release
    does not change it)."""
    return str(version).split(".")[0]


def _supported_names(supported):
    return ", ".join(
        f"{name} {version}" for name, versions in sorted(supported.items()) for version in versions
    )


def check_os(os_release, supported):
    """`supported` maps an os-release ID to the releases (major VERSION_ID) the island is tested on.

    Only the ID counts: a derivative (Ubuntu says ID_LIKE=debian) is another system, with other
    packages and defaults, and no test runs it. Returns the problem, or [] when the system is supported.
    """
    os_id = os_release.get("ID", "unknown")
    version = os_release.get("VERSION_ID", "")
    pretty = os_release.get("PRETTY_NAME", f"{os_id} {version}".strip())
    releases = supported.get(os_id, [])
    releases = [str(release) for release in (releases if isinstance(releases, list) else [releases])]
    if version and _major(version) in releases:
        return []
    return [
        f"the operating system is {pretty} (ID={os_id}, VERSION_ID={version or 'unset'}), which the island "
        f"is not tested on; supported: {_supported_names(supported)}: install a supported system, or set "
        f"preflight_allow_untested_os: true to go on untested (preflight then warns)"
    ]


def os_problems_and_warnings(os_release, supported, allow_untested):
    """The OS check as the role applies it: a problem, or a warning when the operator allowed an
    untested system explicitly."""
    found = check_os(os_release, supported)
    if not found or not allow_untested:
        return found, []
    pretty = os_release.get("PRETTY_NAME", os_release.get("ID", "unknown"))
    return [], [
        f"the operating system is {pretty}, which the island is not tested on (supported: "
        f"{_supported_names(supported)}); going on because preflight_allow_untested_os is true"
    ]


def check_selinux(enforce_path="/sys/fs/selinux/enforce"):
    """An enforcing SELinux confines the island's services by policies the bundle does not carry
    (RHEL-family hosts); read-only, from selinuxfs."""
    try:
        with open(enforce_path, encoding="ascii") as handle:
            enforcing = handle.read().strip() == "1"
    except OSError:
        return []
    if not enforcing:
        return []
    return [
        "SELinux is enforcing, and the bundle carries no SELinux policy for the island's services: "
        "run the island on a supported system (Debian 12 or 13), or make SELinux permissive on this "
        "host if you accept running them unconfined"
    ]


def check_architecture(machine, supported):
    if machine in supported:
        return []
    return [f"the CPU architecture is {machine}; the bundle carries binaries for {', '.join(supported)} only"]


def systemd_state(pid1_comm, runner=subprocess.run):
    """Return (pid1 is systemd, state of `systemctl is-system-running`)."""
    if pid1_comm != "systemd":
        return False, "offline"
    try:
        # --wait returns once boot has finished: a host still starting is not a failure.
        result = runner(
            ["systemctl", "is-system-running", "--wait"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return True, f"unknown ({exc})"
    return True, result.stdout.strip() or "unknown"


# RTF_REJECT (include/uapi/linux/route.h): an "unreachable" route, which `ip route show default`
# does not count as a way out either.
_RTF_REJECT = 0x0200


def default_route(proc_root="/proc"):
    """Whether the host has a default route (IPv4 or IPv6) in its main table, as
    `ip -4 route show default; ip -6 route show default` would list one: /proc/net/route lists the
    main IPv4 table (destination and mask 00000000 is the default), /proc/net/ipv6_route every IPv6
    route (destination ::/0 on a device other than lo, not a reject route). k3s needs one even
    offline (docs.k3s.io/installation/airgap, "Default Network Route")."""
    try:
        with open(os.path.join(proc_root, "net", "route"), encoding="ascii") as handle:
            for line in handle.read().splitlines()[1:]:
                fields = line.split()
                if len(fields) >= 8 and fields[1] == "00000000" and fields[7] == "00000000":
                    return True
    except FileNotFoundError:
        pass
    try:
        with open(os.path.join(proc_root, "net", "ipv6_route"), encoding="ascii") as handle:
            for line in handle.read().splitlines():
                fields = line.split()
                if (
                    len(fields) == 10
                    and fields[0] == "0" * 32
                    and fields[1] == "00"
                    and fields[9] != "lo"
                    and not int(fields[8], 16) & _RTF_REJECT
                ):
                    return True
    except FileNotFoundError:
        pass
    return False


def unit_active(unit, runner=subprocess.run):
    """Whether systemd reports the unit active (`systemctl is-active`), without failing the read."""
    try:
        result = runner(
            ["systemctl", "is-active", unit], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.stdout.strip() == "active"


def check_systemd(is_pid1, state):
    if not is_pid1:
        return [
            "systemd is not PID 1; the island runs every service as a systemd unit: boot the host "
            "with systemd"
        ]
    if state not in ("running", "degraded"):
        return [
            f"systemd reports the system as '{state}' (expected running or degraded): see "
            f"`systemctl --failed` on the host"
        ]
    return []


def check_clock(host_time, controller_time, max_skew):
    skew = host_time - controller_time
    if abs(skew) > max_skew:
        return [
            f"the clock is {skew:+.1f} s off the controller's (bound {max_skew:g} s); TLS certificates "
            f"and etcd need synchronised time: sync the host (chrony or systemd-timesyncd against "
            f"the island's time source)"
        ], skew
    return [], skew


def free_bytes(path):
    """Free bytes for an unprivileged writer at `path`, or at its nearest existing parent."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    stats = os.statvfs(probe)
    return probe, stats.f_bavail * stats.f_frsize


def _gib(count):
    return f"{count / 2**30:.1f} GiB"


def check_disk(path, required, available_at):
    probe, available = available_at(path)
    if available < required:
        return [
            f"{path} (on the file system of {probe}) has {_gib(available)} free; the island needs "
            f"{_gib(required)} there for this host's share of the bundle and working space: free "
            f"space or grow the file system"
        ], available
    return [], available


def _parse_address(hex_address, family):
    """Decode the address:port column of /proc/net/{tcp,udp}[6] (host byte order per 32-bit word)."""
    address_hex, port_hex = hex_address.split(":")
    raw = bytes.fromhex(address_hex)
    words = [raw[i : i + 4][::-1] for i in range(0, len(raw), 4)]
    packed = b"".join(words)
    return socket.inet_ntop(family, packed), int(port_hex, 16)


def parse_proc_net(text, proto, family):
    """Listening sockets in one /proc/net table: dicts of proto, address, port, inode."""
    wanted_state = _TCP_LISTEN if proto == "tcp" else _UDP_UNCONNECTED
    sockets = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != wanted_state:
            continue
        address, port = _parse_address(fields[1], family)
        sockets.append(
            {"proto": proto, "address": address, "port": port, "uid": int(fields[7]), "inode": int(fields[9])}
        )
    return sockets


def _user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def unit_of_cgroup(text):
    """The systemd unit a process belongs to, from /proc/<pid>/cgroup (v1 or v2), or None."""
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or parts[1] not in ("", "name=systemd"):
            continue
        for piece in reversed(parts[2].split("/")):
            if piece.endswith((".service", ".scope")):
                return piece
    return None


def socket_owners(proc_root="/proc"):
    """Map socket inode -> (pid, comm, unit) by reading /proc/<pid>/fd."""
    owners = {}
    for entry in os.listdir(proc_root):
        if not entry.isdigit():
            continue
        base = os.path.join(proc_root, entry)
        try:
            fds = os.listdir(os.path.join(base, "fd"))
        except OSError:
            continue
        inodes = []
        for fd in fds:
            try:
                target = os.readlink(os.path.join(base, "fd", fd))
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.append(int(target[8:-1]))
        if not inodes:
            continue
        try:
            with open(os.path.join(base, "comm"), encoding="utf-8") as handle:
                comm = handle.read().strip()
            with open(os.path.join(base, "cgroup"), encoding="utf-8") as handle:
                unit = unit_of_cgroup(handle.read())
        except OSError:
            continue
        for inode in inodes:
            owners.setdefault(inode, (int(entry), comm, unit))
    return owners


def listeners(proc_root="/proc"):
    found = []
    for table, proto, family in _PROC_NET:
        try:
            with open(os.path.join(proc_root, "net", table), encoding="utf-8") as handle:
                found.extend(parse_proc_net(handle.read(), proto, family))
        except OSError:
            continue
    owners = socket_owners(proc_root)
    for sock in found:
        pid, comm, unit = owners.get(sock["inode"], (None, None, None))
        # Reading another user's /proc/<pid>/fd needs CAP_SYS_PTRACE, which a root without all
        # capabilities (a container) lacks; the socket table's own uid column still names the owner.
        sock.update(pid=pid, comm=comm, unit=unit, user=_user_name(sock["uid"]))
    return found


def _as_ip(text):
    try:
        return ipaddress.ip_address(text)
    except (TypeError, ValueError):
        return None


def _overlaps(listener_address, bind, island_address):
    address = ipaddress.ip_address(listener_address)
    if address.is_unspecified or bind == "any":
        return True
    # The service binds the island address only: a loopback listener (a local stub resolver on
    # 127.0.0.53, say) does not collide with it. When the island address is a name rather than an
    # IP, any non-loopback listener is taken to collide.
    island_ip = _as_ip(island_address)
    if island_ip is None:
        return not address.is_loopback
    return address == island_ip


def check_ports(found, wanted, island_address):
    """`wanted`: dicts of port, proto, bind ('island' or 'any'), service, units (systemd units that
    may already hold the port: the island's own service, on a rerun) and users (the service's user,
    which identifies it when its unit cannot be read)."""
    problems = []
    for want in wanted:
        for sock in found:
            if sock["port"] != want["port"] or sock["proto"] != want["proto"]:
                continue
            if not _overlaps(sock["address"], want.get("bind", "any"), island_address):
                continue
            if sock["unit"] and sock["unit"] in want.get("units", []):
                continue
            if not sock["unit"] and sock.get("user") in want.get("users", []):
                continue
            holder = sock["comm"] or f"a process of user {sock.get('user', 'unknown')}"
            if sock["pid"]:
                holder += f" (pid {sock['pid']}{', unit ' + sock['unit'] if sock['unit'] else ''})"
            problems.append(
                f"port {want['port']}/{want['proto']}, which {want['service']} needs, is already held by "
                f"{holder} on {sock['address']}: stop that service or move it to another port"
            )
            break
    return problems


def run_checks(
    params,
    *,
    now=time.time,
    available_at=free_bytes,
    found_listeners=listeners,
    pid1_reader=None,
    runner=subprocess.run,
    machine=None,
):
    """Run every host check; return (problems, facts)."""
    problems = []
    facts = {}

    os_release = read_os_release(params.get("os_release_path", "/etc/os-release"))
    keys = ("ID", "VERSION_ID", "VERSION_CODENAME", "PRETTY_NAME")
    facts["os"] = {key: os_release.get(key) for key in keys}
    facts["os"]["family"] = os_family(os_release)
    found, warnings = os_problems_and_warnings(
        os_release, params["supported_os"], params.get("allow_untested_os", False)
    )
    problems += found
    name = params.get("inventory_name")
    facts["warnings"] = [f"preflight on {name}: {warning}" if name else warning for warning in warnings]
    problems += check_selinux(params.get("selinux_enforce_path", "/sys/fs/selinux/enforce"))

    facts["architecture"] = machine or os.uname().machine
    problems += check_architecture(facts["architecture"], params["architectures"])

    if pid1_reader is None:

        def pid1_reader():
            with open("/proc/1/comm", encoding="utf-8") as handle:
                return handle.read().strip()

    is_pid1, state = systemd_state(pid1_reader(), runner)
    facts["systemd"] = {"pid1": is_pid1, "state": state}
    problems += check_systemd(is_pid1, state)
    # Read here, with the rest of the host's state, for the roles that decide on them later in the
    # run: the k3s role refuses a host without a default route, the dns role configures
    # systemd-resolved where it runs and /etc/resolv.conf elsewhere.
    facts["network"] = {
        "default_route": default_route(params.get("proc_root", "/proc")),
        "resolved_active": is_pid1 and unit_active("systemd-resolved.service", runner),
    }

    facts["host_time"] = now()
    if params.get("controller_time") is not None:
        found, facts["clock_skew_seconds"] = check_clock(
            facts["host_time"], params["controller_time"], params["max_clock_skew"]
        )
        problems += found

    found, facts["disk_free_bytes"] = check_disk(
        params["disk_path"], params["disk_required_bytes"], available_at
    )
    problems += found

    sockets = found_listeners()
    facts["listeners"] = [
        {key: sock[key] for key in ("proto", "address", "port", "comm", "unit")} for sock in sockets
    ]
    problems += check_ports(sockets, params["ports"], params.get("island_address"))
    problems += firewall_problems(params, runner)
    return problems, facts


def firewall_problems(params, runner=subprocess.run, which=shutil.which):
    """The host firewall check, unless the operator manages the firewall (firewall_check: false)."""
    if not params.get("firewall_check", True):
        return []
    island_ip = _as_ip(params.get("island_address"))
    family = island_ip.version if island_ip is not None else 4
    return check_firewall(params["ports"], family=family, runner=runner, which=which)
