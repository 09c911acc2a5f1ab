"""Inbound Parse end to end over HTTP through the local stack: a signed multipart post lands in the bucket."""

import json

from devstack import http
from devstack.testing import local_stack  # noqa: F401  (the fixture)
from tests.test_inbound import ATTACHMENT, parsed_mail



def post(url: str, body: bytes, headers: dict) -> tuple[int, dict]:
    status, answer = http.post(url, body, headers, timeout=10)
    return status, json.loads(answer)


def test_a_signed_multipart_inbound_parse_post_is_stored_and_an_unsigned_one_refused(local_stack):
    stack = local_stack("bounce,dropped,dynamodb,inbound,inbound_log")
    url = stack.state["urls"]["inbound"]
    assert url.startswith("http://127.0.0.1:") and url != stack.state["webhook_url"]
    s3 = stack.aws.client("s3")
    bucket = stack.state["env"]["inbound"]["INBOUND_BUCKET"]
    body, content_type = parsed_mail()

    status, answer = post(url, body, {"Content-Type": content_type})  # unsigned
    assert status == 403
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0

    assert post(url, body, {"Content-Type": content_type, **stack.key.headers(body)})[0] == 403  # the webhook's
    status, answer = post(url, body, {"Content-Type": content_type, **stack.inbound_key.headers(body)})
    assert status == 200
    [stored] = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert stored["Key"] == answer["stored"]
    got = s3.get_object(Bucket=bucket, Key=stored["Key"])
    assert got["Body"].read() == body  # through the front's base64 and back, byte for byte
    assert got["Metadata"]["form-content-type"] == content_type
    assert stack.state["env"]["inbound"]["ENABLED_PLUGINS"] == "bounce,dropped,dynamodb,inbound,inbound_log"
    assert ATTACHMENT in body
