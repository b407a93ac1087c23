"""What the outbox stores for each event: the body in its subscriber's format, and when it is due.

The store calls a :data:`Planner` for every event it writes, as it prepares the transaction
that advances the chain cursor, so it has to be pure and fast. :class:`OutboxPlanner` renders each
subscription's payload format and applies its delivery delay (BLOX's delayed broadcast).
Given the daemon's live subscription registry, it reads each event's subscription at that
moment, so subscriptions created through the API or changed by a reload use their own
settings from their first event on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
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
    """Renders events for the subscriptions they belong to; unknown ones get the defaults.

    A mapping of id to subscription is read at each event (pass the live registry); any other
    iterable of subscriptions is a fixed set.
    """

    def __init__(self, subscriptions: Mapping[str, Subscription] | Iterable[Subscription]) -> None:
        self._subs: Mapping[str, Subscription] = (
            subscriptions
            if isinstance(subscriptions, Mapping)
            else {s.id: s for s in subscriptions}
        )

    def __call__(self, event: Event) -> PlannedDelivery:
        sub = self._subs.get(event.subscription_id)
        settings = _DEFAULT if sub is None else sub.delivery
        body = render(event, settings.format, settings.format_options)
        return PlannedDelivery(body, event.created_at + settings.delay_s)


def native_planner(event: Event) -> PlannedDelivery:
    """The native envelope, due at once: what a store opened without subscriptions writes."""
    return PlannedDelivery(
        render(event, _DEFAULT.format, _DEFAULT.format_options), event.created_at
    )
