"""The inbound plugin in the real Pulumi program (under mocks): bucket, function, route, IAM; disabled, none."""

import json

import pytest

from handlers.tables import SENDER, WEBHOOK
from infra.config import ConfigError
from infra.preview import SENDGRID_OUTPUTS, Engine
from tests.infra_program import PUBLIC_KEY, run_program
from tests.test_infra import granted

BASE = ["bounce", "dropped", "dynamodb"]
BUCKET = "aws:s3/bucket:Bucket"
OTHER_KEY = ("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo"
             "7aNDthvj+y7GjUuFDb/R1NGe1OPzpA==")


@pytest.fixture
def program():
    def run(*plugins, **config):
        return run_program({"plugins": BASE + list(plugins), **config})
    return run


@pytest.fixture(scope="module")
def made():
    return run_program({"plugins": BASE + ["inbound"], "inboundPublicKeys": [PUBLIC_KEY, OTHER_KEY],
                        "inboundExpireDays": "30"})


def one(made, typ):
    [resource] = made.of_type(typ)
    return resource


def test_a_private_encrypted_bucket_with_expiry(made):
    bucket = one(made, BUCKET)
    assert bucket.inputs["bucketPrefix"].startswith("sendgrid-events-test-inbound-")
    [key] = made.of_type("aws:kms/key:Key")
    sse = one(made, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    [rule] = sse.inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key.outputs["arn"]}
    assert rule["bucketKeyEnabled"] is True
    block = one(made, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                          "restrictPublicBuckets"))
    ownership = one(made, "aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    [statement] = json.loads(one(made, "aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])["Statement"]
    assert (statement["Effect"], statement["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})
    [expiry] = one(made, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]
    assert (expiry["status"], expiry["expiration"]["days"]) == ("Enabled", 30)


def test_the_function_may_only_put_objects_in_its_bucket(made):
    bucket = one(made, BUCKET)
    [key] = made.of_type("aws:kms/key:Key")
    grants = granted(made.policies("inbound"))
    assert grants.pop(bucket.outputs["arn"] + "/*") == {"s3:PutObject"}
    assert grants.pop(key.outputs["arn"]) == {"kms:GenerateDataKey"}
    [logs] = grants  # its own log group, nothing else
    assert logs.endswith(":loggroup/sendgrid-events-test-inbound-logs:*")
    for fn in (SENDER, WEBHOOK):
        assert not any(r.startswith(bucket.outputs["arn"]) for r in granted(made.policies(fn)))


def test_the_function_its_settings_and_its_secret_route(made):
    function = made.function("inbound").inputs
    assert function["handler"] == "plugins.inbound_handler.lambda_handler"
    assert function["timeout"] <= 29  # API Gateway's limit
    assert made.environment("inbound") == {
        "INBOUND_BUCKET": "inbound-mail-id",  # (the mock's id for the bucket: its name)
        "INBOUND_PUBLIC_KEYS": f"{SENDGRID_OUTPUTS['publicKey']},{PUBLIC_KEY},{OTHER_KEY}",  # the policy's first
        "INBOUND_MAX_AGE_SECONDS": "345600",
        "INBOUND_ALLOW_UNSIGNED_INSECURE": "false",
        "ENABLED_PLUGINS": "bounce,dropped,dynamodb,inbound",
    }
    assert not {n for n in made.environment(WEBHOOK) if n.startswith("INBOUND_")}
    path = made.one("aws:apigateway/resource:Resource", "inbound-route").inputs["pathPart"]
    secret = made.one("random:index/randomString:RandomString", "inbound-path").inputs
    assert secret["length"] >= 40 and (secret["special"], secret["upper"]) == (False, False)
    assert made.resolved_outputs()["inboundUrl"].endswith(f"/v1/{path}")
    invoke = made.one("aws:lambda/permission:Permission", "inbound-route-invoke").inputs
    assert invoke["function"] == "sendgrid-events-test-inbound" and invoke["sourceArn"].endswith(f"/*/POST/{path}")
    assert made.is_secret("inboundUrl")
    assert made.resolved_outputs()["inboundBucket"] == "inbound-mail-id"
    integrations = {i.inputs["uri"] for i in made.of_type("aws:apigateway/integration:Integration")}
    assert any("function/sendgrid-events-test-inbound/invocations" in uri for uri in integrations)
    [api] = made.of_type("aws:apigateway/restApi:RestApi")
    assert api.inputs["binaryMediaTypes"] == ["multipart/form-data"]  # the form reaches Lambda byte for byte


def test_aws_owned_keys_mean_sse_s3_and_no_kms_grant(program):
    made = program("inbound", kmsKey="aws-owned", allowUnsignedInbound="true", manageSendgridWebhook="false")
    sse = one(made, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    assert not any(a.startswith("kms:") for s in made.policies("inbound") for a in s["Action"])
    assert made.environment("inbound")["INBOUND_ALLOW_UNSIGNED_INSECURE"] == "true"
    assert made.environment("inbound")["INBOUND_PUBLIC_KEYS"] == ""
    assert made.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration") == []  # default: kept


def test_nothing_of_it_when_disabled(program):
    made = program()
    assert made.of_type(BUCKET) == [] and "inboundUrl" not in made.outputs
    assert len(made.of_type("aws:apigateway/resource:Resource")) == 1
    assert not [r for r in made.of_type("aws:lambda/function:Function") if r.name.endswith("-inbound")]


@pytest.mark.parametrize("config, key", [
    ({"inboundPublicKeys": ["QUJDRA=="]}, "inboundPublicKeys"),
    ({"inboundExpireDays": "-1"}, "inboundExpireDays"),
    ({"inboundMaxAgeSeconds": "soon"}, "inboundMaxAgeSeconds"),
    ({"allowUnsignedInbound": "maybe"}, "allowUnsignedInbound"),
])
def test_bad_inbound_config_fails_naming_the_key(config, key):
    engine = Engine()
    with pytest.raises(ConfigError, match=f"^sendgrid-events:{key}: ") as error:
        run_program({"plugins": BASE + ["inbound"], **config}, engine=engine)
    assert error.value.key == f"sendgrid-events:{key}"
    assert engine.created == []  # checked by its stack_settings hook, before the KMS key and tables
