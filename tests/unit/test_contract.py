"""The shipped contract: every RPC declared, no PII under PUBLIC RPCs, retries only if safe."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2

from isthmus.options.v1 import options_pb2
from services.contract.client_config import (
    check_client_config,
    load_client_service_config,
    retried_methods,
)
from services.contract.descriptors import (
    check_contract,
    load_descriptor_set,
    message_index,
    method_table,
    pii_paths,
)


@pytest.fixture(scope="module")
def fds() -> descriptor_pb2.FileDescriptorSet:
    return load_descriptor_set()


def test_shipped_contract_has_no_violations(fds: descriptor_pb2.FileDescriptorSet) -> None:
    assert check_contract(fds) == []


def test_every_rpc_declares_a_valid_sensitivity(fds: descriptor_pb2.FileDescriptorSet) -> None:
    table = method_table(fds)
    assert len(table) == 13
    declared = {m.sensitivity for m in table.values()}
    assert options_pb2.SENSITIVITY_UNSPECIFIED not in declared


def test_public_rpcs_are_exactly_rank_and_track(fds: descriptor_pb2.FileDescriptorSet) -> None:
    public = sorted(p for p, m in method_table(fds).items() if m.is_public)
    assert public == ["/isthmus.ads.v1.AdService/Rank", "/isthmus.events.v1.EventService/Track"]


def test_pii_fields_are_found_transitively(fds: descriptor_pb2.FileDescriptorSet) -> None:
    index = message_index(fds)
    # Profile's own PII, and the identifiers of ResolveIdentity inside a oneof of a repeated field.
    assert "UpsertProfileRequest.profile.birth_date" in pii_paths(
        "isthmus.profile.v1.UpsertProfileRequest", index
    )
    assert pii_paths("isthmus.profile.v1.ResolveIdentityRequest", index) == [
        "ResolveIdentityRequest.identifiers.device_id",
        "ResolveIdentityRequest.identifiers.email",
        "ResolveIdentityRequest.identifiers.open_id",
        "ResolveIdentityRequest.identifiers.phone_number",
    ]
    assert pii_paths("isthmus.ads.v1.RankRequest", index) == []


def test_pii_fields_are_redacted_in_debug_output(fds: descriptor_pb2.FileDescriptorSet) -> None:
    """Every pii field also sets debug_redact, so text formats and repr hide the value."""
    for message in message_index(fds).values():
        for field in message.field:
            if field.options.Extensions[options_pb2.pii]:
                assert field.options.debug_redact, f"{message.name}.{field.name}"


def test_unknown_type_or_recursion_terminates() -> None:
    fds = descriptor_pb2.FileDescriptorSet()
    file = fds.file.add(name="r.proto", package="isthmus.r.v1")
    node = file.message_type.add(name="Node")
    child = node.field.add(
        name="child", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
    )
    child.type_name = ".isthmus.r.v1.Node"
    secret = node.field.add(
        name="secret", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING
    )
    secret.options.Extensions[options_pb2.pii] = True
    assert pii_paths("isthmus.r.v1.Node", message_index(fds)) == ["Node.secret"]


def test_client_retry_policy_retries_only_retry_safe_rpcs(
    fds: descriptor_pb2.FileDescriptorSet,
) -> None:
    table = method_table(fds)
    config = load_client_service_config()
    assert "/isthmus.orders.v1.OrderService/PlaceOrder" in retried_methods(config, table)
    assert check_client_config(config, table) == []


def test_client_retry_policy_on_unsafe_rpc_is_flagged(
    fds: descriptor_pb2.FileDescriptorSet,
) -> None:
    table = method_table(fds)
    # Pretend PlaceOrder lost its idempotency declaration.
    place = "/isthmus.orders.v1.OrderService/PlaceOrder"
    unsafe = dict(table)
    unsafe[place] = type(table[place])(
        **{
            **{f: getattr(table[place], f) for f in table[place].__slots__},
            "idempotency_level": descriptor_pb2.MethodOptions.IDEMPOTENCY_UNKNOWN,
        }
    )
    violations = check_client_config(load_client_service_config(), unsafe)
    assert [(v.rule, v.subject) for v in violations] == [("retry-idempotent", place)]
    assert "IDEMPOTENCY_UNKNOWN" in violations[0].detail


def test_retry_policy_naming_a_missing_rpc_is_flagged(
    fds: descriptor_pb2.FileDescriptorSet,
) -> None:
    config = {"methodConfig": [{"name": [{"service": "isthmus.nope.v1.Gone"}], "retryPolicy": {}}]}
    violations = check_client_config(config, method_table(fds))
    assert [v.detail for v in violations] == ["no such RPC"]
