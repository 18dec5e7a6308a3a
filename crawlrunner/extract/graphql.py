"""GraphQL answers: the errors a server reports with a 200.

A GraphQL server answers a query it could not run (a misspelt field, a
missing argument, a throttled client) with status 200 and the failure in the
body: ``{"errors": [{"message": ...}], "data": null}`` (or no ``data`` at
all, when the query did not even start). Read as any JSON page, that is a
page without records: the chain would end as an empty page and the run
would look fine. So, for a request whose JSON body is a GraphQL request (an
object with a ``query`` string):

- ``errors`` and no ``data``: the request failed (``extract_error``, with the
  server's messages), and its pagination chain ends as ``failed``;
- ``errors`` beside ``data`` (a partial answer): the records are kept, and the
  messages are a warning in the fetch log's ``error`` column.
"""

from __future__ import annotations

from typing import Any

from ..document import Page
from ..errors import ExtractError
from ..plan import RequestPlan

# How much of the server's messages the fetch log keeps.
_MESSAGES_SHOWN = 3
_MESSAGE_CHARS = 200


def is_graphql(plan: RequestPlan) -> bool:
    """Whether ``plan`` sends a GraphQL request: a JSON body with a ``query`` string."""
    body = plan.json_body
    return isinstance(body, dict) and isinstance(body.get("query"), str)


def graphql_warning(plan: RequestPlan, page: Page) -> str | None:
    """The warning of a GraphQL answer with errors beside its data; None without errors or GraphQL.

    Raises ExtractError when the answer has errors and no data.
    """
    document = page.document
    if not is_graphql(plan) or not isinstance(document, dict):
        return None
    errors = document.get("errors")
    if not isinstance(errors, list) or not errors:
        return None
    if document.get("data") is None:
        raise ExtractError(f"GraphQL errors and no data: {_messages(errors)}")
    return f"GraphQL errors beside partial data: {_messages(errors)}"


def _messages(errors: list[Any]) -> str:
    """The first few errors' messages, each cut short."""
    texts = [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors[:_MESSAGES_SHOWN]]
    shown = "; ".join(text if len(text) <= _MESSAGE_CHARS else text[:_MESSAGE_CHARS] + "…" for text in texts)
    more = len(errors) - _MESSAGES_SHOWN
    return shown + (f" (and {more} more)" if more > 0 else "")
