"""The rehearsal: the Pulumi program applied to moto, resource by resource, with its own inputs.

``Applier`` is an ``infra.offline.Engine``: ``offline.run`` hands it every
resource the program registers once the resource's inputs are known (the
engine's order: after everything it waits for), and it creates that resource
in the local AWS (``devstack.aws.LocalAWS``) as the administrator, answering
what was made (ARNs, ids, URLs), which the program then wires into the next
resources. An input moto refuses fails the run naming the resource; a type no
module here knows fails the same way. Create only: the local AWS is new each
time, so there is never anything to diff, update or delete.

One module per service family registers its types in ``APPLY``:
``data`` (KMS, DynamoDB, SSM, SQS, SNS, S3), ``functions`` (IAM, CloudWatch
Logs, Lambda), ``api`` (API Gateway, random), ``monitoring`` (CloudWatch
alarms and dashboards, API Gateway's account), ``dynamic`` (the program's
dynamic resources: SendGrid's settings, made in the stand-in by their provider).
"""

from __future__ import annotations

import functools
import io
import secrets
import threading
import zipfile
from pathlib import Path
from typing import Any, Callable

import pulumi
from botocore.exceptions import BotoCoreError, ClientError
from pulumi.runtime import rpc

from devstack.aws import LocalAWS
from infra import offline

ACCOUNT = "123456789012"  # moto's default account
# Lambda's limit on a zip uploaded with the call (CreateFunction / PublishLayerVersion); moto does not check it.
DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024


class ApplyError(RuntimeError):
    """A resource could not be made; the message names it."""



Handler = Callable[["Applier", str, dict], tuple[str, dict]]
APPLY: dict[str, Handler] = {}


def applies(resource_type: str):
    """Register a function ``(applier, name, inputs) -> (id, outputs)`` for ``resource_type``."""
    def register(fn: Handler) -> Handler:
        APPLY[resource_type] = fn
        return fn
    return register


def plain(value: Any) -> Any:
    """Inputs as plain Python: secrets unwrapped, whole floats as ints (the wire has only floats)."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return plain(value["value"])
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def autoname(name: str, limit: int = 64) -> str:
    """A physical name the way Pulumi makes one: the resource name and 7 random hex characters."""
    return f"{name[:limit - 8]}-{secrets.token_hex(4)[:7]}"


def zipped(archive: Any) -> bytes:
    """The zip Pulumi would upload for a ``FileArchive`` (a folder) or an ``AssetArchive`` of files."""
    if isinstance(archive, pulumi.FileArchive):  # the layer: its folder never changes (named by its hash)
        return _zipped_folder(archive.path)
    return _zip(archive)


@functools.lru_cache(maxsize=4)
def _zipped_folder(path: str) -> bytes:
    return _zip(pulumi.FileArchive(path))


def _zip(archive: Any) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        for name, path in archive_files(archive):
            out.write(path, name)
    data = buffer.getvalue()
    if len(data) > DIRECT_UPLOAD_LIMIT:
        raise ApplyError(f"the archive is {len(data) / 2**20:.1f} MiB zipped; Lambda takes at most 50 MiB "
                         "in the call (larger ones go through S3)")
    return data


def archive_files(archive: Any) -> list[tuple[str, Path]]:
    if isinstance(archive, pulumi.FileArchive):
        root = Path(archive.path)
        return [(p.relative_to(root).as_posix(), p) for p in sorted(root.rglob("*")) if p.is_file()]
    if isinstance(archive, pulumi.AssetArchive):
        files = []
        for name, asset in archive.assets.items():
            if not isinstance(asset, pulumi.FileAsset):
                raise ApplyError(f"archive member {name!r}: only file assets are supported here")
            files.append((name, Path(asset.path)))
        return files
    raise ApplyError(f"unsupported archive {type(archive).__name__}")


class Applier(offline.Engine):
    """Creates each resource in ``aws``; ``api_base_url`` is where the local API Gateway front listens."""

    def __init__(self, aws: LocalAWS, api_base_url: str):
        self.aws = aws
        self.api_base_url = api_base_url
        self.region = aws.region
        self.errors: list[ApplyError] = []
        self.archives: dict[str, bytes] = {}
        """Function name -> the code zip uploaded for it (the local instances run it unpacked)."""
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str):
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self.aws.client(service)
            return self._clients[service]

    def arn(self, service: str, resource: str, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{ACCOUNT}:{resource}"

    def create(self, resource: offline.Resource) -> tuple[str | None, dict]:
        if not resource.custom:  # a component: a node of the tree, nothing to make
            return None, {}
        apply = APPLY.get(resource.type)
        if apply is None:
            return self._failed(resource, "devstack cannot apply this type yet (add it to devstack/apply/)")
        inputs = plain(resource.inputs)
        try:
            resource_id, made = apply(self, resource.name, inputs)
        except (ClientError, BotoCoreError, ApplyError) as exc:
            return self._failed(resource, str(exc))
        return resource_id, {**inputs, **made}

    def _failed(self, resource: offline.Resource, problem: str):
        error = ApplyError(f"{resource.type} {resource.name!r}: {problem}")
        with self._lock:
            self.errors.append(error)
        raise error


def _load_modules() -> None:
    from devstack.apply import api, data, dynamic, functions, monitoring  # noqa: F401  (they register their types)


_load_modules()
