"""Path and query models shared by the services' APIs (validated, and shown in OpenAPI)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from services.common.config import ID_PATTERN

TICKET_NUMBER = r"^[A-Z]{1,2}[0-9]{3,6}$"


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
