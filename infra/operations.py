"""Operations: alarms to one SNS topic, a dashboard, and the REST API's access logs.

Every alarm watches a failure that would otherwise go unnoticed (README
"Operating" has a runbook paragraph for each; the alarm's description says
the same in one line): the webhook answering 5xx, every post refused with 403
(a wrong verification key), sends waiting in the on-failure queue, posts in
the ingest dead-letter queue (``ingest: queue``), the stream
falling behind, any function's errors and throttles, events set aside in
``rejects``, and the silently dead webhook (mails sent, no event received).
The functions' own metrics come from their Embedded Metric Format lines
(``handlers.metrics``): alarms and dashboard name them through that module,
so a name the handlers do not emit cannot be used (``tests/test_operations.py``
checks it). Thresholds are stack config (``settings``), defaults in Pulumi.yaml.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from handlers import metrics
from handlers.tables import SENDER
from infra import dashboard
from infra.api import STAGE
from infra.config import ConfigError, integer, string, string_list

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
HEARTBEAT_TYPES = frozenset({"processed", "delivered"})  # event types every sent mail yields
PERIOD = 300  # seconds: the alarms' and dashboard's period (but the silent webhook's, in hours)
LOG_ROLE_CREATE, LOG_ROLE_EXISTING = "create", "existing"
# What API Gateway writes per request: no body, no query string, no path (the webhook's path is a secret),
# no caller address; the request id first, as API Gateway requires one.
ACCESS_LOG_FORMAT = json.dumps({
    "requestId": "$context.requestId", "extendedRequestId": "$context.extendedRequestId",
    "time": "$context.requestTime", "epochMs": "$context.requestTimeEpoch", "method": "$context.httpMethod",
    "resourceId": "$context.resourceId", "stage": "$context.stage", "status": "$context.status",
    "responseLength": "$context.responseLength", "latencyMs": "$context.responseLatency",
    "integrationStatus": "$context.integrationStatus", "integrationLatencyMs": "$context.integrationLatency",
    "integrationError": "$context.integration.error", "errorType": "$context.error.responseType",
    "error": "$context.error.message", "userAgent": "$context.identity.userAgent",
}, separators=(",", ":"))
# The actions of AWS's AmazonAPIGatewayPushToCloudWatchLogs policy, inline: the role is the region's, for
# every API's logs (and execution logs make their own groups), so on every log group.
PUSH_TO_LOGS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogGroups", "logs:DescribeLogStreams",
                "logs:PutLogEvents", "logs:GetLogEvents", "logs:FilterLogEvents"]


@dataclass(frozen=True)
class OperationsSettings:
    """The stack config of alarms and access logs (keys in Pulumi.yaml, read by ``settings``)."""

    emails: tuple[str, ...]
    webhook_5xx: int
    forbidden_minutes: int
    iterator_age_seconds: int
    silent_webhook_hours: int
    rejects: int
    lambda_errors: int
    access_log_role: str


def settings(config: pulumi.Config) -> OperationsSettings:
    """Read and check the operations keys (``ConfigError`` naming the key)."""
    emails = string_list(config, "alarmEmails", [])
    for email in emails:
        if not EMAIL.fullmatch(email):
            raise ConfigError("alarmEmails", f"not an e-mail address: {email!r}")
    minutes = integer(config, "alarmForbiddenMinutes", 15, minimum=5, maximum=1440)
    if minutes % (PERIOD // 60):
        raise ConfigError("alarmForbiddenMinutes", f"must be a multiple of {PERIOD // 60}, not {minutes}")
    return OperationsSettings(
        emails=tuple(emails),
        webhook_5xx=integer(config, "alarmWebhook5xx", 5, minimum=1),
        forbidden_minutes=minutes,
        iterator_age_seconds=integer(config, "alarmIteratorAgeSeconds", 3600, minimum=60),
        silent_webhook_hours=integer(config, "alarmSilentWebhookHours", 6, minimum=0, maximum=24),
        rejects=integer(config, "alarmRejects", 1, minimum=1),
        lambda_errors=integer(config, "alarmLambdaErrors", 1, minimum=1),
        access_log_role=string(config, "apiAccessLogRole", LOG_ROLE_CREATE,
                               choices=(LOG_ROLE_CREATE, LOG_ROLE_EXISTING)),
    )


class AccessLogs(pulumi.ComponentResource):
    """The log group of the REST API's access logs and, unless the region's API Gateway account already
    has one (``apiAccessLogRole: existing``), the role API Gateway writes logs with, set on that account."""

    group: aws.cloudwatch.LogGroup
    ready: list[pulumi.Resource]
    """What the stage's access log settings must wait for."""

    def __init__(self, name: str, retention_days: int, role: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sendgrid-events:infra:AccessLogs", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.group = aws.cloudwatch.LogGroup(name, name=f"/aws/apigateway/{name}",
                                             retention_in_days=retention_days, opts=child)
        self.ready = [self.group]
        if role == LOG_ROLE_CREATE:
            push = aws.iam.Role(f"{name}-role", description="API Gateway writes CloudWatch logs (the region's)",
                                assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [{
                                    "Effect": "Allow", "Action": "sts:AssumeRole",
                                    "Principal": {"Service": "apigateway.amazonaws.com"}}]}), opts=child)
            allowed = aws.iam.RolePolicy(f"{name}-push", role=push.id, policy=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": PUSH_TO_LOGS, "Resource": "*"}]}), opts=child)
            self.ready.append(aws.apigateway.Account(
                f"{name}-account", cloudwatch_role_arn=push.arn,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[allowed])))
        self.register_outputs({"group": self.group.name})


@dataclass
class OperationsArgs:
    settings: OperationsSettings
    functions: dict[str, aws.lambda_.Function]
    """Logical name -> function (sender, webhook, plugins' own)."""
    queue: aws.sqs.Queue
    """The sender's on-failure queue."""
    api_name: pulumi.Input[str]
    event_types: tuple[str, ...]
    """The enabled event types (the dashboard's events-by-type query)."""
    webhook_log_group: str
    ingest_queue: aws.sqs.Queue | None = None
    """``ingest: queue``: the queue webhook posts wait in."""
    ingest_dlq: aws.sqs.Queue | None = None
    """``ingest: queue``: its dead-letter queue, of queued posts that kept failing."""


class Operations(pulumi.ComponentResource):
    topic: aws.sns.Topic
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    """Short name -> alarm."""
    dashboard: aws.cloudwatch.Dashboard

    def __init__(self, name: str, args: OperationsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sendgrid-events:infra:Operations", name, None, opts)
        self._name, self._stack = name, pulumi.get_stack()
        child = pulumi.ResourceOptions(parent=self)
        # Not KMS-encrypted: CloudWatch can publish to an encrypted topic only through a key policy granting
        # it the key; alarm notifications hold names and numbers, nothing secret.
        self.topic = aws.sns.Topic(f"{name}-alarms", opts=child)
        for i, email in enumerate(args.settings.emails):
            aws.sns.TopicSubscription(f"{name}-alarms-email-{i}", topic=self.topic.arn, protocol="email",
                                      endpoint=email, opts=child)
        self.alarms = self._alarms(args)
        region = args.queue.arn.apply(lambda arn: arn.split(":")[3])
        body = pulumi.Output.all(
            region=region, queue=args.queue.name, api=args.api_name,
            functions=pulumi.Output.all(**{fn: f.name for fn, f in args.functions.items()}),
            alarms=pulumi.Output.all(*(a.arn for a in self.alarms.values())),
            ingest=pulumi.Output.all(queue=args.ingest_queue.name, dlq=args.ingest_dlq.name)
            if args.ingest_queue is not None else None,
        ).apply(lambda v: json.dumps(dashboard.body(
            stack=self._stack, event_types=args.event_types, webhook_log_group=args.webhook_log_group, **v)))
        self.dashboard = aws.cloudwatch.Dashboard(f"{name}-dashboard", dashboard_name=name,
                                                  dashboard_body=body, opts=child)
        self.register_outputs({"topic": self.topic.arn, "dashboard": self.dashboard.dashboard_name})

    def _alarms(self, args: OperationsArgs) -> dict[str, aws.cloudwatch.MetricAlarm]:
        s, fn = args.settings, args.functions
        stack = {metrics.DIMENSION: self._stack}
        made = {
            "webhook-5xx": self._alarm(
                "webhook-5xx", f"The REST API answered 5xx at least {s.webhook_5xx} times in 5 minutes: SendGrid "
                "retries, but read the webhook's log for 'webhook batch not stored' (README Operating).",
                metric=("AWS/ApiGateway", "5XXError", {"ApiName": args.api_name, "Stage": STAGE}, "Sum"),
                threshold=s.webhook_5xx),
            "webhook-forbidden": self._math(
                "webhook-forbidden", f"Every webhook post for {s.forbidden_minutes} minutes was refused 403: the "
                "webhook's verification key is not in webhookPublicKeys (README Operating).",
                "IF(posts > 0 AND refused == posts, 1, 0)", periods=s.forbidden_minutes * 60 // PERIOD,
                refused=_own("WebhookRefused403", stack), posts=_own("WebhookPosts", stack)),
            "sender-failures-queued": self._alarm(
                "sender-failures-queued", "Mails the sender gave up on wait in the on-failure queue (dlqUrl): "
                "read why, fix, insert them again (README Operating).",
                metric=("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": args.queue.name},
                        "Maximum"), threshold=1),
            "stream-behind": self._alarm(
                "stream-behind", f"The sender is more than {s.iterator_age_seconds} s behind the mail sender "
                "table's stream: look for errors, throttles or slow SendGrid calls (README Operating).",
                metric=("AWS/Lambda", "IteratorAge", {"FunctionName": fn[SENDER].name}, "Maximum"),
                threshold=s.iterator_age_seconds * 1000),
            "events-rejected": self._alarm(
                "events-rejected", f"At least {s.rejects} webhook events were set aside in the rejects table in "
                "an hour: read their reason (README Operating).",
                metric=_own("EventsRejected", stack), threshold=s.rejects, period=3600),
            "webhook-silent": s.silent_webhook_hours and self._heartbeat(args) and self._math(
                "webhook-silent", f"Mails were sent in the last {s.silent_webhook_hours} h but the webhook "
                "received no event: SendGrid may have disabled the webhook (README Operating).",
                "IF(FILL(sent, 0) > 0 AND FILL(received, 0) == 0, 1, 0)", period=s.silent_webhook_hours * 3600,
                sent=_own("MailsSent", stack), received=_own("EventsReceived", stack)),
        }
        if args.ingest_dlq is not None:
            made["ingest-dead-letters"] = self._alarm(
                "ingest-dead-letters", "Webhook posts that kept failing wait in the ingest dead-letter queue "
                "(ingestDlqUrl): read the webhook's log, fix, re-drive them (README Operating).",
                metric=("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": args.ingest_dlq.name},
                        "Maximum"), threshold=1)
        made = {key: alarm for key, alarm in made.items() if alarm}  # 0 hours: no webhook-silent alarm
        for logical, function in fn.items():
            for metric, what in (("Errors", "failed (read its log)"), ("Throttles", "was throttled "
                                                                        "(concurrency: README Operating)")):
                key = f"{logical}-{metric.lower()}"
                made[key] = self._alarm(
                    key, f"The {logical} function {what}: {s.lambda_errors} or more in 5 minutes (README Operating).",
                    metric=("AWS/Lambda", metric, {"FunctionName": function.name}, "Sum"), threshold=s.lambda_errors)
        return made

    @staticmethod
    def _heartbeat(args: "OperationsArgs") -> bool:
        """Whether every sent mail yields a webhook event (``processed`` or ``delivered`` enabled): without
        one a quiet day (no bounce) looks like a dead webhook, so the webhook-silent alarm is left out."""
        if HEARTBEAT_TYPES & set(args.event_types):
            return True
        pulumi.log.warn("operations: no webhook-silent alarm: it needs an event every sent mail yields; enable "
                        "the processed or delivered plugin (or set alarmSilentWebhookHours to 0)")
        return False

    def _options(self, key: str, description: str) -> dict:
        actions = [self.topic.arn]
        return dict(name=f"{self._name}-{key}", alarm_description=description, alarm_actions=actions,
                    ok_actions=actions, treat_missing_data="notBreaching",
                    opts=pulumi.ResourceOptions(parent=self))

    def _alarm(self, key: str, description: str, *, metric: tuple, threshold: float,
               period: int = PERIOD) -> aws.cloudwatch.MetricAlarm:
        """An alarm when ``metric`` (namespace, name, dimensions, statistic) reaches ``threshold`` in a period."""
        namespace, name, dimensions, statistic = metric
        return aws.cloudwatch.MetricAlarm(
            f"{self._name}-{key}", namespace=namespace, metric_name=name, dimensions=dimensions,
            statistic=statistic, period=period, evaluation_periods=1, threshold=threshold,
            comparison_operator="GreaterThanOrEqualToThreshold", **self._options(key, description))

    def _math(self, key: str, description: str, expression: str, *, periods: int = 1, period: int = PERIOD,
              **queries: tuple) -> aws.cloudwatch.MetricAlarm:
        """An alarm when ``expression`` (1 or 0, over ``queries``: id -> metric) is 1 for ``periods`` periods."""
        return aws.cloudwatch.MetricAlarm(
            f"{self._name}-{key}", evaluation_periods=periods, datapoints_to_alarm=periods, threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            metric_queries=[aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id="alarm", expression=expression, label=key, return_data=True)] + [
                aws.cloudwatch.MetricAlarmMetricQueryArgs(id=query, return_data=False,
                                                          metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace=namespace, metric_name=name, dimensions=dimensions, stat=stat, period=period))
                for query, (namespace, name, dimensions, stat) in queries.items()],
            **self._options(key, description))


def _own(name: str, dimensions: dict) -> tuple:
    """One of the functions' own metrics (``handlers.metrics``: a name no function emits is a KeyError)."""
    if not any(name in r.metrics for r in metrics.RECORDERS.values()):
        raise KeyError(f"no function emits the metric {name!r}")
    return metrics.NAMESPACE, name, dimensions, "Sum"
