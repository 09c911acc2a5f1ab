"""One Lambda function with its own role, inline policy and log group."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

ASSUME_LAMBDA = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
})


@dataclass
class FunctionArgs:
    handler: str
    code: pulumi.Archive
    layers: list[pulumi.Input[str]]
    runtime: str
    architecture: str
    log_retention_days: int
    log_group_name: str
    environment: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    statements: list[dict] = field(default_factory=list)
    """IAM Allow statements (besides writing its own logs)."""
    timeout: int = 30
    memory: int = 256
    description: str = ""


def policy_document(statements: list[dict]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements})


class Function(pulumi.ComponentResource):
    function: aws.lambda_.Function
    role: aws.iam.Role
    policy: aws.iam.RolePolicy

    def __init__(self, name: str, args: FunctionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sendgrid-events:infra:Function", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        logs = aws.cloudwatch.LogGroup(f"{name}-logs", name=args.log_group_name,
                                       retention_in_days=args.log_retention_days, opts=child)
        self.role = aws.iam.Role(f"{name}-role", assume_role_policy=ASSUME_LAMBDA,
                                 description=f"sendgrid-events {name} function", opts=child)
        log_statement = {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                         "Resource": [logs.arn.apply(lambda arn: f"{arn}:*")]}
        self.policy = aws.iam.RolePolicy(f"{name}-policy", role=self.role.id,
                                         policy=policy_document([log_statement, *args.statements]),
                                         opts=child)
        self.function = aws.lambda_.Function(
            name,
            role=self.role.arn,
            runtime=args.runtime,
            architectures=[args.architecture],
            handler=args.handler,
            code=args.code,
            layers=args.layers,
            timeout=args.timeout,
            memory_size=args.memory,
            description=args.description,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=args.environment) if args.environment else None,
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="Text", log_group=logs.name),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy, logs]),
        )
        self.register_outputs({"arn": self.function.arn, "role": self.role.arn})
