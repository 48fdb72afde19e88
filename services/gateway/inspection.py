"""PUBLIC requests are inspected at the door:
- a string field (nested and repeated ones included) holding a value shaped like an e-mail
  address, a phone number or a card number is refused with INVALID_ARGUMENT naming the
  field, never the value, and nothing of it goes upstream. The shapes and the walk are
  `services.core.pii_shapes` (the public services apply the same check to their own fields);
- a pseudonymous id (a string field named `pseudonymous_*id`) must be one the private zone
  minted (`services.core.pseudonym`: the shape, and the keyed check when the gateway holds
  the check key), so a raw identifier cannot pass as one.
A request whose type carries no pseudonymous id and whose bytes show no personal shape is not
even parsed: it passes through untouched."""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError

from services.contract.descriptors import MethodInfo
from services.core import pseudonym
from services.core.errors import FieldViolation, InvalidArgument
from services.core.pii_shapes import field_name, has_field, personal_field, strings, suspect

VERIFIED_CACHE = 100_000


class RequestInspector:
    """Request message classes from the contract's descriptor set, built on first use, and the
    pseudonymous ids' check key (None: their shape alone is checked)."""

    def __init__(
        self, descriptors: descriptor_pb2.FileDescriptorSet, check_key: bytes | None = None
    ) -> None:
        self._pool = descriptor_pool.DescriptorPool()
        for file in descriptors.file:  # protoc writes dependencies first
            self._pool.AddSerializedFile(file.SerializeToString())
        self._classes: dict[str, Any] = {}
        self._carries_pseudonym: dict[str, bool] = {}
        self._plans: dict[str, list[tuple[str, str, bool]]] = {}
        self.check_key = check_key
        # Ids that passed under this key: a viewer's id recurs in every Rank and event, and the
        # keyed check (an HMAC) is most of the cost. Bounded; cleared when full.
        self._verified: set[str] = set()

    def with_check_key(self, check_key: bytes | None) -> RequestInspector:
        """The same inspector (its pool and classes shared) with another check key."""
        if check_key == self.check_key:
            return self
        other = object.__new__(RequestInspector)
        other.__dict__.update(self.__dict__)
        other.check_key = check_key
        other._verified = set()
        return other

    def check(self, method: MethodInfo, raw: bytes) -> None:
        """Raise InvalidArgument when `raw`, a request of PUBLIC `method`, carries a value of
        a personal shape or a pseudonymous id the private zone did not mint."""
        if not method.is_public:
            return
        personal = suspect(raw)
        if not personal and not self._pseudonyms_in(method.input_type):
            return
        try:
            message = self._message_class(method.input_type).FromString(raw)
        except DecodeError:
            raise InvalidArgument(
                FieldViolation("request", f"is not a valid {method.input_type}")
            ) from None
        found = personal_field(message) if personal else None
        if found is not None:
            path, shape = found
            raise InvalidArgument(
                FieldViolation(
                    path, f"looks like {shape}: personal data may not pass a PUBLIC method"
                )
            )
        for path, value in self._pseudonym_values(message, ""):
            if value in self._verified:
                continue
            problem = pseudonym.problem(value, self.check_key)
            if problem is not None:
                raise InvalidArgument(FieldViolation(path, problem))
            if len(self._verified) >= VERIFIED_CACHE:
                self._verified.clear()
            self._verified.add(value)

    def _pseudonyms_in(self, type_name: str) -> bool:
        return self._carries(self._pool.FindMessageTypeByName(type_name))

    def _carries(self, descriptor: Any) -> bool:
        known = self._carries_pseudonym.get(descriptor.full_name)
        if known is None:
            known = has_field(descriptor, pseudonym.is_pseudonym_field)
            self._carries_pseudonym[descriptor.full_name] = known
        return known

    def _pseudonym_values(self, message: Any, prefix: str) -> list[tuple[str, str]]:
        """The pseudonymous ids in `message` with their paths, descending only into fields
        whose type can carry one (a Rank request's 40 candidates are never walked)."""
        out: list[tuple[str, str]] = []
        for name, kind, repeated in self._plan(message.DESCRIPTOR):
            value = getattr(message, name)
            if kind == "id":
                items = enumerate(value) if repeated else [(None, value)]
                out += [(_path(prefix, name, i), v) for i, v in items if v]
            elif kind == "message":
                if repeated:
                    for i, item in enumerate(value):
                        out += self._pseudonym_values(item, _path(prefix, name, i) + ".")
                elif message.HasField(name):
                    out += self._pseudonym_values(value, f"{prefix}{name}.")
            else:  # a map whose values can carry one: the generic walk, this field only
                for path, text in strings(message):  # paths relative to `message`
                    if path.startswith(name + "[") and pseudonym.is_pseudonym_field(
                        field_name(path)
                    ):
                        out.append((prefix + path, text))
        return out

    def _plan(self, descriptor: Any) -> list[tuple[str, str, bool]]:
        """(field, "id" | "message" | "map", repeated) of the fields to look in, per type."""
        plan = self._plans.get(descriptor.full_name)
        if plan is None:
            plan = []
            for field in descriptor.fields:
                repeated = field.is_repeated
                if field.type == FieldDescriptor.TYPE_STRING:
                    if pseudonym.is_pseudonym_field(field.name):
                        plan.append((field.name, "id", repeated))
                elif field.type == FieldDescriptor.TYPE_MESSAGE:
                    entry = field.message_type
                    if entry.GetOptions().map_entry:
                        if self._carries(entry):
                            plan.append((field.name, "map", True))
                    elif self._carries(entry):
                        plan.append((field.name, "message", repeated))
            self._plans[descriptor.full_name] = plan
        return plan

    def _message_class(self, name: str) -> Any:
        cls = self._classes.get(name)
        if cls is None:
            descriptor = self._pool.FindMessageTypeByName(name)
            cls = self._classes[name] = message_factory.GetMessageClass(descriptor)
        return cls


def _path(prefix: str, name: str, index: int | None) -> str:
    return f"{prefix}{name}" if index is None else f"{prefix}{name}[{index}]"
