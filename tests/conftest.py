import boto3
import pytest
from moto import mock_aws

from devstack.motoserver import patch_transactions
from devstack.sendgrid import API_KEY, SendGridStandIn
from handlers import api_key, aws as handlers_aws, dynamo, manager, tables
from tests.sender_support import join_sender_threads


@pytest.fixture
def aws(monkeypatch):
    """In-process moto; every client the handlers build is a fresh one inside it.

    Its TransactWriteItems as in the local stack's moto (``devstack.motoserver``: no deep copy of the
    table per item).
    """
    patch_transactions()
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        handlers_aws.reset()  # as moto does with boto3's default session: credentials read again
        dynamo.client.cache_clear()
        yield
        # A sender thread the handler left running ends here, not in the next test: after this fixture it
        # would find no credentials or region, and look for them (instance metadata) while holding the
        # lock the next test's clients are built under.
        join_sender_threads()
    handlers_aws.reset()
    dynamo.client.cache_clear()


@pytest.fixture
def stack(aws, monkeypatch):
    """``stack(names)``: a fresh plugin manager for ``names`` and its tables in moto."""
    def make(names=None):
        plugins = manager.build(names)
        env = tables.create_tables(boto3.client("dynamodb"), plugins.tables.values())
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return plugins
    return make


@pytest.fixture
def sendgrid(monkeypatch):
    """The SendGrid stand-in on 127.0.0.1, with the sender pointed at it."""
    with SendGridStandIn() as standin:
        monkeypatch.setenv("SENDGRID_API_HOST", standin.url)
        monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)
        api_key.reset()
        yield standin
    api_key.reset()

