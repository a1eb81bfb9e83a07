"""The island's status page: one self-contained HTML file made from the receipt (docs/status-page.md).

Note that this module util is PRIVATE to this repository; it can change at any time.

The page is a view of the receipt (docs/receipt.md) an operator would rather look at than read: each
host and component with the version it runs against the bundle's, certificate expiries, the images'
served digests against the lock, the Gitea refs, the newest etcd snapshot, and when the data was
taken. It has no script, no external font, style or image: it opens from a USB stick on a machine
with no network. It is deterministic: the same receipt gives the same bytes, so a rerun that changes
nothing rewrites nothing (days left are counted to the receipt's own time, not to the clock).
Monitoring (targets and firing alerts, as the island's Prometheus answered, with the time it
answered) is shown when given (``monitoring_from_prometheus``); without it, or when Prometheus could
not be asked, the page says so and is made from the receipt alone. The page carries the sha256 of the
page the receipt alone makes (``receipt_digest``): the module reports a change only when that
changes, so live monitoring data rewrites the file without counting as a change (docs/status-page.md).
"""

from __future__ import annotations

import datetime
import email.utils
import hashlib
import html
import re

# Badges: ok (as the bundle says), warn (needs a look), bad (something is wrong), none (unknown).
_STYLE = """
:root { --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --none: #57606a; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1f2328;
       background: #f6f8fa; }
header { background: #24292f; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: #d0d7de; }
main { padding: 20px 28px 40px; max-width: 1400px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; margin: 0 0 18px;
          padding: 14px 18px; }
h2 { font-size: 16px; margin: 0 0 10px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 10px 5px 0; border-bottom: 1px solid #eaeef2; vertical-align: top; }
th { font-weight: 600; color: #57606a; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600;
         color: #fff; white-space: nowrap; }
.ok { background: var(--ok); } .warn { background: var(--warn); } .bad { background: var(--bad); }
.none { background: var(--none); }
.tiles { display: flex; flex-wrap: wrap; gap: 12px; margin: 0 0 18px; }
.tile { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px;
        min-width: 180px; border-left-width: 6px; }
.tile.ok { border-left-color: var(--ok); } .tile.warn { border-left-color: var(--warn); }
.tile.bad { border-left-color: var(--bad); } .tile.none { border-left-color: var(--none); }
.tile b { display: block; font-size: 20px; }
.muted { color: #57606a; }
footer { color: #57606a; font-size: 12px; padding: 0 28px 24px; }
"""


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _badge(text, level) -> str:
    return f'<span class="badge {level}">{_e(text)}</span>'


def _time(text):
    if not text:
        return None
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return None


def _short(digest) -> str:
    digest = digest or ""
    return digest[:19] + "…" if len(digest) > 20 else digest


_STATE_LEVEL = {
    "as bundle": "ok",
    "as locked": "ok",
    "recorded": "ok",
    "present": "ok",
    "mixed versions": "warn",
    "not recorded": "warn",
    "none": "warn",
    "different digest": "bad",
    "missing": "bad",
    "unreadable": "bad",
    "host not reached": "none",
}


def _level(state) -> str:
    return _STATE_LEVEL.get(state, "warn")


def _state(state) -> str:
    return _badge(state, _level(state))


def _tr(attribute, value, *cells) -> str:
    """A table row named by its data- attribute (what the tests and the browser check look for)."""
    return f'<tr data-{attribute}="{_e(value)}">' + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def _table(headings, rows, empty) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headings)
    body = "".join(rows) or f'<tr><td colspan="{len(headings)}" class="muted">{_e(empty)}</td></tr>'
    return f"<table><tr>{head}</tr>{body}</table>"


def _code(text) -> str:
    return f"<code>{_e(text)}</code>"


def days_left(not_after, now):
    """Whole days from ``now`` to ``not_after`` (both datetimes), negative once expired."""
    return (not_after - now).days if not_after and now else None


def expiry_level(days, warn_days) -> str:
    if days is None:
        return "none"
    if days < 0:
        return "bad"
    return "warn" if days < warn_days else "ok"


def _hosts(receipt) -> str:
    components = receipt.get("components", {})
    rows = []
    for name, host in sorted(receipt.get("hosts", {}).items()):
        if host.get("reached", True):
            reached = _badge("reached", "ok")
        else:
            reached = _badge(f"not reached (last seen {host.get('last_seen') or 'never'})", "none")
        cells = []
        for component, entry in sorted(host.get("components", {}).items()):
            bundle = components.get(component, {}).get("bundle_version")
            version = entry.get("version")
            if entry.get("state") != "recorded":
                cells.append(f"{_e(component)} {_state(entry.get('state'))}")
            elif bundle and version != bundle:
                cells.append(f"{_e(component)} {_code(version)} {_badge('bundle ' + bundle, 'warn')}")
            else:
                cells.append(f"{_e(component)} {_code(version)} {_badge('as bundle', 'ok')}")
        where = f'<b>{_e(name)}</b><br><span class="muted">{_e(host.get("address"))}</span>'
        rows.append(
            _tr("host", name, where, _e(", ".join(host.get("groups", []))), reached, "<br>".join(cells))
        )
    headings = ("host", "groups", "reached", "components (version against the bundle's)")
    return _table(headings, rows, "no host")


def _components(receipt) -> str:
    rows = []
    for name, entry in sorted(receipt.get("components", {}).items()):
        running = "; ".join(
            f"{_code(version)} on {_e(', '.join(hosts))}"
            for version, hosts in sorted(entry.get("running", {}).items())
        )
        rows.append(
            _tr(
                "component",
                name,
                f"<b>{_e(name)}</b>",
                _code(entry.get("bundle_version")),
                running or '<span class="muted">nothing recorded</span>',
                _state(entry.get("state")),
            )
        )
    return _table(("component", "bundle", "running", "state"), rows, "no component")


def _certificates(receipt, now, warn_days) -> tuple[str, int]:
    entries = [
        (c.get("host", ""), c.get("service", ""), c.get("state"), c.get("not_after"), c.get("subject"))
        for c in receipt.get("certificates", [])
    ]
    ca = receipt.get("ca", {})
    for kind, certificates in (("root", ca.get("roots", [])), ("intermediate", ca.get("intermediates", []))):
        entries += [("CA", kind, "present", c.get("not_after"), c.get("subject")) for c in certificates]
    rows, soon = [], 0
    for host, service, state, not_after, subject in sorted(entries, key=lambda e: (e[3] or "", e[0], e[1])):
        days = days_left(_time(not_after), now)
        level = expiry_level(days, warn_days) if state == "present" else "bad"
        soon += level != "ok"
        left = "expired" if days is not None and days < 0 else (f"{days} days" if days is not None else state)
        cells = (_e(host), _e(service), _code(subject), _e(not_after), _badge(left, level))
        rows.append(_tr("certificate", f"{host}/{service}", *cells))
    return _table(("host", "service", "subject", "not after", "left"), rows, "no certificate"), soon


def _images(receipt) -> tuple[str, int]:
    rows, off = [], 0
    for image in receipt.get("images", []):
        cells = []
        for host, entry in sorted(image.get("served", {}).items()):
            off += entry.get("state") != "as locked"
            cells.append(f"{_e(host)} {_code(_short(entry.get('digest')))} {_state(entry.get('state'))}")
        reference = image.get("reference")
        rows.append(
            _tr(
                "image",
                reference,
                _code(reference),
                _code(_short(image.get("digest_in_lock"))),
                "<br>".join(cells),
            )
        )
    return _table(("image", "digest in the lock", "served"), rows, "no image in the bundle"), off


def _git(receipt) -> str:
    rows = []
    for repo in receipt.get("git", []):
        name = repo.get("repository")
        for host, entry in sorted(repo.get("served", {}).items()):
            refs = "<br>".join(
                f"{_code(ref)} {_code((sha or '')[:12])}"
                for ref, sha in sorted((entry.get("refs") or {}).items())
            )
            rows.append(_tr("repository", name, _code(name), _e(host), refs, _state(entry.get("state"))))
    return _table(("repository", "Gitea", "refs", "state"), rows, "no repository in the bundle")


def _snapshot(receipt) -> tuple[str, str]:
    snap = receipt.get("etcd_snapshot") or {}
    state = snap.get("state", "none")
    newest = snap.get("newest") or {}
    if state == "present" and newest:
        body = (
            f'<p data-snapshot="{_e(newest.get("name"))}"><b>{_e(newest.get("name"))}</b>, taken '
            f"{_e(newest.get('created'))}, {_e(newest.get('size'))} bytes, on {_e(snap.get('server'))} "
            f"({_e(snap.get('count'))} in all)</p><p>"
            + "<br>".join(_code(location) for location in newest.get("locations", []))
            + "</p>"
        )
        return body, "ok"
    reason = snap.get("error") or ("no snapshot yet" if state == "none" else state)
    return f"<p>{_state(state)} {_e(reason)}</p>", _level(state)


def _iso(moment) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _http_time(text):
    """An HTTP Date header (RFC 9110, as Go's net/http writes it) as the page's time, or None."""
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return _iso(moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC))


def _answer_problem(endpoint, answer, where):
    """Why an answer of Prometheus's HTTP API (an ``ansible.builtin.uri`` result) cannot be used, or None.

    A usable answer is 200 with ``{"status": "success", "data": {...}}`` (Prometheus's API envelope,
    docs/querying/api.md of Prometheus 2.42 and 3.14)."""
    answer = answer or {}
    status = answer.get("status", -1)
    body = answer.get("json")
    if (
        status == 200
        and isinstance(body, dict)
        and body.get("status") == "success"
        and isinstance(body.get("data"), dict)
    ):
        return None
    if answer.get("unreachable"):
        reason = answer.get("msg") or "unreachable"
        return f"/api/v1/{endpoint}: the monitoring host was not reached ({reason})"
    if status == 401:
        return f"/api/v1/{endpoint} answered 401: the account was refused (check the password in {where})"
    if status in (-1, None):
        return f"/api/v1/{endpoint} could not be asked: {answer.get('msg') or 'no answer'}"
    detail = body.get("error") if isinstance(body, dict) else None
    return f"/api/v1/{endpoint} answered {status}: {detail or answer.get('msg') or 'not the API envelope'}"


def monitoring_from_prometheus(url, targets, alerts, *, password_file=None, now=None):
    """The page's monitoring section from Prometheus's ``/api/v1/targets`` and ``/api/v1/alerts``.

    ``targets`` and ``alerts`` are ``ansible.builtin.uri`` results (``status``, ``msg``, ``json``,
    ``date``). The time the data was taken is Prometheus's own ``Date`` header of the targets answer
    (``now``, the controller's clock, when it has none). Targets are the active ones with their
    health (``up``, ``down``, ``unknown`` before the first scrape) and last error; alerts are those
    in state ``firing`` (``pending`` ones are not firing yet). When the targets cannot be read the
    section is ``unreachable`` with the reason, and the page is made from the receipt alone."""
    targets = targets or {}
    taken = _http_time(targets.get("date")) or _iso(now or datetime.datetime.now(datetime.UTC))
    where = password_file or "the monitoring password file"
    problem = _answer_problem("targets", targets, where)
    if problem:
        return {"state": "unreachable", "url": url, "taken_at": taken, "error": problem}
    rows = []
    for target in targets["json"]["data"].get("activeTargets") or []:
        labels = target.get("labels") or {}
        rows.append(
            {
                "job": labels.get("job", ""),
                "instance": labels.get("instance", ""),
                "host": labels.get("host", ""),
                "health": target.get("health", "unknown"),
                "last_error": target.get("lastError", ""),
            }
        )
    alerts_problem = _answer_problem("alerts", alerts, where)
    firing = []
    if not alerts_problem:
        for alert in alerts["json"]["data"].get("alerts") or []:
            if alert.get("state") != "firing":
                continue
            labels, annotations = alert.get("labels") or {}, alert.get("annotations") or {}
            firing.append(
                {
                    "name": labels.get("alertname", ""),
                    "instance": labels.get("instance", ""),
                    "severity": labels.get("severity", ""),
                    "summary": annotations.get("summary", ""),
                    "since": alert.get("activeAt", ""),
                }
            )
    return {
        "state": "present",
        "url": url,
        "taken_at": taken,
        "targets": rows,
        "alerts": firing,
        "alerts_error": alerts_problem or "",
    }


def _alert_order(alert):
    return alert.get("name", ""), alert.get("instance", "")


def _monitoring(monitoring) -> str:
    if not monitoring:
        return (
            '<p class="muted" data-monitoring="absent">Monitoring is not installed: which targets are up '
            "and which alerts fire is not known here. This page is made from the receipt alone.</p>"
        )
    taken = _e(monitoring.get("taken_at"))
    if monitoring.get("state") == "unreachable":
        return (
            f'<p data-monitoring="unreachable">{_badge("not asked", "warn")} The island\'s Prometheus '
            f"{_code(monitoring.get('url'))} could not be asked at "
            f'<time data-monitoring-taken datetime="{taken}">{taken}</time>: {_e(monitoring.get("error"))}. '
            "Which targets are up and which alerts fire is not known here; the rest of this page is made "
            "from the receipt alone.</p>"
        )
    source = (
        f'<p class="muted" data-monitoring="present">As the island\'s Prometheus '
        f"{_code(monitoring.get('url'))} answered at "
        f'<time data-monitoring-taken datetime="{taken}">{taken}</time> (its own clock).</p>'
        if monitoring.get("url") or taken
        else '<p class="muted" data-monitoring="present"></p>'
    )
    targets = sorted(monitoring.get("targets", []), key=lambda t: (t.get("job", ""), t.get("instance", "")))
    target_rows = [
        _tr(
            "target",
            f"{t.get('job')}/{t.get('instance')}",
            _e(t.get("job")),
            _code(t.get("instance")),
            _e(t.get("host")),
            _badge(t.get("health"), "ok" if t.get("health") == "up" else "bad"),
            _e(t.get("last_error")),
        )
        for t in targets
    ]
    alert_rows = [
        _tr(
            "alert",
            a.get("name"),
            _badge(a.get("name"), "bad"),
            _code(a.get("instance")),
            _e(a.get("severity")),
            _e(a.get("summary")),
            _e(a.get("since")),
        )
        for a in sorted(monitoring.get("alerts", []), key=_alert_order)
    ]
    alerts_error = monitoring.get("alerts_error")
    alerts = (
        f'<p data-alerts="unknown">{_badge("not asked", "warn")} {_e(alerts_error)}</p>'
        if alerts_error
        else _table(("alert", "instance", "severity", "summary", "since"), alert_rows, "none")
    )
    return (
        source
        + _table(("job", "target", "host", "health", "last error"), target_rows, "no target")
        + "<h2 style='margin-top:14px'>Alerts firing</h2>"
        + alerts
    )


def _monitoring_tiles(monitoring) -> list[str]:
    if not monitoring:
        return [_tile("targets up", "not monitored", "none", "targets")]
    if monitoring.get("state") == "unreachable":
        return [_tile("targets up", "not asked", "warn", "targets")]
    targets = monitoring.get("targets", [])
    up = sum(t.get("health") == "up" for t in targets)
    firing = len(monitoring.get("alerts", []))
    targets_level = "ok" if targets and up == len(targets) else "bad"
    alerts_level = "bad" if firing else ("warn" if monitoring.get("alerts_error") else "ok")
    return [
        _tile("targets up", f"{up}/{len(targets)}", targets_level, "targets"),
        _tile("alerts firing", firing, alerts_level, "alerts"),
    ]


def _tile(title, value, level, key) -> str:
    return f'<div class="tile {level}" data-tile="{_e(key)}"><b>{_e(value)}</b>{_e(title)}</div>'


_RECEIPT_DIGEST = re.compile(r'<meta name="island-receipt-page" content="sha256:([0-9a-f]{64})">')


def receipt_digest(receipt, warn_days=30) -> str:
    """The sha256 of the page ``receipt`` alone makes: what decides whether the page changed.

    Monitoring's live data (targets, alerts, the time Prometheus answered) is left out: it differs on
    every run, and a rerun that changes nothing on the island must report no change."""
    return hashlib.sha256(_page(receipt, warn_days, None, "").encode("utf-8")).hexdigest()


def page_receipt_digest(page):
    """The ``receipt_digest`` a written page carries (bytes or text), or None (no page, an older one)."""
    if isinstance(page, bytes):
        page = page.decode("utf-8", errors="replace")
    match = _RECEIPT_DIGEST.search(page or "")
    return match.group(1) if match else None


def render(receipt, *, warn_days=30, monitoring=None) -> str:
    """The page for ``receipt`` (a receipt document, schema version 1), as text."""
    return _page(receipt, warn_days, monitoring, receipt_digest(receipt, warn_days))


def _page(receipt, warn_days, monitoring, digest) -> str:
    now = _time(receipt.get("written_at"))
    taken = _e(receipt.get("written_at"))
    bundle = receipt.get("bundle") or {}
    domain = receipt.get("island_domain", "")
    components = receipt.get("components", {})
    off_components = sum(entry.get("state") != "as bundle" for entry in components.values())
    hosts = receipt.get("hosts", {})
    unreached = sum(not host.get("reached", True) for host in hosts.values())
    certificates, soon = _certificates(receipt, now, warn_days)
    images, off_images = _images(receipt)
    snapshot, snapshot_level = _snapshot(receipt)
    tiles = "".join(
        [
            _tile(
                "components as the bundle",
                f"{len(components) - off_components}/{len(components)}",
                "ok" if not off_components else "warn",
                "components",
            ),
            _tile(
                "hosts reached",
                f"{len(hosts) - unreached}/{len(hosts)}",
                "none" if unreached else "ok",
                "hosts",
            ),
            _tile(
                f"certificates within {warn_days} days or worse",
                soon,
                "warn" if soon else "ok",
                "certificates",
            ),
            _tile("image tags off the lock", off_images, "ok" if not off_images else "bad", "images"),
            _tile(
                "newest etcd snapshot",
                (receipt.get("etcd_snapshot") or {}).get("state", "none"),
                snapshot_level,
                "snapshot",
            ),
            *_monitoring_tiles(monitoring),
        ]
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="island-receipt-page" content="sha256:{digest}">
<title>Island {_e(domain)}: status</title>
<style>{_STYLE}</style>
</head>
<body>
<header>
<h1>Island {_e(domain)}</h1>
<p>Bundle <b data-bundle>{_e(bundle.get("name"))} {_e(bundle.get("version"))}</b> &middot;
data taken <b><time data-taken datetime="{taken}">{taken}</time></b>
(the receipt's time; days left are counted to it)</p>
</header>
<main>
<div class="tiles">{tiles}</div>
<section id="monitoring"><h2>Targets</h2>{_monitoring(monitoring)}</section>
<section id="hosts"><h2>Hosts</h2>{_hosts(receipt)}</section>
<section id="components"><h2>Components</h2>{_components(receipt)}</section>
<section id="certificates"><h2>Certificates</h2>{certificates}</section>
<section id="images"><h2>Images in the island registry</h2>{images}</section>
<section id="git"><h2>Gitea repositories</h2>{_git(receipt)}</section>
<section id="snapshot"><h2>Newest etcd snapshot</h2>{snapshot}</section>
</main>
<footer>Written by the island installer from the island's receipt (docs/receipt.md); no script and
nothing loaded from anywhere else.</footer>
</body>
</html>
"""
