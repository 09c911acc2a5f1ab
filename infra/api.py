"""The REST API: POST routes proxied to Lambda functions, stage ``v1``, throttled.

The webhook's route is a long random path (it is the webhook's only secret
besides the signature); plugins may add routes (``StackContext.add_route``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

STAGE = "v1"
BINARY_MEDIA_TYPES = ["multipart/form-data"]


@dataclass
class ApiRoute:
    name: str
    path_part: pulumi.Input[str]
    function: aws.lambda_.Function


@dataclass
class WebhookApiArgs:
    routes: list[ApiRoute]
    throttle_rate_limit: int
    throttle_burst_limit: int


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
        parts = [self._route(route) for route in args.routes]
        deployment = aws.apigateway.Deployment(
            f"{name}-deployment", rest_api=self.rest_api.id,
            # A new deployment whenever a route changes.
            triggers={"routes": pulumi.Output.json_dumps([[*(r.id for r in p), p[2].uri] for p in parts])},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[r for p in parts for r in p]))
        self.stage = aws.apigateway.Stage(
            f"{name}-{STAGE}", rest_api=self.rest_api.id, deployment=deployment.id, stage_name=STAGE,
            opts=child)
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
            for route in args.routes
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
