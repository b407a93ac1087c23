"""The admin HTTP API (aiohttp.web): webhook subscriptions as an ARK-style REST resource.

``app.py`` builds the application (token check, JSON errors, routes); ``webhooks.py`` holds
the handlers; ``manager.py`` applies changes to the store and the live registry; ``specs.py``
the request and response models, with ``delivery_fields.py`` for a webhook's delivery keys;
``openapi.py`` the published document; ``pagination.py`` and ``auth.py`` what their names
say. A new resource is a new handlers module whose routes ``app.py`` adds, and whose models
``openapi.py`` publishes.
"""
