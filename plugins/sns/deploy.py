"""The ``sns`` plugin's deploy half: the notification topic and its e-mail subscriptions.

Loaded by the Pulumi program only (``infra.deploy``); never in Lambda.
"""

from __future__ import annotations

from infra.hookspecs import hookimpl
from plugins.sns import EMAIL, EVENT_TYPE, SNS_EVENTS, SNS_TOPIC_ARN


@hookimpl
def stack_settings(config):
    """The stack config ``snsEmails`` (addresses to subscribe) and ``snsEvents`` (types notified)."""
    from infra.config import ConfigError, string_list

    emails = string_list(config, "snsEmails", [])
    events = string_list(config, "snsEvents", []) or SNS_EVENTS.default.split(",")
    for email in emails:
        if not EMAIL.fullmatch(email):
            raise ConfigError("snsEmails", f"not an e-mail address: {email!r}")
    for event in events:
        if not EVENT_TYPE.fullmatch(event):
            raise ConfigError("snsEvents", f"not a SendGrid event type (like bounce): {event!r}")
    return {"emails": emails, "events": events}


@hookimpl
def infrastructure(stack):
    import pulumi_aws as aws

    settings = stack.settings["sns"]
    topic = aws.sns.Topic(
        "sns-notify",
        name=f"{stack.prefix}-notify",
        kms_master_key_id=stack.kms_key_arn or "alias/aws/sns",
        opts=stack.child_opts(),
    )
    for i, address in enumerate(settings["emails"]):
        aws.sns.TopicSubscription(
            f"sns-notify-email-{i}", topic=topic.arn, protocol="email", endpoint=address,
            opts=stack.child_opts(),
        )
    stack.add_env("webhook", SNS_TOPIC_ARN.name, topic.arn)
    stack.add_env("webhook", SNS_EVENTS.name, ",".join(settings["events"]))
    stack.allow("webhook", ["sns:Publish"], [topic.arn])
    stack.allow_key("webhook")  # publishing to a topic encrypted with the stack's key
    stack.export("snsTopicArn", topic.arn)
