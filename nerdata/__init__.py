"""nerdata: named-entity-recognition data for low-resource languages, model in the loop.

``import nerdata`` is light: it loads no torch, transformers, spacy, datasets, pandas or
label_studio_sdk (a test checks this).  Heavy libraries are imported inside functions.
"""
from __future__ import annotations

__version__ = "0.1.0"

from nerdata.doc import Document, Span, Token  # noqa: E402
from nerdata.errors import NerdataError  # noqa: E402

__all__ = ["Document", "Span", "Token", "NerdataError", "__version__", "load_release"]


def load_release(path, version=None, verify: bool = True):
    """Load a verified release as a ``datasets.DatasetDict`` (see :mod:`nerdata.release.store`)."""
    from nerdata.release.store import load_release as _load

    return _load(path, version=version, verify=verify)
