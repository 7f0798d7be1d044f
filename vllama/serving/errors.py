"""What can go wrong in the pipeline, by kind; the API layer maps each kind to a status code."""

from __future__ import annotations


class ServingError(Exception):
    """A request the pipeline cannot serve; `message` is what the client reads."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequest(ServingError):
    """The client's mistake: a bad option, a capability the model lacks, a prompt too long."""


class NotFound(ServingError):
    """No such model."""


class Busy(ServingError):
    """Retry later: the queue is full or every loaded model is in use."""


class Failed(ServingError):
    """Not the client's fault: the engine failed to load or died."""
