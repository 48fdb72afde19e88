"""Read the API contract from a compiled FileDescriptorSet.

Everything here is a pure function of descriptor data, so the same checks run on the shipped
descriptor set (at gateway start) and on deliberately broken copies of the protos (in tests).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

from google.protobuf import descriptor_pb2

from isthmus.options.v1 import options_pb2

Sensitivity = options_pb2.Sensitivity
IdempotencyLevel = descriptor_pb2.MethodOptions.IdempotencyLevel

# Protobuf's own retry-safety levels: these two may be retried (and hedged) by the gateway.
RETRY_SAFE_LEVELS = frozenset(
    {descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS, descriptor_pb2.MethodOptions.IDEMPOTENT}
)


@dataclass(frozen=True, slots=True)
class MethodInfo:
    """What the contract says about one RPC."""

    path: str  # "/isthmus.ads.v1.AdService/Rank", as on the wire
    service: str  # "isthmus.ads.v1.AdService"
    name: str  # "Rank"
    input_type: str  # "isthmus.ads.v1.RankRequest"
    output_type: str
    sensitivity: int  # a Sensitivity value
    idempotency_level: int  # an IdempotencyLevel value
    client_streaming: bool
    server_streaming: bool

    @property
    def is_public(self) -> bool:
        return self.sensitivity == options_pb2.SENSITIVITY_PUBLIC

    @property
    def is_sensitive(self) -> bool:
        return self.sensitivity == options_pb2.SENSITIVITY_SENSITIVE

    @property
    def retry_safe(self) -> bool:
        """Protobuf declares the RPC safe to send more than once."""
        return self.idempotency_level in RETRY_SAFE_LEVELS


@dataclass(frozen=True, slots=True)
class ContractViolation:
    """One broken rule, naming the RPC or field at fault."""

    rule: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.subject}: {self.detail}"


def load_descriptor_set(data: bytes | None = None) -> descriptor_pb2.FileDescriptorSet:
    """Parse a FileDescriptorSet; by default the one generated next to the stubs."""
    if data is None:
        data = (resources.files("isthmus") / "descriptor_set.binpb").read_bytes()
    # options_pb2 is imported above, so the custom options parse as known extensions.
    return descriptor_pb2.FileDescriptorSet.FromString(data)


def method_table(fds: descriptor_pb2.FileDescriptorSet) -> dict[str, MethodInfo]:
    """Every RPC of every service in the set (isthmus' own and loaded teams' alike), keyed
    by its wire path ("/pkg.Service/Method")."""
    table: dict[str, MethodInfo] = {}
    for file in fds.file:
        for service in file.service:
            service_name = f"{file.package}.{service.name}"
            for method in service.method:
                info = MethodInfo(
                    path=f"/{service_name}/{method.name}",
                    service=service_name,
                    name=method.name,
                    input_type=method.input_type.lstrip("."),
                    output_type=method.output_type.lstrip("."),
                    sensitivity=method.options.Extensions[options_pb2.sensitivity],
                    idempotency_level=method.options.idempotency_level,
                    client_streaming=method.client_streaming,
                    server_streaming=method.server_streaming,
                )
                table[info.path] = info
    return table


def message_index(
    fds: descriptor_pb2.FileDescriptorSet,
) -> dict[str, descriptor_pb2.DescriptorProto]:
    """All messages (nested ones and map entries included) keyed by full name without a dot."""
    index: dict[str, descriptor_pb2.DescriptorProto] = {}

    def add(prefix: str, messages: Iterable[descriptor_pb2.DescriptorProto]) -> None:
        for message in messages:
            full = f"{prefix}.{message.name}" if prefix else message.name
            index[full] = message
            add(full, message.nested_type)

    for file in fds.file:
        add(file.package, file.message_type)
    return index


def pii_paths(root: str, index: dict[str, descriptor_pb2.DescriptorProto]) -> list[str]:
    """Field paths under message `root` that reach a field marked `(isthmus.options.v1.pii)`.

    Follows message-typed fields transitively (maps, oneofs and recursion included); each message
    type is expanded once, so a recursive type cannot loop and each leak is named by its shortest
    first-found path, e.g. "RankRequest.context.owner.email".
    """
    found: list[str] = []
    seen: set[str] = set()
    stack: list[tuple[str, str]] = [(root, root.rsplit(".", 1)[-1])]
    while stack:
        type_name, path = stack.pop()
        if type_name in seen or type_name not in index:
            continue
        seen.add(type_name)
        for field in index[type_name].field:
            field_path = f"{path}.{field.name}"
            if field.options.Extensions[options_pb2.pii]:
                found.append(field_path)
            if field.type == descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE:
                stack.append((field.type_name.lstrip("."), field_path))
    return sorted(found)


def check_contract(fds: descriptor_pb2.FileDescriptorSet) -> list[ContractViolation]:
    """Every rule the API itself must satisfy; an empty list means the contract holds."""
    index = message_index(fds)
    violations: list[ContractViolation] = []
    for info in method_table(fds).values():
        if info.sensitivity not in (
            options_pb2.SENSITIVITY_PUBLIC,
            options_pb2.SENSITIVITY_SENSITIVE,
        ):
            violations.append(
                ContractViolation(
                    "sensitivity-declared",
                    info.path,
                    "no (isthmus.options.v1.sensitivity) option; declare SENSITIVITY_PUBLIC or "
                    "SENSITIVITY_SENSITIVE",
                )
            )
        # Fail closed: a method without a valid declaration is checked as if it were PUBLIC.
        if not info.is_sensitive:
            violations += pii_reached(info, index, "PUBLIC" if info.is_public else "undeclared")
    return violations


def pii_reached(
    info: MethodInfo, index: dict[str, descriptor_pb2.DescriptorProto], kind: str
) -> list[ContractViolation]:
    """One `no-pii-in-public` violation per pii field `info`'s request or response reaches."""
    return [
        ContractViolation("no-pii-in-public", info.path, f"{kind} RPC reaches pii field {leak}")
        for message in (info.input_type, info.output_type)
        for leak in pii_paths(message, index)
    ]


def check_retry_targets(
    retried_paths: Iterable[str], table: dict[str, MethodInfo]
) -> list[ContractViolation]:
    """Methods a policy would retry must exist and be declared retry-safe in the protos."""
    violations = []
    for path in retried_paths:
        info = table.get(path)
        if info is None:
            violations.append(ContractViolation("retry-idempotent", path, "no such RPC"))
        elif not info.retry_safe:
            level = descriptor_pb2.MethodOptions.IdempotencyLevel.Name(info.idempotency_level)
            violations.append(
                ContractViolation(
                    "retry-idempotent",
                    path,
                    f"retried but declared {level}; only NO_SIDE_EFFECTS or IDEMPOTENT may be "
                    "retried",
                )
            )
    return violations
