"""API errors and how they are answered: a JSON body naming the field, never a traceback.

The body follows ARK's shape (``statusCode``, ``error``, ``message``) and adds ``errors``,
one ``{field, message}`` per problem, where the field is a dotted path into the request
(``addresses[2]``, ``conditions[0].value``, or a query parameter such as ``limit``).
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp import web

from watcher.errors import WatcherError


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field of a request."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field or '<body>'}: {self.message}"


class ApiError(WatcherError):
    """A request the API answers with a 4xx status and a JSON body."""

    status = HTTPStatus.BAD_REQUEST

    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []


class BadRequestError(ApiError):
    """The request cannot be read: not JSON, or a malformed query parameter."""

    status = HTTPStatus.BAD_REQUEST


class UnauthorizedError(ApiError):
    """No valid bearer token."""

    status = HTTPStatus.UNAUTHORIZED


class NotFoundError(ApiError):
    """No such resource."""

    status = HTTPStatus.NOT_FOUND


class ConflictError(ApiError):
    """The request conflicts with the resource's state: a taken id, a read-only webhook."""

    status = HTTPStatus.CONFLICT


class InvalidError(ApiError):
    """The request is well-formed JSON but its content is invalid."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY


def error_body(status: int, message: str, errors: list[FieldError] | None = None) -> dict[str, Any]:
    """The JSON body of an error response."""
    return {
        "statusCode": status,
        "error": HTTPStatus(status).phrase,
        "message": message,
        "errors": [{"field": e.field, "message": e.message} for e in errors or []],
    }


def error_response(
    status: int,
    message: str,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return web.json_response(error_body(status, message, errors), status=status, headers=headers)
