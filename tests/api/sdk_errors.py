"""The one check of an error as the official SDK raises it: its body is the real API's `error` envelope."""

from __future__ import annotations

from typing import Any

import openai
import pytest


def sdk_error(exc: pytest.ExceptionInfo[openai.APIStatusError]) -> dict[str, Any]:
    """The error's body, checked to have exactly the envelope's fields, with the SDK's code and param taken
    from it."""
    body = exc.value.body
    assert isinstance(body, dict) and set(body) == {"message", "type", "param", "code"}
    assert body["type"] == "invalid_request_error"
    assert (exc.value.code, exc.value.param) == (body["code"], body["param"])
    return body
