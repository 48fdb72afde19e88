"""PUBLIC requests are inspected at the door: a string field (nested and repeated ones
included) holding a value shaped like an e-mail address, a phone number or a card number is
refused with INVALID_ARGUMENT naming the field, never the value, and nothing of it goes
upstream. The shapes and the walk are `services.core.pii_shapes` (the public services apply
the same check to their own fields). A request whose bytes show no such shape is not even
parsed: it passes through untouched."""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from services.contract.descriptors import MethodInfo
from services.core.errors import FieldViolation, InvalidArgument
from services.core.pii_shapes import personal_field, suspect


class RequestInspector:
    """Request message classes from the contract's descriptor set, built on first use."""

    def __init__(self, descriptors: descriptor_pb2.FileDescriptorSet) -> None:
        self._pool = descriptor_pool.DescriptorPool()
        for file in descriptors.file:  # protoc writes dependencies first
            self._pool.AddSerializedFile(file.SerializeToString())
        self._classes: dict[str, Any] = {}

    def check(self, method: MethodInfo, raw: bytes) -> None:
        """Raise InvalidArgument when `raw`, a request of PUBLIC `method`, carries a value of
        a personal shape."""
        if not method.is_public or not suspect(raw):
            return
        try:
            message = self._message_class(method.input_type).FromString(raw)
        except DecodeError:
            raise InvalidArgument(
                FieldViolation("request", f"is not a valid {method.input_type}")
            ) from None
        found = personal_field(message)
        if found is not None:
            path, shape = found
            raise InvalidArgument(
                FieldViolation(
                    path, f"looks like {shape}: personal data may not pass a PUBLIC method"
                )
            )

    def _message_class(self, name: str) -> Any:
        cls = self._classes.get(name)
        if cls is None:
            descriptor = self._pool.FindMessageTypeByName(name)
            cls = self._classes[name] = message_factory.GetMessageClass(descriptor)
        return cls
