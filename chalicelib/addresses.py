"""Email addresses: one mailbox an entry, checked the same where it is configured (PUT) and used (the emailer)."""

from __future__ import annotations

from email.headerregistry import Address
from email.utils import parseaddr

from .errors import PermanentError


class AddressError(PermanentError, ValueError):
    """Not one valid address (a ValueError)."""


def mailbox(value: str, field: str | None = None) -> str:
    """A validated address, optionally with a display name ("Name <a@b.example>"), normalized.

    One address per entry (no lists, groups or line breaks); the address itself is checked
    by email-validator (syntax only: no DNS lookups).
    """
    from email_validator import EmailNotValidError, validate_email

    what = f"'{field}' {value!r}" if field else repr(value)
    if "\r" in value or "\n" in value:
        raise AddressError(f"{what} must not contain line breaks")
    name, address = parseaddr(value)
    if not address or "," in value or ";" in value:
        raise AddressError(f"{what} is not one email address")
    try:
        checked = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise AddressError(f"{what} is not a valid address: {exc}") from None
    if not name:
        return checked.normalized
    local, domain = checked.normalized.rsplit("@", 1)
    try:
        return str(Address(display_name=name, username=local, domain=domain))
    except (ValueError, TypeError) as exc:  # a display name the email package cannot write
        raise AddressError(f"{what} has a display name that cannot be written: {exc}") from None
