"""``make preview``: the real program run offline, every resource answered with plausible outputs.

``Engine`` is the ``infra.offline.Engine`` of a preview (and of the tests that
run the program): it answers each resource at once with its inputs plus the
outputs AWS would compute (ARNs, URLs, ids), made up from the resource's name.
"""

from __future__ import annotations

from typing import Any

from infra import offline

ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"


class Engine(offline.Engine):
    """Plausible answers: the id ``<name>-id``, the inputs, and what AWS would add.

    ``created`` lists the resources answered, in order (empty if the program
    stopped before its first resource).
    """

    def __init__(self, region: str = DEFAULT_REGION, account: str = ACCOUNT):
        self.region, self.account = region, account
        self.created: list[offline.Resource] = []

    def create(self, resource: offline.Resource) -> tuple[str | None, dict[str, Any]]:
        self.created.append(resource)
        if not resource.custom:
            return None, {}
        return f"{resource.name}-id", self.outputs(resource)

    def outputs(self, resource: offline.Resource) -> dict[str, Any]:
        """``resource``'s inputs plus the outputs the program reads (``arn``, ``name``, URLs, ...)."""
        typ, name, inputs = resource.type, resource.name, resource.inputs
        region, account = self.region, self.account
        state = dict(inputs)
        service = typ.split(":")[1].split("/")[0]
        arn = f"arn:aws:{service}:{region}:{account}:{typ.split(':')[-1].lower()}/{name}"
        state.setdefault("arn", arn)
        state.setdefault("name", name)
        if typ == "aws:dynamodb/table:Table" and inputs.get("streamEnabled"):
            state["streamArn"] = f"{arn}/stream/2026-01-01T00:00:00.000"
        elif typ == "aws:lambda/function:Function":
            state["invokeArn"] = f"arn:aws:apigateway:{region}:lambda:path/functions/{arn}/invocations"
        elif typ == "aws:apigateway/restApi:RestApi":
            state.update(rootResourceId="root-id", executionArn=f"arn:aws:execute-api:{region}:{account}:api-id")
        elif typ == "aws:apigateway/stage:Stage":
            state["invokeUrl"] = f"https://api-id.execute-api.{region}.amazonaws.com/{inputs['stageName']}"
        elif typ == "aws:sqs/queue:Queue":
            state["url"] = f"https://sqs.{region}.amazonaws.com/{account}/{name}"
        elif typ == "aws:kms/key:Key":
            state["keyId"] = "key-id"
        elif typ == "random:index/randomString:RandomString":
            state["result"] = ("r4nd0m" * 20)[: int(inputs["length"])]
        elif typ == "aws:lambda/layerVersion:LayerVersion":
            state["arn"] = f"arn:aws:lambda:{region}:{account}:layer:{inputs['layerName']}:1"
        return state
