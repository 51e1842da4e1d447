"""Errors as OpenAI's API returns them: an HTTP status and
``{"error": {"message", "type", "param", "code"}}``, so every OpenAI client raises its usual
exception (``openai.AuthenticationError``, ``NotFoundError``, ``BadRequestError``, ...)."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A request the server refuses.

    Args:
        status: The HTTP status (400, 401, 404, 413, ...).
        message: What went wrong, in the client's words.
        kind: OpenAI's error ``type``.
        code: OpenAI's error ``code`` (``model_not_found``, ``invalid_api_key``, ...), if any.
        param: The request field at fault, if any.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.code = code
        self.param = param

    def payload(self) -> dict[str, Any]:
        """The JSON body of the error response."""
        return error_payload(self.message, self.kind, code=self.code, param=self.param)


def error_payload(
    message: str, kind: str, *, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """OpenAI's error body."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    """A 400 ``invalid_request_error``."""
    return ApiError(400, message, param=param, code=code)


def unknown_model(model: str) -> ApiError:
    """The 404 for a model the server does not have, or the key may not read (the same answer,
    so a key learns nothing about memories it does not hold)."""
    return ApiError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        code="model_not_found",
        param="model",
    )
