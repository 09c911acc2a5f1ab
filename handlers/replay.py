"""Events the webhook set aside (the ``rejects`` table), run again through the current plugins.

The webhook function is invoked directly with ``{"replay": {"rejects": [eventId, ...]}}``
(``sendgrid-events replay rejects`` does; never API Gateway): only a principal
allowed ``lambda:InvokeFunction`` on it can ask, and it names rows, not
events, so what is replayed is only what the webhook itself set aside. At most
``MAX_ROWS`` rows an invocation.

Each named row ends as one of (``Replayed.outcomes``):

- ``stored``: the event went through; the row is deleted.
- ``duplicate``: the event had already gone through (a later copy SendGrid
  posted, or an earlier replay whose deletion was lost); the row is deleted.
- ``rejected``: refused again; the row now holds the new reason, ``replayedAt``
  and a new ``version`` (a core reject refused by a sink becomes that sink's row).
- ``ignored``: no enabled plugin takes its type now; the row stays.
- ``sink not enabled``: the sink that refused it is not enabled now; the row stays.
- ``cut``: its raw JSON was clipped when it was set aside; it cannot be replayed.
- ``missing``: no such row (replayed already).

Exactly once. A core reject (no ``sink``: the event never became a record)
goes through reconcile and delivery as a re-post would, so the processed-event
marks skip it when it went through since. A sink's reject belongs to an event
that was marked done for every sink when it was refused; it goes to that sink
alone, under marks of its own: scope ``replay:<sink>:<version>:``, where
``version`` is new each time a replay writes the row (the webhook's own row has
none: ``0``). Two replays of the same row,
one after the other or at once, hand it to the sink once (the second finds
it done: ``duplicate``); a replay the sink refuses again rewrites the row
with a new version, so the next replay is a new attempt, not a duplicate. A
row is deleted only after its event went through.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections import Counter

from handlers import delivery, dynamo
from handlers.manager import Plugins
from handlers.reconcile import reconcile, reject
from handlers.tables import REJECTS

log = logging.getLogger(__name__)

MAX_ROWS = 100
STORED, DUPLICATE, REJECTED, IGNORED, NO_SINK, CUT, MISSING = (
    "stored", "duplicate", "rejected", "ignored", "sink not enabled", "cut", "missing")


def replay(request: dict, plugins: Plugins) -> dict:
    """Replay the rows ``request["replay"]["rejects"]`` names; eventId -> outcome, and the counts."""
    ids = request["replay"].get("rejects")
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids) or len(ids) > MAX_ROWS:
        raise ValueError(f"replay.rejects must be a list of at most {MAX_ROWS} reject ids")
    rows = dynamo.batch_get(os.environ[REJECTS.env_var], REJECTS.hash_key, ids)
    outcomes = {i: MISSING for i in ids if i not in rows}
    groups: dict[tuple, list[tuple[str, object]]] = {}
    for row_id, row in rows.items():
        if len(row.get("raw", "")) < row.get("rawLength", 0):
            outcomes[row_id] = CUT
        else:
            sink = row.get("sink")  # a sink's rows are replayed each under its own marks: one row a call
            group = (sink, row.get("version") or "0") if sink else (None, None)
            groups.setdefault(group, []).append((row_id, json.loads(row["raw"])))
    sinks = {sink.name: sink for sink in plugins.sinks}
    written: set[str] = set()  # the reject rows this replay wrote (a row refused again is rewritten)
    for (sink_name, version), events in groups.items():
        if sink_name is None:
            outcomes.update(_run(events, plugins, plugins.sinks, "", written))
        elif sink_name in sinks:
            outcomes.update(_run(events, plugins, [sinks[sink_name]], f"replay:{sink_name}:{version}:", written))
        else:
            outcomes.update(dict.fromkeys((row_id for row_id, _ in events), NO_SINK))
    # Gone through, or refused again under another row (a core reject a sink now refuses): delete.
    dynamo.batch_delete(REJECTS, [row_id for row_id, outcome in outcomes.items()
                                  if outcome in (STORED, DUPLICATE) or (outcome == REJECTED and row_id not in written)])
    counts = Counter(outcomes.values())
    log.info(json.dumps({"message": "replay", **counts}))
    return {"outcomes": outcomes, "counts": dict(counts)}


def rewrite(rows: list[dict]) -> None:
    """Write reject rows refused again: each with a new ``version`` (so its next replay is a new attempt)."""
    now = int(time.time())
    dynamo.batch_put(REJECTS, [{**row, "version": uuid.uuid4().hex, "replayedAt": now} for row in rows])


def _run(events: list[tuple[str, object]], plugins: Plugins, sinks, scope: str,
         written: set[str]) -> dict[str, str]:
    """Reconcile and deliver ``events`` (row id, event) to ``sinks``; row id -> outcome. Adds the ids of
    the reject rows it writes to ``written``."""
    outcome = reconcile([event for _, event in events], plugins.event_types)
    rewrite(outcome.rejects)
    report = delivery.deliver(outcome.records, sinks, rewrite, scope=scope)
    written |= {r["eventId"] for r in outcome.rejects + report.rejected}
    fresh = {r["eventId"] for r in report.fresh}
    record_of = {id(r["sgEvent"]): r for r in outcome.records}
    rejected_again = {r["eventId"] for r in outcome.rejects}
    result = {}
    for row_id, event in events:
        record = record_of.get(id(event))
        if record is None:
            result[row_id] = REJECTED if reject(event, "")["eventId"] in rejected_again else IGNORED
        elif record["eventId"] in report.refused:
            result[row_id] = REJECTED
        else:
            result[row_id] = STORED if record["eventId"] in fresh else DUPLICATE
    return result
