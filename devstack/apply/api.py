"""API Gateway (REST) resources and ``random`` strings, made locally from the program's inputs.

The stage's ``invokeUrl`` is the local front's address (``Applier.api_base_url``
plus the stage): what the program exports as the webhook URL is where the
front serves the applied routes (``devstack.front``).
"""

from __future__ import annotations

import secrets
import string

from devstack.apply import Applier, applies, autoname


@applies("aws:apigateway/restApi:RestApi")
def rest_api(aws: Applier, name: str, inputs: dict):
    apigw = aws.client("apigateway")
    types = (inputs.get("endpointConfiguration") or {}).get("types", "EDGE")
    api = apigw.create_rest_api(name=inputs.get("name") or autoname(name), description=inputs.get("description", ""),
                                binaryMediaTypes=inputs.get("binaryMediaTypes", []),
                                endpointConfiguration={"types": [types] if isinstance(types, str) else types})
    root = next(r["id"] for r in apigw.get_resources(restApiId=api["id"])["items"] if r["path"] == "/")
    return api["id"], {"rootResourceId": root, "executionArn": aws.arn("execute-api", api["id"]),
                       "arn": f"arn:aws:apigateway:{aws.region}::/restapis/{api['id']}"}


@applies("aws:apigateway/resource:Resource")
def api_resource(aws: Applier, name: str, inputs: dict):
    made = aws.client("apigateway").create_resource(restApiId=inputs["restApi"], parentId=inputs["parentId"],
                                                    pathPart=inputs["pathPart"])
    return made["id"], {"path": made["path"]}


@applies("aws:apigateway/method:Method")
def api_method(aws: Applier, name: str, inputs: dict):
    aws.client("apigateway").put_method(restApiId=inputs["restApi"], resourceId=inputs["resourceId"],
                                        httpMethod=inputs["httpMethod"], authorizationType=inputs["authorization"])
    return f"agm-{inputs['restApi']}-{inputs['resourceId']}-{inputs['httpMethod']}", {}


@applies("aws:apigateway/integration:Integration")
def api_integration(aws: Applier, name: str, inputs: dict):
    optional = ("credentials", "requestTemplates", "passthroughBehavior", "requestParameters")  # as the API names them
    aws.client("apigateway").put_integration(
        restApiId=inputs["restApi"], resourceId=inputs["resourceId"], httpMethod=inputs["httpMethod"],
        type=inputs["type"], integrationHttpMethod=inputs.get("integrationHttpMethod", ""), uri=inputs.get("uri", ""),
        **{key: inputs[key] for key in optional if inputs.get(key)})
    return f"agi-{inputs['restApi']}-{inputs['resourceId']}-{inputs['httpMethod']}", {}


@applies("aws:apigateway/integrationResponse:IntegrationResponse")
def api_integration_response(aws: Applier, name: str, inputs: dict):
    request = {"restApiId": inputs["restApi"], "resourceId": inputs["resourceId"],
               "httpMethod": inputs["httpMethod"], "statusCode": inputs["statusCode"]}
    aws.client("apigateway").put_integration_response(
        **request, **({"selectionPattern": inputs["selectionPattern"]} if inputs.get("selectionPattern") else {}),
        responseTemplates=inputs.get("responseTemplates") or {})
    return f"agir-{inputs['restApi']}-{inputs['resourceId']}-{inputs['httpMethod']}-{inputs['statusCode']}", {}


@applies("aws:apigateway/methodResponse:MethodResponse")
def api_method_response(aws: Applier, name: str, inputs: dict):
    aws.client("apigateway").put_method_response(
        restApiId=inputs["restApi"], resourceId=inputs["resourceId"], httpMethod=inputs["httpMethod"],
        statusCode=inputs["statusCode"])
    return f"agmr-{inputs['restApi']}-{inputs['resourceId']}-{inputs['httpMethod']}-{inputs['statusCode']}", {}


@applies("aws:apigateway/deployment:Deployment")
def api_deployment(aws: Applier, name: str, inputs: dict):
    made = aws.client("apigateway").create_deployment(restApiId=inputs["restApi"],
                                                      description=inputs.get("description", ""))
    return made["id"], {}


@applies("aws:apigateway/stage:Stage")
def api_stage(aws: Applier, name: str, inputs: dict):
    api, stage = inputs["restApi"], inputs["stageName"]
    apigw = aws.client("apigateway")
    apigw.create_stage(restApiId=api, stageName=stage, deploymentId=inputs["deployment"])
    access_log = inputs.get("accessLogSettings")
    if access_log:
        apigw.update_stage(restApiId=api, stageName=stage, patchOperations=[
            {"op": "replace", "path": f"/accessLogSettings/{field}", "value": access_log[field]}
            for field in ("destinationArn", "format")])
    return f"ags-{api}-{stage}", {"invokeUrl": f"{aws.api_base_url}/{stage}",
                                  "executionArn": aws.arn("execute-api", f"{api}/{stage}"),
                                  "arn": f"arn:aws:apigateway:{aws.region}::/restapis/{api}/stages/{stage}"}


@applies("aws:apigateway/methodSettings:MethodSettings")
def api_method_settings(aws: Applier, name: str, inputs: dict):
    settings = inputs.get("settings") or {}
    path = inputs["methodPath"]
    names = {"throttlingRateLimit": "throttling/rateLimit", "throttlingBurstLimit": "throttling/burstLimit"}
    operations = [{"op": "replace", "path": f"/{path}/{setting}", "value": str(settings[field])}
                  for field, setting in names.items() if field in settings]
    aws.client("apigateway").update_stage(restApiId=inputs["restApi"], stageName=inputs["stageName"],
                                          patchOperations=operations)
    return f"{inputs['restApi']}-{inputs['stageName']}-{path}", {}


@applies("random:index/randomString:RandomString")
def random_string(aws: Applier, name: str, inputs: dict):
    alphabet = string.ascii_lowercase if inputs.get("lower", True) else ""
    alphabet += string.ascii_uppercase if inputs.get("upper", True) else ""
    alphabet += string.digits if inputs.get("numeric", True) else ""
    alphabet += "!@#$%&*()-_=+[]{}<>:?" if inputs.get("special", True) else ""
    result = "".join(secrets.choice(alphabet) for _ in range(inputs["length"]))
    return result, {"result": result}
