"""Domain errors, defined once. Each names the gRPC status it becomes.

Service code raises these; the server interceptor (services.core.interceptor) is the only place
that turns them into a gRPC status. Messages are for the caller: say what was wrong and never
include personal data or secrets (name the field, not its value).
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

# The gRPC core's error-level codes that a server should never produce by accident; an
# unexpected exception becomes INTERNAL with a generic message (details go to logs only).
INTERNAL_MESSAGE = "internal error; see server logs for the trace id"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid field: its path in the request ("line_items[2].quantity") and the problem."""

    field: str
    description: str

    def __str__(self) -> str:
        return f"{self.field}: {self.description}"


class IsthmusError(Exception):
    """Base of all domain errors. Status UNKNOWN unless a subclass says otherwise."""

    status: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(IsthmusError):
    """INVALID_ARGUMENT: the request is malformed whatever the system state."""

    status = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, violations: list[FieldViolation] | FieldViolation) -> None:
        if isinstance(violations, FieldViolation):
            violations = [violations]
        if not violations:
            raise ValueError("InvalidArgument needs at least one FieldViolation")
        self.violations = list(violations)
        super().__init__("; ".join(str(v) for v in self.violations))

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        return cls(FieldViolation(field, description))


class NotFound(IsthmusError):
    """NOT_FOUND: the named entity does not exist (or was erased)."""

    status = grpc.StatusCode.NOT_FOUND


class AlreadyExists(IsthmusError):
    """ALREADY_EXISTS: the entity to create is there already."""

    status = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(IsthmusError):
    """FAILED_PRECONDITION: valid request, but the system is not in a state to do it
    (idempotency key reused with another payload, refund above the captured amount)."""

    status = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(IsthmusError):
    """ABORTED: a concurrency conflict (optimistic lock lost); retry the read-modify-write."""

    status = grpc.StatusCode.ABORTED


class Unauthenticated(IsthmusError):
    """UNAUTHENTICATED: no valid credentials."""

    status = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(IsthmusError):
    """PERMISSION_DENIED: the caller is known but may not do this."""

    status = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(IsthmusError):
    """RESOURCE_EXHAUSTED: a quota or rate limit is used up, or the request is too large."""

    status = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(IsthmusError):
    """UNAVAILABLE: transient; the caller may retry (with back-off) if the RPC is idempotent."""

    status = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(IsthmusError):
    """DEADLINE_EXCEEDED: the work could not finish within the caller's deadline."""

    status = grpc.StatusCode.DEADLINE_EXCEEDED


@dataclass(frozen=True, slots=True)
class StatusReply:
    """What a failed call answers with: code, message and trailing metadata (rich details)."""

    code: grpc.StatusCode
    message: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...] = ()


def to_status(exc: BaseException) -> StatusReply:
    """Map any exception to the status the caller sees. Pure; the one mapping in the codebase."""
    if not isinstance(exc, IsthmusError):
        return StatusReply(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)
    if isinstance(exc, InvalidArgument):
        return StatusReply(exc.status, exc.message, _bad_request_details(exc))
    return StatusReply(exc.status, exc.message)


def _bad_request_details(exc: InvalidArgument) -> tuple[tuple[str, str | bytes], ...]:
    """google.rpc.BadRequest in `grpc-status-details-bin`, so clients can read every violation."""
    bad_request = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in exc.violations
        ]
    )
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=exc.message)
    status.details.add().Pack(bad_request)
    return ((rpc_status.GRPC_DETAILS_METADATA_KEY, status.SerializeToString()),)
