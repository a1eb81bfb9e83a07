"""age for the island's backups: recipients, identities, and tar and age joined by a pipe.

Note that this module util is PRIVATE to this repository; it can change at any time.

The Python binding of the Rust age implementation, ``pyrage`` (requirements.txt), encrypts and
decrypts file objects (``encrypt_io``/``decrypt_io``, pyrage 1.4.0 ``src/lib.rs``). The backup's tar
stream runs on one end of an OS pipe and age on the other, so the plaintext never touches a disk.
age (format age-encryption.org/v1, C2SP ``age.md``) authenticates every 64 KiB chunk of the payload
and the last chunk's flag, so an altered or truncated ciphertext fails to decrypt. The error
hierarchy of the backups (:mod:`island_backup`) lives here, the layer below it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import threading

from ansible_collections.island.installer.plugins.module_utils.island_io import open_regular, read_regular

try:
    import pyrage
    from pyrage import ssh as age_ssh
    from pyrage import x25519

    PYRAGE_IMPORT_ERROR = None
except ImportError as _exc:  # reported by the module through missing_library
    PYRAGE_IMPORT_ERROR = _exc

IDENTITY_LIMIT = 64 * 1024
LISTED = 20


class BackupError(Exception):
    """Base of the backup errors; the message names the archive, part or file at fault."""


class BackupInputError(BackupError):
    """An argument is wrong: a part, a recipient, an identity, a directory."""


class BackupDecryptError(BackupError):
    """age cannot decrypt the archive: not an identity of its recipients, or the file was altered."""


class BackupIntegrityError(BackupError):
    """The decrypted archive does not match its manifest; ``problems`` names each part at fault."""

    def __init__(self, archive, problems):
        self.problems = list(problems)
        listed = "; ".join(self.problems[:LISTED])
        if len(self.problems) > LISTED:
            listed += f"; and {len(self.problems) - LISTED} more"
        super().__init__(f"backup {archive} is refused, it does not match its manifest: {listed}")


# --- recipients and identities -------------------------------------------------------------------


def need_pyrage():
    if PYRAGE_IMPORT_ERROR is not None:
        raise BackupInputError(f"the pyrage Python library is not importable: {PYRAGE_IMPORT_ERROR}")


def parse_recipients(recipients):
    """age recipients from ``age1...`` and ``ssh-ed25519``/``ssh-rsa`` public keys; all problems at once."""
    need_pyrage()
    if not recipients:
        raise BackupInputError(
            "no recipient: give recipients, the age public keys (age1...) the backup is encrypted to; "
            "age-keygen -y key.txt prints the one of an identity file"
        )
    out, problems = [], []
    for number, given in enumerate(recipients, 1):
        text = str(given).strip()
        try:
            if text.startswith("AGE-SECRET-KEY-"):
                problems.append(f"recipient {number} is a private key; give its public key (age-keygen -y)")
            elif text.startswith("age1"):
                out.append(x25519.Recipient.from_str(text))
            elif text.startswith(("ssh-ed25519 ", "ssh-rsa ")):
                out.append(age_ssh.Recipient.from_str(text))
            else:
                problems.append(
                    f"recipient {number} ({text[:24]!r}) is neither age1... nor an ssh-ed25519/rsa key"
                )
        except pyrage.RecipientError as exc:
            problems.append(f"recipient {number} ({text[:24]!r}) is not a valid age recipient: {exc}")
    if problems:
        raise BackupInputError("; ".join(problems))
    return out


def load_identities(identity_file=None, identity=None):
    """age identities from a file (mode 0600 or stricter) or from ``identity`` (a vault's text).

    The file holds ``AGE-SECRET-KEY-1...`` lines (as ``age-keygen`` writes it, ``#`` comments
    allowed) or one unencrypted OpenSSH private key. A line is never echoed in a message.
    """
    need_pyrage()
    source = "the identity given"
    if identity_file is not None:
        source = f"identity file {identity_file}"
        try:
            mode = stat.S_IMODE(os.stat(identity_file).st_mode)
            data = read_regular(identity_file, IDENTITY_LIMIT, follow_symlinks=True)
        except OSError as exc:
            raise BackupInputError(f"cannot read {source} ({exc.strerror})") from None
        if mode & 0o077:
            raise BackupInputError(
                f"{source} has mode {mode:04o}; it holds a private key, chmod 600 {identity_file}"
            )
        if len(data) > IDENTITY_LIMIT:
            raise BackupInputError(
                f"{source} is larger than {IDENTITY_LIMIT} bytes; it is no age identity file"
            )
        identity = data.decode("utf-8", errors="replace")
    if not identity:
        raise BackupInputError("no identity: give identity_file (an age-keygen key file, mode 0600)")
    try:
        if "-----BEGIN OPENSSH PRIVATE KEY-----" in identity:
            return [age_ssh.Identity.from_buffer(identity.encode())]
        out = []
        for number, text in enumerate(identity.splitlines(), 1):
            line = text.strip()
            if not line or line.startswith("#"):
                continue
            if not line.startswith("AGE-SECRET-KEY-1"):
                raise BackupInputError(
                    f"{source}: line {number} is not an age identity (AGE-SECRET-KEY-1...)"
                )
            out.append(x25519.Identity.from_str(line))
    except pyrage.IdentityError as exc:
        raise BackupInputError(f"{source} holds no usable identity ({exc})") from None
    if not out:
        raise BackupInputError(f"{source} holds no identity (no AGE-SECRET-KEY-1... line)")
    return out


# --- tar and age on the two ends of a pipe


class HashingStream:
    """A reader or writer that hashes what passes through it and keeps the first write error.

    pyrage's Rust writer flushes its last buffer when it is dropped and ignores an error there, so a
    write error (a full disk) is kept here and raised by the caller.
    """

    def __init__(self, handle):
        self.handle, self.digest, self.size, self.error = handle, hashlib.sha256(), 0, None

    def read(self, size=-1):
        data = self.handle.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data

    def write(self, data):
        try:
            written = self.handle.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise
        self.digest.update(data)
        self.size += len(data)
        return written

    def flush(self):
        self.handle.flush()


def through_pipe(produce, consume):
    """Run ``produce(writer)`` in a thread and ``consume(reader)`` here, on the two ends of a pipe.

    The first cause wins: an error the producer raised before the consumer failed (the consumer
    then only saw the stream end early) is raised, else the consumer's error.
    """
    read_fd, write_fd = os.pipe()
    reader, writer = os.fdopen(read_fd, "rb"), os.fdopen(write_fd, "wb")
    failures = []

    def run():
        try:
            produce(writer)
        except BaseException as exc:  # handed to the calling thread
            failures.append(exc)
        finally:
            with contextlib.suppress(OSError):
                writer.close()

    thread = threading.Thread(target=run, name="island-backup-pipe", daemon=True)
    thread.start()
    try:
        result = consume(reader)
    except BaseException as exc:
        earlier = list(failures)
        reader.close()
        thread.join()
        if earlier:
            raise earlier[0] from exc
        raise
    reader.close()
    thread.join()
    if failures:
        raise failures[0]
    return result


def encrypt(produce, out, recipients, path):
    """Encrypt what ``produce(writer)`` writes to ``out``, the binary file ``path``; its size and sha256.

    pyrage's Rust writer flushes its last buffer when it is dropped and ignores an error there, so
    a write error (a full disk) is kept by :class:`HashingStream` and raised here.
    """
    need_pyrage()
    sink = HashingStream(out)
    try:
        through_pipe(produce, lambda stream: pyrage.encrypt_io(stream, sink, recipients))
    except (pyrage.EncryptError, OSError) as exc:
        raise BackupInputError(f"cannot write {path} ({sink.error or exc})") from None
    if sink.error is not None:
        raise BackupInputError(f"cannot write {path} ({sink.error})")
    return sink.size, sink.digest.hexdigest()


def decrypt(archive, identities, consume):
    """Decrypt the file ``archive`` into ``consume(reader)``; the ciphertext's size and sha256."""
    need_pyrage()
    try:
        fd = open_regular(archive, follow_symlinks=True)
    except OSError as exc:
        raise BackupInputError(f"cannot read backup {archive} ({exc.strerror})") from None
    with open(fd, "rb") as handle:
        source = HashingStream(handle)

        def produce(out):
            try:
                pyrage.decrypt_io(source, out, identities)
            except pyrage.DecryptError as exc:
                if "no matching keys" in str(exc).lower():
                    raise BackupDecryptError(
                        f"backup {archive}: the identity given is not one of the recipients it was encrypted "
                        f"to (age: {exc}); use the identity whose public key (age-keygen -y) made the backup"
                    ) from None
                raise BackupDecryptError(
                    f"backup {archive} is not a readable age file (age: {exc})"
                ) from None
            except BrokenPipeError:  # the reader stopped early; its own error is the one raised
                raise
            except OSError as exc:
                raise BackupDecryptError(
                    f"backup {archive}: age refuses its content ({exc}): the file was altered or damaged "
                    "after it was written; use another copy"
                ) from None

        through_pipe(produce, consume)
    return source.size, source.digest.hexdigest()
