"""CloudWatch alarms and dashboards and API Gateway's account settings (its logging role), made in the
local AWS from the program's inputs (``infra.operations``).

moto stores the alarms (metric math included) and the dashboard as CloudWatch
would take them; nothing evaluates an alarm locally (the functions' metrics
are read back from their log lines instead: ``devstack.metrics``).
"""

from __future__ import annotations

from devstack.apply import ACCOUNT, Applier, applies, autoname

# Pulumi's MetricAlarm inputs -> PutMetricAlarm's parameters (the ones the program sets, and their kin).
ALARM_FIELDS = {"alarmDescription": "AlarmDescription", "alarmActions": "AlarmActions", "okActions": "OKActions",
                "insufficientDataActions": "InsufficientDataActions", "namespace": "Namespace",
                "metricName": "MetricName", "statistic": "Statistic", "extendedStatistic": "ExtendedStatistic",
                "period": "Period", "evaluationPeriods": "EvaluationPeriods", "threshold": "Threshold",
                "comparisonOperator": "ComparisonOperator", "treatMissingData": "TreatMissingData",
                "datapointsToAlarm": "DatapointsToAlarm", "unit": "Unit", "actionsEnabled": "ActionsEnabled"}


def _dimensions(dimensions: dict | None) -> list[dict]:
    return [{"Name": k, "Value": v} for k, v in (dimensions or {}).items()]


def _query(query: dict) -> dict:
    made = {"Id": query["id"], "ReturnData": bool(query.get("returnData"))}
    if query.get("expression"):
        made["Expression"] = query["expression"]
    if query.get("label"):
        made["Label"] = query["label"]
    if query.get("metric"):
        metric = query["metric"]
        made["MetricStat"] = {"Metric": {"Namespace": metric["namespace"], "MetricName": metric["metricName"],
                                         "Dimensions": _dimensions(metric.get("dimensions"))},
                              "Period": metric["period"], "Stat": metric["stat"]}
    return made


@applies("aws:cloudwatch/metricAlarm:MetricAlarm")
def metric_alarm(aws: Applier, name: str, inputs: dict):
    alarm_name = inputs.get("name") or autoname(name, 255)
    request = {"AlarmName": alarm_name, **{key: inputs[field] for field, key in ALARM_FIELDS.items()
                                           if field in inputs}}
    if inputs.get("dimensions"):
        request["Dimensions"] = _dimensions(inputs["dimensions"])
    if inputs.get("metricQueries"):
        request["Metrics"] = [_query(q) for q in inputs["metricQueries"]]
    aws.client("cloudwatch").put_metric_alarm(**request)
    return alarm_name, {"name": alarm_name, "arn": aws.arn("cloudwatch", f"alarm:{alarm_name}")}


@applies("aws:cloudwatch/dashboard:Dashboard")
def dashboard(aws: Applier, name: str, inputs: dict):
    board = inputs["dashboardName"]
    aws.client("cloudwatch").put_dashboard(DashboardName=board, DashboardBody=inputs["dashboardBody"])
    return board, {"dashboardArn": f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/{board}"}


@applies("aws:apigateway/account:Account")
def apigateway_account(aws: Applier, name: str, inputs: dict):
    operations = [{"op": "replace", "path": "/cloudwatchRoleArn", "value": inputs["cloudwatchRoleArn"]}]
    aws.client("apigateway").update_account(patchOperations=operations)
    return "api-gateway-account", {}
