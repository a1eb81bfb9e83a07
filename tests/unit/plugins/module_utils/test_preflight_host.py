"""The host checks behind the preflight role: each names what it found and what to do."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_preflight import (
    check_clock,
    check_disk,
    check_os,
    check_ports,
    check_selinux,
    check_systemd,
    default_route,
    listeners,
    os_family,
    os_problems_and_warnings,
    run_checks,
    unit_active,
    unit_of_cgroup,
)

SUPPORTED = {"debian": ["12", "13"]}

DEBIAN_13 = {"ID": "debian", "VERSION_ID": "13", "PRETTY_NAME": "Debian GNU/Linux 13 (trixie)"}
UBUNTU = {"ID": "ubuntu", "ID_LIKE": "debian", "VERSION_ID": "22.04", "PRETTY_NAME": "Ubuntu 22.04.4 LTS"}
ROCKY = {
    "ID": "rocky",
    "ID_LIKE": "rhel centos fedora",
    "VERSION_ID": "9.4",
    "PRETTY_NAME": "Rocky Linux 9.4",
}


def test_the_os_family_is_setups_name_for_it_from_id_or_id_like():
    # the names Ansible's setup gives (module_utils/facts/system/distribution.py OS_FAMILY_MAP)
    assert os_family(DEBIAN_13) == "Debian"
    assert os_family(UBUNTU) == "Debian"
    assert os_family(ROCKY) == "RedHat"
    assert os_family({"ID": "opensuse-leap", "ID_LIKE": "suse opensuse"}) is None
    assert os_family({}) is None


def test_debian_12_and_13_are_supported():
    assert check_os({"ID": "debian", "VERSION_ID": "12"}, SUPPORTED) == []
    assert check_os(DEBIAN_13, SUPPORTED) == []


@pytest.mark.parametrize(
    "release",
    [
        UBUNTU,
        ROCKY,
        {
            "ID": "rhel",
            "ID_LIKE": "fedora",
            "VERSION_ID": "9.4",
            "PRETTY_NAME": "Red Hat Enterprise Linux 9.4",
        },
        {"ID": "debian", "VERSION_ID": "11", "PRETTY_NAME": "Debian GNU/Linux 11 (bullseye)"},
        {"ID": "debian", "VERSION_ID": "14", "PRETTY_NAME": "Debian GNU/Linux 14 (forky)"},
        {"ID": "debian", "PRETTY_NAME": "Debian GNU/Linux forky/sid"},
    ],
)
def test_a_system_no_test_runs_is_refused_naming_it_and_what_is_supported(release):
    [problem] = check_os(release, SUPPORTED)
    assert release["PRETTY_NAME"] in problem
    assert f"ID={release['ID']}" in problem
    assert "supported: debian 12, debian 13" in problem
    assert "preflight_allow_untested_os: true" in problem


def test_one_release_may_be_given_alone():
    assert check_os({"ID": "debian", "VERSION_ID": "12"}, {"debian": "12"}) == []
    assert check_os(DEBIAN_13, {"debian": "12"}) != []


def test_a_derivative_is_not_taken_for_the_system_it_derives_from():
    # Ubuntu says ID_LIKE=debian: other packages and defaults, and no test runs it.
    assert check_os(UBUNTU, SUPPORTED) != []


def test_the_operator_may_allow_an_untested_system_which_then_warns():
    assert os_problems_and_warnings(UBUNTU, SUPPORTED, False)[1] == []
    problems, warnings = os_problems_and_warnings(UBUNTU, SUPPORTED, True)
    assert problems == []
    [warning] = warnings
    assert "Ubuntu 22.04.4 LTS" in warning
    assert "not tested on" in warning
    assert "preflight_allow_untested_os is true" in warning
    assert os_problems_and_warnings(DEBIAN_13, SUPPORTED, True) == ([], [])


def test_an_enforcing_selinux_is_refused_and_a_permissive_one_passes(tmp_path):
    enforce = tmp_path / "enforce"
    enforce.write_text("1")
    [problem] = check_selinux(str(enforce))
    assert "SELinux is enforcing" in problem
    assert "no SELinux policy" in problem
    enforce.write_text("0")
    assert check_selinux(str(enforce)) == []
    assert check_selinux(str(tmp_path / "absent")) == []


def test_a_host_without_systemd_as_pid1_is_refused():
    [problem] = check_systemd(False, "offline")
    assert "systemd is not PID 1" in problem


def test_a_degraded_system_passes_but_a_stopping_one_does_not():
    assert check_systemd(True, "degraded") == []
    [problem] = check_systemd(True, "stopping")
    assert "'stopping'" in problem
    assert "systemctl --failed" in problem


def test_clock_skew_beyond_the_bound_is_refused_with_its_size():
    assert check_clock(1000.0, 1003.0, 5)[0] == []
    problems, skew = check_clock(1000.0, 1010.5, 5)
    assert skew == pytest.approx(-10.5)
    assert "-10.5 s off" in problems[0]
    assert "bound 5 s" in problems[0]


def test_too_little_disk_names_the_path_and_both_sizes():
    problems, free = check_disk("/var/lib/island", 10 * 2**30, lambda path: ("/var", 3 * 2**30))
    assert free == 3 * 2**30
    assert "/var/lib/island" in problems[0]
    assert "3.0 GiB free" in problems[0]
    assert "10.0 GiB" in problems[0]


def test_the_systemd_unit_is_read_from_cgroup_v1_and_v2():
    v1 = "12:pids:/system.slice/coredns.service\n1:name=systemd:/system.slice/coredns.service\n"
    assert unit_of_cgroup(v1) == "coredns.service"
    assert unit_of_cgroup("0::/system.slice/registry.service\n") == "registry.service"
    assert unit_of_cgroup("0::/user.slice/user-0.slice/session-3.scope\n") == "session-3.scope"
    assert unit_of_cgroup("0::/\n") is None


@pytest.fixture
def listening_tcp():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def bound_udp6():
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.bind(("::1", 0))
    yield sock.getsockname()[1]
    sock.close()


def test_a_real_listening_socket_is_found_with_its_process(listening_tcp):
    [found] = [s for s in listeners() if s["port"] == listening_tcp and s["proto"] == "tcp"]
    assert found["address"] == "127.0.0.1"
    assert found["pid"] == os.getpid()
    assert found["comm"]


def test_a_real_udp6_socket_is_found(bound_udp6):
    found = [s for s in listeners() if s["port"] == bound_udp6 and s["proto"] == "udp"]
    assert [s["address"] for s in found] == ["::1"]


def _sock(
    port,
    *,
    address="0.0.0.0",  # noqa: S104 (a wildcard listener is the case under test)
    unit=None,
    comm="nginx",
    pid=42,
    proto="tcp",
    user="www-data",
):
    return {
        "proto": proto,
        "address": address,
        "port": port,
        "pid": pid,
        "comm": comm,
        "unit": unit,
        "user": user,
    }


def test_a_port_held_by_another_service_is_refused_with_its_holder():
    wanted = [{"port": 3000, "proto": "tcp", "service": "Gitea", "units": ["gitea.service"]}]
    [problem] = check_ports([_sock(3000, unit="grafana.service", comm="grafana")], wanted, "10.0.0.5")
    assert "port 3000/tcp" in problem
    assert "Gitea" in problem
    assert "grafana (pid 42, unit grafana.service)" in problem


def test_the_islands_own_service_may_hold_its_port_on_a_rerun():
    wanted = [{"port": 3000, "proto": "tcp", "service": "Gitea", "units": ["gitea.service"]}]
    assert check_ports([_sock(3000, unit="gitea.service")], wanted, "10.0.0.5") == []


def test_a_loopback_stub_resolver_does_not_block_dns_on_the_island_address():
    wanted = [{"port": 53, "proto": "udp", "service": "CoreDNS", "bind": "island", "units": []}]
    stub = _sock(53, address="127.0.0.53", unit="systemd-resolved.service", proto="udp")
    assert check_ports([stub], wanted, "10.0.0.5") == []
    other = _sock(53, address="10.0.0.5", unit="dnsmasq.service", comm="dnsmasq", proto="udp")
    assert "dnsmasq" in check_ports([stub, other], wanted, "10.0.0.5")[0]
    wildcard = _sock(53, address="::", unit="named.service", comm="named", proto="udp")
    assert "named" in check_ports([wildcard], wanted, "10.0.0.5")[0]


def test_a_port_of_the_other_protocol_does_not_collide():
    wanted = [{"port": 53, "proto": "tcp", "service": "CoreDNS", "units": []}]
    assert check_ports([_sock(53, proto="udp")], wanted, "10.0.0.5") == []


def test_all_checks_run_and_report_together(tmp_path):
    release = tmp_path / "os-release"
    release.write_text(
        'ID=debian\nVERSION_ID="11"\nVERSION_CODENAME=bullseye\n'
        'PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\n'
    )
    params = {
        "os_release_path": str(release),
        "supported_os": SUPPORTED,
        "architectures": ["x86_64"],
        "controller_time": 100.0,
        "max_clock_skew": 5,
        "disk_path": "/srv",
        "disk_required_bytes": 2**31,
        "island_address": "10.0.0.5",
        "ports": [{"port": 9000, "proto": "tcp", "service": "MinIO", "bind": "any", "units": []}],
        "firewall_check": False,
    }
    problems, facts = run_checks(
        params,
        now=lambda: 200.0,
        available_at=lambda path: (path, 2**20),
        found_listeners=lambda: [_sock(9000)],
        pid1_reader=lambda: "bash",
        machine="riscv64",
    )
    assert len(problems) == 6, problems
    assert facts["os"]["VERSION_ID"] == "11"
    assert facts["os"]["VERSION_CODENAME"] == "bullseye"
    assert facts["systemd"] == {"pid1": False, "state": "offline"}
    assert facts["network"]["resolved_active"] is False  # no systemd to ask
    assert isinstance(facts["network"]["default_route"], bool)
    assert facts["clock_skew_seconds"] == 100.0


def test_without_the_unit_the_services_user_identifies_its_own_port():
    # A root without CAP_SYS_PTRACE (in a container) cannot read another user's /proc/<pid>/fd.
    wanted = [
        {
            "port": 5000,
            "proto": "tcp",
            "service": "the registry",
            "units": ["registry.service"],
            "users": ["registry"],
        }
    ]
    own = _sock(5000, unit=None, comm=None, pid=None, user="registry")
    assert check_ports([own], wanted, "10.0.0.5") == []
    [problem] = check_ports([_sock(5000, unit=None, comm=None, pid=None, user="nobody")], wanted, "10.0.0.5")
    assert "a process of user nobody" in problem


def test_the_socket_owner_is_read_from_the_socket_table(listening_tcp):
    [found] = [s for s in listeners() if s["port"] == listening_tcp and s["proto"] == "tcp"]
    assert found["user"] == __import__("pwd").getpwuid(os.getuid()).pw_name


def test_an_allowed_untested_system_warns_with_the_host_name_instead_of_failing(tmp_path):
    release = tmp_path / "os-release"
    release.write_text('ID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\nPRETTY_NAME="Ubuntu 24.04.1 LTS"\n')
    params = {
        "os_release_path": str(release),
        "selinux_enforce_path": str(tmp_path / "no-selinux"),
        "supported_os": SUPPORTED,
        "allow_untested_os": True,
        "inventory_name": "node-7",
        "architectures": ["x86_64"],
        "max_clock_skew": 5,
        "disk_path": "/srv",
        "disk_required_bytes": 1,
        "ports": [],
        "firewall_check": False,
    }
    problems, facts = run_checks(
        params, available_at=lambda path: (path, 2**30), found_listeners=list, pid1_reader=lambda: "bash"
    )
    assert not [p for p in problems if "operating system" in p]
    [warning] = facts["warnings"]
    assert warning.startswith("preflight on node-7: the operating system is Ubuntu 24.04.1 LTS")


def _proc_net(tmp_path, route, ipv6_route):
    (tmp_path / "net").mkdir(parents=True)
    (tmp_path / "net" / "route").write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" + route
    )
    (tmp_path / "net" / "ipv6_route").write_text(ipv6_route)
    return str(tmp_path)


_ANY6 = "0" * 32


def test_an_ipv4_default_route_is_found_in_the_main_table(tmp_path):
    route = "eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    assert default_route(_proc_net(tmp_path, route, ""))


def test_a_host_with_only_a_subnet_route_has_no_default_route(tmp_path):
    route = "eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    assert not default_route(_proc_net(tmp_path, route, ""))


def test_an_ipv6_default_route_counts_but_not_the_kernels_unreachable_one_on_lo(tmp_path):
    unreachable = f"{_ANY6} 00 {_ANY6} 00 {_ANY6} ffffffff 00000001 00000000 00200200 lo\n"
    assert not default_route(_proc_net(tmp_path / "a", "", unreachable))
    via = f"{_ANY6} 00 {_ANY6} 00 fe800000000000000000000000000001 00000400 00000001 00000000 00450003 eth0\n"
    assert default_route(_proc_net(tmp_path / "b", "", unreachable + via))


def test_this_machines_routes_read_as_ip_route_lists_them():
    listed = subprocess.run(
        ["sh", "-c", "ip -4 route show default; ip -6 route show default"],
        capture_output=True,
        text=True,
        check=False,
    )
    if listed.returncode != 0:
        pytest.skip("ip is not available here")
    assert default_route() == bool(listed.stdout.strip())


def test_resolved_is_active_only_when_systemctl_says_active():
    def answer(text):
        return lambda argv, **_: subprocess.CompletedProcess(
            argv, 0 if text == "active" else 3, text + "\n", ""
        )

    assert unit_active("systemd-resolved.service", answer("active"))
    assert not unit_active("systemd-resolved.service", answer("inactive"))

    def missing(argv, **_):
        raise FileNotFoundError("systemctl")

    assert not unit_active("systemd-resolved.service", missing)
