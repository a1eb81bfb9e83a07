"""Would the host's firewall block the island's ports? Read-only, from the rules as the kernel has them.

Runs on managed hosts with their system Python (3.9+), stdlib only. The rules are read with
`nft -j list ruleset` (nftables' JSON, libnftables-json(5)) and `iptables-save`/`ip6tables-save`
(iptables-save(8)); firewalld and ufw are named when active, since they own the rules and the fix.
Nothing is changed.

How a port is judged, for a new connection from another island host to that port:

- every base chain on the input hook (nftables: `type filter hook input`; iptables: the filter
  table's INPUT) is walked rule by rule, following jump and goto into other chains;
- a rule that does not apply to that traffic is passed over: another protocol or port, only the
  loopback interface, only established, related or invalid packets, a multicast or broadcast
  destination (a condition that holds for it, such as "the destination is a local address", is no
  restriction);
- an `accept` that applies is taken, even when it selects sources, destinations or interfaces: the
  operator opened the port for some hosts on purpose; an `accept` with any other condition (a mark,
  a source port, a rate limit, an xt match nft cannot show) is passed over;
- a `drop`, `reject` or `return` counts only when nothing but protocol, port and connection state
  restricts it: one with further conditions (a source, a mark, as k3s's own chains have) blocks
  some traffic, not the port; likewise a drop reached through a jump that has such conditions;
- at the end of a base chain its policy decides.

A port is blocked when some base chain of its address family ends in drop or reject.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess

_MAX_DEPTH = 32

# iptables-save matches that only load a protocol's options, or do not restrict the traffic.
_NEUTRAL_MODULES = {"tcp", "udp", "multiport", "comment", "conntrack", "state", "addrtype", "iprange"}
# iptables-save conditions that select sources, destinations or interfaces (with their value).
_IPT_SELECTORS = {
    "-s",
    "--source",
    "-d",
    "--destination",
    "--src-range",
    "--dst-range",
    "-o",
    "--out-interface",
}
# IP protocol numbers iptables and nftables may print instead of names (/etc/protocols).
_PROTOCOL_NAMES = {"6": "tcp", "17": "udp", "1": "icmp", "58": "ipv6-icmp", "132": "sctp"}
# nftables payload protocols that are headers below the transport, not a transport of their own.
_NFT_NETWORK_HEADERS = {"ip", "ip6", "th", "ether", "vlan", "arp", "inet"}


class Rule:
    """One rule, reduced to what the judgement above needs."""

    def __init__(self, text=None):
        self.text = text  # how the operator wrote it, for the message: iptables' line, nft's comment
        self.protos = None  # None: any protocol
        self.ports = None  # None: any port; else [(low, high)]
        self.verdict = None  # accept, drop, reject, jump, goto, return, or None (no decision)
        self.target = None
        self.other = False  # restricted by anything beyond protocol, port and connection state
        self.narrow = False  # ... by something other than sources, destinations or interfaces
        self.skips = False  # never applies to a new connection from another host to this one

    def select(self):
        """A condition on sources, destinations or interfaces."""
        self.other = True

    def restrict(self):
        """Any other condition."""
        self.other = self.narrow = True

    def applies(self, proto, port):
        if self.skips:
            return False
        if self.protos is not None and proto not in self.protos:
            return False
        return self.ports is None or any(low <= port <= high for low, high in self.ports)


class Chain:
    def __init__(self, where, name, hook=None, policy=None):
        self.where = where  # "nftables table inet filter", or "iptables" / "ip6tables"
        self.name = name
        self.hook = hook
        self.policy = policy
        self.rules = []

    def label(self):
        return f"chain {self.name} of {self.where}"


# ---------------------------------------------------------------------------------------------
# iptables-save


def _port_ranges(text):
    """`22`, `53,80`, `1000:2000`, `:1023` and `1024:` as inclusive (low, high) ranges."""
    ranges = []
    for piece in text.split(","):
        if ":" in piece:
            low, high = piece.split(":", 1)
            ranges.append((int(low or 0), int(high or 65535)))
        else:
            ranges.append((int(piece), int(piece)))
    return ranges


def _protocol(value):
    name = str(value).lower()
    return _PROTOCOL_NAMES.get(name, name)


def _ipt_protocol(rule, value, negate):
    if negate:
        rule.restrict()
    elif value.lower() != "all":
        rule.protos = {_protocol(value)}


def _ipt_ports(rule, value, negate):
    if negate:
        rule.restrict()
    else:
        rule.ports = _port_ranges(value)


def _ipt_interface(rule, value, negate):
    if value == "lo" and not negate:
        rule.skips = True
    else:
        rule.select()


def _ipt_state(rule, value, negate):
    # Skips new connections when it lists no NEW, or when it is negated and lists NEW.
    if negate == ("NEW" in value.upper().split(",")):
        rule.skips = True


def _ipt_destination_type(rule, value, negate):
    # Traffic to this host is LOCAL by definition; any other type never matches it.
    if negate == (value.upper() == "LOCAL"):
        rule.skips = True


def _ipt_match(rule, value, _negate):
    if value not in _NEUTRAL_MODULES:
        rule.restrict()


def _ipt_comment(_rule, _value, _negate):
    return


_IPT_OPTIONS = {
    "-p": _ipt_protocol,
    "--protocol": _ipt_protocol,
    "--dport": _ipt_ports,
    "--dports": _ipt_ports,
    "--destination-port": _ipt_ports,
    "--destination-ports": _ipt_ports,
    "-i": _ipt_interface,
    "--in-interface": _ipt_interface,
    "--ctstate": _ipt_state,
    "--state": _ipt_state,
    "-m": _ipt_match,
    "--match": _ipt_match,
    "--comment": _ipt_comment,
    "--dst-type": _ipt_destination_type,
}
_IPT_JUMPS = {"-j": "jump", "--jump": "jump", "-g": "goto", "--goto": "goto"}


def _iptables_rule(words, text):
    """One `-A CHAIN ...` line of iptables-save, the words after the chain name."""
    rule = Rule(text)
    index = 0
    negate = False
    while index < len(words):
        word = words[index]
        index += 1
        if word == "!":
            negate = True
            continue
        value = words[index] if index < len(words) else ""
        if word in _IPT_JUMPS:
            # The target comes last; its own options (--reject-with ...) change nothing here.
            if value in ("ACCEPT", "DROP", "REJECT", "RETURN"):
                rule.verdict = value.lower()
            else:
                # Another chain, or a target extension that decides nothing (LOG, MARK): the walk
                # follows what names a chain of the dump and passes over the rest.
                rule.verdict, rule.target = _IPT_JUMPS[word], value
            break
        handler = _IPT_OPTIONS.get(word)
        if handler is not None:
            handler(rule, value, negate)
            index += 1
        elif word.startswith("-"):
            # Any other condition (-s, -d, --mark, --sport, --match-set, --limit...) and its value.
            if word in _IPT_SELECTORS:
                rule.select()
            else:
                rule.restrict()
            if value and not value.startswith("-") and value != "!":
                index += 1
        negate = False
    return rule


def parse_iptables_save(text, where="iptables"):
    """The filter table's chains of an iptables-save dump: {name: Chain}; INPUT carries the hook."""
    chains = {}
    table = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            table = line[1:]
            continue
        if table != "filter" or line == "COMMIT":
            continue
        if line.startswith(":"):
            name, policy = line[1:].split()[:2]
            chains[name] = Chain(
                where,
                name,
                hook="input" if name == "INPUT" else None,
                policy=policy.lower() if policy != "-" else None,
            )
        elif line.startswith("-A "):
            tokens = shlex.split(line)
            name = tokens[1]
            chains.setdefault(name, Chain(where, name)).rules.append(_iptables_rule(tokens[2:], line))
    return chains


# ---------------------------------------------------------------------------------------------
# nftables JSON


def _nft_values(right):
    """The values an nft match compares with: a scalar, a set, a range, a list (ct state flags)."""
    if isinstance(right, dict) and "set" in right:
        items = right["set"]
    elif isinstance(right, list):
        items = right
    else:
        items = [right]
    return [tuple(item["range"]) if isinstance(item, dict) and "range" in item else item for item in items]


def _nft_payload(rule, payload, values, negated):
    field = payload.get("field")
    protocol = payload.get("protocol")
    if field in ("protocol", "nexthdr") and protocol in ("ip", "ip6") and not negated:
        rule.protos = {_protocol(value) for value in values}
        return
    if field in ("saddr", "daddr") and protocol in ("ip", "ip6"):
        rule.select()
        return
    if protocol not in _NFT_NETWORK_HEADERS:
        # A field of a transport header (tcp dport, icmp type) implies that transport.
        rule.protos = {protocol}
    if field != "dport" or negated or protocol not in ("tcp", "udp", "sctp", "th"):
        rule.restrict()
        return
    ranges = []
    for value in values:
        if isinstance(value, tuple):
            ranges.append((int(value[0]), int(value[1])))
        elif isinstance(value, int):
            ranges.append((value, value))
        else:
            rule.restrict()  # a named set or a service name: not read here
            return
    rule.ports = ranges


def _nft_meta(rule, key, values, negated):
    if key == "l4proto" and not negated and all(isinstance(v, (str, int)) for v in values):
        rule.protos = {_protocol(value) for value in values}
    elif key in ("iif", "iifname") and not negated and values == ["lo"]:
        rule.skips = True
    elif key in ("iif", "iifname", "oif", "oifname"):
        rule.select()
    else:
        rule.restrict()


def _nft_match(rule, match):
    left = match.get("left", {})
    negated = match.get("op", "==") == "!="
    values = _nft_values(match.get("right"))
    if not isinstance(left, dict):
        rule.restrict()
    elif "payload" in left:
        _nft_payload(rule, left["payload"], values, negated)
    elif "meta" in left:
        _nft_meta(rule, left["meta"].get("key"), values, negated)
    elif left.get("ct", {}).get("key") == "state":
        if negated == ("new" in {str(value).lower() for value in values}):
            rule.skips = True
    elif "fib" in left and left["fib"].get("result") == "type" and left["fib"].get("flags") == ["daddr"]:
        # Traffic to this host has a local destination by definition; any other type never matches.
        if negated == ("local" in values):
            rule.skips = True
    else:
        rule.restrict()


def _nft_rule(expressions, text):
    rule = Rule(text)
    for expression in expressions:
        (kind, body), *_ = expression.items()
        if kind == "match":
            _nft_match(rule, body)
        elif kind in ("accept", "drop", "reject", "return"):
            rule.verdict = kind
        elif kind in ("jump", "goto"):
            rule.verdict = kind
            rule.target = body.get("target")
        elif kind == "xt" and (body or {}).get("name") == "comment":
            continue  # iptables-nft's comment match
        elif kind not in ("counter", "log", "comment"):
            rule.restrict()  # limit, xt (an iptables-nft match nft cannot show), a verdict map...
        if rule.verdict:
            break
    return rule


def parse_nft_json(text, skip_tables=()):
    """The filter chains of `nft -j list ruleset`: {(family, table, name): Chain}.

    `skip_tables`: (family, table) pairs read through iptables-save instead (iptables-nft's tables).
    """
    chains = {}
    for item in json.loads(text).get("nftables", []):
        if "chain" in item:
            chain = item["chain"]
            key = (chain["family"], chain["table"])
            if key in skip_tables or chain["family"] not in ("ip", "ip6", "inet"):
                continue
            hook = chain.get("hook") if chain.get("type") == "filter" else None
            chains[(*key, chain["name"])] = Chain(
                f"nftables table {chain['family']} {chain['table']}",
                chain["name"],
                hook=hook,
                policy=chain.get("policy", "accept") if hook else None,
            )
        elif "rule" in item:
            rule = item["rule"]
            key = (rule["family"], rule["table"], rule["chain"])
            if key not in chains:
                continue
            chains[key].rules.append(_nft_rule(rule.get("expr", []), rule.get("comment")))
    return chains


# ---------------------------------------------------------------------------------------------
# The judgement


_PASS = object()


def _step(rule, chain, traffic, resolve, depth):
    """What one rule does to the traffic: _PASS (on to the next rule), or a (verdict, why) pair that
    ends the chain's walk ((None, None): the chain returns without deciding)."""
    if rule.verdict is None or not rule.applies(*traffic):
        return _PASS
    if rule.verdict == "accept":
        return _PASS if rule.narrow else ("accept", f"accepted in {chain.label()}")
    if rule.verdict in ("drop", "reject"):
        if rule.other:
            return _PASS
        written = f": {rule.text}" if rule.text else ""
        return rule.verdict, f"{rule.verdict} rule in {chain.label()}{written}"
    if rule.verdict == "return":
        return _PASS if rule.other else (None, None)
    return _follow(rule, chain, traffic, resolve, depth)


def _follow(rule, chain, traffic, resolve, depth):
    """A jump or goto: the target chain's verdict, as far as it is the port's."""
    target = resolve(chain, rule.target)
    if target is None:
        return _PASS
    verdict, why = _walk(target, traffic, resolve, depth + 1)
    if verdict == "accept" and not rule.narrow:
        return verdict, why
    if verdict is not None and not rule.other:
        return verdict, why
    if rule.other or rule.verdict == "jump":
        # A jump for some traffic only (an interface, a source): its drops are not the port's.
        return _PASS
    return None, None  # an unconditional goto whose chain decided nothing: this chain returns too


def _walk(chain, traffic, resolve, depth=0):
    """(verdict, why) for traffic (proto, port) through the chain, or (None, None) if it returns."""
    if depth > _MAX_DEPTH:
        return None, None
    for rule in chain.rules:
        outcome = _step(rule, chain, traffic, resolve, depth)
        if outcome is not _PASS:
            return outcome
    return None, None


def blocked_ports(chains, wanted, resolve):
    """The wanted ports (dicts of port, proto, service) some input base chain would drop, each with why."""
    blocked = []
    bases = [chain for chain in chains.values() if chain.hook == "input"]
    for want in wanted:
        for base in bases:
            verdict, why = _walk(base, (want["proto"], want["port"]), resolve)
            if verdict is None:
                verdict, why = base.policy or "accept", f"policy {base.policy} of {base.label()}"
            if verdict in ("drop", "reject"):
                blocked.append({**want, "why": why})
                break
    return blocked


def _resolve_iptables(chains):
    return lambda _chain, target: chains.get(target)


def _resolve_nft(chains):
    def resolve(chain, target):
        return next(
            (found for key, found in chains.items() if key[2] == target and found.where == chain.where),
            None,
        )

    return resolve


def blocked_by_iptables(dump, wanted, where="iptables"):
    """The wanted ports an iptables-save dump's filter table would block."""
    chains = parse_iptables_save(dump, where)
    return blocked_ports(chains, wanted, _resolve_iptables(chains))


def blocked_by_nft(ruleset, wanted, families=("inet", "ip"), skip_tables=()):
    """The wanted ports the chains of `nft -j list ruleset` of the given families would block."""
    chains = {key: chain for key, chain in parse_nft_json(ruleset, skip_tables).items() if key[0] in families}
    return blocked_ports(chains, wanted, _resolve_nft(chains))


def _run(runner, argv, which):
    """stdout of a read-only command, or None when the tool is not installed; OSError if it fails."""
    if which(argv[0]) is None:
        return None
    result = runner(argv, capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise OSError(f"`{' '.join(argv)}` failed: {(result.stderr or result.stdout).strip()[:300]}")
    return result.stdout


def _active(runner, unit, which):
    if which("systemctl") is None:
        return False
    result = runner(["systemctl", "is-active", unit], capture_output=True, text=True, timeout=30, check=False)
    return result.stdout.strip() == "active"


def firewall_managers(runner=subprocess.run, ufw_conf="/etc/ufw/ufw.conf", which=shutil.which):
    """firewalld and ufw when they are active. ufw's unit stays active after boot even when ufw is
    disabled (ufw-init returns early), so ufw counts only with ENABLED=yes in its configuration."""
    managers = []
    if _active(runner, "firewalld.service", which):
        managers.append("firewalld")
    if _active(runner, "ufw.service", which):
        try:
            with open(ufw_conf, encoding="utf-8") as handle:
                enabled = any(line.strip().replace('"', "") == "ENABLED=yes" for line in handle)
        except OSError:
            enabled = False
        if enabled:
            managers.append("ufw")
    return managers


def _fix(managers, blocked):
    specs = " ".join(sorted({f"{p['port']}/{p['proto']}" for p in blocked}))
    if "firewalld" in managers:
        ports = " ".join(f"--add-port={spec}" for spec in specs.split())
        return f"firewalld is active: open them (firewall-cmd --permanent {ports}; firewall-cmd --reload)"
    if "ufw" in managers:
        return f"ufw is active: open them (ufw allow for each of {specs})"
    return "open them in the host's firewall rules"


def check_firewall(wanted, *, family=4, runner=subprocess.run, which=shutil.which, managers=None):
    """Problems for the island ports (dicts of port, proto, service) the host firewall would block."""
    if not wanted:
        return []
    problems = []
    verdicts = []
    try:
        save = "iptables-save" if family == 4 else "ip6tables-save"
        dump = _run(runner, [save], which)
        skip = set()
        if dump is not None:
            verdicts += blocked_by_iptables(dump, wanted, save[: -len("-save")])
            if "\n:INPUT " in "\n" + dump:
                # iptables-nft keeps these in nftables too; they are judged once, in iptables' terms.
                skip = {("ip" if family == 4 else "ip6", "filter")}
        ruleset = _run(runner, ["nft", "-j", "list", "ruleset"], which)
        if ruleset is not None:
            verdicts += blocked_by_nft(ruleset, wanted, ("inet", "ip" if family == 4 else "ip6"), skip)
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        return [
            f"the host firewall's rules could not be read ({exc}): run preflight as root, or set "
            f"preflight_firewall_check: false if you manage the firewall and have opened the island's ports"
        ]
    seen = set()
    blocked = []
    for entry in verdicts:
        key = (entry["port"], entry["proto"])
        if key not in seen:
            seen.add(key)
            blocked.append(entry)
    if blocked:
        managers = firewall_managers(runner, which=which) if managers is None else managers
        listed = ", ".join(
            f"{entry['port']}/{entry['proto']} for {entry['service']} ({entry['why']})" for entry in blocked
        )
        problems.append(
            f"the host firewall would block {len(blocked)} of the island's ports: {listed}; "
            f"{_fix(managers, blocked)}, or set preflight_firewall_check: false if you manage the "
            f"firewall yourself and have opened them"
        )
    return problems
