"""weathergif: weather map frames to animated GIFs, thumbnails and emails.

The table of contents of the whole app: every handler Lambda runs, each one call
into chalicelib. Workers take "please-*" messages from their SNS topic and answer
the mediator's SQS queue with "did-*" messages.
"""

from chalice import Chalice

from chalicelib import entry
from chalicelib.settings import names

app = Chalice(app_name="weathergif")
NAMES = names()


# Workers ------------------------------------------------------------------------


@app.on_sns_message(topic=NAMES.fetch_topic)
def fetch_amp_image(event):
    """please-fetch-amp-image: a map frame from the map source into the frames bucket."""
    return entry.fetch_amp_image(event)


@app.on_sns_message(topic=NAMES.thumbnail_topic)
def create_thumbnail(event):
    """please-create-thumbnail: a cover or contain thumbnail of a stored frame."""
    return entry.create_thumbnail(event)


@app.on_sns_message(topic=NAMES.gif_topic)
def create_gif(event):
    """please-create-gif: an animated GIF of stored frames, in time order."""
    return entry.create_gif(event)


@app.on_sns_message(topic=NAMES.email_topic)
def send_email(event):
    """please-send-email: an HTML email with a plain-text alternative, through SES."""
    return entry.send_email(event)


@app.on_s3_event(bucket=NAMES.uploads_bucket, events=["s3:ObjectCreated:*"])
def thumbnail_upload(event):
    """An upload named like canyon-400x400.jpg: its 400x400 thumbnail."""
    return entry.thumbnail_upload(event)
