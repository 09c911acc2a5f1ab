"""IAM roles and policies, CloudWatch log groups and Lambda resources, made in the local AWS."""

from __future__ import annotations

from devstack.apply import Applier, ApplyError, applies, autoname, zipped
from devstack.aws import queue_url, visibility_timeout


@applies("aws:iam/role:Role")
def iam_role(aws: Applier, name: str, inputs: dict):
    role_name = inputs.get("name") or autoname(name, 64)
    role = aws.client("iam").create_role(RoleName=role_name, AssumeRolePolicyDocument=inputs["assumeRolePolicy"],
                                         Description=inputs.get("description", ""))["Role"]
    return role_name, {"name": role_name, "arn": role["Arn"], "uniqueId": role["RoleId"]}


@applies("aws:iam/rolePolicy:RolePolicy")
def iam_role_policy(aws: Applier, name: str, inputs: dict):
    policy_name = inputs.get("name") or autoname(name, 128)
    aws.client("iam").put_role_policy(RoleName=inputs["role"], PolicyName=policy_name,
                                      PolicyDocument=inputs["policy"])
    return f"{inputs['role']}:{policy_name}", {"name": policy_name}


@applies("aws:cloudwatch/logGroup:LogGroup")
def log_group(aws: Applier, name: str, inputs: dict):
    group = inputs.get("name") or autoname(name, 512)
    logs = aws.client("logs")
    logs.create_log_group(logGroupName=group)
    if inputs.get("retentionInDays"):
        logs.put_retention_policy(logGroupName=group, retentionInDays=inputs["retentionInDays"])
    return group, {"name": group, "arn": aws.arn("logs", f"log-group:{group}")}


@applies("aws:lambda/layerVersion:LayerVersion")
def lambda_layer(aws: Applier, name: str, inputs: dict):
    layer = aws.client("lambda").publish_layer_version(
        LayerName=inputs["layerName"], Description=inputs.get("description", ""),
        Content={"ZipFile": zipped(inputs["code"])},
        CompatibleRuntimes=inputs.get("compatibleRuntimes", []),
        CompatibleArchitectures=inputs.get("compatibleArchitectures", []))
    return layer["LayerVersionArn"], {"arn": layer["LayerVersionArn"], "layerArn": layer["LayerArn"],
                                      "version": str(layer["Version"])}


@applies("aws:lambda/function:Function")
def lambda_function(aws: Applier, name: str, inputs: dict):
    function_name = inputs.get("name") or autoname(name, 64)
    code = aws.archives[function_name] = zipped(inputs["code"])
    request = {
        "FunctionName": function_name, "Role": inputs["role"], "Handler": inputs["handler"],
        "Runtime": inputs["runtime"], "Code": {"ZipFile": code},
        "Timeout": inputs.get("timeout", 3), "MemorySize": inputs.get("memorySize", 128),
        "Description": inputs.get("description", ""), "Layers": inputs.get("layers", []),
        "Architectures": inputs.get("architectures", ["x86_64"]),
    }
    variables = (inputs.get("environment") or {}).get("variables")
    if variables:
        request["Environment"] = {"Variables": variables}
    logging = inputs.get("loggingConfig")
    if logging:
        request["LoggingConfig"] = {"LogFormat": logging["logFormat"], "LogGroup": logging["logGroup"]}
    made = aws.client("lambda").create_function(**request)
    arn = made["FunctionArn"]
    invoke_arn = f"arn:aws:apigateway:{aws.region}:lambda:path/2015-03-31/functions/{arn}/invocations"
    return function_name, {"name": function_name, "arn": arn, "invokeArn": invoke_arn,
                           "qualifiedArn": f"{arn}:{made.get('Version', '$LATEST')}", "version": made.get("Version")}


@applies("aws:lambda/permission:Permission")
def lambda_permission(aws: Applier, name: str, inputs: dict):
    statement_id = inputs.get("statementId") or autoname(name, 100)
    request = {"FunctionName": inputs["function"], "StatementId": statement_id, "Action": inputs["action"],
               "Principal": inputs["principal"]}
    if inputs.get("sourceArn"):
        request["SourceArn"] = inputs["sourceArn"]
    aws.client("lambda").add_permission(**request)
    return statement_id, {"statementId": statement_id}


@applies("aws:lambda/eventSourceMapping:EventSourceMapping")
def lambda_event_source_mapping(aws: Applier, name: str, inputs: dict):
    request = {"EventSourceArn": inputs["eventSourceArn"], "FunctionName": inputs["functionName"],
               "Enabled": inputs.get("enabled", True)}
    fields = {"startingPosition": "StartingPosition", "batchSize": "BatchSize",
              "bisectBatchOnFunctionError": "BisectBatchOnFunctionError",
              "functionResponseTypes": "FunctionResponseTypes", "maximumRetryAttempts": "MaximumRetryAttempts",
              "maximumRecordAgeInSeconds": "MaximumRecordAgeInSeconds",
              "maximumBatchingWindowInSeconds": "MaximumBatchingWindowInSeconds"}
    request.update({key: inputs[field] for field, key in fields.items() if field in inputs})
    if inputs.get("filterCriteria"):
        request["FilterCriteria"] = {"Filters": [{"Pattern": f["pattern"]}
                                                 for f in inputs["filterCriteria"]["filters"]]}
    concurrency = (inputs.get("scalingConfig") or {}).get("maximumConcurrency")
    if concurrency is not None:
        if not 2 <= concurrency <= 1000:  # Lambda refuses it (moto does not check)
            raise ApplyError(f"ScalingConfig.MaximumConcurrency {concurrency} is not from 2 to 1000 "
                             "(InvalidParameterValueException)")
        request["ScalingConfig"] = {"MaximumConcurrency": concurrency}
    on_failure = ((inputs.get("destinationConfig") or {}).get("onFailure") or {}).get("destinationArn")
    if on_failure:
        request["DestinationConfig"] = {"OnFailure": {"Destination": on_failure}}
    if ":sqs:" in request["EventSourceArn"]:
        _check_visibility(aws, request["EventSourceArn"], request["FunctionName"])
    mapping = aws.client("lambda").create_event_source_mapping(**request)
    return mapping["UUID"], {"uuid": mapping["UUID"], "functionArn": mapping["FunctionArn"],
                             "arn": aws.arn("lambda", f"event-source-mapping:{mapping['UUID']}")}



def _check_visibility(aws: Applier, queue_arn: str, function: str) -> None:
    """Lambda refuses a queue whose visibility timeout is shorter than the function's timeout (moto does not)."""
    sqs = aws.client("sqs")
    visibility = visibility_timeout(sqs, queue_url(sqs, queue_arn))
    timeout = aws.client("lambda").get_function_configuration(FunctionName=function)["Timeout"]
    if visibility < timeout:
        raise ApplyError(f"Queue visibility timeout: {visibility} seconds is less than Function timeout: "
                         f"{timeout} seconds (InvalidParameterValueException)")
