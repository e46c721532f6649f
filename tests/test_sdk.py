"""The bundle on the AWS SDK Lambda's runtime carries, and on the locked one: every AWS operation
the app calls, run from the unzipped bundle against the embedded AWS.

Lambda's Python runtimes provide boto3 and botocore (requirements.txt leaves them out), older than
the development pin: 1.34.145 on python3.11 (tests/bundle.py RUNTIME_SDK). The bundle `make package`
builds (the `built` fixture, shared with tests/test_bundle.py) is unzipped and the app imported from
it alone, once with that SDK (pip-installed once into build/sdk-1.34.145) and once with this venv's.
In each, a script drives the app's handlers as Lambda calls them (`handler(event, context)`, the REST
API through `app.app(event, context)` with API Gateway's proxy events), and plays the platform
between them (SNS deliveries read off queues subscribed to the worker topics, SQS batches received
from the app's queues, an S3 notification, Lambda's on-failure record), recording every AWS
operation the app makes (botocore's BaseClient._make_api_call, and presigned URLs) with the
function that made it. Then:

- nothing raised, and no operation failed, but those the script provokes or the code expects
  (EXPECTED_ERRORS: a frame that is not there, NoSuchKey, a did-fail; a dead letter's write
  throttled, the batch keeps it; a conditional write refusing a duplicate);
- both SDKs answered alike: each operation's status and its answer (times, ids and checksums set
  aside), each handler's answer;
- the operations run are deploy/operations.py's table, no more and no fewer;
- each function made only operations deploy/policies.py says it makes, and its committed policy
  allows what IAM checks for each operation it made (the table says what that is), a missing
  key's 404 included (tests/iam.py evaluates the policies).
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from typing import Any

import pytest

from deploy import operations
from deploy.policies import FUNCTIONS
from tests import bundle
from tests.conftest import ROOT, made_once
from tests.iam import allowed

pytestmark = [pytest.mark.integration, pytest.mark.heavy]

CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())
STAGE = CONFIG["stages"][bundle.STAGE]
ACCOUNT, REGION = "123456789012", "us-east-1"  # moto's account; the region run_in_bundle sets
TOKEN = "sdk-test-token-0123456789"
MAP_KEYS = "demo-client-id:demo-client-secret"
UPLOAD = "canyon photo-400x400.jpg"  # a space: S3 notifications carry keys URL-encoded
SDK_FOLDER = ROOT / "build" / f"sdk-{bundle.RUNTIME_SDK['botocore']}"

# Operations that fail, and where: (step, service, operation, error code). A frame that is not there
# (NoSuchKey: a did-fail at once), and again when its failure is redriven; a basemap not kept yet
# (NoSuchKey: the fetcher fetches it); a dead letter's write
# throttled (by the script, as DynamoDB may); a thumbnail recorded already, answered again (its
# redriven request made it anew): the mediator's conditional transaction refuses it, as it should.
EXPECTED_ERRORS = {
    ("a frame that is not there", "s3", "GetObject", "NoSuchKey"),
    ("a frame over a basemap", "s3", "GetObject", "NoSuchKey"),
    ("a redriven request", "s3", "GetObject", "NoSuchKey"),
    ("a dead letter's write throttled", "dynamodb", "PutItem", "ThrottlingException"),
    ("a redriven thumbnail arrives", "dynamodb", "TransactWriteItems", "TransactionCanceledException"),
}

SCRIPT = r'''
import base64, hashlib, io, os, time, traceback, urllib.parse, urllib.request, uuid
import boto3, botocore, botocore.client, botocore.signers
from botocore.exceptions import ClientError
from botocore.response import StreamingBody

plan = argument
result.update(sdk={"boto3": boto3.__version__, "botocore": botocore.__version__}, calls=[], steps=[])
state = {"function": None, "step": None, "record": True, "fault": None}
ARN = "arn:aws:lambda:us-east-1:%s:function:%%s" % plan["account"]


def plain(value):
    """A JSON-able copy of a request or an answer (bytes and streams as their digest)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return "sha256:" + hashlib.sha256(value).hexdigest()[:16]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "isoformat"):
        return "<time>"
    return repr(type(value).__name__)


_make_api_call = botocore.client.BaseClient._make_api_call


def recorded(self, operation, params):
    if not state["record"]:
        return _make_api_call(self, operation, params)
    entry = {"function": state["function"], "step": state["step"], "service": self.meta.service_model.service_name,
             "operation": operation, "params": plain(params), "status": None, "error": None, "answer": None}
    result["calls"].append(entry)
    fault = state["fault"]
    if fault is not None and fault(entry):  # a fault the platform would give: throttling
        entry.update(status=400, error="ThrottlingException")
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                           "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)
    try:
        answer = _make_api_call(self, operation, params)
    except ClientError as error:
        entry.update(status=error.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
                     error=error.response.get("Error", {}).get("Code"))
        raise
    except Exception as error:
        entry["error"] = f"{type(error).__name__}: {error}"
        raise
    if isinstance(answer.get("Body"), StreamingBody):  # read here, handed on as it came
        data = answer["Body"].read()
        answer["Body"] = StreamingBody(io.BytesIO(data), len(data))
        entry["body"] = "sha256:" + hashlib.sha256(data).hexdigest()[:16]
    entry["status"] = answer.get("ResponseMetadata", {}).get("HTTPStatusCode")
    entry["answer"] = plain({k: v for k, v in answer.items() if k not in ("ResponseMetadata", "Body")})
    return answer


botocore.client.BaseClient._make_api_call = recorded
_presign = botocore.signers.generate_presigned_url


def presigned(self, ClientMethod, Params=None, ExpiresIn=3600, HttpMethod=None):
    url = _presign(self, ClientMethod, Params=Params, ExpiresIn=ExpiresIn, HttpMethod=HttpMethod)
    if state["record"]:
        with urllib.request.urlopen(url, timeout=10) as got:  # the link works: what a browser does with it
            body = "sha256:" + hashlib.sha256(got.read()).hexdigest()[:16]
        result["calls"].append({
            "function": state["function"], "step": state["step"], "service": self.meta.service_model.service_name,
            "operation": self.meta.method_to_api_mapping[ClientMethod], "presigned": True,
            "params": plain(Params or {}), "status": got.status, "error": None, "body": body,
            "answer": url.split("?")[0]})
    return url


botocore.signers.generate_presigned_url = presigned  # read when a client class is made: every client here

import app
from chalicelib import aws

platform = boto3.session.Session().client("sqs")  # the platform's own: Lambda's pollers, SNS deliveries
last_function = [None]


class Context:
    """What Lambda hands a handler: the parts the app reads."""

    def __init__(self, function):
        self.function_name = plan["names"][function]
        self.function_version = "$LATEST"
        self.invoked_function_arn = ARN % self.function_name
        self.memory_limit_in_mb = plan["memory"][function]
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = "/aws/lambda/" + self.function_name
        self.log_stream_name = "2026/12/07/[$LATEST]0123456789abcdef"
        self._deadline = time.monotonic() + plan["timeout"][function]

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def invoke(step, function, handler, event, expect_raise=None):
    """One invocation, as Lambda makes it; a function other than the last one starts in a fresh
    container (its clients, cached secrets and queue URLs made anew)."""
    if function != last_function[0]:
        aws.reset()
        last_function[0] = function
    state.update(function=function, step=step)
    outcome = {"step": step, "function": function, "raised": None}
    try:
        outcome["answer"] = plain(handler(event, Context(function)))
    except Exception as error:
        outcome["raised"] = f"{type(error).__name__}: {error}"
        if expect_raise is None or type(error).__name__ != expect_raise:
            outcome["traceback"] = traceback.format_exc()[-3000:]
    finally:
        state.update(function=None, step=None, fault=None)
    outcome["expected_raise"] = expect_raise
    result["steps"].append(outcome)
    return outcome.get("answer")


def url_of(queue):
    return platform.get_queue_url(QueueName=queue)["QueueUrl"]


def received(queue, wait=0):
    """Every message waiting on a queue, received as Lambda's poller receives them (not recorded)."""
    state["record"] = False
    try:
        url, out = url_of(queue), []
        while True:
            got = platform.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait,
                                           AttributeNames=["All"], MessageAttributeNames=["All"])
            if not got.get("Messages"):
                return out
            out += got["Messages"]
            wait = 0
    finally:
        state["record"] = True


def sqs_event(queue, messages):
    arn = "arn:aws:sqs:us-east-1:%s:%s" % (plan["account"], queue)
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}),
        "messageAttributes": {k: {"stringValue": v.get("StringValue"), "stringListValues": [], "binaryListValues": [],
                                  "dataType": v.get("DataType", "String")}
                              for k, v in m.get("MessageAttributes", {}).items()},
        "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs", "eventSourceARN": arn,
        "awsRegion": "us-east-1"} for m in messages]}


def sns_events(topic):
    """SNS's deliveries of what was published to a worker topic (read off a queue subscribed to it)."""
    events = []
    for message in received(plan["subscribed"][topic]):
        envelope = json.loads(message["Body"])
        events.append({"Records": [{
            "EventSource": "aws:sns", "EventVersion": "1.0",
            "EventSubscriptionArn": envelope["TopicArn"] + ":" + str(uuid.uuid4()),
            "Sns": {"Type": "Notification", "MessageId": envelope["MessageId"], "TopicArn": envelope["TopicArn"],
                    "Subject": None, "Message": envelope["Message"], "Timestamp": envelope["Timestamp"],
                    "SignatureVersion": "1", "Signature": "", "SigningCertUrl": "", "UnsubscribeUrl": "",
                    "MessageAttributes": envelope.get("MessageAttributes", {})}}]})
    return events


def deliver(topic, function, handler, step):
    """Each message published to the topic, to the worker, one invocation each; their answers."""
    return [invoke(step, function, handler, event) for event in sns_events(topic)]


def consume(step, function, handler, queue, messages, expect_raise=None):
    """An SQS batch to its handler, as Lambda's event source mapping hands it over; and then as Lambda
    does: a batch whose handler returned is deleted from the queue (but the items it reports failed),
    one whose handler raised is left to come back (a FIFO queue holds its message group until then)."""
    answer = invoke(step, function, handler, sqs_event(queue, messages), expect_raise=expect_raise)
    if result["steps"][-1]["raised"] is None:
        failed = {item["itemIdentifier"] for item in (answer or {}).get("batchItemFailures", [])}
        state["record"] = False
        try:
            for m in messages:
                if m["MessageId"] not in failed:
                    platform.delete_message(QueueUrl=url_of(queue), ReceiptHandle=m["ReceiptHandle"])
        finally:
            state["record"] = True
    return answer


def mediate(step):
    """What waits on the mediator's queue (10 a batch)."""
    messages = received(plan["queues"]["mediator"])
    for start in range(0, len(messages), 10):
        consume(step, "mediate", app.mediate, plan["queues"]["mediator"], messages[start:start + 10])
    return messages


def schedule(step, function, handler, when):
    moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
    event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
             "account": plan["account"], "time": moment, "region": "us-east-1",
             "resources": ["arn:aws:events:us-east-1:%s:rule/%s-event" % (plan["account"], plan["names"][function])],
             "detail": {}}
    invoke(step, function, handler, event)
    for message in received(plan["queues"]["tick"]):  # the tick queue's slices, one a batch (batch size 1)
        slices.append(message["Body"])
        consume(step + ": a slice", "tick", app.tick, plan["queues"]["tick"], [message])


slices = []
HOST = "abc123.execute-api.us-east-1.amazonaws.com"


def http(step, method, resource, path_parameters=None, query=None, body=None, token=False):
    """A request to the REST API, as API Gateway's proxy integration hands it to the API's function."""
    path = resource
    for name, value in (path_parameters or {}).items():
        path = path.replace("{%s}" % name, urllib.parse.quote(str(value), safe=""))
    headers = {"host": HOST, "x-forwarded-proto": "https", "accept": "application/json",
               "content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + plan["token"]
    event = {
        "resource": resource, "path": path, "httpMethod": method, "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": {k: str(v) for k, v in path_parameters.items()} if path_parameters else None,
        "stageVariables": None,
        "requestContext": {"resourcePath": resource, "httpMethod": method, "path": "/api" + path, "stage": "api",
                           "domainName": HOST, "apiId": "abc123", "accountId": plan["account"],
                           "requestId": str(uuid.uuid4()), "identity": {"sourceIp": "203.0.113.9"},
                           "authorizer": {"principalId": "api-token"} if token else None},
        "body": json.dumps(body) if body is not None else None, "isBase64Encoded": False,
    }
    answer = invoke(step, "api_handler", app.app, event)
    if isinstance(answer, dict) and isinstance(answer.get("body"), str):
        try:
            answer["json"] = json.loads(answer["body"])
        except ValueError:
            pass
    return answer


ID = "sdk"


def minute():
    return int(time.time()) // 60 * 60


# The authorizer: the token from SSM.
invoke("the authorizer", "token", app.token, {"type": "TOKEN", "authorizationToken": "Bearer " + plan["token"],
       "methodArn": "arn:aws:execute-api:us-east-1:%s:abc123/api/PUT/animations/sdk" % plan["account"]})

# An operator configures an animation and looks at it.
http("put an animation", "PUT", "/animations/{image_id}", {"image_id": ID}, token=True, body={
    "layers": ["flat-dk", "radar"], "width": 320, "height": 240, "center": "tulsa,ok", "zoom": 4,
    "interval": 86400, "frames": 2, "thumbnails": [{"width": 80, "height": 60}],
    "email": {"to": ["desk@example.com"], "from": plan["sender"]}})
http("list animations", "GET", "/animations")
http("get an animation", "GET", "/animations/{image_id}", {"image_id": ID}, token=True)

# Creating it asked for its window (two daily frames): the fetcher (map keys from SSM), the mediator, the
# thumbnails; then the fetch schedule, with nothing due.
fetched = deliver("fetch", "fetch_amp_image", app.fetch_amp_image, "a frame fetched")
frames = sorted(answer["validTime"] for answer in fetched)
mediate("a frame arrives")
deliver("thumbnail", "create_thumbnail", app.create_thumbnail, "a thumbnail made")
mediate("a thumbnail arrives")
schedule("the fetch schedule", "fetch_due_frames", app.fetch_due_frames, minute())

# The window's frames made a GIF due: the GIF, then its email.
[gif] = deliver("gif", "create_gif", app.create_gif, "a GIF made")
mediate("a GIF arrives")
deliver("email", "send_email", app.send_email, "an email sent")
mediate("an email was sent")

# A thumbnail of a frame that is not there: NoSuchKey, a did-fail at once.
between = frames[-1] - 1800  # on no grid time: never a frame
missing = {"type": "please-create-thumbnail", "imageId": ID, "validTime": between, "width": 80, "height": 60,
           "location": {"Bucket": plan["buckets"]["frames"], "Key": ID + "/320x240/%d.png" % between}}


def sns_event(message):
    return {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "sub",
                         "Sns": {"Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": "topic",
                                 "Subject": None, "Message": json.dumps(message), "Timestamp": "",
                                 "MessageAttributes": {}}}]}


missing_event = sns_event(missing)
invoke("a frame that is not there", "create_thumbnail", app.create_thumbnail, missing_event)
mediate("a did-fail arrives")

# A transparent frame over a basemap of another (keyed) source, which is not kept yet: NoSuchKey, then
# fetched and kept if no other fetcher's came first (a conditional put: If-None-Match).
overlay = {"type": "please-fetch-amp-image", "imageId": "overlay", "source": "demo-overlay", "layers": ["radar"],
           "width": 320, "height": 240, "center": "tulsa,ok", "zoom": 4, "validTime": frames[-1],
           "basemap": {"source": "keyed", "layers": ["basemap"]}}
invoke("a frame over a basemap", "fetch_amp_image", app.fetch_amp_image, sns_event(overlay))
mediate("a frame of no animation arrives")

# An upload's thumbnail (an S3 notification, its key URL-encoded).
invoke("an upload", "thumbnail_upload", app.thumbnail_upload, {"Records": [{
    "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventTime": "2026-12-07T10:00:00.000Z",
    "eventName": "ObjectCreated:Put", "responseElements": {"x-amz-request-id": "0123456789ABCDEF"},
    "s3": {"s3SchemaVersion": "1.0", "configurationId": "upload",
           "bucket": {"name": plan["buckets"]["uploads"], "arn": "arn:aws:s3:::" + plan["buckets"]["uploads"]},
           "object": {"key": urllib.parse.quote_plus(plan["upload"]), "size": 1, "sequencer": "0A1B2C3D4E5F678901"}}}]})
mediate("an upload's thumbnail arrives")

# A worker's invocation that failed for good: Lambda's record of it, on the worker failure queue.
failed_request = dict(missing, validTime=frames[0], location={"Bucket": plan["buckets"]["frames"],
                                                               "Key": ID + "/320x240/%d.png" % frames[0]})
record = {"version": "1.0", "timestamp": "2026-12-07T10:00:00.000Z",
          "requestContext": {"requestId": str(uuid.uuid4()), "functionArn": ARN % plan["names"]["create_thumbnail"]
                             + ":$LATEST", "condition": "RetriesExhausted", "approximateInvokeCount": 3},
          "requestPayload": dict(missing_event, Records=[dict(missing_event["Records"][0], Sns=dict(
              missing_event["Records"][0]["Sns"], Message=json.dumps(failed_request)))]),
          "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
          "responsePayload": {"errorMessage": "Read timeout", "errorType": "ReadTimeoutError"}}
state["record"] = False
platform.send_message(QueueUrl=url_of(plan["queues"]["worker_failures"]), MessageBody=json.dumps(record))
state["record"] = True
consume("a worker failed for good", "worker_failed", app.worker_failed, plan["queues"]["worker_failures"],
        received(plan["queues"]["worker_failures"]))
mediate("its did-fail arrives")

# The hourly GIF schedule: a slice for every animation (a GIF of the newest frames exists: none made).
schedule("the GIF schedule", "rebuild_gifs", app.rebuild_gifs, minute())

# Dead letters: two did-messages on the mediator's (FIFO) dead-letter queue, the first one's write
# throttled (the other is kept and deleted from the queue; the batch raises, so that the first comes
# back); a tick's slice on the ticks' own, kept by keep_dead_slices.
state["record"] = False
gone = [json.dumps({"type": "did-create-thumbnail", "imageId": "gone-%d" % n, "validTime": frames[0],
                    "location": {"Bucket": plan["buckets"]["thumbnails"], "Key": "gone/%d.jpg" % n}}) for n in range(2)]
for n, body in enumerate(gone):
    platform.send_message(QueueUrl=url_of(plan["queues"]["dead_letters"]), MessageBody=body,
                          MessageGroupId="gone-%d" % n, MessageDeduplicationId="gone-%d" % n)
platform.send_message(QueueUrl=url_of(plan["queues"]["dead_slices"]), MessageBody=slices[-1])
state["record"] = True
letters = received(plan["queues"]["dead_letters"])
first = next(letter["MessageId"] for letter in letters if letter["Body"] == gone[0])


def keep(event, context):  # the first letter's PutItem throttled, as DynamoDB may
    state["fault"] = lambda call: call["operation"] == "PutItem" and first in json.dumps(call["params"])
    return app.keep_dead_letters(event, context)


consume("a dead letter's write throttled", "keep_dead_letters", keep, plan["queues"]["dead_letters"], letters,
        expect_raise="BatchIncomplete")
consume("a dead tick slice", "keep_dead_slices", app.keep_dead_slices, plan["queues"]["dead_slices"],
        received(plan["queues"]["dead_slices"]))

# The operator's routes.
for step, method, resource, params, query, token in (
    ("the summary", "GET", "/summary", None, None, False),
    ("frames", "GET", "/animations/{image_id}/frames", {"image_id": ID}, None, False),
    ("GIFs", "GET", "/animations/{image_id}/gifs", {"image_id": ID}, None, True),
    ("a GIF's link", "GET", "/animations/{image_id}/gifs/{valid_time}/image", {"image_id": ID, "valid_time": gif["validTime"]}, None, False),
    ("a frame's link", "GET", "/animations/{image_id}/frames/{valid_time}/image", {"image_id": ID, "valid_time": frames[0]}, None, False),
    ("a thumbnail's link", "GET", "/animations/{image_id}/frames/{valid_time}/thumbnails/{label}",
     {"image_id": ID, "valid_time": frames[0], "label": "80x60-cover"}, None, False),
    ("failures", "GET", "/animations/{image_id}/failures", {"image_id": ID}, None, True),
    ("a run's timeline", "GET", "/runs/{run_id}", {"run_id": fetched[0]["correlationId"]}, None, True),
    ("status", "GET", "/status", None, None, False),
    ("metrics", "GET", "/metrics", None, {"minutes": "120"}, False),
    ("health", "GET", "/health", None, None, False),
    ("an animation's cost", "GET", "/animations/{image_id}/cost", {"image_id": ID}, None, False),
    ("the shared cost", "GET", "/cost", None, None, False),
    ("dead letters", "GET", "/failures", None, None, True),
):
    http(step, method, resource, params, query, token=token)
http("redrive an animation's failures", "POST", "/animations/{image_id}/failures/redrive", {"image_id": ID}, token=True)
deliver("thumbnail", "create_thumbnail", app.create_thumbnail, "a redriven request")  # the frame exists: made
mediate("a redriven thumbnail arrives")
served = 300  # the demo source's frames are 5 minutes apart: a frame asked for now is the one of its 5 minutes
if minute() // served * served in frames:  # that frame is the window's newest (a day's first 5 minutes): later
    time.sleep(served + 1 - time.time() % served)
http("a frame now", "POST", "/animations/{image_id}/fetch", {"image_id": ID}, token=True)
deliver("fetch", "fetch_amp_image", app.fetch_amp_image, "a frame fetched now")
mediate("the frame asked for now arrives")
http("a GIF now", "POST", "/animations/{image_id}/gif", {"image_id": ID}, token=True)
http("redrive dead letters", "POST", "/failures/redrive", token=True)
http("delete an animation and its images", "DELETE", "/animations/{image_id}", {"image_id": ID}, {"images": "remove"},
     token=True)

# Local runs (their contexts carry no ARN to read the account off): STS says it.
aws.reset()
state.update(function=None, step="the account, asked of STS")
result["account"] = aws.account_id()
state.update(step=None)
result["modules"] = {name: getattr(__import__(name), "__file__", None) for name in ("boto3", "botocore")}
'''


def _prepare(emulator: Any, source: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """Fresh resources from the template, the stage's secrets, a metric to read, an upload, and a queue
    subscribed to each worker topic (what SNS delivers to the workers is read off it); the script's
    plan, and the environment of the functions."""
    from chalicelib.aws import client
    from chalicelib.settings import names
    from chalicelib.sources import key_parameter
    from deploy.policies import function_name
    from local.provision import provision

    emulator.reset()
    outputs = provision(stage=bundle.STAGE, sender="wx@example.com")
    env = {**CONFIG["environment_variables"], **STAGE["environment_variables"]}
    ssm = client("ssm")
    ssm.put_parameter(Name=env["API_TOKEN_PARAMETER"], Value=TOKEN, Type="SecureString", Overwrite=True)
    ssm.put_parameter(Name=key_parameter("keyed", bundle.STAGE), Value=MAP_KEYS, Type="SecureString", Overwrite=True)
    client("cloudwatch").put_metric_data(
        Namespace="weathergif",
        MetricData=[
            {
                "MetricName": "Duration",
                "Dimensions": [{"Name": "Stage", "Value": bundle.STAGE}, {"Name": "Function", "Value": "mediate"}],
                "Value": 123.0,
                "Unit": "Milliseconds",
            }
        ],
    )
    from tests.images import encode, radar_frame

    n = names()
    client("s3").put_object(Bucket=n.uploads_bucket, Key=UPLOAD, Body=encode(radar_frame(0, 640, 480), "JPEG"))
    sqs, sns = client("sqs"), client("sns")
    topics = {"fetch": n.fetch_topic, "thumbnail": n.thumbnail_topic, "gif": n.gif_topic, "email": n.email_topic}
    subscribed = {role: f"sdk-test-{role}" for role in topics}
    for role, topic in topics.items():
        url = sqs.create_queue(QueueName=subscribed[role])["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        topic_arn = sns.create_topic(Name=topic)["TopicArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    functions = STAGE["lambda_functions"]
    plan = {
        "account": ACCOUNT,
        "token": TOKEN,
        "sender": "wx@example.com",
        "upload": UPLOAD,
        "names": {f: function_name(bundle.STAGE, f) for f in FUNCTIONS},
        "memory": {f: functions[f].get("lambda_memory_size", STAGE["lambda_memory_size"]) for f in FUNCTIONS},
        "timeout": {f: functions[f].get("lambda_timeout", STAGE["lambda_timeout"]) for f in FUNCTIONS},
        "subscribed": subscribed,
        "buckets": {"frames": n.frames_bucket, "thumbnails": n.thumbnails_bucket, "uploads": n.uploads_bucket},
        "queues": {
            "mediator": n.mediator_queue,
            "tick": n.tick_queue,
            "dead_letters": n.dead_letter_queue,
            "dead_slices": n.tick_dead_letter_queue,
            "worker_failures": n.worker_failure_queue,
        },
    }
    assert outputs["MediatorQueue"] == n.mediator_queue
    env.update(emulator.environment())
    env.update(source.environment())  # FETCH_ALLOWED_NETWORKS: its loopback address
    # The default source keyed (its keys in SSM, where a configured source's are by default); the overlay,
    # the demo's transparent one.
    template = source.origin + "/{client_id}_{client_secret}/{layers}/{width}x{height}/{center},{zoom}/{time}.png"
    env["MAP_SOURCES"] = json.dumps(
        {
            "default": "keyed",
            "sources": {
                "keyed": {"urlTemplate": template, "step": 300, "back": 7 * 86_400},
                "demo-overlay": {"preset": "demo-overlay", "origin": source.origin},
            },
        }
    )
    env["POWERTOOLS_LOG_LEVEL"] = "ERROR"
    return plan, env


def _run(built: bundle.Build, emulator: Any) -> dict[str, dict[str, Any]]:
    """The script's result on each SDK: the runtime's (boto3 1.34.145) and the lock's."""
    from local.mapsource import DemoMapSource

    runtimes = {"runtime": bundle.install_sdk(SDK_FOLDER), "locked": None}
    source = DemoMapSource().start()
    out = {}
    try:
        for name, runtime in runtimes.items():
            plan, env = _prepare(emulator, source)
            ran = bundle.run_in_bundle(built.out, SCRIPT, plan, timeout=300, runtime=runtime, env=env)
            if isinstance(ran, str):
                raise RuntimeError(ran)
            out[name] = ran.result
    finally:
        source.stop()
    return out


@pytest.fixture(scope="session")
def runs(built: bundle.Build, emulator: Any, tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Any:
    """The script's results, made once per run: xdist workers share them (the module's tests run on
    whichever workers are free)."""
    return made_once(tmp_path_factory, worker_id, "sdk-runs", lambda _: _run(built, emulator))


def test_each_sdk_is_the_one_asked_for(runs):
    assert runs["runtime"]["sdk"] == {"boto3": "1.34.145", "botocore": "1.34.145"}
    assert runs["runtime"]["modules"]["botocore"].startswith(str(SDK_FOLDER))
    import boto3
    import botocore

    assert runs["locked"]["sdk"] == {"boto3": boto3.__version__, "botocore": botocore.__version__}
    assert runs["locked"]["account"] == runs["runtime"]["account"] == ACCOUNT


@pytest.mark.parametrize("sdk", ["runtime", "locked"])
def test_nothing_raised_and_nothing_failed_but_what_was_provoked(runs, sdk):
    steps = runs[sdk]["steps"]
    raised = [s for s in steps if s["raised"] and s["raised"].split(":")[0] != s["expected_raise"]]
    assert raised == [], "\n".join(f"{s['step']} ({s['function']}): {s.get('traceback')}" for s in raised)
    assert [s["step"] for s in steps if s["expected_raise"]] == [s["step"] for s in steps if s["raised"]]
    failed = {(c["step"], c["service"], c["operation"], c["error"]) for c in runs[sdk]["calls"] if c["error"]}
    assert failed == EXPECTED_ERRORS
    answers = {s["step"]: s.get("answer") for s in steps}
    for step in [s for s in steps if s["function"] == "api_handler"]:
        assert step["answer"]["statusCode"] in (200, 201, 202, 302), (step["step"], step["answer"])
    assert answers["the authorizer"]["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    kinds = Counter(
        reply["type"]
        for s in steps
        if s["function"] in ("fetch_amp_image", "create_thumbnail", "create_gif", "send_email")
        for reply in [s["answer"]]
    )
    assert kinds == {
        "did-fetch-amp-image": 4,  # two on the schedule, one asked for now, one over a basemap
        "did-create-thumbnail": 3,  # one a frame, and the redriven one
        "did-create-gif": 1,
        "did-send-email": 1,
        "did-fail-create-thumbnail": 2,  # a frame that is not there, and again when redriven
    }, kinds


def _normal(value: Any) -> Any:
    """An answer with what differs from run to run set aside: times (and what they make: durations,
    costs), ids, receipt handles, the emulator's address, and what only a newer botocore asks for
    (checksums)."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items() if not _volatile(k)}
    if isinstance(value, list):  # in no order: items of one second come in the order of their random ids
        return sorted((_normal(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, str) and value.startswith("{"):
        try:  # a message kept whole (the event log's): its own times and durations set aside too
            return json.dumps(_normal(json.loads(value)), sort_keys=True)
        except ValueError:
            pass
    if isinstance(value, str):
        value = re.sub(r"\d{4}-\d\d-\d\dT\d\d(:\d\d(:\d\d(\.\d+)?)?)?(Z|[+-]\d\d:?\d\d)?", "<time>", value)
        value = re.sub(r"\?X-Amz-[^\"'\\\s<]*", "?<signed>", value)  # a presigned URL's query: its time, signature
        value = re.sub(r"http://127\.0\.0\.1:\d+", "<aws>", value)
        value = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>", value)
        value = re.sub(r"#[0-9a-f]{8}\b", "#<id>", value)
        return re.sub(r"\d{10,}", _time, value)
    if isinstance(value, int) and not isinstance(value, bool):
        return _time(value)
    if isinstance(value, float):
        return "<number>"
    return value


VOLATILE = {"MessageId", "ReceiptHandle", "MD5OfMessageBody", "MD5OfMessageAttributes", "SequenceNumber", "ETag"}
VOLATILE |= {"sesMessageId", "messageId", "ms", "usd", "tookMs", "frameAgeSeconds", "sinceStartMs", "sincePreviousMs"}
# An object's size, as its ETag: the source draws a frame for its valid time, which is of the run's clock, so
# the frame asked for now differs when the two runs fall in different five minutes (and the day's, on two days).
VOLATILE |= {"Size", "ContentLength", "bytes"}
# Members of an answer only a newer botocore's model has (it parses them; 1.34's drops them): checksums
# (newer botocore asks S3 for them), DynamoDB's WarmThroughput (DescribeTable: the app reads nothing of it).
NEWER_MODEL = {"WarmThroughput"}


def _volatile(key: str) -> bool:
    return key in VOLATILE or key in NEWER_MODEL or key.startswith(("Checksum", "ms.", "mbms."))


def _time(found: Any) -> Any:
    """An epoch time (seconds, ms or µs) within 500 days of now (TTLs reach a year ahead) as <time>."""
    text = found.group(0) if isinstance(found, re.Match) else str(found)
    number = int(text)
    now = time.time()
    for scale in (1, 1000, 1_000_000):
        if abs(number / scale - now) < 500 * 86_400:
            return "<time>"
    return text if isinstance(found, re.Match) else found


def _calls(run: dict[str, Any]) -> list[tuple[Any, ...]]:
    return sorted(
        (
            c["step"] or "",
            c["function"] or "",
            c["service"],
            c["operation"],
            c["status"],
            c["error"] or "",
            json.dumps(_normal(c["answer"]), sort_keys=True),
            c.get("body", ""),
        )
        for c in run["calls"]
    )


def test_both_sdks_answered_alike(runs):
    runtime, locked = _calls(runs["runtime"]), _calls(runs["locked"])
    assert len(runtime) == len(locked)
    differ = [(a, b) for a, b in zip(runtime, locked) if a != b]
    assert differ == [], "\n".join(f"{a}\n{b}\n" for a, b in differ[:10])
    steps = {
        s["step"] + "/" + s["function"]: json.dumps(_normal(s.get("answer")), sort_keys=True)
        for s in runs["runtime"]["steps"]
    }
    assert steps == {
        s["step"] + "/" + s["function"]: json.dumps(_normal(s.get("answer")), sort_keys=True)
        for s in runs["locked"]["steps"]
    }


@pytest.mark.parametrize("sdk", ["runtime", "locked"])
def test_the_operations_run_are_the_tables(runs, sdk):
    """Every operation the code calls ran here (an operation added to the code and the table but not
    to this test fails it), and none that the table lacks."""
    ran = {(c["service"], c["operation"]) for c in runs[sdk]["calls"]}
    assert ran == set(operations.OPERATIONS)


def test_each_function_declares_what_it_did(runs):
    """deploy/policies.py's `uses` name every operation each function made (what its policy is made of)."""
    from deploy.policies import Stage, uses

    declared = {
        function: {operation for use in used for operation in use.operations}
        for function, used in uses(Stage.from_config(CONFIG, bundle.STAGE)).items()
    }
    undeclared = {
        (call["function"], f"{call['service']}.{call['operation']}")
        for call in runs["locked"]["calls"]
        if call["function"] is not None and f"{call['service']}.{call['operation']}" not in declared[call["function"]]
    }
    assert undeclared == set()


def test_each_function_may_do_what_it_did(runs):
    """What IAM checks for each operation a function made (the table says), against the function's
    committed policy of the stage: a missing key's 404 (s3:ListBucket, no s3:prefix) included."""
    policies = {
        function: json.loads((ROOT / ".chalice" / STAGE["lambda_functions"][function]["iam_policy_file"]).read_text())
        for function in FUNCTIONS
    }
    denied = []
    for call in runs["locked"]["calls"]:
        if call["function"] is None:
            continue
        for request in operations.requests(
            call["service"],
            call["operation"],
            call["params"],
            region=REGION,
            account=ACCOUNT,
            presigned=bool(call.get("presigned")),
        ):
            if not allowed(policies[call["function"]], request.action, request.resource, request.context):
                denied.append((call["function"], call["step"], request))
    assert denied == [], "\n".join(map(str, denied))
