"""island_preflight through ansible-playbook: an untested system fails naming the host, and the
operator's explicit opt-in turns that into a warning the run shows.

The play runs on this machine (a Debian 12 controller), told that only Debian 11 is supported, so
that its own system is the untested one.
"""

from __future__ import annotations

from tests.support.playbook import run_local_tasks


def _preflight(**options):
    return {
        "name": "Host state is read",
        "island_preflight": {
            "supported_os": {"debian": ["11"]},
            "architectures": ["x86_64", "aarch64"],
            "disk_path": "/",
            "disk_required_bytes": 1,
            "inventory_name": "node-7",
            "firewall_check": False,
            **options,
        },
        "register": "_checked",
    }


_ASSERT_NO_OS_PROBLEM = {
    "name": "No problem is about the system",
    "ansible.builtin.assert": {
        "that": "_checked.problems | select('search', 'operating system') | list == []",
        "fail_msg": "{{ _checked.problems }}",
    },
}


def test_an_untested_system_is_a_problem_naming_it_and_the_opt_in(tmp_path):
    tasks = [
        _preflight(),
        {
            "name": "The problem names the system and what is supported",
            "ansible.builtin.assert": {
                "that": [
                    "_checked.problems | select('search', 'operating system is Debian') | list | length == 1",
                    "_checked.problems | select('search', 'supported: debian 11') | list | length == 1",
                    "_checked.problems | select('search', 'allow_untested_os: true') | list | length == 1",
                ],
                "fail_msg": "{{ _checked.problems }}",
            },
        },
    ]
    result = run_local_tasks(tmp_path, tasks)
    assert result.returncode == 0, result.stdout + result.stderr
    # no warning from preflight (ansible-core 2.19's one about the Mitogen strategy is not its own)
    assert "[WARNING]: preflight" not in result.stdout + result.stderr


def test_an_allowed_untested_system_warns_in_the_runs_output(tmp_path):
    result = run_local_tasks(tmp_path, [_preflight(allow_untested_os=True), _ASSERT_NO_OS_PROBLEM])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "[WARNING]: preflight on node-7: the operating system is Debian GNU/Linux" in output
    assert "preflight_allow_untested_os is true" in output


def test_the_action_frames_the_hosts_clock_and_fails_once_naming_the_host_and_every_problem(tmp_path):
    measured = [
        _preflight(supported_os={"debian": ["12", "13"]}, clock_skew_bound=5),
        {
            "name": "The clock was measured against the controller's and found within the bound",
            "ansible.builtin.assert": {
                "that": [
                    "_checked.problems | select('search', 'clock') | list == []",
                    "_checked.facts.clock_skew_seconds | float | abs < 5",
                    "_checked is not failed",
                ],
                "fail_msg": "{{ _checked | to_json }}",
            },
        },
    ]
    result = run_local_tasks(tmp_path, measured)
    assert result.returncode == 0, result.stdout + result.stderr

    unfit = [_preflight(disk_required_bytes=2**60, clock_skew_bound=5, fail_on_problems=True)]
    result = run_local_tasks(tmp_path, unfit)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    # one failure, naming the host, with both problems in it
    assert "preflight on localhost: " in output
    assert "operating system is Debian" in output and "GiB free" in output
