"""SES: an HTML email with its plain-text alternative."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import PermanentError
from .clients import error_code

if TYPE_CHECKING:
    from mypy_boto3_ses import SESClient
else:
    SESClient = Any

# SES errors that no retry can mend; anything else (throttling, 5xx) may pass.
REFUSALS = {
    "MessageRejected",
    "MailFromDomainNotVerifiedException",
    "InvalidParameterValue",
    "ConfigurationSetDoesNotExistException",
    "AccountSendingPausedException",
}


class Mail:
    def __init__(self, client: SESClient):
        self._ses = client

    def send(self, sender: str, to: list[str], subject: str, html: str, text: str) -> str:
        """Send; SES's message id. A refusal no retry can mend is a PermanentError."""
        try:
            response = self._ses.send_email(
                Source=sender,
                Destination={"ToAddresses": to},
                Message={
                    "Subject": {"Data": subject, "Charset": "UTF-8"},
                    "Body": {"Html": {"Data": html, "Charset": "UTF-8"}, "Text": {"Data": text, "Charset": "UTF-8"}},
                },
            )
        except Exception as exc:
            code = error_code(exc)
            if code in REFUSALS:
                message = getattr(exc, "response", {}).get("Error", {}).get("Message", "")
                raise PermanentError(f"SES refused the email: {code}: {message}") from None
            raise
        return response["MessageId"]
