"""Where Tune keeps a sweep's trial checkpoints and experiment state (``trial_storage``).

By default Tune writes them under the run directory, on the driver's disk: on a cluster
whose nodes do not share that disk, a trial that must move to another node (a lost spot
worker) finds no checkpoint. ``trial_storage`` names storage every node reaches: a URI
Ray Tune's ``storage_path`` takes (``s3://bucket/prefix``, ``gs://...``, with pyarrow's
query options such as ``?endpoint_override=host:port&scheme=http`` for an S3-compatible
server), or an absolute path on a shared file system. Each run writes under its own
``<trial_storage>/<run id>/``; the run directory keeps result.json, the study and the
report as without it. Credentials come from the environment (``AWS_ACCESS_KEY_ID`` ...,
instance roles), never from the sweep file. Ray-free.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from urllib.parse import parse_qsl
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from arnas_common.errors import ConfigError

__all__ = ["SCHEMES", "check_trial_storage", "join_storage"]

#: URI schemes of the file systems pyarrow (and so Ray Tune) reaches.
SCHEMES = ("s3", "gs", "gcs", "abfs", "abfss", "hdfs", "viewfs", "file")
#: Query keys that would put a secret in a sweep file.
_SECRET_KEYS = {"access_key", "secret_key", "session_token", "sas_token", "account_key"}


def check_trial_storage(value: str, where: str = "sweep.trial_storage") -> str:
    """``value`` if it is a storage location Tune can use, else one line saying why.

    Checked without touching the storage (an unreachable server would make pyarrow retry
    for minutes): the scheme, a bucket or host where one is needed, no credentials.
    """
    if value.startswith("/"):
        return value
    parts = urlsplit(value)
    if parts.scheme not in SCHEMES:
        raise ConfigError(
            f"{where}: '{value}' is neither an absolute path nor a URI of "
            f"{', '.join(s + '://' for s in SCHEMES)}; e.g. s3://bucket/prefix"
        )
    if parts.scheme != "file" and not parts.netloc:
        raise ConfigError(f"{where}: '{value}' names no bucket or host; e.g. s3://bucket/prefix")
    if parts.username or parts.password:
        raise ConfigError(
            f"{where}: credentials do not belong in a sweep file; use the "
            "environment (AWS_ACCESS_KEY_ID, ...) or the node's role"
        )
    secrets = sorted(k for k, _ in parse_qsl(parts.query) if k.lower() in _SECRET_KEYS)
    if secrets:
        raise ConfigError(
            f"{where}: {', '.join(secrets)} would put a secret in the sweep file; give it "
            "through the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...) instead"
        )
    return value


def join_storage(location: str, *parts: str) -> str:
    """``location`` with path ``parts`` appended (a URI keeps its query)."""
    if location.startswith("/"):
        return str(PurePosixPath(location, *parts))
    split = urlsplit(location)
    path = "/".join([split.path.rstrip("/"), *parts])
    return urlunsplit((split.scheme, split.netloc, path, split.query, split.fragment))
