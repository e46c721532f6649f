"""Emailer: please-send-email -> an HTML email (with a plain-text alternative) via SES -> did-send-email."""

from __future__ import annotations

from email.headerregistry import Address
from email.utils import parseaddr

from botocore.exceptions import ClientError
from email_validator import EmailNotValidError, validate_email

from ..aws import client
from ..errors import PermanentError
from ..htmltext import html_to_text
from ..messages import DidSendEmail, PleaseSendEmail
from .runner import Worker

# SES errors that no retry can mend; anything else (throttling, 5xx) is retried.
_REFUSALS = {
    "MessageRejected",
    "MailFromDomainNotVerifiedException",
    "InvalidParameterValue",
    "ConfigurationSetDoesNotExistException",
    "AccountSendingPausedException",
}


def mailbox(value: str, field: str) -> str:
    """A validated address, optionally with a display name ("Name <a@b.example>")."""
    name, address = parseaddr(value)
    if not address or "," in value or ";" in value:
        raise PermanentError(f"'{field}' {value!r} is not one email address")
    try:
        checked = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise PermanentError(f"'{field}' {value!r} is not a valid address: {exc}") from None
    if not name:
        return checked.normalized
    local, domain = checked.normalized.rsplit("@", 1)
    return str(Address(display_name=name, username=local, domain=domain))


def send_email(request: PleaseSendEmail) -> DidSendEmail:
    recipients = [mailbox(address, f"to.{i}") for i, address in enumerate(request.to)]
    sender = mailbox(request.from_, "from")
    try:
        response = client("ses").send_email(
            Source=sender,
            Destination={"ToAddresses": recipients},
            Message={
                "Subject": {"Data": request.subject, "Charset": "UTF-8"},
                "Body": {
                    "Html": {"Data": request.body, "Charset": "UTF-8"},
                    "Text": {"Data": html_to_text(request.body), "Charset": "UTF-8"},
                },
            },
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _REFUSALS:
            raise PermanentError(f"SES refused the email: {code}: {exc.response['Error'].get('Message', '')}") from None
        raise
    return DidSendEmail(
        to=recipients,
        from_=sender,
        subject=request.subject,
        body=request.body,
        sesMessageId=response["MessageId"],
        **request.extras,
    )


WORKER = Worker("send-email", PleaseSendEmail, send_email)
