# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller side of island_install: files in place on a host in one round trip when none changes.

The module (plugins/modules/island_install.py, module_utils/island_install.py) does the host's
side. This action resolves each bundle file's sha256 from the lock, hashes rendered content, and
calls the module once. Only when a bundle file differs on the host does it make a temporary
directory there, copy those files into it, and call the module again with their staged paths; the
module then checks each copy against the lock before it goes live. (ansible.builtin.copy would stat,
then transfer, then check a SHA-1 of the transfer, not the lock.)
"""

from __future__ import annotations

import hashlib
import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

# Options of a file entry the action accepts; the module gets dest, sha256, src or content, attributes.
FILE_KEYS = {"dest", "src", "content", "mode", "owner", "group"}


class ActionModule(ActionBase):
    # No temporary directory up front: it is made only when a file must be copied (pipelining runs
    # the module without one), so a zero-change call is one round trip.
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("bundle_dir", "lock", "directories", "files", "prune", "read"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        host = (task_vars or {}).get("inventory_hostname", "this host")
        try:
            entries = self._entries()
        except AnsibleActionFail as exc:
            result.update(failed=True, msg=f"{host}: {exc.message}")
            return result
        module_args = {
            "directories": self._task.args.get("directories") or [],
            "files": [dict(entry) for entry in entries],
            "prune": self._task.args.get("prune") or [],
            "read": self._task.args.get("read") or [],
        }
        made_tmp = self._connection._shell.tmpdir is None
        try:
            outcome = self._execute_module(
                module_name=self._task.action, module_args=module_args, task_vars=task_vars
            )
            if not outcome.get("failed") and outcome.get("transfer") and not self._task.check_mode:
                outcome = self._transfer_and_apply(module_args, outcome, task_vars)
        finally:
            if made_tmp and self._connection._shell.tmpdir is not None:
                self._remove_tmp_path(self._connection._shell.tmpdir)
        if outcome.get("failed") and outcome.get("msg"):
            outcome["msg"] = f"{host}: {outcome['msg']}"
        # Rendered content may hold a secret (k3s's join token): the result names it by sha256 only.
        for entry in (outcome.get("invocation") or {}).get("module_args", {}).get("files") or []:
            if entry.get("content") is not None:
                entry["content"] = f"(rendered content, sha256 {entry.get('sha256')})"
        result.update(outcome)
        return result

    def _transfer_and_apply(self, module_args, first, task_vars):
        """Copy the bundle files the host lacks into a temporary directory there; call the module again."""
        tmpdir = self._connection._shell.tmpdir or self._make_tmp_path()
        staged = []
        for index, entry in enumerate(module_args["files"]):
            if entry["dest"] in first["transfer"]:
                remote = self._connection._shell.join_path(tmpdir, f"island-install-{index}")
                self._transfer_file(os.path.join(self._bundle_dir(), entry["src"]), remote)
                entry["staged"] = remote
                staged.append(remote)
        self._fixup_perms2([tmpdir, *staged])
        outcome = self._execute_module(
            module_name=self._task.action, module_args=module_args, task_vars=task_vars
        )
        if outcome.get("failed"):
            return outcome
        # The first call's changes (directories, rendered files, pruned files) count too.
        outcome["changed"] = outcome.get("changed") or first.get("changed")
        done = {f["dest"]: f for f in first.get("files", []) if f.get("changed")}
        placed = outcome.get("files", [])
        for entry in placed:
            if entry["dest"] in done and not entry["changed"]:
                entry.update(changed=True, reason=done[entry["dest"]]["reason"])
        outcome["changed_files"] = [f["dest"] for f in placed if f["changed"]]
        outcome["replaced"] = [f["dest"] for f in placed if f["reason"] in ("absent", "content")]
        outcome["directories"] = first.get("directories", [])
        outcome["pruned"] = first.get("pruned", [])
        if "diff" in first:
            outcome["diff"] = first["diff"]
        return outcome

    def _bundle_dir(self):
        bundle_dir = self._task.args.get("bundle_dir")
        if not bundle_dir:
            raise AnsibleActionFail("island_install: bundle_dir is required for a file from the bundle (src)")
        return str(bundle_dir)

    def _entries(self):
        lock = {str(f.get("path")): str(f.get("sha256", "")) for f in self._task.args.get("lock") or []}
        entries = []
        for raw in self._task.args.get("files") or []:
            unknown = set(raw) - FILE_KEYS
            if unknown:
                raise AnsibleActionFail(
                    f"island_install: unknown option(s) {sorted(unknown)} in a file entry"
                )
            if not raw.get("dest"):
                raise AnsibleActionFail("island_install: a file entry has no dest")
            entry = {k: raw[k] for k in ("dest", "mode", "owner", "group") if raw.get(k) is not None}
            if (raw.get("src") is None) == (raw.get("content") is None):
                raise AnsibleActionFail(f"island_install: {raw['dest']} needs exactly one of src and content")
            if raw.get("content") is not None:
                content = str(raw["content"])
                entry.update(content=content, sha256=hashlib.sha256(content.encode("utf-8")).hexdigest())
            else:
                src = str(raw["src"])
                if src not in lock:
                    raise AnsibleActionFail(
                        f"the bundle's lock lists no file {src} (for {raw['dest']}): build the bundle with"
                        " this component (bundle-spec.yml) or point island_bundle_dir at a bundle that has it"
                    )
                local = os.path.join(self._bundle_dir(), src)
                if not os.path.isfile(local):
                    raise AnsibleActionFail(
                        f"{local} is missing from the bundle on the controller, though its lock lists it:"
                        " the bundle is incomplete; copy it again and verify it (playbooks/verify.yml)"
                    )
                entry.update(src=src, sha256=lock[src])
            entries.append(entry)
        return entries
