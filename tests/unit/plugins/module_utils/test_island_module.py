"""The one run wrapper of the island's modules (module_utils/island_module)."""

from __future__ import annotations

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_module import (
    missing_library,
    run_module,
)


class Exited(Exception):
    pass


class FakeModule:
    """Records what AnsibleModule's exit_json/fail_json would return, and stops like they do."""

    def __init__(self):
        self.result = None
        self.failed = None

    def exit_json(self, **result):
        self.result = result
        raise Exited

    def fail_json(self, **result):
        self.failed = result
        raise Exited


class DomainError(Exception):
    pass


class ConfigError(DomainError):
    pass


def _run(run, *errors, **kwargs):
    module = FakeModule()
    with pytest.raises(Exited):
        run_module(module, run, *errors, **kwargs)
    return module


def test_the_result_of_run_is_the_module_result():
    module = _run(lambda m: {"changed": True, "msg": "done"}, DomainError)
    assert module.result == {"changed": True, "msg": "done"}
    assert module.failed is None


def test_a_typed_error_fails_the_module_with_its_message_and_class_name():
    def run(module):
        raise ConfigError("url 'ftp://x' is not an http(s) URL")

    module = _run(run, DomainError)
    assert module.failed == {"msg": "url 'ftp://x' is not an http(s) URL", "error": "ConfigError"}


def test_details_add_fields_and_may_replace_the_message():
    def run(module):
        raise OSError("disk gone")

    module = _run(run, OSError, details=lambda exc: {"msg": f"could not read: {exc}", "path": "/x"})
    assert module.failed == {"msg": "could not read: disk gone", "error": "OSError", "path": "/x"}


def test_a_missing_library_fails_before_anything_runs():
    ran = []
    missing = missing_library("cryptography >= 3.4", ImportError("No module named 'cryptography'"))
    module = _run(lambda m: ran.append(1) or {}, DomainError, missing=missing)
    assert ran == []
    assert "cryptography >= 3.4" in module.failed["msg"]
    assert "No module named 'cryptography'" in module.failed["exception"]


def test_no_import_error_means_nothing_is_missing():
    assert missing_library("cryptography", None) is None


def test_an_error_outside_the_domain_is_a_bug_and_keeps_its_traceback():
    def run(module):
        raise KeyError("typo")

    with pytest.raises(KeyError):
        run_module(FakeModule(), run, DomainError)
