"""The deliveries resource and the webhook actions: request and response models. Pure.

A delivery is one event for one webhook, with its status (``pending``, ``succeeded``,
``failed``: gave up after the last retry), and the attempt log holds every POST made for it
(BlockSDK's response list, Bloock's attempt log). Times are RFC 3339 in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from watcher.api.errors import BadRequestError, FieldError
from watcher.api.pagination import Page
from watcher.attempts import AttemptResult
from watcher.models import Event
from watcher.policy import DeliveryStatus, ErrorClass
from watcher.store import AttemptRecord, DeliveryRecord

# SQLite integers are signed 64-bit: a larger id cannot exist.
MAX_DELIVERY_ID = 2**63 - 1


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _text_only(value: object) -> object:
    # pydantic would also take a number of seconds; the document promises an RFC 3339 string.
    if not isinstance(value, (str, datetime)):
        raise ValueError("must be an RFC 3339 time, e.g. 2026-11-23T10:00:00Z")
    return value


Time = Annotated[datetime, BeforeValidator(_text_only)]


class ReplayBody(_Body):
    """``POST /api/webhooks/{id}/replay``: the window in which the deliveries failed."""

    since: Time = Field(description="Re-queue deliveries that failed at or after this time.")
    until: Time | None = Field(default=None, description="... and before this; default now.")


class DeliveryView(BaseModel):
    """One delivery: an event for one webhook, and where its sending stands."""

    id: int
    webhook_id: str
    event_id: str = Field(description="Also the webhook-id header: receivers deduplicate on it.")
    event_type: str
    status: DeliveryStatus
    in_flight: bool = Field(description="An attempt is being made right now.")
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = Field(description="When a pending one is next sent.")
    last_attempt_at: datetime | None
    completed_at: datetime | None = Field(description="When it succeeded or was given up.")
    last_status_code: int | None
    last_error: str | None


class AttemptView(BaseModel):
    """One POST of a delivery, as the attempt log keeps it."""

    id: int
    request_id: str = Field(description="Also sent as the X-Request-Id header.")
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error_class: ErrorClass | None
    error: str | None
    response_body: str = Field(description="The first 20 KB of the answer.")
    response_headers: dict[str, str] = Field(description="Credential-like values redacted.")


class DeliveryDetail(DeliveryView):
    """A delivery with the exact body sent on every attempt, and its attempt log."""

    request_body: str
    attempt_log: list[AttemptView]


class ReplayResult(BaseModel):
    """What a replay re-queued."""

    webhook_id: str
    since: datetime
    until: datetime
    requeued: int


class TestResult(BaseModel):
    """How the endpoint answered a signed sample event (nothing is recorded)."""

    webhook_id: str
    event_id: str
    request_id: str
    ok: bool = Field(description="Whether the endpoint answered 2xx.")
    status_code: int | None
    error_class: ErrorClass | None
    error: str | None
    duration_ms: int
    response_body: str


@dataclass(frozen=True, slots=True)
class DeliveryQuery:
    """The filters of a deliveries list, read from its query string."""

    page: Page
    status: DeliveryStatus | None = None
    webhook_id: str | None = None
    since: float | None = None
    until: float | None = None
    # The filters as given, for the page links.
    params: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_query(cls, query: Mapping[str, str], *, by_webhook: bool = True) -> DeliveryQuery:
        """Read the filters; BadRequestError naming each bad parameter."""
        errors: list[FieldError] = []
        try:
            page = Page.from_query(query)
        except BadRequestError as exc:
            errors.extend(exc.errors)
            page = Page()
        status = None
        raw = query.get("status")
        if raw is not None:
            try:
                status = DeliveryStatus(raw)
            except ValueError:
                allowed = ", ".join(s.value for s in DeliveryStatus)
                errors.append(FieldError("status", f"must be one of {allowed}"))
        since = _time_param(query, "since", errors)
        until = _time_param(query, "until", errors)
        if errors:
            raise BadRequestError("invalid query parameters", errors)
        names = ("status", "since", "until", *(("webhook_id",) if by_webhook else ()))
        params = {n: query[n] for n in names if n in query}
        return cls(page, status, params.get("webhook_id"), since, until, params)

    def for_webhook(self, webhook_id: str) -> DeliveryQuery:
        """The same filters, for one webhook's deliveries."""
        return replace(self, webhook_id=webhook_id)


def delivery_view(record: DeliveryRecord) -> DeliveryView:
    """How the API shows a delivery."""
    pending = record.status == DeliveryStatus.PENDING
    return DeliveryView(
        id=record.id,
        webhook_id=record.subscription_id,
        event_id=record.event_id,
        event_type=record.event_type,
        status=DeliveryStatus(record.status),
        in_flight=record.leased and pending,
        attempts=record.attempts,
        created_at=_time(record.created_at),
        next_attempt_at=_time(record.next_attempt_at) if pending else None,
        last_attempt_at=_optional_time(record.last_attempt_at),
        completed_at=_optional_time(record.completed_at),
        last_status_code=record.last_status,
        last_error=record.last_error,
    )


def delivery_detail(record: DeliveryRecord, attempts: list[AttemptRecord]) -> DeliveryDetail:
    """A delivery with its body and attempt log."""
    return DeliveryDetail(
        **delivery_view(record).model_dump(),
        request_body=_text(record.body),
        attempt_log=[
            AttemptView(
                id=a.id,
                request_id=a.request_id,
                started_at=_time(a.started_at),
                duration_ms=a.duration_ms,
                status_code=a.status_code,
                error_class=ErrorClass(a.error_class) if a.error_class else None,
                error=a.error,
                response_body=_text(a.response_body),
                response_headers=a.response_headers,
            )
            for a in attempts
        ],
    )


def test_result(webhook_id: str, event: Event, result: AttemptResult) -> TestResult:
    """How the API reports a test-fire."""
    return TestResult(
        webhook_id=webhook_id,
        event_id=event.id,
        request_id=result.request_id,
        ok=result.ok,
        status_code=result.status,
        error_class=result.error_class,
        error=result.error,
        duration_ms=result.duration_ms,
        response_body=_text(result.response_body),
    )


def timestamp(value: datetime) -> float:
    """Unix time of ``value``; a time without a zone is UTC."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _time_param(query: Mapping[str, str], name: str, errors: list[FieldError]) -> float | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        return timestamp(datetime.fromisoformat(raw.strip().upper()))
    except (ValueError, OverflowError):
        errors.append(FieldError(name, "must be an RFC 3339 time, e.g. 2026-11-23T10:00:00Z"))
        return None


def _time(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def _optional_time(at: float | None) -> datetime | None:
    return None if at is None else _time(at)


def _text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")
