"""Emailer: please-send-email -> an HTML email (with a plain-text alternative) via SES -> did-send-email."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ..addresses import mailbox
from ..aws import mail, table
from ..htmltext import html_to_text
from ..messages import DidSendEmail, PleaseSendEmail
from ..settings import names
from .runner import Worker, lambda_context, reply

ONCE_FOR_DAYS = 7


def send_email(request: PleaseSendEmail) -> DidSendEmail:
    recipients = [mailbox(address, f"to.{i}") for i, address in enumerate(request.to)]
    sender = mailbox(request.from_, "from")
    email = {
        "emailId": request.email_id,
        "to": recipients,
        "from": sender,
        "subject": request.subject,
        "html": request.body,
    }
    deliver = _deliver_once(names().table) if email["emailId"] else _deliver
    response = deliver(email=email)
    return reply(
        DidSendEmail,
        request,
        to=recipients,
        from_=sender,
        subject=request.subject,
        body=request.body,
        ses_message_id=response["messageId"],
        email_id=request.email_id,  # the GIF whose email this was, for the mediator to record it sent
        image_id=request.image_id,
        valid_time=request.valid_time,
    )


def _deliver(email: dict[str, Any]) -> dict[str, str]:
    """Send through SES; a refusal no retry can mend is a PermanentError (a did-fail)."""
    text = html_to_text(email["html"])
    return {"messageId": mail().send(email["from"], email["to"], email["subject"], email["html"], text)}


@functools.cache
def _deliver_once(table_name: str) -> Callable[..., dict[str, str]]:
    """_deliver, at most once per emailId (Powertools idempotency, in the app's table).

    SNS may deliver a please-send-email twice, and the mediator may resend one after a
    crash: the second call answers the first one's result instead of sending again.
    (`table_name` keys the cache: another table, as in tests, gets a store of its own.)
    """
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function

    store = table().idempotency_store("EMAIL")
    config = IdempotencyConfig(event_key_jmespath="emailId", expires_after_seconds=ONCE_FOR_DAYS * 86400)
    once = idempotent_function(data_keyword_argument="email", persistence_store=store, config=config)(_deliver)

    @functools.wraps(_deliver)
    def deliver(email: dict[str, Any]) -> dict[str, str]:
        context = lambda_context.get()
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            config.register_lambda_context(context)  # an unfinished send expires with the invocation
        return once(email=email)

    return deliver


WORKER = Worker("send-email", PleaseSendEmail, send_email)
