"""The admin HTTP API (aiohttp.web): webhooks and their deliveries as ARK-style resources.

``app.py`` builds the application (token check, JSON errors, routes). Each resource has its
handlers module (``webhooks.py``, ``deliveries.py``), the object that acts for them
(``manager.py`` applies definition changes to the store and the live registry;
``operations.py`` works the outbox) and its request and response models (``specs.py`` with
``delivery_fields.py``, ``delivery_specs.py``). ``openapi.py`` publishes the document;
``pagination.py`` and ``auth.py`` do what their names say. A new resource is a new handlers
module whose routes ``app.py`` adds, and whose models ``openapi.py`` publishes.
"""
