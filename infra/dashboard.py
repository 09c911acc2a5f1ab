"""The stack's CloudWatch dashboard, as the body ``PutDashboard`` takes (plain values in, a dict out).

Rows: the alarms' states; the webhook's events and answers; the sender's
outcomes; durations; the on-failure queue's depth and the stream's iterator
age; the ingest queues' depth and oldest post (``ingest: queue``); each function's errors and throttles; the inbound function's posts (when
enabled); stored events per type (a Logs Insights query over the webhook's
metrics lines, whose ``acceptedTypes`` member counts them). The functions'
metrics are named through ``handlers.metrics``.
"""

from __future__ import annotations

from handlers import metrics
from infra.api import STAGE

WIDTH, HEIGHT = 12, 6
RANGE = "-PT24H"


def _own(names, stack: str, stat: str = "Sum") -> list[list]:
    return [[metrics.NAMESPACE, name, metrics.DIMENSION, stack, {"stat": stat, "label": name}] for name in names]


def _metric_widget(title: str, rows: list[list], region: str, period: int = 300) -> dict:
    return {"type": "metric", "width": WIDTH, "height": HEIGHT, "properties": {
        "title": title, "region": region, "metrics": rows, "period": period, "view": "timeSeries",
        "stacked": False}}


def _names(recorder: metrics.Recorder, unit: str) -> list[str]:
    return [name for name, m in recorder.metrics.items() if m.unit == unit]


def events_by_type_query(log_group: str, event_types: tuple[str, ...]) -> str:
    """Logs Insights: stored events per type per hour, from the webhook's metrics lines."""
    sums = ", ".join(f"sum(acceptedTypes.{t}) as {t}" for t in event_types)
    return (f"SOURCE '{log_group}' | filter function = '{metrics.WEBHOOK.function}' and ispresent(_aws.Timestamp)"
            f" | stats {sums} by bin(1h)")


def body(*, stack: str, region: str, queue: str, api: str, functions: dict[str, str], alarms: list[str],
         event_types: tuple[str, ...], webhook_log_group: str, ingest: dict[str, str] | None = None) -> dict:
    """The dashboard of the stack ``stack``: ``functions`` maps a logical name to its Lambda name; ``ingest``
    (``ingest: queue``) the ingest queue's and dead-letter queue's labels to their names."""
    count = metrics.COUNT
    durations = [[*row[:4], {"stat": stat, "label": f"{row[1]} {stat}"}]
                 for recorder in (metrics.WEBHOOK, metrics.SENDER)
                 for row in _own(_names(recorder, metrics.MILLISECONDS), stack)
                 for stat in ("p50", "p99")]
    widgets = [
        {"type": "alarm", "width": 2 * WIDTH, "height": 4, "properties": {
            "title": "Alarms", "alarms": sorted(alarms), "sortBy": "stateUpdatedTimestamp"}},
        _metric_widget("Webhook events", _own(metrics.WEBHOOK_COUNTS.values(), stack), region),
        _metric_widget("Webhook answers", _own(["WebhookPosts", *map(metrics.webhook_refused,
                                                                   metrics.REFUSED_STATUSES), "QueueRetries"], stack)
                       + [["AWS/ApiGateway", "5XXError", "ApiName", api, "Stage", STAGE, {"stat": "Sum"}]], region),
        _metric_widget("Sender outcomes", _own(_names(metrics.SENDER, count), stack), region),
        _metric_widget("Durations (ms)", durations, region),
        _metric_widget("On-failure queue depth", [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName",
                                                   queue, {"stat": "Maximum"}]], region),
        _metric_widget("Stream iterator age (ms)", [["AWS/Lambda", "IteratorAge", "FunctionName",
                                                     functions["sender"], {"stat": "Maximum"}]], region),
        _metric_widget("Function errors and throttles", [
            ["AWS/Lambda", metric, "FunctionName", name, {"stat": "Sum", "label": f"{logical} {metric}"}]
            for logical, name in functions.items() for metric in ("Errors", "Throttles")], region),
    ]
    if ingest:
        widgets.append(_metric_widget("Ingest queue: posts waiting, oldest (s)", [
            ["AWS/SQS", metric, "QueueName", name, {"stat": "Maximum", "label": f"{label} {metric}"}]
            for label, name in ingest.items()
            for metric in ("ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage")], region))
    if metrics.INBOUND.function in functions:
        widgets.append(_metric_widget("Inbound posts", _own(_names(metrics.INBOUND, count), stack), region))
    if event_types:
        widgets.append({"type": "log", "width": WIDTH, "height": HEIGHT, "properties": {
            "title": "Stored events by type (per hour)", "region": region, "view": "timeSeries",
            "query": events_by_type_query(webhook_log_group, event_types)}})
    return {"start": RANGE, "periodOverride": "inherit", "widgets": widgets}
