"""The ``inbound`` plugin's deploy half: the bucket, the function, its route and SendGrid's Inbound Parse.

Loaded by the Pulumi program only (``infra.deploy``); never in Lambda.
"""

from __future__ import annotations

import re

from handlers.env import ENABLED_PLUGINS, SENDGRID_EVENTS_STACK
from infra.hookspecs import hookimpl
from plugins.inbound import (FUNCTION, INBOUND, INBOUND_ALLOW_UNSIGNED_INSECURE, INBOUND_BUCKET,
                             INBOUND_MAX_AGE_SECONDS, INBOUND_PUBLIC_KEYS)

PATH_LENGTH = 48
HOSTNAME = re.compile(r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$")


@hookimpl
def stack_settings(config):
    """The stack config: ``inboundPublicKeys``, ``allowUnsignedInbound``, ``inboundMaxAgeSeconds``,
    ``inboundExpireDays``, ``inboundParseHostname``, ``inboundSendRaw``."""
    from infra.config import ConfigError, boolean, integer, public_keys

    hostname = (config.get("inboundParseHostname") or "").strip().lower()
    if hostname and not HOSTNAME.match(hostname):
        raise ConfigError("inboundParseHostname", f"must be a host name such as parse.example.com, not {hostname!r}")

    return {
        "keys": public_keys(config, "inboundPublicKeys"),
        "allow_unsigned": boolean(config, "allowUnsignedInbound", False),
        "max_age": integer(config, "inboundMaxAgeSeconds", int(INBOUND_MAX_AGE_SECONDS.default)),
        "expire_days": integer(config, "inboundExpireDays", 0),
        "hostname": hostname,
        "send_raw": boolean(config, "inboundSendRaw", False),
    }


@hookimpl
def infrastructure(stack):
    import json

    import pulumi
    import pulumi_aws as aws
    import pulumi_random as random

    settings = stack.settings["inbound"]
    keys, allow_unsigned = settings["keys"], settings["allow_unsigned"]
    if not keys and not allow_unsigned and stack.sendgrid is None:
        pulumi.log.warn("inbound: no inboundPublicKeys: the inbound function refuses every request until "
                        "an Inbound Parse security policy's public key is configured")

    s3 = aws.s3
    bucket = s3.Bucket("inbound-mail", bucket_prefix=f"{stack.prefix}-inbound-".lower()[:37],
                       opts=stack.child_opts())
    access = s3.BucketPublicAccessBlock("inbound-mail-public-access", bucket=bucket.id, block_public_acls=True,
                                        block_public_policy=True, ignore_public_acls=True,
                                        restrict_public_buckets=True, opts=stack.child_opts())
    s3.BucketOwnershipControls("inbound-mail-ownership", bucket=bucket.id, rule=s3.BucketOwnershipControlsRuleArgs(
        object_ownership="BucketOwnerEnforced"), opts=stack.child_opts())
    default = (s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
        sse_algorithm="aws:kms", kms_master_key_id=stack.kms_key_arn) if stack.kms_key_arn is not None else
        s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(sse_algorithm="AES256"))
    s3.BucketServerSideEncryptionConfiguration("inbound-mail-encryption", bucket=bucket.id, rules=[
        s3.BucketServerSideEncryptionConfigurationRuleArgs(apply_server_side_encryption_by_default=default,
                                                           bucket_key_enabled=True)], opts=stack.child_opts())
    s3.BucketPolicy("inbound-mail-tls-only", bucket=bucket.id, policy=bucket.arn.apply(lambda arn: json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                       "Resource": [arn, f"{arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}],
    })), opts=stack.child_opts(depends_on=[access]))
    if settings["expire_days"]:
        s3.BucketLifecycleConfiguration("inbound-mail-expiry", bucket=bucket.id, rules=[
            s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-inbound-mail", status="Enabled", filter=s3.BucketLifecycleConfigurationRuleFilterArgs(),
                expiration=s3.BucketLifecycleConfigurationRuleExpirationArgs(days=settings["expire_days"]))],
            opts=stack.child_opts())

    stack.add_function(INBOUND)
    stack.add_env(FUNCTION, INBOUND_BUCKET.name, bucket.id)  # a bucket's id is its name
    path = random.RandomString("inbound-path", length=PATH_LENGTH, special=False, upper=False,
                               opts=stack.child_opts())
    url = stack.add_route(FUNCTION, path.result)
    stack.add_env(FUNCTION, INBOUND_PUBLIC_KEYS.name, _managed_parse(stack, settings, url) if stack.sendgrid
                  else ",".join(keys))
    stack.add_env(FUNCTION, INBOUND_MAX_AGE_SECONDS.name, str(settings["max_age"]))
    stack.add_env(FUNCTION, INBOUND_ALLOW_UNSIGNED_INSECURE.name, "true" if allow_unsigned else "false")
    # The stack's plugins (the core sets them on the webhook first), for inbound_mail hooks.
    stack.add_env(FUNCTION, ENABLED_PLUGINS.name, stack.env["webhook"][ENABLED_PLUGINS.name])
    # The stack's name: its metrics' Stack dimension (handlers.metrics).
    stack.add_env(FUNCTION, SENDGRID_EVENTS_STACK.name, stack.env["webhook"][SENDGRID_EVENTS_STACK.name])
    stack.allow(FUNCTION, ["s3:PutObject"], [bucket.arn.apply(lambda arn: f"{arn}/*")])
    stack.allow_key(FUNCTION, ("kms:GenerateDataKey",))  # SSE-KMS on put
    stack.export("inboundBucket", bucket.id)


def _managed_parse(stack, settings, url):
    """SendGrid's signature security policy and, given a hostname, the Parse setting posting to ``url``
    with it; ``INBOUND_PUBLIC_KEYS``: the policy's key, then the configured ones."""
    import pulumi

    from infra import sendgrid

    policy = sendgrid.security_policy("inbound-security-policy", stack.sendgrid, f"{stack.prefix}-inbound",
                                      opts=stack.child_opts())
    if settings["hostname"]:
        sendgrid.parse_setting("inbound-parse-setting", stack.sendgrid, settings["hostname"], url,
                               settings["send_raw"], policy.policyId, opts=stack.child_opts())
    else:
        pulumi.log.warn("inbound: no inboundParseHostname: the security policy is made, the Parse setting is "
                        "not (set the hostname whose MX points at mx.sendgrid.net)")
    stack.export("inboundPolicyId", policy.policyId)
    return sendgrid.key_list(policy, settings["keys"])
