"""The Label Studio ML backend: a domain object without HTTP and a thin app factory.

Entry points: :class:`Backend` and :func:`create_app` (``app``), :func:`serve` and
:class:`BackgroundServer`; :func:`bulk_predict` and :func:`connect` (``bulk``: pre-annotation
without the HTTP hop).  ``predict``, ``models``, ``config`` and ``train`` hold the request
validation, served models, labeling-config checks and retraining events.
"""
from __future__ import annotations

from .app import Backend, BackendSettings, BackgroundServer, build_asgi, create_app, serve
from .bulk import bulk_predict, connect

__all__ = [
    "Backend", "BackendSettings", "BackgroundServer", "build_asgi", "bulk_predict", "connect",
    "create_app", "serve",
]
