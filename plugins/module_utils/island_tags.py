# Copyright: island installer contributors
"""The tags an operator may give to ``--tags`` and ``--skip-tags``, declared in one place.

Every play of playbooks/ carries the tag of its component (README.md, "One component at a time").
The prologue (the bundle verified, the upgrade planned and guarded, preflight) is also tagged
``always``: whatever the operator selects runs after it, and it cannot be skipped, since every
component reads the verified lock and must pass the guards first. The summary is tagged ``always``
too, so a run restricted to one component still reports what it changed.

``playbooks/tags.yml`` runs first in every playbook and fails, before any host is touched, on a
tag that no play carries: Ansible itself would run nothing and succeed.
tests/integration/test_playbook_tags.py checks this list against the tags the playbooks carry. A
new play (the island model's, say) takes one tag from here, plus ``always`` if it is prologue.
"""

from __future__ import annotations

# In the order playbooks/site.yml runs them.
COMPONENT_TAGS = (
    "model",  # the island model: the fact `island` every role reads (docs/architecture.md)
    "bundle",  # the bundle's signature and checksums verified on the controller
    "upgrade",  # the plan of what changes, and its guards (no downgrade, no skipped minor)
    "preflight",  # inventory sanity and each host fit for its part
    "pki",  # the island CA and every host's trust in it
    "dns",  # CoreDNS, and every node resolving through it
    "minio",
    "registry",
    "gitea",
    "k3s",
    "monitoring",  # node_exporter everywhere; Prometheus, Alertmanager, blackbox (docs/observability.md)
    "receipt",  # the island's receipt on the controller (docs/receipt.md)
    "summary",  # what the run changed, and the island's endpoints
)

# Tagged `always` as well as with their own tag: they run whatever is selected.
PROLOGUE_TAGS = ("model", "bundle", "upgrade", "preflight")

# Ansible's reserved tags (playbooks_tags.rst, "Special tags", ansible-core 2.19) that select or
# skip something meaningful here. `untagged` selects nothing (every play is tagged) and `never`
# tags nothing; `all`, `always` and `tagged` as skips would skip the prologue.
SPECIAL_RUN_TAGS = ("all", "always", "tagged")
# Molecule runs its playbooks with --skip-tags molecule-notest,notest (and molecule-idempotence-notest
# in its idempotence step): those skip nothing here and are not refused (SKIP_TAG_PREFIXES too).
SPECIAL_SKIP_TAGS = ("never", "untagged", "notest")
SKIP_TAG_PREFIXES = ("molecule-",)


def known_tags():
    """The component tags, in the order site.yml runs them."""
    return list(COMPONENT_TAGS)


def _as_list(tags, what):
    if tags is None:
        return []
    if isinstance(tags, str):
        return [t for t in (part.strip() for part in tags.split(",")) if t]
    if not isinstance(tags, list | tuple | set | frozenset):
        raise TypeError(f"{what} must be a list of tag names, got {type(tags).__name__}")
    return [str(t) for t in tags]


def tag_problems(run_tags, skip_tags=(), known=COMPONENT_TAGS, prologue=PROLOGUE_TAGS):
    """Every problem with the tags of a run, each naming the tag and the fix; [] when all is well.

    ``run_tags`` and ``skip_tags`` as Ansible gives them in ``ansible_run_tags`` (``['all']`` by
    default) and ``ansible_skip_tags`` (``[]``).
    """
    known = list(known)
    listing = ", ".join(known)
    problems = []
    for tag in sorted(set(_as_list(run_tags, "run_tags"))):
        if tag in known or tag in SPECIAL_RUN_TAGS:
            continue
        reason = (
            "selects nothing here (every play carries a tag)"
            if tag in ("untagged", "never")
            else "no play of the island carries this tag"
        )
        problems.append(
            f"--tags {tag}: {reason}, and Ansible would skip it without a word. "
            f"The tags that exist: {listing} (and Ansible's all, always, tagged)"
        )
    for tag in sorted(set(_as_list(skip_tags, "skip_tags"))):
        if tag in prologue or tag in SPECIAL_RUN_TAGS:
            what = f"the prologue ({', '.join(prologue)})" if tag != "all" else "every play"
            problems.append(
                f"--skip-tags {tag}: would skip {what}, which every component needs (the verified "
                f"bundle, the upgrade guards, preflight); select components with --tags instead, "
                f"or skip one of {', '.join(t for t in known if t not in prologue)}"
            )
        elif tag not in known and tag not in SPECIAL_SKIP_TAGS and not tag.startswith(SKIP_TAG_PREFIXES):
            problems.append(
                f"--skip-tags {tag}: no play of the island carries this tag, so it would skip nothing. "
                f"The tags that exist: {listing}"
            )
    return problems
