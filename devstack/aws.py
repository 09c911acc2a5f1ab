"""The local AWS: moto in server mode on 127.0.0.1, in a process of its own, enforcing IAM.

``LocalAWS.start()`` gives a moto with nothing in it but an administrator:
the applier (``devstack.apply``) and the tests act as the administrator; each
function acts as an IAM user holding its role's statements (``Credentials``),
so a call its role does not allow is refused with AccessDenied, as in AWS.

The moto process (``devstack.motoserver``) takes seconds to import the
services; it is started once per process and reset (state and IAM
enforcement) for each ``LocalAWS``, so one local stack at a time runs in a
process. It ends with the process that started it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.request
from dataclasses import dataclass

import boto3

from devstack.motoserver import SETUP_REQUESTS

ADMIN = "devstack-admin"
ADMIN_POLICY = json.dumps({"Version": "2012-10-17",
                           "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}


class _MotoProcess:
    """The moto server process of this process (started on first use)."""

    _current: "_MotoProcess | None" = None
    _lock = threading.Lock()

    def __init__(self):
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_REQUESTS)}
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env.pop(name, None)
        self.process = subprocess.Popen([sys.executable, "-m", "devstack.motoserver"], env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"devstack: moto did not start (exit {self.process.wait()})")
        started = json.loads(line)
        self.endpoint_url, self.region = started["endpoint"], started["region"]
        self.in_use = False

    @classmethod
    def acquire(cls) -> "_MotoProcess":
        with cls._lock:
            if cls._current is None or cls._current.process.poll() is not None:
                cls._current = cls()
            if cls._current.in_use:
                raise RuntimeError("devstack: a local stack is running in this process already (one at a time)")
            cls._current.in_use = True
            return cls._current

    def reset(self) -> None:
        """Forget every resource; the next requests create the administrator unchecked."""
        for path, data in (("reset", b""), ("reset-auth", str(SETUP_REQUESTS).encode())):
            request = urllib.request.Request(f"{self.endpoint_url}/moto-api/{path}", data=data, method="POST",
                                             headers={"Content-Type": "text/plain"})  # not a form: moto reads it
            _OPENER.open(request, timeout=30).close()

    def release(self) -> None:
        with self._lock:
            self.in_use = False


class LocalAWS:
    """moto on 127.0.0.1, empty but for an administrator when started."""

    def __init__(self):
        self._moto: _MotoProcess | None = None
        self.endpoint_url: str | None = None
        self.region: str | None = None
        self.admin: Credentials | None = None
        self._sessions: dict[Credentials, boto3.session.Session] = {}
        self._lock = threading.Lock()

    def start(self) -> "LocalAWS":
        self._moto = _MotoProcess.acquire()
        try:
            self._moto.reset()
            self.endpoint_url, self.region = self._moto.endpoint_url, self._moto.region
            iam = self.client("iam", Credentials("setup", "setup"))
            iam.create_user(UserName=ADMIN)
            iam.put_user_policy(UserName=ADMIN, PolicyName="admin", PolicyDocument=ADMIN_POLICY)
            key = iam.create_access_key(UserName=ADMIN)["AccessKey"]
        except BaseException:
            self._moto.release()
            raise
        self.admin = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
        return self

    def stop(self) -> None:
        if self._moto:
            self._moto.release()
            self._moto = None

    def env(self, credentials: Credentials | None = None) -> dict[str, str]:
        """What a process needs to use this endpoint with boto3 or the aws cli (as ``credentials``)."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url, "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region, **(credentials or self.admin).env}

    def client(self, service: str, credentials: Credentials | None = None):
        """A boto3 client bound to the local endpoint, as the administrator unless told."""
        credentials = credentials or self.admin
        with self._lock:  # one session per identity: its loaded service models are reused
            session = self._sessions.get(credentials)
            if session is None:
                session = self._sessions[credentials] = boto3.session.Session(
                    aws_access_key_id=credentials.access_key_id,
                    aws_secret_access_key=credentials.secret_access_key, region_name=self.region)
            return session.client(service, endpoint_url=self.endpoint_url)


def queue_url(sqs, queue_arn: str) -> str:
    """The URL of the SQS queue ``queue_arn`` names (SQS finds a queue by its name, the ARN's last part)."""
    return sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[1])["QueueUrl"]


def visibility_timeout(sqs, url: str) -> int:
    """The queue's: seconds a received message stays hidden."""
    return int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
               ["Attributes"]["VisibilityTimeout"])
