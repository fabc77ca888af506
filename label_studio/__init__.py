"""Label Studio integration: labeling config, task codec, SDK client, server control, backend.

Importing the package registers ``ls:PROJECT`` sources and Label Studio JSON exports with the
one data-source resolver (:mod:`nerdata.corpora.sources`).
"""
from . import source  # noqa: F401
