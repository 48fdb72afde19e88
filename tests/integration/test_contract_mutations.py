"""Break the real protos in a scratch copy and prove the contract checks catch it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from services.contract.client_config import check_client_config, load_client_service_config
from services.contract.codegen import PROTO_ROOT, compile_descriptor_set
from services.contract.descriptors import (
    ContractViolation,
    check_contract,
    load_descriptor_set,
    method_table,
)

ADS = "isthmus/ads/v1/ads.proto"
ORDERS = "isthmus/orders/v1/orders.proto"
RANK_OPTION = (
    "    option idempotency_level = NO_SIDE_EFFECTS;\n"
    "    option (isthmus.options.v1.sensitivity) = SENSITIVITY_PUBLIC;\n"
)


def mutate(tmp_path: Path, rel: str, old: str, new: str) -> Path:
    root = tmp_path / "protos"
    shutil.copytree(PROTO_ROOT, root)
    text = (root / rel).read_text()
    assert old in text, f"mutation anchor not found in {rel}: {old!r}"
    (root / rel).write_text(text.replace(old, new, 1))
    return root


def violations_of(root: Path, tmp_path: Path) -> list[ContractViolation]:
    out = tmp_path / "set.binpb"
    compile_descriptor_set(root, out)
    return check_contract(load_descriptor_set(out.read_bytes()))


def test_dropping_a_sensitivity_is_caught(tmp_path: Path) -> None:
    root = mutate(tmp_path, ADS, RANK_OPTION, "    option idempotency_level = NO_SIDE_EFFECTS;\n")
    found = violations_of(root, tmp_path)
    assert [(v.rule, v.subject) for v in found] == [
        ("sensitivity-declared", "/isthmus.ads.v1.AdService/Rank")
    ]


def test_unspecified_sensitivity_is_caught(tmp_path: Path) -> None:
    root = mutate(tmp_path, ADS, "SENSITIVITY_PUBLIC;", "SENSITIVITY_UNSPECIFIED;")
    assert [v.rule for v in violations_of(root, tmp_path)] == ["sensitivity-declared"]


def test_pii_field_in_a_nested_public_message_is_caught(tmp_path: Path) -> None:
    # A birth date two levels down: RankRequest.context.birth_date.
    root = mutate(
        tmp_path,
        ADS,
        "  string region_code = 7;\n}",
        "  string region_code = 7;\n"
        "  isthmus.common.v1.Date birth_date = 8 [(isthmus.options.v1.pii) = true];\n}",
    )
    found = violations_of(root, tmp_path)
    assert [(v.rule, v.detail) for v in found] == [
        ("no-pii-in-public", "PUBLIC RPC reaches pii field RankRequest.context.birth_date")
    ]


def test_pii_reached_through_another_package_and_a_map_is_caught(tmp_path: Path) -> None:
    # The response embeds a map of profiles: every PII field of Profile becomes reachable.
    root = mutate(
        tmp_path,
        ADS,
        "  repeated Exclusion exclusions = 6;\n}",
        "  repeated Exclusion exclusions = 6;\n"
        "  map<string, isthmus.profile.v1.Profile> viewers = 7;\n}",
    )
    ads = root / ADS
    ads.write_text(
        ads.read_text().replace(
            'import "isthmus/options/v1/options.proto";',
            'import "isthmus/options/v1/options.proto";\n'
            'import "isthmus/profile/v1/profile.proto";',
        )
    )
    details = {v.detail for v in violations_of(root, tmp_path)}
    assert "PUBLIC RPC reaches pii field RankResponse.viewers.value.email" in details
    assert len(details) == 5  # given/family name, email, phone, birth date


def test_a_retried_rpc_losing_its_idempotency_is_caught(tmp_path: Path) -> None:
    root = mutate(
        tmp_path,
        ORDERS,
        "  rpc PlaceOrder(PlaceOrderRequest) returns (PlaceOrderResponse) {\n"
        "    option idempotency_level = IDEMPOTENT;\n",
        "  rpc PlaceOrder(PlaceOrderRequest) returns (PlaceOrderResponse) {\n",
    )
    out = tmp_path / "set.binpb"
    compile_descriptor_set(root, out)
    table = method_table(load_descriptor_set(out.read_bytes()))
    found = check_client_config(load_client_service_config(), table)
    assert [v.subject for v in found] == ["/isthmus.orders.v1.OrderService/PlaceOrder"]


@pytest.mark.parametrize("rel", [ADS, ORDERS])
def test_unmutated_copy_is_clean(tmp_path: Path, rel: str) -> None:
    """Control: the harness itself does not invent violations."""
    root = mutate(tmp_path, rel, "syntax", "syntax")
    assert violations_of(root, tmp_path) == []


def test_pii_under_an_undeclared_rpc_is_checked_as_public(tmp_path: Path) -> None:
    """Dropping the sensitivity must not also switch off the PII rule (fail closed)."""
    root = mutate(tmp_path, ADS, RANK_OPTION, "    option idempotency_level = NO_SIDE_EFFECTS;\n")
    ads = root / ADS
    ads.write_text(
        ads.read_text().replace(
            "  string region_code = 7;\n}",
            "  string region_code = 7;\n  string email = 8 [(isthmus.options.v1.pii) = true];\n}",
        )
    )
    found = {(v.rule, v.detail) for v in violations_of(root, tmp_path)}
    assert (
        "no-pii-in-public",
        "undeclared RPC reaches pii field RankRequest.context.email",
    ) in found
    assert len(found) == 2
