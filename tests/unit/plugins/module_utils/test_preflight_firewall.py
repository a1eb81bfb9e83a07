"""Preflight names the island ports a host firewall would block, judged from real rulesets.

The rulesets under firewall_rulesets/ are the output of the real tools (nftables 1.0.6 and
iptables 1.8.9, Debian 12), captured in a throwaway network namespace:
`unshare --net sh -c 'nft -f X.nft && nft -j list ruleset'` for the nftables ones (the X.nft source
beside each), and `iptables-restore` then `iptables-save` for the iptables ones. Their shapes:
Debian's default /etc/nftables.conf; a hand-written drop-policy server, and one written with service
names and transport-header ports; firewalld's zone chains as its nftables backend lays them out; a
RHEL-style catch-all reject; ufw's chains as its before/after/user rules lay them out; and the
rules kube-proxy and kube-router (k3s's network policy) add on a k3s node.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_preflight import firewall_problems
from ansible_collections.island.installer.plugins.module_utils.island_preflight_firewall import (
    blocked_by_iptables,
    blocked_by_nft,
    check_firewall,
    firewall_managers,
)

RULESETS = Path(__file__).parent / "firewall_rulesets"

# The ports of a host that carries every island service (the island model's ports).
WANTED = [
    {"port": 53, "proto": "udp", "service": "CoreDNS"},
    {"port": 53, "proto": "tcp", "service": "CoreDNS"},
    {"port": 5443, "proto": "tcp", "service": "the registry"},
    {"port": 9000, "proto": "tcp", "service": "MinIO"},
    {"port": 3000, "proto": "tcp", "service": "Gitea"},
    {"port": 6443, "proto": "tcp", "service": "the k3s API server"},
    {"port": 10250, "proto": "tcp", "service": "the kubelet"},
]


def _read(name):
    return (RULESETS / name).read_text()


def _nft_blocked(name):
    return {(b["port"], b["proto"]): b["why"] for b in blocked_by_nft(_read(name), WANTED)}


def _iptables_blocked(name):
    return {(b["port"], b["proto"]): b["why"] for b in blocked_by_iptables(_read(name), WANTED)}


def test_debians_default_nftables_conf_blocks_nothing():
    assert _nft_blocked("debian-default.json") == {}


def test_a_drop_policy_blocks_every_port_not_accepted_and_names_the_policy():
    blocked = _nft_blocked("hardened.json")
    # udp 53, tcp 5443 (a set) and tcp 9000 (a range, for the island network) are accepted; Gitea's
    # 3000 only for marked packets, which new connections from other hosts are not.
    assert set(blocked) == {(53, "tcp"), (3000, "tcp"), (6443, "tcp"), (10250, "tcp")}
    assert blocked[(3000, "tcp")] == "policy drop of chain input of nftables table inet filter"


def test_firewalld_zone_chains_reject_what_the_zone_does_not_allow():
    blocked = _nft_blocked("firewalld.json")
    # The public zone allows ssh, 546/udp, 9090 and 53/udp; everything else reaches the zone's reject.
    assert (53, "udp") not in blocked
    assert set(blocked) == {(p["port"], p["proto"]) for p in WANTED} - {(53, "udp")}
    assert blocked[(6443, "tcp")] == "reject rule in chain filter_IN_public of nftables table inet firewalld"


def test_a_rhel_style_catch_all_reject_blocks_the_island_ports():
    blocked = _iptables_blocked("rhel7.iptables-save")
    assert (53, "udp") not in blocked
    # The rule is quoted as iptables-save writes it.
    assert blocked[(6443, "tcp")] == (
        "reject rule in chain INPUT of iptables: -A INPUT -j REJECT --reject-with icmp-host-prohibited"
    )
    assert len(blocked) == len(WANTED) - 1


def test_ufw_blocks_what_its_user_rules_do_not_allow():
    blocked = _iptables_blocked("ufw.iptables-save")
    # ufw allows 22/tcp, 53/udp and 6443/tcp; its ufw-not-local chain returns for local addresses.
    assert set(blocked) == {(p["port"], p["proto"]) for p in WANTED} - {(53, "udp"), (6443, "tcp")}
    assert blocked[(3000, "tcp")] == "policy drop of chain INPUT of iptables"


def test_k3s_own_rules_block_none_of_the_island_ports():
    assert _iptables_blocked("k3s.iptables-save") == {}
    # The same rules as nftables shows them through iptables-nft, xt matches and all.
    assert _nft_blocked("k3s-iptables-nft.json") == {}


def _runner(outputs, active=()):
    """A subprocess.run stand-in: each argv's stdout, and systemctl is-active for the units given."""

    def run(argv, **_kwargs):
        if argv[0] == "systemctl":
            state = "active" if argv[-1] in active else "inactive"
            return subprocess.CompletedProcess(argv, 0 if state == "active" else 3, state + "\n", "")
        key = " ".join(argv)
        if key not in outputs:
            raise AssertionError(f"unexpected command {argv}")
        code, out, err = outputs[key]
        return subprocess.CompletedProcess(argv, code, out, err)

    return run


def _which(*present):
    return lambda name: f"/usr/sbin/{name}" if name in present else None


def test_the_problem_names_each_blocked_port_its_service_and_the_way_out():
    runner = _runner({"iptables-save": (0, _read("rhel7.iptables-save"), "")})
    [problem] = check_firewall(WANTED[:3], runner=runner, which=_which("iptables-save", "systemctl"))
    assert "would block 2 of the island's ports" in problem
    assert "53/tcp for CoreDNS (reject rule in chain INPUT of iptables: -A INPUT -j REJECT" in problem
    assert "5443/tcp for the registry" in problem
    assert "53/udp" not in problem
    assert "preflight_firewall_check: false" in problem


def test_an_active_firewalld_is_named_with_the_command_that_opens_the_ports():
    runner = _runner({"nft -j list ruleset": (0, _read("firewalld.json"), "")}, active={"firewalld.service"})
    [problem] = check_firewall(WANTED[2:4], runner=runner, which=_which("nft", "systemctl"))
    assert "firewalld is active" in problem
    assert "firewall-cmd --permanent --add-port=5443/tcp --add-port=9000/tcp" in problem


def test_ufw_counts_as_active_only_when_enabled(tmp_path):
    conf = tmp_path / "ufw.conf"
    conf.write_text("# /etc/ufw/ufw.conf\nENABLED=no\nLOGLEVEL=low\n")
    runner = _runner({}, active={"ufw.service"})
    assert firewall_managers(runner, str(conf), which=_which("systemctl")) == []
    conf.write_text("ENABLED=yes\n")
    assert firewall_managers(runner, str(conf), which=_which("systemctl")) == ["ufw"]


def test_iptables_nft_tables_are_judged_once_in_iptables_terms():
    # The drop-policy INPUT, seen by iptables-save and by nft: one problem, each port once.
    runner = _runner(
        {
            "iptables-save": (0, _read("ufw.iptables-save"), ""),
            "nft -j list ruleset": (0, _read("hardened.json"), ""),
        }
    )
    [problem] = check_firewall(WANTED, runner=runner, which=_which("iptables-save", "nft"))
    assert problem.count("3000/tcp") == 1
    # Blocked by either ruleset: 53/tcp by both, 6443 by nft's (ufw allows it).
    assert (
        "6443/tcp for the k3s API server (policy drop of chain input of nftables table inet filter)"
        in problem
    )


def test_no_firewall_tools_means_nothing_to_block():
    assert check_firewall(WANTED, runner=_runner({}), which=_which()) == []


def test_rules_that_cannot_be_read_are_a_problem_with_the_opt_out():
    runner = _runner({"nft -j list ruleset": (1, "", "Operation not permitted (you must be root)")})
    [problem] = check_firewall(WANTED, runner=runner, which=_which("nft"))
    assert "could not be read" in problem
    assert "Operation not permitted" in problem
    assert "preflight_firewall_check: false" in problem


@pytest.mark.parametrize(("address", "tool"), [("10.0.0.5", "iptables-save"), ("fd00::5", "ip6tables-save")])
def test_the_island_addresses_family_picks_the_ruleset(address, tool):
    runner = _runner({tool: (0, _read("rhel7.iptables-save"), ""), "nft -j list ruleset": (0, "{}", "")})
    params = {"ports": WANTED[:1] + WANTED[2:3], "island_address": address}
    [problem] = firewall_problems(params, runner, which=_which(tool, "nft"))
    assert "5443/tcp" in problem


def test_the_operator_can_turn_the_check_off():
    runner = _runner({"iptables-save": (0, _read("rhel7.iptables-save"), "")})
    params = {"ports": WANTED, "island_address": "10.0.0.5", "firewall_check": False}
    assert firewall_problems(params, runner, which=_which("iptables-save")) == []
    params["firewall_check"] = True
    assert firewall_problems(params, runner, which=_which("iptables-save")) != []


def test_service_names_a_transport_header_port_and_a_local_destination_are_understood():
    # services.nft: `tcp dport { ssh, https }`, `meta l4proto { tcp, udp } th dport 53` and
    # `fib daddr type local tcp dport 3000`, under a drop policy.
    blocked = _nft_blocked("services.json")
    assert set(blocked) == {(5443, "tcp"), (9000, "tcp"), (6443, "tcp"), (10250, "tcp")}
