# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The typed errors of the MinIO state code (island_minio, island_minio_seed): each says what is at
fault and what to do; the island_minio module turns them into ``fail_json`` in one place."""

from __future__ import annotations


class MinioStateError(Exception):
    """Base of every error this code reports to the module."""


class CredentialsError(MinioStateError):
    pass


class EndpointUnreachable(MinioStateError):
    pass


class TLSFailure(MinioStateError):
    pass


class PolicyInvalid(MinioStateError):
    pass


class SpecError(MinioStateError):
    pass


class NotReady(MinioStateError):
    pass


class SeedRefused(MinioStateError):
    """A seed object is not the file the bundle's lock names, or lies outside the bundle."""


class ApiError(MinioStateError):
    pass
