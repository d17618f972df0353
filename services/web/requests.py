"""Path and query models shared by the services' APIs (validated, and shown in OpenAPI)."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from services.domain.branch import ID_PATTERN

TICKET_NUMBER = r"^[A-Z]{1,2}[0-9]{3,6}$"
NOTE_MAX = 500
# Whitespace a note may carry: kept as one space, since a note shows on one line.
_SPACES = {"\t", "\n", "\r", "\u2028", "\u2029"}


def clean_text(value: object) -> object:
    """Normalize free text a person typed: NFC, format characters (bidi overrides and isolates, zero-width
    characters, the BOM) removed, line breaks as spaces, trimmed; refuse control characters such as NUL.

    A note shows on a manager's phone and in reports: invisible characters could reorder or hide what it says.
    """
    if not isinstance(value, str):
        return value
    text = unicodedata.normalize("NFC", value)
    kept = []
    for char in text:
        if char in _SPACES:
            kept.append(" ")
            continue
        category = unicodedata.category(char)
        if category == "Cf":
            continue
        if category == "Cc":
            raise ValueError(f"control character U+{ord(char):04X} is not allowed in text")
        kept.append(char)
    return " ".join("".join(kept).split())


def _some(value: str) -> str:
    if not value:
        raise ValueError("text is empty once invisible characters and spaces are removed")
    return value


# Free text from a person (a note, a question, a reply): normalized, then 1 to NOTE_MAX characters.
Note = Annotated[str, BeforeValidator(clean_text), Field(max_length=NOTE_MAX), AfterValidator(_some)]


class Strict(BaseModel):
    """A request model that refuses unknown fields."""

    model_config = ConfigDict(extra="forbid", strict=True)


class BranchPath(BaseModel):
    branch: str = Field(pattern=ID_PATTERN, max_length=32)


class TicketPath(BranchPath):
    number: str = Field(pattern=TICKET_NUMBER, description="e.g. V001")


class CounterPath(BranchPath):
    counter: str = Field(pattern=ID_PATTERN, max_length=32)


class AlertPath(CounterPath):
    alert_id: str = Field(pattern=r"^[a-z0-9-]{1,64}$")


class PagePath(BranchPath):
    page_id: str = Field(pattern=r"^[a-z0-9-]{1,64}$")
