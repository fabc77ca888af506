"""Data only: tagsets (YAML), tagset mappings and JSON Schemas of our file formats.

Installed as ``nerdata.schemas``; read with :func:`importlib.resources.files`.
"""
