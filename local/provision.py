"""Create the resources the app names (buckets, queue and its dead-letter queue, topics)."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.aws import client
from chalicelib.settings import Names, names

MAX_RECEIVES = 5


def provision(resource_names: Names | None = None, sender: str | None = None) -> dict[str, Any]:
    n = resource_names or names()
    s3, sqs, sns = client("s3"), client("sqs"), client("sns")
    for bucket in (n.frames_bucket, n.thumbnails_bucket, n.gifs_bucket, n.uploads_bucket):
        s3.create_bucket(Bucket=bucket)
    dlq_url = sqs.create_queue(QueueName=f"{n.mediator_queue}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=n.mediator_queue,
        Attributes={
            "VisibilityTimeout": "180",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES}),
        },
    )["QueueUrl"]
    topics = {
        name: sns.create_topic(Name=name)["TopicArn"]
        for name in (n.fetch_topic, n.thumbnail_topic, n.gif_topic, n.email_topic)
    }
    if sender:
        client("ses").verify_email_identity(EmailAddress=sender)
    return {"queue_url": queue_url, "dlq_url": dlq_url, "topics": topics}
