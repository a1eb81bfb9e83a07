# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action island_cert_issue: the key and CSR on the host, the CA's judgement and signature on the
controller in this process, the certificate installed on the host; one task (docs: the module file)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible_collections.island.installer.plugins.module_utils.island_model import CERT_RECORD_DIR
from ansible_collections.island.installer.plugins.module_utils.island_pki import PkiError
from ansible_collections.island.installer.plugins.module_utils.island_pki_sign import sign_for_host

_REQUIRED = ("name", "dir", "subject_alt_names", "owner", "group", "ca", "ca_passphrase")
_CA_KEYS = ("intermediate_cert_path", "intermediate_key_path")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(
        (*_REQUIRED, "key_mode", "usage", "days", "renew_before_days", "rotate_with_renewal")
    )

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = self._task.args
        host = (task_vars or {}).get("inventory_hostname", "this host")
        what = f"{host} {args.get('name', '(no name)')}"
        missing = [key for key in _REQUIRED if args.get(key) in (None, "", [])]
        ca = args.get("ca") or {}
        missing += [f"ca.{key}" for key in _CA_KEYS if isinstance(ca, dict) and not ca.get(key)]
        if missing:
            return self._failed(result, f"island_cert_issue for {what}: {', '.join(missing)} missing")
        directory, name = str(args["dir"]).rstrip("/"), args["name"]
        key_path, cert_path = f"{directory}/{name}.key", f"{directory}/{name}.crt"
        days, renew = int(args.get("days", 365)), int(args.get("renew_before_days", 30))

        # 1. On the host: the key (made there, never leaving it), a CSR, the current certificate.
        csr = self._execute_module(
            module_name="island_csr",
            module_args={
                "path": key_path,
                "directory": {"owner": "root", "group": args["group"], "mode": "0750"},
                "subject_alt_names": args["subject_alt_names"],
                "owner": args["owner"],
                "group": args["group"],
                "mode": args.get("key_mode", "0640"),
                "rotate_with_renewal": bool(args.get("rotate_with_renewal", False)),
                "certificate_path": cert_path,
                "record_dir": CERT_RECORD_DIR,
                "renew_before_days": renew,
            },
            task_vars=task_vars,
        )
        if csr.get("failed"):
            return self._failed(result, f"{what}: the key and CSR on the host: {csr.get('msg', csr)}")

        # 2. On the controller, in this process: the CA's judgement, and its signature when due.
        try:
            signed, warnings = sign_for_host(
                csr["csr"],
                ca_cert_path=ca["intermediate_cert_path"],
                ca_key_path=ca["intermediate_key_path"],
                ca_passphrase=args["ca_passphrase"],
                ca_certificate=ca.get("intermediate_certificate"),
                subject_alt_names=args["subject_alt_names"],
                current_certificate=csr.get("certificate") or "",
                usage=args.get("usage") or ["server_auth"],
                days=days,
                renew_before_days=renew,
                requester=what,
                check_mode=bool(self._task.check_mode),
            )
        except PkiError as exc:
            return self._failed(result, f"{what}: the island CA: {exc}")
        if warnings:
            result["warnings"] = warnings

        # 3. On the host: the certificate and its chain, owner and mode (check mode: what would be).
        installed = {"changed": False}
        if signed["certificate"]:
            installed = self._execute_module(
                module_name="island_cert",
                module_args={
                    "path": cert_path,
                    "certificate": signed["certificate"],
                    "chain": signed["chain"],
                    "key_path": key_path,
                    "record_dir": CERT_RECORD_DIR,
                    "owner": args["owner"],
                    "group": args["group"],
                    "mode": "0644",
                },
                task_vars=task_vars,
            )
            if installed.get("failed"):
                return self._failed(
                    result,
                    f"{what}: installing the certificate on the host: {installed.get('msg', installed)}",
                )
        changed = bool(csr.get("changed") or signed["changed"] or installed.get("changed"))
        result.update(
            changed=changed,
            issue_failed=False,
            reason=signed["reason"],
            certificate_changed=bool(signed["changed"] or installed.get("changed")),
            key={"changed": bool(csr.get("changed")), "reason": csr.get("reason")},
            diff=signed["diff"],
            msg=f"{what}: " + (signed["reason"] or installed.get("reason") or csr.get("reason") or "current"),
        )
        if signed.get("not_after"):
            result["not_after"] = signed["not_after"]
        return result

    @staticmethod
    def _failed(result, msg):
        result.update(failed=True, issue_failed=True, changed=False, msg=msg)
        return result
