"""End to end over HTTP through the local stack: insert an item, read the tables.

Every test starts the whole stack (moto server, SendGrid stand-in, webhook
front, stream poller) on 127.0.0.1 with short delays and stops it at the end.
"""

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from devstack import demo, http, tools
from devstack.eventwebhook import WebhookKey, batch_body
from devstack.stack import wait_for
from devstack.testing import local_stack  # noqa: F401  (the fixture)

ROOT = Path(__file__).resolve().parent.parent


def item(item_id, *emails, subject="Test mail"):
    return demo.seed_item(item_id, [{"email": e, "name": e.split("@")[0]} for e in emails], subject)


def rows_by_email(stack, logical="bounce"):
    return {r["toEmail"]: r for r in stack.scan(logical)}


def test_demo_runs_both_article_scenarios_and_prints_the_tables():
    lines = []
    assert demo.run(demo.Options(state_path=None, webhook_delay=0.05), out=lines.append) is True
    text = "\n".join(lines)
    assert "FAIL" not in text and text.count("[ok]") == 8
    for title in ("Mail sender table", "Sent log", "Bounce table"):
        assert title in text
    bounce_table = text.split("Bounce table", 1)[1].split("Metrics the functions emitted", 1)[0]
    assert bounce_table.count("nobody@bounce.test") == 1 and "alice@example.com" not in bounce_table
    emitted = text.split("Metrics the functions emitted", 1)[1]  # read back from the functions' EMF lines
    assert "webhook (sendgrid-events, Stack=local, " in emitted and "sender (sendgrid-events, Stack=local, " in emitted
    for name, value in (("MailsSent", "2"), ("MailsFailed", "0"), ("EventsAccepted", "1"), ("WebhookRefused403", "0")):
        assert re.search(rf"^ +{name} +{value}$", emitted, re.M), name
    assert re.search(r"^ +SendDuration +[0-9.]+ ms average of 2$", emitted, re.M)
    assert "@" not in emitted


def test_demo_fails_when_the_bounce_does_not_arrive():
    lines = []
    without_bounce_type = demo.Options(plugins="dropped,dynamodb", state_path=None, webhook_delay=0.05)
    assert demo.run(without_bounce_type, out=lines.append) is False
    assert "  [FAIL] bounce rows for it: ['nobody@bounce.test']" in lines
    assert "FAILED" in lines[-1]


@pytest.mark.parametrize("ingest", ["queue", "direct"])
def test_blocked_dropped_and_deferred_addresses(local_stack, ingest):
    stack = local_stack(settings={"ingest": ingest})
    stack.insert(item("m1", "ok@example.com", "b@blocked.test", "d@dropped.test", "late@deferred.test"))
    [sent] = stack.wait_settled("m1")
    assert sent["status"] == "sent"

    rows = rows_by_email(stack)
    assert set(rows) == {"b@blocked.test", "d@dropped.test"}  # delivered and deferred leave no row
    blocked, dropped = rows["b@blocked.test"], rows["d@dropped.test"]
    assert (blocked["event"], blocked["type"], blocked["status"]) == ("bounce", "blocked", "4.7.1")
    assert blocked["bounceClassification"] == "Reputation"
    assert (dropped["event"], dropped["reason"]) == ("dropped", "Invalid")
    for row in rows.values():
        assert row["messageId"] == sent["messageId"] and row["matched"] is True
        assert row["fullMessageId"].startswith(sent["messageId"] + ".")
        assert (row["subject"], row["mailId"]) == ("Test mail", "m1")
    # The webhook the program created enables only the plugins' types: SendGrid posts blocked and dropped,
    # not the 3 processed, delivered and deferred events of this mail.
    assert [p.status for p in stack.poster.posts] == [200]
    assert stack.poster.posts[0].events == 2


@pytest.mark.parametrize("ingest", ["queue", "direct"])
@pytest.mark.parametrize("after_function", [False, True], ids=["refused", "processed-then-500"])
def test_a_batch_answered_500_is_posted_again_and_the_tables_end_right(local_stack, after_function, ingest):
    stack = local_stack(settings={"ingest": ingest})
    stack.front.fail_next(times=1, status=500, after_function=after_function)
    stack.insert(item("m2", "alice@example.com", "nobody@bounce.test"))
    [sent] = stack.wait_settled("m2")

    assert [(p.status, p.attempt) for p in stack.poster.posts] == [(500, 1), (200, 2)]
    assert stack.poster.posts[0].events == stack.poster.posts[1].events == 1  # the bounce: the only enabled type among them
    [row] = stack.scan("bounce")
    assert (row["toEmail"], row["type"], row["messageId"]) == ("nobody@bounce.test", "bounce", sent["messageId"])
    [logged] = stack.scan("sent_log")
    assert logged["messageId"] == sent["messageId"]
    assert len(stack.sendgrid.accepted) == 1  # the re-post never re-sends the mail


def test_state_file_describes_what_is_running(local_stack, tmp_path):
    path = tmp_path / "state.json"
    stack = local_stack(state_path=path)
    state = json.loads(path.read_text())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds a private key

    # AWS: the endpoint answers (to the administrator: IAM is enforced) with exactly the declared tables.
    admin = state["aws_env"]
    client = boto3.client("dynamodb", endpoint_url=state["aws_endpoint_url"], region_name=state["region"],
                          aws_access_key_id=admin["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=admin["AWS_SECRET_ACCESS_KEY"])
    with pytest.raises(client.exceptions.ClientError, match="security token included in the request is invalid"):
        boto3.client("dynamodb", endpoint_url=state["aws_endpoint_url"], region_name=state["region"],
                     aws_access_key_id="any", aws_secret_access_key="any").list_tables()
    assert sorted(client.list_tables()["TableNames"]) == sorted(state["tables"].values())
    assert set(state["tables"]) == set(stack.plugins.tables) >= {"mail_sender", "sent_log", "bounce"}
    described = client.describe_table(TableName=state["tables"]["mail_sender"])["Table"]
    assert described["LatestStreamArn"] == state["streams"]["mail_sender"]
    assert state["queues"] == {"sender_failures": state["outputs"]["dlqUrl"],
                               "ingest": state["outputs"]["ingestQueueUrl"],
                               "ingest_dlq": state["outputs"]["ingestDlqUrl"],
                               "messages": stack.messages_queue}  # the local stack's own (devstack messages)

    # Each function's env: its tables (per the declarations' access), plugins, and its own settings.
    sender_env, webhook_env = state["env"]["sender"], state["env"]["webhook"]
    for name, table in stack.plugins.tables.items():
        for function, env in (("sender", sender_env), ("webhook", webhook_env)):
            assert (table.env_var in env) == (function in table.access)
            if function in table.access:
                assert env[table.env_var] == state["tables"][name]
    assert sender_env["ENABLED_PLUGINS"] == webhook_env["ENABLED_PLUGINS"] == "bounce,dropped,dynamodb"
    assert sender_env["SENDGRID_API_HOST"] == state["sendgrid_api_host"]
    # The API key is where the program put it: an SSM SecureString, never in an environment.
    assert sender_env["SENDGRID_API_KEY_PARAMETER"] == state["outputs"]["apiKeyParameter"]
    assert not any(state["sendgrid_api_key"] in v for env in state["env"].values() for v in env.values())
    assert webhook_env["SENDGRID_WEBHOOK_PUBLIC_KEYS"] == state["webhook_public_key"]
    assert "SENDGRID_API_KEY_PARAMETER" not in webhook_env and "SENDGRID_WEBHOOK_PUBLIC_KEYS" not in sender_env
    # Each function acts as itself: its own key, neither the administrator's nor the other's.
    keys = {env["AWS_ACCESS_KEY_ID"] for env in (sender_env, webhook_env, admin)}
    assert len(keys) == 3
    for env in (sender_env, webhook_env):
        assert env["AWS_ENDPOINT_URL"] == state["aws_endpoint_url"]

    # The webhook URL takes a batch signed with the state's private key, and only that.
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = WebhookKey(load_pem_private_key(state["webhook_private_key_pem"].encode(), None))
    assert key.public_key_b64 == state["webhook_public_key"]
    body = batch_body([{"event": "bounce", "email": "x@bounce.test", "timestamp": 1700000000,
                        "sg_event_id": "hand-made-1", "sg_message_id": "nosuchmessage.filter0001"}])

    def post(headers):
        return http.post(state["webhook_url"], body, headers, timeout=10)[0]

    # ingest: queue (the default): API Gateway answers once SQS has a post; the function refuses forged ones.
    assert post({}) == post(WebhookKey().headers(body)) == 200
    wait_for(stack.drained, "the ingest queue drained")
    assert stack.scan("bounce") == []
    assert post(key.headers(body)) == 200
    wait_for(stack.drained, "the ingest queue drained")
    [row] = stack.scan("bounce")
    assert row["matched"] is False and row["toEmail"] == "x@bounce.test"

    stack.stop()
    assert not path.exists()


def test_up_runs_until_sigterm_and_a_user_inserts_an_item_with_plain_boto3(tmp_path):
    path = tmp_path / "state.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    up = subprocess.Popen([sys.executable, "-m", "devstack", "up", "--state", str(path), "--webhook-delay", "0.05"],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: path.exists() or up.poll() is not None, "the state file of `devstack up`", timeout=60)
        assert up.poll() is None, up.stdout.read()
        state = json.loads(path.read_text())
        # As a user would, from the `env` command's export lines.
        exports = subprocess.run([sys.executable, "-m", "devstack", "env", "--state", str(path)], cwd=ROOT,
                                 capture_output=True, text=True, check=True).stdout
        user_env = dict(line.removeprefix("export ").split("=", 1) for line in exports.splitlines())
        assert user_env["AWS_ENDPOINT_URL"] == state["aws_endpoint_url"]
        client = boto3.client("dynamodb", endpoint_url=user_env["AWS_ENDPOINT_URL"],
                              region_name=user_env["AWS_DEFAULT_REGION"],
                              aws_access_key_id=user_env["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=user_env["AWS_SECRET_ACCESS_KEY"])
        table = state["tables"]["mail_sender"]
        client.put_item(TableName=table, Item={
            "id": {"S": "by-hand"}, "subject": {"S": "Hi"}, "content": {"S": "Hello"},
            "from": {"S": '{"email": "sender@example.com", "name": "Sender"}'},
            "to": {"S": '[{"email": "nobody@bounce.test", "name": "Nobody"}]'}})

        def bounce_row():
            return client.scan(TableName=state["tables"]["bounce"])["Items"]
        [row] = wait_for(bounce_row, "the bounce row of the item inserted by hand", timeout=30)
        assert row["toEmail"] == {"S": "nobody@bounce.test"}
        status = client.get_item(TableName=table, Key={"id": {"S": "by-hand"}})["Item"]["status"]
        assert status == {"S": "sent"}

        # A plugin author's hand-made batch, signed and posted by `devstack post`.
        events = tmp_path / "events.json"
        events.write_text(json.dumps([{"event": "bounce", "email": "hand@bounce.test", "timestamp": 1700000000,
                                       "sg_event_id": "by-hand-post", "sg_message_id": "nosuch.filter"}]))
        posted = subprocess.run([sys.executable, "-m", "devstack", "post", str(events), "--state", str(path)],
                                cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert posted.returncode == 0 and posted.stdout.startswith("200 "), posted.stdout + posted.stderr
        assert json.loads(posted.stdout.split(" ", 1)[1]) == {"queued": True}  # ingest: queue, the default

        def emails():
            return "hand@bounce.test" in [i["toEmail"]["S"] for i in client.scan(
                TableName=state["tables"]["bounce"])["Items"]]
        wait_for(emails, "the queued post stored", timeout=30)
    finally:
        up.send_signal(signal.SIGTERM)
        out, _ = up.communicate(timeout=30)
    assert up.returncode == 0, out
    assert "devstack: stopping" in out
    assert all(url in out for url in state["queues"].values())  # the startup summary lists every queue
    assert not path.exists()


def test_a_plugins_infrastructure_is_applied_from_the_program(local_stack):
    """The ``sns`` plugin's ``infrastructure`` hook is all it writes: the local stack applies it."""
    stack = local_stack("bounce,dropped,dynamodb,sns")
    alarms = stack.state["outputs"]["alarmTopicArn"]  # the operations' topic, besides the plugin's
    [topic] = [t["TopicArn"] for t in stack.aws.client("sns").list_topics()["Topics"] if t["TopicArn"] != alarms]
    assert topic == stack.state["outputs"]["snsTopicArn"] == stack.state["env"]["webhook"]["SNS_TOPIC_ARN"]
    attributes = stack.aws.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]
    assert attributes["KmsMasterKeyId"].startswith("arn:aws:kms:")  # encrypted with the stack's key
    assert "SNS_TOPIC_ARN" not in stack.state["env"]["sender"]


def test_the_lambda_api_invokes_the_local_functions_and_leaves_the_rest_to_moto(local_stack):
    stack = local_stack()
    admin = stack.state["aws_env"]
    lam = boto3.client("lambda", endpoint_url=admin["AWS_ENDPOINT_URL_LAMBDA"], region_name=stack.state["region"],
                       aws_access_key_id=admin["AWS_ACCESS_KEY_ID"], aws_secret_access_key=admin["AWS_SECRET_ACCESS_KEY"])
    webhook = stack.state["outputs"]["functionNames"]["webhook"]
    assert lam.get_function_configuration(FunctionName=webhook)["Handler"] == "handlers.webhook.lambda_handler"
    answer = lam.invoke(FunctionName=webhook, Payload=json.dumps({"replay": {"rejects": ["sha256:none"]}}))
    assert json.loads(answer["Payload"].read()) == {"outcomes": {"sha256:none": "missing"},
                                                    "counts": {"missing": 1}}
    failed = lam.invoke(FunctionName=webhook, Payload=json.dumps({"replay": {"rejects": "all"}}))
    assert failed["FunctionError"] == "Unhandled"
    assert json.loads(failed["Payload"].read())["errorType"] == "ValueError"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.invoke(FunctionName="no-such-function", Payload=b"{}")
    with pytest.raises(ClientError, match="security token included in the request is invalid"):
        boto3.client("lambda", endpoint_url=admin["AWS_ENDPOINT_URL_LAMBDA"], region_name=stack.state["region"],
                     aws_access_key_id="any", aws_secret_access_key="any").list_functions()


def test_the_state_file_is_a_new_file_of_its_own_whatever_was_there(tmp_path):
    from devstack.state import write_state

    target = tmp_path / "elsewhere.json"
    target.write_text("not yours")
    path = tmp_path / "state.json"
    path.symlink_to(target)  # someone left a link where the state goes
    leftover = tmp_path / "state.tmp"
    leftover.write_text("old")
    leftover.chmod(0o644)
    write_state(path, {"webhook_private_key_pem": "secret"})
    assert not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"webhook_private_key_pem": "secret"}
    assert target.read_text() == "not yours" and leftover.read_text() == "old"


def child_of(process: Path, parent: int) -> bool:
    """Whether /proc/<pid> ``process`` is a child of ``parent`` (False once it is gone)."""
    try:
        return int((process / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent
    except (OSError, IndexError, ValueError):
        return False


def test_concurrent_posts_with_sns_keep_moto_small_and_sigterm_stops_up(tmp_path):
    """4 posts of 100 events at once with the sns sink (claims in TransactWriteItems), then SIGTERM."""
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "state.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    up = subprocess.Popen([sys.executable, "-m", "devstack", "up", "--state", str(path),
                           "--plugins", "bounce,dropped,dynamodb,sns"],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: path.exists() or up.poll() is not None, "the state file of `devstack up`", timeout=90)
        assert up.poll() is None, up.stdout.read()
        state = json.loads(path.read_text())

        def post(n):
            events = [{"event": "bounce", "email": f"b{n}-{i}@bounce.test", "timestamp": 1700000000 + i,
                       "sg_event_id": f"storm-{n}-{i}", "sg_message_id": f"m{n}-{i}.filter"} for i in range(100)]
            for _ in range(5):  # as SendGrid does: a 503 (this machine too busy for the budget) is posted again
                status, _ = tools.post(state, events)  # signed with the state file's key
                if status != 503:
                    return status
                time.sleep(1)
            return 503

        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(post, range(4))) == [200] * 4
        [moto] = [p for p in Path("/proc").iterdir() if p.name.isdigit() and child_of(p, up.pid)
                  and b"devstack.motoserver" in (p / "cmdline").read_bytes()]
        [rss_kib] = [int(line.split()[1]) for line in (moto / "status").read_text().splitlines()
                     if line.startswith("VmRSS:")]
        assert rss_kib < 1024 * 1024  # under 1 GiB (it grew past 24 GiB when transactions ran side by side)
    finally:
        up.send_signal(signal.SIGTERM)
        out, _ = up.communicate(timeout=30)
    assert up.returncode == 0, out[-2000:]
    assert not path.exists()
    # The startup summary names everything a person reaches for: every URL, table, queue and topic.
    listed = [state["webhook_url"], *state["urls"].values(), *state["tables"].values(),
              *state["queues"].values(), *state["topics"].values()]
    assert len(state["topics"]) == 2  # the sns plugin's and the alarms'
    assert [value for value in listed if value not in out] == []
