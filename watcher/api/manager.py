"""Changes to API-managed subscriptions: the store first, then the live registry.

Each change is validated, written to the store (so it survives a restart) and only then
installed in the :class:`~watcher.registry.SubscriptionRegistry`, which hands it to the
running followers and the delivery worker. Changes are serialised by a lock, so two
concurrent updates of one subscription cannot interleave their read and write.

Subscriptions from the configuration file are listed too but their definitions are
read-only here: changing one through the API answers 409 Conflict (edit the file and reload
with SIGHUP instead). Enabling and disabling act on the delivery state, not the definition,
and work for both.

A rotated secret does not stop signing at once: for ``rotation_overlap_s`` both the new and
the old secret sign every webhook (Standard Webhooks sends the signatures space-separated),
so receivers can switch to the new secret without losing a message.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from watcher import addresses
from watcher.api.errors import ConflictError, FieldError, InvalidError, NotFoundError
from watcher.api.specs import (
    AddressesBody,
    Context,
    WebhookCreate,
    WebhookFields,
    WebhookView,
    build,
    normalise,
    normalise_addresses,
    parse_model,
    view,
)
from watcher.chain_config import address_reader
from watcher.config import DEFAULT_ROTATION_OVERLAP_S
from watcher.models import JSONObject
from watcher.registry import Entry, Source, SubscriptionRegistry
from watcher.signing import SECRET_PREFIX
from watcher.store import StoredSubscription, SubscriptionState

log = structlog.get_logger()

SECRET_BYTES = 32


class WebhookStore(Protocol):
    """What the manager needs from the store."""

    async def add_api_subscription(self, sub: StoredSubscription) -> bool: ...

    async def update_api_subscription(
        self, subscription_id: str, spec: JSONObject, now: float
    ) -> bool: ...

    async def rotate_api_secret(
        self, subscription_id: str, secret: str, previous_until: float | None, now: float
    ) -> bool: ...

    async def delete_api_subscription(self, subscription_id: str) -> bool: ...

    async def set_subscription_status(
        self, subscription_id: str, status: str, reason: str | None, now: float
    ) -> bool: ...

    async def subscription_states(
        self, ids: Sequence[str] | None = None
    ) -> list[SubscriptionState]: ...


@dataclass(frozen=True, slots=True)
class Keys:
    """An API subscription's signing secrets: the current one, and a rotated-out one."""

    secret: str = field(repr=False)
    previous: str | None = field(default=None, repr=False)
    previous_until: float | None = None


def new_secret() -> str:
    """A fresh Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_id() -> str:
    return "wh_" + secrets.token_hex(8)


class WebhookManager:
    """Create, change, rotate, enable, disable and delete subscriptions."""

    def __init__(
        self,
        store: WebhookStore,
        registry: SubscriptionRegistry,
        context: Context,
        clock: Callable[[], float] = time.time,
        *,
        rotation_overlap_s: float = DEFAULT_ROTATION_OVERLAP_S,
        on_enabled: Callable[[], None] = lambda: None,
        on_disabled: Callable[[str], None] = lambda _: None,
    ) -> None:
        self._store = store
        self._registry = registry
        self._context = context
        self._clock = clock
        self._overlap_s = rotation_overlap_s
        self._on_enabled = on_enabled
        self._on_disabled = on_disabled
        self._keys: dict[str, Keys] = {}
        self._lock = asyncio.Lock()

    def remember_keys(self, subscription_id: str, keys: Keys) -> None:
        """Keep the stored secrets of an API subscription loaded at start-up."""
        self._keys[subscription_id] = keys

    def entries(self) -> list[Entry]:
        return self._registry.entries()

    def get(self, subscription_id: str) -> Entry:
        entry = self._registry.entry(subscription_id)
        if entry is None:
            raise NotFoundError(f"no webhook with id '{subscription_id}'")
        return entry

    async def views(self, entries: Sequence[Entry]) -> list[WebhookView]:
        """How the API shows ``entries``, with their delivery state read from the store."""
        states = await self._store.subscription_states([e.id for e in entries])
        by_id = {s.health.id: s for s in states}
        return [view(e, by_id.get(e.id), self._context.delivery) for e in entries]

    async def create(self, body: Any) -> tuple[Entry, str]:
        """A new subscription from a POST body; returns it and its secret."""
        request = parse_model(WebhookCreate, body)
        fields = WebhookFields.model_validate(
            request.model_dump(exclude={"id"}, exclude_unset=True)
        )
        spec = normalise(fields, self._context)
        async with self._lock:
            subscription_id = request.id or new_id()
            if self._registry.entry(subscription_id) is not None:
                raise ConflictError(
                    "a webhook with this id exists",
                    [FieldError("id", f"'{subscription_id}' is already used")],
                )
            keys = Keys(new_secret())
            now = self._clock()
            stored = StoredSubscription(subscription_id, spec, keys.secret, now, now)
            if not await self._store.add_api_subscription(stored):
                raise ConflictError(
                    "a webhook with this id exists",
                    [FieldError("id", f"'{subscription_id}' is already used")],
                )
            # Explicitly, so that an id used before does not inherit its old status.
            await self._set_status(subscription_id, fields.enabled is not False, now)
            entry = self._install(subscription_id, spec, keys, now, now)
        log.info("webhook_created", subscription=subscription_id, chain=spec["chain"])
        return entry, keys.secret

    async def replace(self, subscription_id: str, body: Any) -> Entry:
        """PUT: a whole new definition (absent fields take their defaults)."""
        fields = parse_model(WebhookFields, body)
        return await self._update(subscription_id, lambda _: fields)

    async def patch(self, subscription_id: str, body: Any) -> Entry:
        """PATCH: the fields given replace those stored; the others are kept."""
        if not isinstance(body, dict):
            raise InvalidError(
                "the request body is invalid", [FieldError("", "must be a JSON object")]
            )
        unknown = [k for k in body if k not in WebhookFields.model_fields]
        if unknown:
            errors = [FieldError(k, "is not a known field") for k in unknown]
            raise InvalidError("the request body is invalid", errors)
        return await self._update(
            subscription_id, lambda spec: parse_model(WebhookFields, {**spec, **body})
        )

    async def add_addresses(self, subscription_id: str, body: Any) -> Entry:
        """Watch more addresses; the ones already watched are kept."""
        request = parse_model(AddressesBody, body)

        def with_new(spec: Mapping[str, Any]) -> WebhookFields:
            new = normalise_addresses(request.addresses, self._reader(spec["chain"]))
            return parse_model(WebhookFields, {**spec, "addresses": [*spec["addresses"], *new]})

        return await self._update(subscription_id, with_new)

    async def remove_address(self, subscription_id: str, address: str) -> Entry:
        """Stop watching one address."""

        def without(spec: Mapping[str, Any]) -> WebhookFields:
            try:
                target = self._reader(spec["chain"])(address)
            except ValueError as exc:
                raise NotFoundError(f"'{address}' is not a watched address: {exc}") from None
            if target not in spec["addresses"]:
                raise NotFoundError(f"'{address}' is not watched by '{subscription_id}'")
            kept = [a for a in spec["addresses"] if a != target]
            return parse_model(WebhookFields, {**spec, "addresses": kept})

        return await self._update(subscription_id, without)

    def _reader(self, chain_name: str) -> Callable[[str], str]:
        """How addresses of ``chain_name`` are validated and written (Ethereum if unknown)."""
        chain = self._context.chains.get(chain_name)
        return address_reader(chain) if chain is not None else addresses.normalize_ethereum

    async def delete(self, subscription_id: str) -> None:
        async with self._lock:
            self._writable(subscription_id)
            await self._store.delete_api_subscription(subscription_id)
            self._registry.remove(subscription_id)
            self._keys.pop(subscription_id, None)
        log.info("webhook_deleted", subscription=subscription_id)

    async def set_enabled(self, subscription_id: str, enabled: bool) -> Entry:
        """Enable (the backlog is sent at once) or disable a file or API subscription."""
        async with self._lock:
            entry = self.get(subscription_id)
            await self._set_status(subscription_id, enabled, self._clock())
        return entry

    async def rotate_secret(
        self, subscription_id: str, overlap_s: float | None = None
    ) -> tuple[str, float | None]:
        """A new signing secret, used from the next attempt on; the old one signs as well
        until the returned time (None when ``overlap_s`` is 0)."""
        overlap = self._overlap_s if overlap_s is None else overlap_s
        async with self._lock:
            entry = self._writable(subscription_id)
            secret = new_secret()
            now = self._clock()
            until = now + overlap if overlap > 0 else None
            if not await self._store.rotate_api_secret(subscription_id, secret, until, now):
                raise NotFoundError(f"no webhook with id '{subscription_id}'")
            old = self._keys[subscription_id]
            keys = Keys(secret, old.secret if until is not None else None, until)
            assert entry.spec is not None
            assert entry.created_at is not None
            self._install(subscription_id, entry.spec, keys, entry.created_at, now)
        log.info("webhook_secret_rotated", subscription=subscription_id, overlap_s=overlap)
        return secret, until

    async def _update(
        self, subscription_id: str, change: Callable[[Mapping[str, Any]], WebhookFields]
    ) -> Entry:
        async with self._lock:
            entry = self._writable(subscription_id)
            assert entry.spec is not None
            assert entry.created_at is not None
            fields = change(entry.spec)
            spec = normalise(fields, self._context)
            now = self._clock()
            if not await self._store.update_api_subscription(subscription_id, spec, now):
                raise NotFoundError(f"no webhook with id '{subscription_id}'")
            if fields.enabled is not None:
                await self._set_status(subscription_id, fields.enabled, now)
            keys = self._keys[subscription_id]
            updated = self._install(subscription_id, spec, keys, entry.created_at, now)
        log.info("webhook_updated", subscription=subscription_id, chain=spec["chain"])
        return updated

    async def _set_status(self, subscription_id: str, enabled: bool, now: float) -> None:
        status = "active" if enabled else "disabled"
        reason = None if enabled else "disabled through the admin API"
        if await self._store.set_subscription_status(subscription_id, status, reason, now):
            log.info(
                "subscription_enabled" if enabled else "subscription_disabled",
                subscription=subscription_id,
                reason=reason,
            )
            if enabled:
                self._on_enabled()
            else:
                self._on_disabled(subscription_id)

    def _writable(self, subscription_id: str) -> Entry:
        entry = self.get(subscription_id)
        if entry.source is not Source.API:
            raise ConflictError(
                f"webhook '{subscription_id}' is defined in the configuration file and is "
                "read-only here: change the file and reload (SIGHUP)"
            )
        return entry

    def _install(
        self, subscription_id: str, spec: JSONObject, keys: Keys, created: float, updated: float
    ) -> Entry:
        sub = build(
            subscription_id, spec, keys.secret, self._context, keys.previous, keys.previous_until
        )
        entry = Entry(subscription_id, Source.API, sub, spec, created, updated)
        self._keys[subscription_id] = keys
        self._registry.put(entry)
        return entry
