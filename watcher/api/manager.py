"""Changes to API-managed subscriptions: the store first, then the live registry.

Each change is validated, written to the store (so it survives a restart) and only then
installed in the :class:`~watcher.registry.SubscriptionRegistry`, which hands it to the
running followers and the delivery worker. Changes are serialised by a lock, so two
concurrent updates of one subscription cannot interleave their read and write.

Subscriptions from the configuration file are listed too but are read-only here: changing
one through the API answers 409 Conflict (edit the file and reload with SIGHUP instead).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import structlog

from watcher import addresses
from watcher.api.errors import ConflictError, FieldError, InvalidError, NotFoundError
from watcher.api.specs import (
    AddressesBody,
    Context,
    WebhookCreate,
    WebhookFields,
    build,
    normalise,
    normalise_addresses,
    parse_model,
)
from watcher.models import JSONObject
from watcher.registry import Entry, Source, SubscriptionRegistry
from watcher.signing import SECRET_PREFIX
from watcher.store import StoredSubscription

log = structlog.get_logger()

SECRET_BYTES = 32


class WebhookStore(Protocol):
    """What the manager needs from the store."""

    async def add_api_subscription(self, sub: StoredSubscription) -> bool: ...

    async def update_api_subscription(
        self, subscription_id: str, *, spec: JSONObject | None, secret: str | None, now: float
    ) -> bool: ...

    async def delete_api_subscription(self, subscription_id: str) -> bool: ...


def new_secret() -> str:
    """A fresh Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_id() -> str:
    return "wh_" + secrets.token_hex(8)


class WebhookManager:
    """Create, change, rotate and delete API-managed subscriptions."""

    def __init__(
        self,
        store: WebhookStore,
        registry: SubscriptionRegistry,
        context: Context,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._registry = registry
        self._context = context
        self._clock = clock
        self._secrets: dict[str, str] = {}
        self._lock = asyncio.Lock()

    def remember_secret(self, subscription_id: str, secret: str) -> None:
        """Keep the stored secret of an API subscription loaded at start-up."""
        self._secrets[subscription_id] = secret

    def entries(self) -> list[Entry]:
        return self._registry.entries()

    def get(self, subscription_id: str) -> Entry:
        entry = self._registry.entry(subscription_id)
        if entry is None:
            raise NotFoundError(f"no webhook with id '{subscription_id}'")
        return entry

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
            secret = new_secret()
            now = self._clock()
            stored = StoredSubscription(subscription_id, spec, secret, now, now)
            if not await self._store.add_api_subscription(stored):
                raise ConflictError(
                    "a webhook with this id exists",
                    [FieldError("id", f"'{subscription_id}' is already used")],
                )
            entry = self._install(subscription_id, spec, secret, now, now)
        log.info("webhook_created", subscription=subscription_id, chain=spec["chain"])
        return entry, secret

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
        new = normalise_addresses(request.addresses)
        return await self._update(
            subscription_id,
            lambda spec: parse_model(
                WebhookFields, {**spec, "addresses": [*spec["addresses"], *new]}
            ),
        )

    async def remove_address(self, subscription_id: str, address: str) -> Entry:
        """Stop watching one address."""
        try:
            target = addresses.normalize_ethereum(address)
        except ValueError as exc:
            raise NotFoundError(f"'{address}' is not a watched address: {exc}") from None

        def without(spec: Mapping[str, Any]) -> WebhookFields:
            if target not in spec["addresses"]:
                raise NotFoundError(f"'{address}' is not watched by '{subscription_id}'")
            kept = [a for a in spec["addresses"] if a != target]
            return parse_model(WebhookFields, {**spec, "addresses": kept})

        return await self._update(subscription_id, without)

    async def delete(self, subscription_id: str) -> None:
        async with self._lock:
            self._writable(subscription_id)
            await self._store.delete_api_subscription(subscription_id)
            self._registry.remove(subscription_id)
            self._secrets.pop(subscription_id, None)
        log.info("webhook_deleted", subscription=subscription_id)

    async def rotate_secret(self, subscription_id: str) -> str:
        """A new signing secret, used from the next delivery attempt on."""
        async with self._lock:
            entry = self._writable(subscription_id)
            secret = new_secret()
            now = self._clock()
            if not await self._store.update_api_subscription(
                subscription_id, spec=None, secret=secret, now=now
            ):
                raise NotFoundError(f"no webhook with id '{subscription_id}'")
            assert entry.spec is not None
            assert entry.created_at is not None
            self._install(subscription_id, entry.spec, secret, entry.created_at, now)
        log.info("webhook_secret_rotated", subscription=subscription_id)
        return secret

    async def _update(
        self, subscription_id: str, change: Callable[[Mapping[str, Any]], WebhookFields]
    ) -> Entry:
        async with self._lock:
            entry = self._writable(subscription_id)
            assert entry.spec is not None
            assert entry.created_at is not None
            spec = normalise(change(entry.spec), self._context)
            now = self._clock()
            if not await self._store.update_api_subscription(
                subscription_id, spec=spec, secret=None, now=now
            ):
                raise NotFoundError(f"no webhook with id '{subscription_id}'")
            secret = self._secrets[subscription_id]
            updated = self._install(subscription_id, spec, secret, entry.created_at, now)
        log.info("webhook_updated", subscription=subscription_id, chain=spec["chain"])
        return updated

    def _writable(self, subscription_id: str) -> Entry:
        entry = self.get(subscription_id)
        if entry.source is not Source.API:
            raise ConflictError(
                f"webhook '{subscription_id}' is defined in the configuration file and is "
                "read-only here: change the file and reload (SIGHUP)"
            )
        return entry

    def _install(
        self, subscription_id: str, spec: JSONObject, secret: str, created: float, updated: float
    ) -> Entry:
        sub = build(subscription_id, spec, secret, self._context)
        entry = Entry(subscription_id, Source.API, sub, spec, created, updated)
        self._secrets[subscription_id] = secret
        self._registry.put(entry)
        return entry
