"""The island's alert rules (roles/monitoring/files/rules/) proved by Prometheus's own promtool:
`promtool test rules` runs every rules_*.promtool.yml beside this file, each of which feeds series
and asserts which alerts fire, when, with which labels and rendered annotations. Every alert in the
rules has a test that makes it fire, and a wrong expectation makes promtool fail."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.support import ROOT

HERE = ROOT / "tests" / "unit" / "roles" / "monitoring"
RULES_DIR = ROOT / "roles" / "monitoring" / "files" / "rules"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
TEST_FILES = sorted(HERE.glob("rules_*.promtool.yml"))

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMTOOL is None,
    reason="needs promtool (Debian's prometheus package, installed by tools/lib/setup.sh)",
)


def _promtool(*args):
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, check=False)


def _alerts():
    """{alertname: rule} over every rule file."""
    alerts = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    assert rule["alert"] not in alerts, f"{rule['alert']} is defined twice"
                    alerts[rule["alert"]] = rule
    return alerts


def test_the_rule_files_pass_promtool_check_rules():
    assert RULE_FILES, f"no rule files in {RULES_DIR}"
    result = _promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests_of_the_rules_pass(test_file):
    result = _promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_severity_and_an_actionable_summary_and_description():
    for name, rule in _alerts().items():
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert rule["annotations"]["summary"].strip(), name
        # An operator can act on it: the description says what to do, not only what is wrong.
        description = rule["annotations"]["description"]
        assert len(description) > 80, name
        verbs = ("check", "rerun", "find", "free", "make", "run", "query", "fix")
        assert any(verb in description.lower() for verb in verbs), name


def test_every_alert_is_made_to_fire_by_a_promtool_test():
    fired = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    fired.add(check["alertname"])
    assert set(_alerts()) - fired == set(), "alerts no promtool test makes fire"
    assert fired - set(_alerts()) == set(), "promtool tests of alerts the rules do not define"


def test_a_wrong_expectation_fails_promtool(tmp_path):
    """The harness is not vacuous: the egress test expecting another severity fails, naming the alert."""
    source = HERE / "rules_egress.promtool.yml"
    data = yaml.safe_load(source.read_text())
    data["rule_files"] = [str(RULES_DIR / "island.rules.yml")]
    data["tests"][0]["alert_rule_test"][1]["exp_alerts"][0]["exp_labels"]["severity"] = "warning"
    broken = tmp_path / "broken.promtool.yml"
    broken.write_text(yaml.safe_dump(data))
    result = _promtool("test", "rules", str(broken))
    assert result.returncode != 0
    assert "IslandEgressAttempt" in result.stdout + result.stderr


def test_a_certificate_window_from_another_setting_changes_what_fires(tmp_path):
    """The warning window is the series island-metrics writes, so one rule file serves every
    setting: 10 days left fires with a 30-day window and not with a 7-day one."""
    rules = str(RULES_DIR / "island.rules.yml")

    def fires(window_seconds):
        case = {
            "interval": "1m",
            "input_series": [
                {
                    "series": 'island_certificate_warn_seconds{job="node",instance="h:9100"}',
                    "values": f"{window_seconds}x20",
                },
                {
                    "series": 'probe_ssl_earliest_cert_expiry{job="blackbox",instance="https://x"}',
                    "values": "864000x20",
                },
            ],
            "alert_rule_test": [
                {"eval_time": "15m", "alertname": "IslandServedCertificateExpiringSoon", "exp_alerts": []}
            ],
        }
        path = tmp_path / f"window-{window_seconds}.promtool.yml"
        path.write_text(yaml.safe_dump({"rule_files": [rules], "tests": [case]}))
        # The test expects no alert: promtool fails exactly when the alert fires.
        return _promtool("test", "rules", str(path)).returncode != 0

    assert fires(30 * 86400)
    assert not fires(7 * 86400)
