"""The REST API: POST routes proxied to Lambda functions (or put on a queue), stage ``v1``, throttled.

The webhook's route is a long random path (it is the webhook's only secret
besides the signature); plugins may add routes (``StackContext.add_route``).

Two steps: ``WebhookApi(name, args)`` makes the REST API itself, whose id
(hence every route's URL, ``url``) is known before any function exists;
``add_routes(routes)`` then makes the routes, deployment and stage. SendGrid
is given the URLs in between (see ``infra.pipeline``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

STAGE = "v1"
BINARY_MEDIA_TYPES = ["multipart/form-data"]


@dataclass
class ApiRoute:
    name: str
    path_part: pulumi.Input[str]
    function: aws.lambda_.Function
    queue: Any = None
    """An ``infra.ingest.IngestQueue``: the route puts each post on it (an AWS integration), not the function."""


def invoke_url(execution_arn: str, stage: str) -> str:
    """A stage's invoke URL from the REST API's execution ARN (``arn:<partition>:execute-api:<region>:
    <account>:<id>``): ``https://<id>.execute-api.<region>.amazonaws.com[.cn]/<stage>``, as API Gateway
    makes it."""
    _arn, partition, _service, region, _account, api_id = execution_arn.split(":", 5)
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://{api_id}.execute-api.{region}.{suffix}/{stage}"


@dataclass
class WebhookApiArgs:
    throttle_rate_limit: int
    throttle_burst_limit: int
    access_log: aws.apigateway.StageAccessLogSettingsArgs | None = None
    """Where and how the stage writes access logs (``infra.operations.AccessLogs``)."""
    access_log_ready: list[pulumi.Resource] | None = None
    """What the stage waits for before it writes them (the log group, API Gateway's logging role)."""


class WebhookApi(pulumi.ComponentResource):
    rest_api: aws.apigateway.RestApi
    stage: aws.apigateway.Stage
    urls: dict[str, pulumi.Output[str]]
    """Route name -> full URL (secret)."""

    def __init__(self, name: str, args: WebhookApiArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sendgrid-events:infra:WebhookApi", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.rest_api = aws.apigateway.RestApi(
            name, description="SendGrid Event Webhook receiver",
            endpoint_configuration=aws.apigateway.RestApiEndpointConfigurationArgs(types="REGIONAL"),
            # Forms (Inbound Parse) reach Lambda base64-encoded, byte for byte; JSON stays text.
            binary_media_types=BINARY_MEDIA_TYPES,
            opts=child)
        self.args, self.api_name = args, name

    def url(self, path_part: pulumi.Input[str]) -> pulumi.Output[str]:
        """The URL of the route ``path_part`` (secret): known from the REST API alone, before its routes."""
        return pulumi.Output.secret(pulumi.Output.concat(
            self.rest_api.execution_arn.apply(lambda arn: invoke_url(arn, STAGE)), "/", path_part))

    def add_routes(self, routes: list[ApiRoute]) -> None:
        """The routes, their deployment, the stage and its throttling; ``urls`` (the stage's, secret)."""
        args, child, name = self.args, pulumi.ResourceOptions(parent=self), self.api_name
        parts = [self._route(route) for route in routes]
        deployment = aws.apigateway.Deployment(
            f"{name}-deployment", rest_api=self.rest_api.id,
            # A new deployment whenever a route changes.
            triggers={"routes": pulumi.Output.json_dumps([[*(r.id for r in p), p[2].uri] for p in parts])},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[r for p in parts for r in p]))
        self.stage = aws.apigateway.Stage(
            f"{name}-{STAGE}", rest_api=self.rest_api.id, deployment=deployment.id, stage_name=STAGE,
            access_log_settings=args.access_log,
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.access_log_ready or []))
        aws.apigateway.MethodSettings(
            f"{name}-throttling", rest_api=self.rest_api.id, stage_name=self.stage.stage_name,
            method_path="*/*",
            settings=aws.apigateway.MethodSettingsSettingsArgs(
                throttling_rate_limit=args.throttle_rate_limit,
                throttling_burst_limit=args.throttle_burst_limit),
            opts=child)
        self.urls = {
            route.name: pulumi.Output.secret(
                pulumi.Output.concat(self.stage.invoke_url, "/", route.path_part))
            for route in routes
        }
        self.register_outputs({"urls": self.urls})

    def _route(self, route: ApiRoute) -> tuple[pulumi.Resource, ...]:
        child = pulumi.ResourceOptions(parent=self)
        name = f"{route.name}-route"
        resource = aws.apigateway.Resource(name, rest_api=self.rest_api.id,
                                           parent_id=self.rest_api.root_resource_id,
                                           path_part=route.path_part, opts=child)
        method = aws.apigateway.Method(f"{name}-post", rest_api=self.rest_api.id, resource_id=resource.id,
                                       http_method="POST", authorization="NONE", opts=child)
        if route.queue is not None:
            return (resource, method, *route.queue.integrate(name, self.rest_api, resource, method, child))
        integration = aws.apigateway.Integration(
            f"{name}-lambda", rest_api=self.rest_api.id, resource_id=resource.id,
            http_method=method.http_method, type="AWS_PROXY", integration_http_method="POST",
            uri=route.function.invoke_arn, opts=child)
        error = aws.apigateway.MethodResponse(f"{name}-500", rest_api=self.rest_api.id,
                                              resource_id=resource.id, http_method=method.http_method,
                                              status_code="500", opts=child)
        aws.lambda_.Permission(
            f"{name}-invoke", action="lambda:InvokeFunction", function=route.function.name,
            principal="apigateway.amazonaws.com",
            source_arn=pulumi.Output.concat(self.rest_api.execution_arn, "/*/POST/", route.path_part),
            opts=child)
        return resource, method, integration, error
