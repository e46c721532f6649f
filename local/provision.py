"""Create the resources the app names: buckets, table, queue and its dead-letter queue, topics."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.aws import client
from chalicelib.settings import Names, names

MAX_RECEIVES = 5


def provision(
    resource_names: Names | None = None,
    sender: str | None = None,
    visibility_timeout: int = 180,
    max_receives: int = MAX_RECEIVES,
) -> dict[str, Any]:
    n = resource_names or names()
    s3, sqs, sns = client("s3"), client("sqs"), client("sns")
    for bucket in (n.frames_bucket, n.thumbnails_bucket, n.gifs_bucket, n.uploads_bucket):
        s3.create_bucket(Bucket=bucket)
    dlq_url = sqs.create_queue(QueueName=f"{n.mediator_queue}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=n.mediator_queue,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives}),
        },
    )["QueueUrl"]
    topics = {
        name: sns.create_topic(Name=name)["TopicArn"]
        for name in (n.fetch_topic, n.thumbnail_topic, n.gif_topic, n.email_topic)
    }
    dynamodb = client("dynamodb")
    dynamodb.create_table(
        TableName=n.table,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=n.table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"}
    )
    if sender:
        client("ses").verify_email_identity(EmailAddress=sender)
    return {"queue_url": queue_url, "dlq_url": dlq_url, "topics": topics}
