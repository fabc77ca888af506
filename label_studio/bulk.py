"""Bulk requests whose JSON body nerdata encodes itself.

The SDK's ``projects.import_tasks`` / ``import_predictions`` walk every element of the
request twice in Python (``convert_and_respect_annotation_metadata``, then
``jsonable_encoder``) before ``json.dumps``: for 10,000 tasks that is over a million calls
and most of the client's CPU time of a push, on cores the server shares.  The task JSON that
:mod:`.tasks` builds is plain JSON data already, so it is encoded once by msgspec and sent
through the SDK's own HTTP client (same base URL, authentication, token refresh and
timeouts); the answer and the errors are what the SDK method gives (an ``ApiError`` for a
status outside 2xx, which ``LabelStudioClient._api`` turns into a one-line message).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    from .client import LabelStudioClient


def post_json(client: "LabelStudioClient", path: str, items: Sequence[Mapping[str, Any]], *,
              params: Mapping[str, Any] | None = None) -> Any:
    """POST ``items`` as a JSON array to ``path`` (``api/...``); the decoded JSON answer."""
    import msgspec
    from label_studio_sdk.core.api_error import ApiError

    response = client.sdk._client_wrapper.httpx_client.request(path, method="POST", params=dict(params or {}),
                            content=msgspec.json.encode(list(items)),
                            headers={"content-type": "application/json"},
                            request_options={"max_retries": 0})
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if not 200 <= response.status_code < 300:
        raise ApiError(status_code=response.status_code, headers=dict(response.headers), body=body)
    return body
