"""Errors a server answers with: the status code, an OpenAI-style type, and a message for the client."""

from __future__ import annotations


class ServingError(Exception):
    """A version that cannot be loaded (missing files, a trainer module without the contract)."""


class RequestError(Exception):
    """A request the server refuses: answered with `status` and the message, never logged as a prediction."""

    def __init__(self, status: int, message: str, kind: str = "BadRequestError", param: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.param = param

    def body(self) -> dict[str, object]:
        # OpenAI's error shape (what vLLM answers too); KServe clients read `error` as well
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.status}}
