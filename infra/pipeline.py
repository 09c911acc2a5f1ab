"""The whole stack: storage, the API key, plugins' infrastructure, functions, trigger, API.

The config (plugins' keys too, by their ``stack_settings`` hooks) is checked
before, by ``infra.config.load``. Order: KMS key and tables -> the API key
parameter -> the REST API itself -> SendGrid's signed Event Webhook (unless
``manageSendgridWebhook`` is false) -> the core's environment -> every
enabled plugin's ``infrastructure`` hook -> table grants (declared access, so
a plugin's own function gets its tables too) -> the functions (core and
plugin-added) -> the sender's stream trigger -> with ``ingest: queue``, the
ingest queue the webhook route puts posts on and the webhook function drains
(``infra.ingest``) -> the REST API's routes and stage.

The dependency cycle, and how it is broken: the webhook function's
environment needs the webhook's public key, which SendGrid makes when the
program creates the Event Webhook, which needs the webhook URL. Taken from the
stage (``Stage.invoke_url``), that URL would wait for the deployment, which
waits for the integrations, which wait for the function: a cycle. But a
stage's URL is ``https://<rest api id>.execute-api.<region>.amazonaws.com/<stage>``,
and the REST API's id and region (its execution ARN) and the stage's name do
not depend on any function: ``WebhookApi.url`` builds the URL from them, the
Event Webhook is created with it before the functions, and the routes and
stage follow the functions. Until the stage exists the URL answers nothing;
SendGrid only posts after mail is sent, which needs the whole stack.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from handlers import env, functions, manager
from handlers.tables import MAIL_SENDER, SENDER, WEBHOOK
from infra import bytecode, deploy, packaging
from infra import sendgrid
from infra.api import ApiRoute, WebhookApi, WebhookApiArgs
from infra.config import Settings
from infra.function import Function, FunctionArgs
from infra.ingest import QUEUE, IngestQueue, IngestQueueArgs
from infra.operations import ACCESS_LOG_FORMAT, AccessLogs, Operations, OperationsArgs
from infra.plugins import StackContext
from infra.storage import Storage, StorageArgs
from infra.trigger import StreamTrigger, StreamTriggerArgs

WEBHOOK_PATH_LENGTH = 48


def core_environment(settings: Settings, api_key_parameter: pulumi.Input[str],
                     webhook_public_keys: pulumi.Input[str]) -> dict[str, pulumi.Input[str]]:
    """The value of every core variable the program sets (each function gets those it reads)."""
    return {
        env.ENABLED_PLUGINS.name: ",".join(settings.plugins),
        env.SENT_LOG_TTL_DAYS.name: str(settings.sent_log_ttl_days),
        env.SENDGRID_API_KEY_PARAMETER.name: api_key_parameter,
        env.SENDGRID_EVENTS_STACK.name: pulumi.get_stack(),
        env.SENDGRID_WEBHOOK_PUBLIC_KEYS.name: webhook_public_keys,
        env.SENDGRID_WEBHOOK_MAX_AGE_SECONDS.name: str(settings.webhook_max_age_seconds),
        env.SENDGRID_WEBHOOK_ALLOW_UNSIGNED_INSECURE.name: "true" if settings.allow_unsigned_webhooks else "false",
    }


@dataclass
class PipelineArgs:
    settings: Settings


class Pipeline(pulumi.ComponentResource):
    outputs: dict[str, pulumi.Input]

    def __init__(self, name: str, args: PipelineArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sendgrid-events:infra:Pipeline", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)
        plugins = settings.enabled or manager.build(settings.plugins)

        storage = Storage(name, StorageArgs(
            tables=plugins.tables,
            physical_names={t: settings.table_names.get(t, settings.table_prefix + t) for t in plugins.tables},
            kms_key=settings.kms_key,
            deletion_protection=settings.deletion_protection,
            point_in_time_recovery=settings.point_in_time_recovery,
        ), opts=child)
        api_key = aws.ssm.Parameter(
            "sendgrid-api-key", name=f"/{pulumi.get_project()}/{pulumi.get_stack()}/sendgrid-api-key",
            type="SecureString", value=settings.api_key, key_id=storage.kms_key_arn,
            description="SendGrid API key (Mail Send) of the sender function", opts=child)

        access_logs = AccessLogs(f"{name}-api-access", settings.log_retention_days,
                                 settings.operations.access_log_role, opts=child)
        api = WebhookApi(f"{name}-api", WebhookApiArgs(
            throttle_rate_limit=settings.throttle_rate_limit,
            throttle_burst_limit=settings.throttle_burst_limit,
            access_log=aws.apigateway.StageAccessLogSettingsArgs(destination_arn=access_logs.group.arn,
                                                                 format=ACCESS_LOG_FORMAT),
            access_log_ready=access_logs.ready), opts=child)
        webhook_path = random.RandomString("webhook-path", length=WEBHOOK_PATH_LENGTH, special=False,
                                           upper=False, opts=child)
        access = sendgrid.Access(settings.api_key, settings.sendgrid_api_base_url) \
            if settings.manage_sendgrid else None
        stack = StackContext(prefix=name, parent=self,
                             kms_key_arn=storage.kms_key_arn, tables=storage.tables,
                             settings=settings.plugin_settings, sendgrid=access, route_url=api.url)
        webhook_keys = self._webhook_keys(settings, plugins, stack, api.url(webhook_path.result))
        values = core_environment(settings, api_key.name, webhook_keys)
        for function in functions.CORE:
            for var in function.reads:
                if var.name in values:
                    stack.add_env(function.name, var.name, values[var.name])
        stack.allow(SENDER, ["ssm:GetParameter"], [api_key.arn])
        stack.allow_key(SENDER, ("kms:Decrypt",))

        (settings.deploy or deploy.build(plugins)).hook.infrastructure(stack=stack)
        self._grant_tables(stack, plugins)  # after the hooks: a plugin's own function may use a table

        compiler = bytecode.interpreter(settings.python_version)
        if compiler is None:
            pulumi.log.warn(bytecode.missing(settings.python_version))
        layer_dir, layer_hash = packaging.build_layer(settings.platform_arch, settings.python_version,
                                                      compiler=compiler)
        layer = aws.lambda_.LayerVersion(
            "dependencies",
            layer_name=f"{name}-deps-{settings.architecture}-{layer_hash}",
            code=pulumi.FileArchive(str(layer_dir)),
            compatible_runtimes=[settings.runtime],
            compatible_architectures=[settings.architecture],
            description=f"requirements-lambda.txt, {bytecode.tag(compiler)} ({layer_hash})",
            # The name carries the hash of what it is built from: a new version only when that changes.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["code"]))
        code = packaging.code_archive(settings.python_version, compiler=compiler)
        made = {
            fn: Function(f"{name}-{fn}", FunctionArgs(
                handler=spec.handler, code=code, layers=[layer.arn], runtime=settings.runtime,
                architecture=settings.architecture, log_retention_days=settings.log_retention_days,
                log_group_name=f"/aws/lambda/{name}-{fn}", environment=stack.env[fn],
                statements=stack.statements[fn], timeout=spec.timeout, memory=spec.memory,
                description=spec.description,
            ), opts=child)
            for fn, spec in {**{f.name: f for f in functions.CORE}, **stack.functions}.items()
        }

        trigger = StreamTrigger(f"{name}-mail-sender-stream", StreamTriggerArgs(
            stream_arn=storage.tables[MAIL_SENDER.name].stream_arn,
            function_name=made[SENDER].function.name,
            role=made[SENDER].role.id,
            kms_key_arn=storage.kms_key_arn,
            max_retries=settings.stream_max_retries,
            max_record_age_seconds=settings.stream_max_record_age_seconds,
        ), opts=child)

        ingest = None
        if settings.ingest == QUEUE:
            ingest = IngestQueue(f"{name}-ingest", IngestQueueArgs(
                kms_key_arn=storage.kms_key_arn, function_timeout=functions.WEBHOOK.timeout), opts=child)
            ingest.consume(made[WEBHOOK].function, made[WEBHOOK].role.id)
        routes = [ApiRoute(WEBHOOK, webhook_path.result, made[WEBHOOK].function, queue=ingest)]
        routes += [ApiRoute(r.function, r.path_part, made[r.function].function) for r in stack.routes]
        api.add_routes(routes)
        operations = Operations(f"{name}", OperationsArgs(
            settings=settings.operations, functions={fn: f.function for fn, f in made.items()},
            queue=trigger.queue, api_name=api.rest_api.name, event_types=tuple(plugins.event_types),
            webhook_log_group=f"/aws/lambda/{name}-{WEBHOOK}", ingest_queue=ingest and ingest.queue,
            ingest_dlq=ingest and ingest.dlq),
            opts=child)

        self.outputs = {
            **{f"{route}Url": url for route, url in api.urls.items()},
            "tableNames": {logical: table.name for logical, table in storage.tables.items()},
            "functionNames": {fn: f.function.name for fn, f in made.items()},
            "dlqUrl": trigger.queue.url,
            "apiKeyParameter": api_key.name,
            "alarmTopicArn": operations.topic.arn,
            "dashboardName": operations.dashboard.dashboard_name,
            **({"ingestQueueUrl": ingest.queue.url, "ingestDlqUrl": ingest.dlq.url} if ingest else {}),
            **stack.outputs,
        }
        self.register_outputs(self.outputs)

    def _webhook_keys(self, settings: Settings, plugins: manager.Plugins, stack: StackContext,
                      url: pulumi.Output[str]) -> pulumi.Input[str]:
        """``SENDGRID_WEBHOOK_PUBLIC_KEYS``: the managed webhook's key first, then the configured ones."""
        configured = ",".join(settings.webhook_public_keys)
        if stack.sendgrid is None:  # manageSendgridWebhook false: SendGrid is configured by hand
            return configured
        flags, unknown = sendgrid.flags_for(plugins.event_types)
        if unknown:
            pulumi.log.warn(f"SendGrid's Event Webhook has no setting for event type(s) {', '.join(unknown)}: "
                            "SendGrid will not post them")
        webhook = sendgrid.event_webhook(
            "sendgrid-event-webhook", stack.sendgrid, url, f"{pulumi.get_project()}-{pulumi.get_stack()}",
            flags, settings.webhook_key_version, opts=pulumi.ResourceOptions(parent=self))
        stack.export("webhookId", webhook.webhookId)
        stack.export("webhookPublicKey", webhook.publicKey)
        return sendgrid.key_list(webhook, settings.webhook_public_keys)

    @staticmethod
    def _grant_tables(stack: StackContext, plugins: manager.Plugins) -> None:
        """Each function: exactly the declared actions on the tables it uses, and their names."""
        for logical, table in plugins.tables.items():
            resource = stack.tables[logical]
            for function, actions in table.access.items():
                arns = [resource.arn]
                if table.indexes:
                    arns.append(resource.arn.apply(lambda arn: f"{arn}/index/*"))
                stack.add_env(function, table.env_var, resource.name)
                stack.allow(function, list(actions), arns)
