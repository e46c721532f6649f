"""weathergif: weather map frames to animated GIFs, thumbnails and emails.

The table of contents of the whole app: every handler Lambda runs, each one call
into chalicelib. Workers take "please-*" messages from their SNS topic and answer
the mediator's SQS queue with "did-*" messages; the REST API configures animations,
triggers runs and shows results.
"""

from chalice import Chalice, Rate

from chalicelib import entry
from chalicelib.settings import FETCH_EVERY_MINUTES, names

app = Chalice(app_name="weathergif", configure_logs=False)  # the app's logger is chalicelib/log.py's: JSON, once
NAMES = names()


# The mediator -----------------------------------------------------------------------


@app.on_sqs_message(queue=NAMES.mediator_queue, batch_size=10)
def mediate(event):
    """Every did-message: record it, decide, ask the workers (no record lost, however deployed)."""
    return entry.mediate(event)


@app.on_sqs_message(queue=NAMES.tick_queue, batch_size=1)
def tick(event):
    """A slice of a schedule's tick (a directory shard's page, or what failed of one), on its own."""
    return entry.tick(event)


@app.on_sqs_message(queue=NAMES.dead_letter_queue, batch_size=10)
def keep_dead_letters(event):
    """Messages the mediator gave up on: kept in its table, shown and redrivable."""
    return entry.keep_dead_letters(event)


@app.on_sqs_message(queue=NAMES.tick_dead_letter_queue, batch_size=10)
def keep_dead_slices(event):
    """Tick slices given up on (the tick queue is a standard queue: its dead letters have their own)."""
    return entry.keep_dead_letters(event)


@app.on_sqs_message(queue=NAMES.worker_failure_queue, batch_size=10)
def worker_failed(event):
    """A worker's invocation that failed for good (after Lambda's retries): did-fail to the mediator."""
    return entry.worker_failed(event)


@app.schedule(Rate(FETCH_EVERY_MINUTES, unit=Rate.MINUTES))
def fetch_due_frames(event):
    """Ask for each enabled animation's next frame, on its interval grid (fanned out: see tick)."""
    return entry.fetch_due_frames(event)


@app.schedule(Rate(1, unit=Rate.HOURS))
def rebuild_gifs(event):
    """A GIF of the newest frames of each animation with frames newer than its latest GIF (fanned out)."""
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


# REST API -----------------------------------------------------------------------------
# Each route's body is the function of its own name in the module entry.<module>() names
# (chalicelib/api/<module>.py, imported on the first request); openapi.json is made from these
# routes and what each body's module says beside it.


@app.authorizer()
def token(auth_request):
    """Routes that change anything need `Authorization: Bearer <API_TOKEN>`."""
    return entry.authorize(auth_request)


@app.route("/", methods=["GET"])
def page():
    """The web page: every animation's latest GIF, thumbnails, runs and failures."""
    return entry.site().page()


@app.route("/health", methods=["GET"])
def health():
    return entry.site().health()


@app.route("/openapi.json", methods=["GET"])
def openapi():
    return entry.site().openapi(app.routes)


@app.route("/animations", methods=["GET"])
def list_animations():
    return entry.animations().list_animations(app.current_request)


@app.route("/summary", methods=["GET"])
def summary():
    """The page's cards, a page at a time: one request each."""
    return entry.animations().summary(app.current_request)


@app.route("/animations/{image_id}", methods=["GET"])
def get_animation(image_id):
    return entry.animations().get_animation(app.current_request, image_id)


@app.route("/animations/{image_id}", methods=["PUT"], authorizer=token)
def put_animation(image_id):
    return entry.animations().put_animation(app.current_request, image_id)


@app.route("/animations/{image_id}", methods=["DELETE"], authorizer=token)
def delete_animation(image_id):
    return entry.animations().delete_animation(app.current_request, image_id)


@app.route("/animations/{image_id}/fetch", methods=["POST"], authorizer=token)
def fetch_now(image_id):
    return entry.animations().fetch_now(image_id)


@app.route("/animations/{image_id}/gif", methods=["POST"], authorizer=token)
def gif_now(image_id):
    return entry.animations().gif_now(image_id)


@app.route("/animations/{image_id}/frames", methods=["GET"])
def frames(image_id):
    return entry.images().frames(app.current_request, image_id)


@app.route("/animations/{image_id}/gifs", methods=["GET"])
def gifs(image_id):
    return entry.images().gifs(app.current_request, image_id)


@app.route("/animations/{image_id}/gifs/{valid_time}/image", methods=["GET"])
def gif_image(image_id, valid_time):
    """The links in emails and answers: a redirect to a freshly presigned URL of the image."""
    return entry.images().gif_image(app.current_request, image_id, valid_time)


@app.route("/animations/{image_id}/frames/{valid_time}/image", methods=["GET"])
def frame_image(image_id, valid_time):
    return entry.images().frame_image(app.current_request, image_id, valid_time)


@app.route("/animations/{image_id}/frames/{valid_time}/thumbnails/{label}", methods=["GET"])
def thumbnail_image(image_id, valid_time, label):
    return entry.images().thumbnail_image(app.current_request, image_id, valid_time, label)


@app.route("/animations/{image_id}/failures", methods=["GET"])
def animation_failures(image_id):
    return entry.runs().animation_failures(app.current_request, image_id)


@app.route("/animations/{image_id}/failures/redrive", methods=["POST"], authorizer=token)
def redrive_failures(image_id):
    return entry.runs().redrive_failures(image_id)


@app.route("/sources", methods=["GET"])
def list_sources():
    """The map sources an animation may fetch from, the default marked; never a key."""
    return entry.sources().list_sources()


@app.route("/status", methods=["GET"])
def status():
    """What the alarms watch: queue depths, stale animations, failures in the last hour."""
    return entry.operations().status(app.current_request)


@app.route("/metrics", methods=["GET"])
def metrics_summary():
    return entry.operations().metrics_summary(app.current_request)


@app.route("/animations/{image_id}/cost", methods=["GET"])
def animation_cost(image_id):
    return entry.operations().animation_cost(image_id)


@app.route("/cost", methods=["GET"])
def shared_cost():
    return entry.operations().shared_cost()


@app.route("/runs/{run_id}", methods=["GET"], authorizer=token)
def timeline(run_id):
    return entry.runs().timeline(run_id)


@app.route("/failures", methods=["GET"], authorizer=token)
def dead_letters():
    return entry.runs().dead_letters()


@app.route("/failures/redrive", methods=["POST"], authorizer=token)
def redrive():
    return entry.runs().redrive()
