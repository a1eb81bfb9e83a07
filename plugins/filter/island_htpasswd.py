"""htpasswd lines with bcrypt hashes, each with a random salt, kept across runs while they verify.

Every new line gets a random salt (bcrypt.gensalt): a salt derived from the password would let
anyone who reads the file test guesses at the speed of an HMAC rather than of bcrypt. So that a
rerun changes nothing, the role passes the file it wrote last time as `existing`: the line of the
same user is kept byte for byte while bcrypt still verifies the password at the same cost, and is
replaced when the password (or the cost) changed. Runs on the controller (the `bcrypt` package
travels with paramiko in requirements.txt).
"""

from __future__ import annotations

import bcrypt


def _kept(existing: str, user: str, password: bytes, cost: int) -> str | None:
    """The line of `user` in `existing` if it is a bcrypt hash of `password` at `cost`, else None."""
    for line in str(existing or "").splitlines():
        name, sep, hashed = line.strip().partition(":")
        if not sep or name != user or not hashed.startswith(f"$2b${cost:02d}$"):
            continue
        try:
            if bcrypt.checkpw(password, hashed.encode()):
                return line.strip()
        except ValueError:  # not a bcrypt hash ("Invalid salt"): replaced
            continue
    return None


def island_htpasswd_line(password, user, cost=10, existing=""):
    """`user:$2b$10$...` for an htpasswd file (what CNCF distribution's htpasswd auth reads).

    `existing`: the current file's content; its line for `user` is returned unchanged while it
    still verifies `password` at `cost`."""
    if ":" in str(user) or not str(user):
        raise ValueError(f"htpasswd user name '{user}' must be non-empty and have no ':'")
    secret, cost = str(password).encode(), int(cost)
    kept = _kept(existing, str(user), secret, cost)
    if kept is not None:
        return kept
    hashed = bcrypt.hashpw(secret, bcrypt.gensalt(rounds=cost, prefix=b"2b"))
    return f"{user}:{hashed.decode()}"


class FilterModule:
    def filters(self):
        return {"island_htpasswd_line": island_htpasswd_line}
