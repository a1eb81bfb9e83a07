"""`island_masked_diff`: what a `--check --diff` run would change in secret-bearing files, by key,
with every value masked (logic in module_utils/island_masked_diff.py).

    {{ _read.read | island_masked_diff(files) }}

`files`: the files the role writes, each `{path, content, format}` (format ini, env, yaml or
htpasswd); the first argument: what the host's files hold now, either island_install's ``read``
(path -> text, null when absent: common's secret_diff.yml reads them so, in one call) or the
`slurp` results of the same files in the same order (a missing file is a failed result). Returns a
list of lines; empty when nothing would change.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.island.installer.plugins.module_utils.island_masked_diff import (
    MaskedDiffError,
    masked_diff,
)


def _current(result):
    if not isinstance(result, dict) or result.get("failed") or "content" not in result:
        return None
    return base64.b64decode(result["content"]).decode("utf-8", "replace")


def island_masked_diff(slurped, files):
    files = list(files or [])
    if isinstance(slurped, Mapping):  # island_install's read: path -> text, None when absent
        currents = [slurped.get(wanted["path"]) for wanted in files]
    else:
        slurped = list(slurped or [])
        if len(slurped) != len(files):
            raise AnsibleFilterError(
                f"island_masked_diff: {len(files)} files but {len(slurped)} slurp results; pass the "
                "results of slurp looped over the same files"
            )
        currents = [_current(result) for result in slurped]
    lines = []
    for current, wanted in zip(currents, files, strict=True):
        try:
            lines += masked_diff(current, wanted["content"], wanted["format"], wanted["path"])
        except MaskedDiffError as exc:
            raise AnsibleFilterError(str(exc)) from None
    return lines


class FilterModule:
    def filters(self):
        return {"island_masked_diff": island_masked_diff}
