"""What the program applied, read back from the local AWS: functions, their credentials, routes, the mapping.

Everything the local stack runs comes from here, not from the program's
source: a function's handler, timeout and environment are what Lambda holds
(``GetFunctionConfiguration``); its credentials are an IAM user carrying the
statements of its role's policies (moto cannot let a user assume a role that
trusts a service); the HTTP front's routes are the REST API's resources,
methods, Lambda proxy integrations and invoke permissions; the poller follows
the event source mappings (a stream's, a queue's); an AWS service
integration (the ingest queue's) is what API Gateway holds of it: its URI,
role, templates and integration responses.

moto matches resources by ARN only for S3 and SQS; for every other service it
checks a call against ``*``. So, locally, statements on those services are
widened to ``*`` (the ARN scoping itself is checked on the program under
mocks, ``tests/test_infra.py``): what remains enforced is which *actions*
each function may call. And where AWS authorizes a call through other
actions (a DynamoDB transaction by the PutItem ... inside it, PublishBatch by
sns:Publish), moto asks for the call's own name: locally, a statement
allowing those actions allows the call too (``IMPLIED``).
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass

from devstack.apply import ACCOUNT
from devstack.aws import Credentials, LocalAWS, queue_url, visibility_timeout

ARN_CHECKED = ("s3", "sqs")
# Calls AWS authorizes through other actions' permissions (a transaction by the actions inside it,
# a batch by its single call), which moto checks under their own names.
IMPLIED = {
    "dynamodb:TransactWriteItems": {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                                    "dynamodb:ConditionCheckItem"},
    "dynamodb:TransactGetItems": {"dynamodb:GetItem"},
    "sns:PublishBatch": {"sns:Publish"},
    "sqs:SendMessageBatch": {"sqs:SendMessage"},
    "sqs:DeleteMessageBatch": {"sqs:DeleteMessage"},
}


def statements(document: str | dict) -> list[dict]:
    policy = json.loads(document) if isinstance(document, str) else document
    found = policy["Statement"]
    return found if isinstance(found, list) else [found]


def widened(found: list[dict]) -> list[dict]:
    """``found`` as moto checks it: resources of services moto checks only as ``*`` set to ``*``, and
    the calls AWS allows through other actions (``IMPLIED``) named."""
    result = []
    for statement in found:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        actions = actions + [t for t, inside in IMPLIED.items() if inside & set(actions) and t not in actions]
        kept = [a for a in actions if a.split(":")[0] in ARN_CHECKED]
        rest = [a for a in actions if a not in kept]
        if kept:
            result.append({**statement, "Action": kept})
        if rest:
            result.append({**statement, "Action": rest, "Resource": "*"})
    return result


def role_statements(aws: LocalAWS, role_arn: str) -> list[dict]:
    """Every statement of every inline policy of the role."""
    iam = aws.client("iam")
    role = role_arn.rsplit("/", 1)[1]
    return [s for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
            for s in statements(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])]


def credentials_for(aws: LocalAWS, function_name: str, role_arn: str) -> Credentials:
    """An IAM user named after the function, allowed what its role allows (widened), and its key."""
    iam = aws.client("iam")
    iam.create_user(UserName=function_name)
    policy = {"Version": "2012-10-17", "Statement": widened(role_statements(aws, role_arn))}
    iam.put_user_policy(UserName=function_name, PolicyName="role", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=function_name)["AccessKey"]
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


@dataclass(frozen=True)
class ServiceIntegration:
    """An AWS service integration (type ``AWS``), as API Gateway holds it."""

    uri: str
    """``arn:aws:apigateway:<region>:<service>:path/<path>`` (``action/`` URIs are not served locally)."""
    credentials: str
    """The role API Gateway calls the service with."""
    request_templates: dict[str, str]
    """Content type -> template."""
    passthrough: str
    request_headers: dict[str, str]
    """Static headers of the integration request (``integration.request.header.X: 'value'``)."""
    responses: tuple[tuple[str | None, int, dict[str, str]], ...]
    """(selection pattern or None for the default, status, response templates)."""


@dataclass(frozen=True)
class Route:
    """POST ``/<stage>/<path>`` -> ``function`` (a Lambda proxy integration) or ``service`` (type AWS)."""

    stage: str
    path: str
    method: str
    function: str | None
    """The function's name in Lambda (a proxy integration)."""
    permitted: bool
    """Whether the function's policy lets API Gateway invoke it for this route."""
    binary_media_types: tuple[str, ...]
    service: ServiceIntegration | None = None


def service_integration(integration: dict) -> ServiceIntegration:
    headers = {}
    for key, value in (integration.get("requestParameters") or {}).items():
        name = key.removeprefix("integration.request.header.")
        if name == key or not (value.startswith("'") and value.endswith("'")):
            raise ValueError(f"the local front serves static request headers only, not {key}={value}")
        headers[name] = value[1:-1]
    responses = tuple((r.get("selectionPattern"), int(r["statusCode"]), dict(r.get("responseTemplates") or {}))
                      for r in (integration.get("integrationResponses") or {}).values())
    return ServiceIntegration(integration["uri"], integration.get("credentials", ""),
                              dict(integration.get("requestTemplates") or {}),
                              integration.get("passthroughBehavior", "WHEN_NO_MATCH"), headers, responses)


def routes(aws: LocalAWS) -> list[Route]:
    apigw, lam = aws.client("apigateway"), aws.client("lambda")
    found = []
    for api in apigw.get_rest_apis()["items"]:
        execution_arn = f"arn:aws:execute-api:{aws.region}:{ACCOUNT}:{api['id']}"
        stages = [s["stageName"] for s in apigw.get_stages(restApiId=api["id"])["item"]]
        for resource in apigw.get_resources(restApiId=api["id"], limit=500)["items"]:
            for method in resource.get("resourceMethods") or {}:
                integration = apigw.get_integration(restApiId=api["id"], resourceId=resource["id"],
                                                    httpMethod=method)
                if integration["type"] == "AWS":
                    found += [Route(stage, resource["path"], method, None, True,
                                    tuple(api.get("binaryMediaTypes") or ()), service_integration(integration))
                              for stage in stages]
                    continue
                if integration["type"] != "AWS_PROXY":
                    continue
                function_arn = integration["uri"].split("/functions/", 1)[1].rsplit("/invocations", 1)[0]
                function = function_arn.rsplit(":", 1)[1]
                allowed = _invoke_permissions(lam, function)
                for stage in stages:
                    source = f"{execution_arn}/{stage}/{method}{resource['path']}"
                    found.append(Route(stage, resource["path"], method, function,
                                       any(fnmatch.fnmatchcase(source, p) for p in allowed),
                                       tuple(api.get("binaryMediaTypes") or ())))
    return found


def _invoke_permissions(lam, function: str) -> list[str]:
    """The source ARN patterns for which API Gateway may invoke ``function``."""
    try:
        policy = json.loads(lam.get_policy(FunctionName=function)["Policy"])
    except lam.exceptions.ResourceNotFoundException:
        return []
    patterns = []
    for statement in policy["Statement"]:
        principal = statement.get("Principal")
        service = principal.get("Service") if isinstance(principal, dict) else principal
        if service == "apigateway.amazonaws.com" and statement.get("Effect") == "Allow":
            condition = statement.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn")
            patterns.append(condition or "*")
    return patterns


@dataclass(frozen=True)
class StreamMapping:
    """An event source mapping from a DynamoDB stream, as Lambda holds it."""

    function: str
    stream_arn: str
    starting_position: str
    batch_size: int
    filters: tuple[dict, ...]
    """Patterns (parsed JSON): a record is delivered when it matches one (no filters: every record)."""
    bisect: bool
    report_failures: bool
    max_retries: int
    """-1: until the record expires."""
    max_record_age: int
    """Seconds; -1: no limit."""
    on_failure: str | None
    """The destination's ARN."""


def stream_mappings(aws: LocalAWS) -> list[StreamMapping]:
    found = []
    for m in aws.client("lambda").list_event_source_mappings()["EventSourceMappings"]:
        if ":dynamodb:" not in m["EventSourceArn"] or not m.get("State", "Enabled").startswith("Enabl"):
            continue
        found.append(StreamMapping(
            function=m["FunctionArn"].rsplit(":", 1)[1],
            stream_arn=m["EventSourceArn"],
            starting_position=m.get("StartingPosition", "LATEST"),
            batch_size=m.get("BatchSize", 100),
            filters=tuple(json.loads(f["Pattern"]) for f in (m.get("FilterCriteria") or {}).get("Filters", [])),
            bisect=bool(m.get("BisectBatchOnFunctionError")),
            report_failures="ReportBatchItemFailures" in (m.get("FunctionResponseTypes") or []),
            max_retries=m.get("MaximumRetryAttempts", -1),
            max_record_age=m.get("MaximumRecordAgeInSeconds", -1),
            on_failure=((m.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination"),
        ))
    return found


@dataclass(frozen=True)
class QueueMapping:
    """An event source mapping from an SQS queue, as Lambda holds it (and the queue's own settings)."""

    function: str
    queue_arn: str
    queue_url: str
    batch_size: int
    report_failures: bool
    visibility_timeout: int
    """The queue's: seconds a received message stays hidden (a failed one is received again after it)."""


def queue_mappings(aws: LocalAWS) -> list[QueueMapping]:
    sqs, found = aws.client("sqs"), []
    for m in aws.client("lambda").list_event_source_mappings()["EventSourceMappings"]:
        if ":sqs:" not in m["EventSourceArn"] or not m.get("State", "Enabled").startswith("Enabl"):
            continue
        url = queue_url(sqs, m["EventSourceArn"])
        found.append(QueueMapping(
            function=m["FunctionArn"].rsplit(":", 1)[1], queue_arn=m["EventSourceArn"], queue_url=url,
            batch_size=m.get("BatchSize", 10),
            report_failures="ReportBatchItemFailures" in (m.get("FunctionResponseTypes") or []),
            visibility_timeout=visibility_timeout(sqs, url)))
    return found
