"""weathergif: weather map frames to animated GIFs, thumbnails and emails.

The table of contents of the whole app: every handler Lambda runs, each one call
into chalicelib. Workers take "please-*" messages from their SNS topic and answer
the mediator's SQS queue with "did-*" messages.
"""

from chalice import Chalice, Rate

from chalicelib import entry
from chalicelib.settings import FETCH_EVERY_MINUTES, names

app = Chalice(app_name="weathergif")
NAMES = names()


# The mediator -----------------------------------------------------------------------


@app.on_sqs_message(queue=NAMES.mediator_queue, batch_size=10)
def mediate(event):
    """Every did-message: record it, decide, ask the workers (reports batch item failures)."""
    return entry.mediate(event)


@app.schedule(Rate(FETCH_EVERY_MINUTES, unit=Rate.MINUTES))
def fetch_due_frames(event):
    """Ask for each enabled animation's next frame, on its interval grid."""
    return entry.fetch_due_frames(event)


@app.schedule(Rate(1, unit=Rate.HOURS))
def rebuild_gifs(event):
    """A GIF of the newest frames of each animation with frames newer than its latest GIF."""
    return entry.rebuild_gifs(event)


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
