"""Tags an operator gives that match no play of the island (logic in module_utils/island_tags.py).

{{ ansible_run_tags | island_tag_problems(ansible_skip_tags) }}  ->  [] or one message per tag
"""

from __future__ import annotations

from ansible_collections.island.installer.plugins.module_utils.island_tags import tag_problems


def island_tag_problems(run_tags, skip_tags=None):
    """Every tag of ``--tags``/``--skip-tags`` that matches no play, or would skip the prologue."""
    return tag_problems(run_tags, skip_tags or [])


class FilterModule:
    def filters(self):
        return {"island_tag_problems": island_tag_problems}
