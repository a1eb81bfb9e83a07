"""Argument specs of the option groups several island modules share, written once.

Note that this module util is PRIVATE to this repository; it can change at any time.

Each group here is documented once in ``plugins/doc_fragments`` (the fragment named beside it); a
module merges the groups it takes into its own options with :func:`argument_spec` and passes the
group's rules to ``AnsibleModule``::

    module = AnsibleModule(argument_spec=argument_spec({"layout": {...}}, TLS), supports_check_mode=True)
    module = AnsibleModule(**gitea_module_args({"bundle": {...}}))   # a Gitea module
"""

from __future__ import annotations

import copy

# island.installer.tls
TLS = {"ca_file": {"type": "path"}}

# island.installer.gitea.connection
GITEA_CONNECTION = {"url": {"type": "str", "required": True}}

# island.installer.gitea (with the connection): basic authentication or a token, exactly one.
GITEA_AUTH = {
    "username": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    "token": {"type": "str", "no_log": True},
}
GITEA_AUTH_RULES = {
    "required_one_of": [("password", "token")],
    "required_by": {"password": "username"},
    "mutually_exclusive": [("password", "token")],
}


def file_attributes(mode):
    """``owner``, ``group`` and ``mode`` (default ``mode``) of a file a module writes on a host."""
    return {"owner": {"type": "str"}, "group": {"type": "str"}, "mode": {"type": "raw", "default": mode}}


def list_of(options, **extra):
    """A list option whose items are dicts with ``options`` (an empty list by default)."""
    return {"type": "list", "elements": "dict", "default": [], "options": options, **extra}


def argument_spec(own, *groups):
    """A module's argument spec: copies of the shared ``groups``, then its ``own`` options.

    An option of ``own`` with the name of a shared one replaces it (a module whose ``token`` is
    required, say).
    """
    spec = {}
    for group in groups:
        spec.update(copy.deepcopy(group))
    spec.update(own)
    return spec


def gitea_module_args(own, *, auth=True):
    """``AnsibleModule`` keyword arguments of a Gitea module (check mode supported).

    Its ``own`` options, the connection (``url``, ``ca_file``) and, with ``auth``, the credentials
    and their rules. Documented by ``island.installer.gitea`` (``.connection`` without ``auth``) and
    ``island.installer.tls``.
    """
    if not auth:
        return {"argument_spec": argument_spec(own, GITEA_CONNECTION, TLS), "supports_check_mode": True}
    return {
        "argument_spec": argument_spec(own, GITEA_CONNECTION, TLS, GITEA_AUTH),
        "supports_check_mode": True,
        **GITEA_AUTH_RULES,
    }
