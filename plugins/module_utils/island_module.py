"""The one run wrapper of the island's modules: typed errors become ``fail_json`` here.

Note that this module util is PRIVATE to this repository; it can change at any time.

Every module under ``plugins/modules`` builds its ``AnsibleModule`` and hands the work to
:func:`run_module`::

    def run(module):
        ...                      # the module's work; returns the result dict
    run_module(module, run, GiteaError)

The module_utils raise one error hierarchy per domain (``PkiError``, ``BundleError``, ``GiteaError``
...), whose messages name the thing at fault and what to do; this is the one place that turns them
into a failed result, with the error's class name in ``error`` for a caller that branches on it.
Shipped to hosts with every module, so it runs on the hosts' system Python (3.9+).
"""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import missing_required_lib


def missing_library(library, import_error, *, reason=None, hint=""):
    """``fail_json`` arguments for a library the module's Python cannot import, or None if it can.

    ``import_error`` is the exception caught at import time (None when the import worked) or its
    formatted traceback; ``hint`` is appended to Ansible's standard message.
    """
    if import_error is None:
        return None
    if isinstance(import_error, BaseException):
        import_error = "".join(traceback.format_exception_only(type(import_error), import_error))
    return {"msg": missing_required_lib(library, reason=reason) + hint, "exception": import_error}


def run_module(module, run, errors=(), *, missing=None, details=None):
    """Run ``run(module)`` and exit with its result dict; fail in one place if anything is wrong.

    ``missing``: ``fail_json`` arguments (see :func:`missing_library`) when a library is missing;
    the module fails with them before doing anything. ``errors``: the exception class (or tuple)
    the module's domain raises; one of them fails the module with ``msg`` (the error's message) and
    ``error`` (its class name), plus the fields ``details(exc)`` returns (which may replace
    ``msg``). Anything else is a bug and keeps Ansible's traceback.
    """
    if missing:
        module.fail_json(**missing)
    try:
        result = run(module)
    except errors as exc:
        failure = {"msg": str(exc), "error": type(exc).__name__}
        if details is not None:
            failure.update(details(exc))
        module.fail_json(**failure)
    module.exit_json(**result)
