"""watcher: follow blockchain nodes and deliver signed webhooks for watched addresses."""

__version__ = "0.1.0"
