"""Run an Ansible module's ``main()`` in-process, as Ansible would with the given arguments."""

from __future__ import annotations

import json
from unittest import mock

from ansible.module_utils import basic


class ModuleExit(Exception):
    pass


class ModuleFail(Exception):
    pass


def run_module(module, args, check_mode=False, diff=False):
    """Run an Ansible module's main() in-process; returns its result or raises ModuleFail."""
    payload = dict(args)
    payload["_ansible_check_mode"] = check_mode
    payload["_ansible_diff"] = diff

    def exit_json(self, **kwargs):
        raise ModuleExit(kwargs)

    def fail_json(self, **kwargs):
        raise ModuleFail(kwargs)

    try:
        from ansible.module_utils.testing import patch_module_args
    except ImportError:  # ansible-core < 2.19
        patch_module_args = None
    if patch_module_args is not None:
        args_patch = patch_module_args(payload)
    else:
        args_patch = mock.patch.object(
            basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": payload}).encode()
        )
    with args_patch, mock.patch.multiple(basic.AnsibleModule, exit_json=exit_json, fail_json=fail_json):
        try:
            module.main()
        except ModuleExit as done:
            return done.args[0]
    raise AssertionError("module returned without exit_json or fail_json")
