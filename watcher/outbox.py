"""What the outbox stores for each event: the body in its subscriber's format, and when it is due.

The store calls a :data:`Planner` for every event it writes, inside the transaction that
advances the chain cursor, so it has to be pure and fast. :class:`OutboxPlanner` renders each
subscription's payload format and applies its delivery delay (BLOX's delayed broadcast).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from watcher.formats import render
from watcher.models import DeliverySettings, Event, Subscription


@dataclass(frozen=True, slots=True)
class PlannedDelivery:
    """A delivery row to write: the exact body that will be signed and sent, and its due time."""

    body: bytes
    due_at: float


Planner = Callable[[Event], PlannedDelivery]

_DEFAULT = DeliverySettings()


class OutboxPlanner:
    """Renders events for the subscriptions they belong to; unknown ones get the defaults."""

    def __init__(self, subscriptions: Iterable[Subscription]) -> None:
        self._settings = {s.id: s.delivery for s in subscriptions}

    def __call__(self, event: Event) -> PlannedDelivery:
        settings = self._settings.get(event.subscription_id, _DEFAULT)
        body = render(event, settings.format, settings.format_options)
        return PlannedDelivery(body, event.created_at + settings.delay_s)


def native_planner(event: Event) -> PlannedDelivery:
    """The native envelope, due at once: what a store opened without subscriptions writes."""
    return PlannedDelivery(
        render(event, _DEFAULT.format, _DEFAULT.format_options), event.created_at
    )
