"""The live set of subscriptions: from the configuration file and from the admin API.

Everything that acts on subscriptions while the daemon runs reads them here: the delivery
worker looks each delivery's subscription up at send time (the registry is a read-only
mapping of id to :class:`~watcher.models.Subscription`), and each chain follower is told,
through a change listener, when its chain's subscriptions changed. The admin API and the
SIGHUP reload are the only writers, so a subscription added either way reaches the running
trackers at once, without a restart and without losing any lifecycle state.

An entry that cannot run (its chain is not followed, or its stored definition no longer
passes validation) stays listed with a ``problem`` so that an operator can see and fix it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from watcher.models import JSONObject, Subscription


class Source(enum.StrEnum):
    """Where a subscription is defined, which decides who may change it."""

    FILE = "file"
    API = "api"


@dataclass(frozen=True, slots=True)
class Entry:
    """One subscription as the daemon knows it.

    An entry runs unless it has a ``problem`` (which says why not). ``subscription`` is None
    only when its stored definition no longer builds. ``spec`` is the normalised definition
    an API client gave (file entries are described from their subscription).
    """

    id: str
    source: Source
    subscription: Subscription | None
    spec: JSONObject | None = None
    created_at: float | None = None
    updated_at: float | None = None
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """What one update did: ids added, changed and removed, and the chains they concern."""

    added: frozenset[str] = frozenset()
    changed: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()
    chains: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


Listener = Callable[[Change], None]


class SubscriptionRegistry(Mapping[str, Subscription]):
    """Runnable subscriptions by id, plus every entry (runnable or not) for the API.

    Listeners are called synchronously after each update, on the event loop, so that the
    next block any follower processes already sees the new set.
    """

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        self._entries: dict[str, Entry] = {}
        self._runnable: dict[str, Subscription] = {}
        self._listeners: list[Listener] = []
        self._install(list(entries))

    # --- reading ----------------------------------------------------------------------

    def __getitem__(self, subscription_id: str) -> Subscription:
        return self._runnable[subscription_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._runnable)

    def __len__(self) -> int:
        return len(self._runnable)

    def entries(self) -> list[Entry]:
        """Every entry: the file's first, in file order, then the API's, oldest first."""
        return list(self._entries.values())

    def entry(self, subscription_id: str) -> Entry | None:
        """The entry with this id, runnable or not."""
        return self._entries.get(subscription_id)

    def for_chain(self, chain: str) -> tuple[Subscription, ...]:
        """The runnable subscriptions of ``chain``."""
        return tuple(s for s in self._runnable.values() if s.chain == chain)

    # --- writing ----------------------------------------------------------------------

    def listen(self, listener: Listener) -> None:
        """Call ``listener`` after every update that changed something."""
        self._listeners.append(listener)

    def install(self, entries: Iterable[Entry]) -> Change:
        """Replace every entry (start-up)."""
        return self._update(list(entries))

    def replace_file(self, entries: Iterable[Entry]) -> Change:
        """Install a new set of file entries (a reload); API entries are kept."""
        kept = [e for e in self._entries.values() if e.source is not Source.FILE]
        return self._update([*entries, *kept])

    def put(self, entry: Entry) -> Change:
        """Add or replace one entry, keeping its place in the order if it existed."""
        entries = dict(self._entries)
        entries[entry.id] = entry
        return self._update(list(entries.values()))

    def remove(self, subscription_id: str) -> Change:
        """Forget one entry."""
        return self._update([e for e in self._entries.values() if e.id != subscription_id])

    def _update(self, entries: list[Entry]) -> Change:
        before = self._runnable
        self._install(entries)
        change = diff(before, self._runnable)
        if change:
            for listener in self._listeners:
                listener(change)
        return change

    def _install(self, entries: list[Entry]) -> None:
        ordered = sorted(entries, key=lambda e: e.source is not Source.FILE)  # stable
        self._entries = {e.id: e for e in ordered}
        self._runnable = {
            e.id: e.subscription
            for e in ordered
            if e.subscription is not None and e.problem is None
        }


def file_entries(subscriptions: Iterable[Subscription], chains: Iterable[str]) -> list[Entry]:
    """Registry entries of the configuration file's subscriptions, given the followed chains.

    A subscription on a chain that is not followed (one added to the file since start-up)
    is listed, with the reason it does not run.
    """
    followed = set(chains)
    return [
        Entry(s.id, Source.FILE, s)
        if s.chain in followed
        else Entry(s.id, Source.FILE, s, problem=_NOT_FOLLOWED.format(chain=s.chain))
        for s in subscriptions
    ]


_NOT_FOLLOWED = "chain '{chain}' is not followed yet: restart the daemon to start it"


def diff(before: Mapping[str, Subscription], after: Mapping[str, Subscription]) -> Change:
    """What differs between two sets of runnable subscriptions."""
    added = after.keys() - before.keys()
    removed = before.keys() - after.keys()
    changed = {k for k in after.keys() & before.keys() if after[k] != before[k]}
    chains = {after[k].chain for k in added | changed}
    chains |= {before[k].chain for k in removed | changed}
    return Change(frozenset(added), frozenset(changed), frozenset(removed), frozenset(chains))
