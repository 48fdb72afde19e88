"""Other teams' contracts: descriptor sets (`buf build -o x.binpb`, or `protoc
--include_imports --descriptor_set_out=x.binpb`) loaded beside isthmus' own.

A team's set is merged with the shipped one and checked by the same rules, with one
difference: a team method that declares no `(isthmus.options.v1.sensitivity)` is not an
error but is treated as SENSITIVE (it may only reach private clusters and is never inspected
as PUBLIC), which is what `MethodInfo.is_public` already says of it. A set that breaks a rule
is refused whole, naming the method, field or file at fault. Pure functions of descriptor
data, with reading files at the one edge (`load_contract`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message import DecodeError

from services.contract.descriptors import (
    ContractViolation,
    MethodInfo,
    load_descriptor_set,
    message_index,
    method_table,
    pii_reached,
)

# Services a team may not declare: isthmus' own packages, and what the gateway itself serves
# (health checking and reflection) or gRPC reserves.
RESERVED_PACKAGES = ("isthmus.", "grpc.")
WELL_KNOWN_PREFIX = "google/protobuf/"


class ContractError(ValueError):
    """A descriptor set cannot be loaded or breaks the rules; the message names what, and
    `violations` lists each broken rule (empty when the set could not even be read)."""

    def __init__(self, message: str, violations: Sequence[ContractViolation] = ()) -> None:
        super().__init__(message)
        self.violations = list(violations)


@dataclass(frozen=True)
class Contract:
    """The contract the gateway serves: the shipped set merged with the teams' sets."""

    descriptors: descriptor_pb2.FileDescriptorSet
    methods: dict[str, MethodInfo]
    sources: tuple[Path, ...] = ()  # the teams' set files, in load order
    digest: str = ""  # of the teams' sets' bytes: a reload with new contents is a change

    def team_methods(self, base: Contract) -> list[MethodInfo]:
        return [m for path, m in self.methods.items() if path not in base.methods]


def shipped_contract() -> Contract:
    descriptors = load_descriptor_set()
    return Contract(descriptors, method_table(descriptors))


def parse_set(data: bytes, label: str) -> descriptor_pb2.FileDescriptorSet:
    """Parse one set; `label` (its file name) is what an error names."""
    try:
        fds = load_descriptor_set(data)
    except DecodeError as exc:
        raise ContractError(f"{label}: not a FileDescriptorSet ({exc})") from None
    if not any(f.service for f in fds.file):
        raise ContractError(f"{label}: declares no service")
    return fds


def _comparable(file: descriptor_pb2.FileDescriptorProto) -> bytes:
    plain = descriptor_pb2.FileDescriptorProto()
    plain.CopyFrom(file)
    plain.ClearField("source_code_info")  # comments may differ; declarations may not
    data: bytes = plain.SerializeToString(deterministic=True)
    return data


def merge_sets(
    base: descriptor_pb2.FileDescriptorSet,
    extra: Iterable[tuple[str, descriptor_pb2.FileDescriptorSet]],
) -> tuple[descriptor_pb2.FileDescriptorSet, dict[str, str]]:
    """One set holding `base` and every extra one; a file present in several (the options
    proto, well-known types) must be the same everywhere. Returns the merged set and, for
    each file the extras added, the label of the set it came from."""
    merged = descriptor_pb2.FileDescriptorSet()
    merged.CopyFrom(base)
    known = {f.name: _comparable(f) for f in base.file}
    added: dict[str, str] = {}
    for label, fds in extra:
        for file in fds.file:
            same = known.get(file.name)
            if same is not None and file.name.startswith(WELL_KNOWN_PREFIX):
                continue  # protobuf's own types: the loaded version serves every set
            if same is None:
                known[file.name] = _comparable(file)
                added[file.name] = label
                merged.file.append(file)
            elif same != _comparable(file):
                origin = added.get(file.name, "the shipped contract")
                raise ContractError(
                    f"{label}: {file.name} differs from the one in {origin}; a file may be "
                    "loaded once (build against the same version of it)"
                )
    return merged, added


def check_resolves(fds: descriptor_pb2.FileDescriptorSet) -> None:
    """Every import and type reference resolves (sets must be built with their imports)."""
    pool = descriptor_pool.DescriptorPool()
    for file in fds.file:  # protoc and buf write dependencies first
        try:
            pool.AddSerializedFile(file.SerializeToString())
        except (TypeError, KeyError) as exc:
            hint = ""
            if "has not been loaded" in str(exc) or "not defined" in str(exc):
                hint = (
                    " (build the set with its imports: `buf build` or `protoc --include_imports`)"
                )
            raise ContractError(f"{file.name} does not resolve: {exc}{hint}") from None


def check_team_files(
    fds: descriptor_pb2.FileDescriptorSet, team_files: dict[str, str]
) -> list[ContractViolation]:
    """The rules for services declared in `team_files` (file name -> set label)."""
    index = message_index(fds)
    violations: list[ContractViolation] = []
    for file in fds.file:
        label = team_files.get(file.name)
        if label is None:
            continue
        if file.service and file.package.startswith(RESERVED_PACKAGES):
            violations.append(
                ContractViolation(
                    "reserved-package",
                    f"{label}: {file.name}",
                    f"declares services in package {file.package}; packages starting with "
                    f"{' or '.join(RESERVED_PACKAGES)} are isthmus' or gRPC's own",
                )
            )
    team_services = {
        f"{file.package}.{service.name}"
        for file in fds.file
        if file.name in team_files
        for service in file.service
    }
    for info in method_table(fds).values():
        if info.service in team_services and info.is_public:
            # Undeclared or SENSITIVE team methods reach private clusters only: no check.
            violations += pii_reached(info, index, "PUBLIC")
    return violations


def extend(
    base: Contract, sets: Sequence[tuple[str, bytes]], sources: tuple[Path, ...] = ()
) -> Contract:
    """`base` with the teams' sets (label, bytes; read from `sources`) added, or
    ContractError naming every violation."""
    if not sets:
        return base
    parsed = [(label, parse_set(data, label)) for label, data in sets]
    merged, team_files = merge_sets(base.descriptors, parsed)
    duplicate = _duplicate_services(base.descriptors, parsed)
    if duplicate:
        raise ContractError(duplicate)
    check_resolves(merged)
    violations = check_team_files(merged, team_files)
    if violations:
        raise ContractError("; ".join(map(str, violations)), violations)
    digest = hashlib.sha256(b"".join(data for _, data in sets)).hexdigest()[:16]
    return Contract(merged, method_table(merged), sources, digest)


def _duplicate_services(
    base: descriptor_pb2.FileDescriptorSet,
    parsed: list[tuple[str, descriptor_pb2.FileDescriptorSet]],
) -> str | None:
    """A service declared by two different files (the pool would keep only one)."""
    owner = {f"{f.package}.{s.name}": "the shipped contract" for f in base.file for s in f.service}
    seen_files = {f.name for f in base.file}
    for label, fds in parsed:
        for file in fds.file:
            if file.name in seen_files:
                continue
            seen_files.add(file.name)
            for service in file.service:
                name = f"{file.package}.{service.name}"
                if name in owner:
                    return f"{label}: service {name} is already declared by {owner[name]}"
                owner[name] = label
    return None


def load_contract(paths: Sequence[Path], base: Contract | None = None) -> Contract:
    """The shipped contract (or `base`) extended with the sets at `paths`."""
    base = base or shipped_contract()
    sets = []
    for path in paths:
        try:
            sets.append((path.name, path.read_bytes()))
        except OSError as exc:
            raise ContractError(f"descriptor set {path}: {exc.strerror or exc}") from None
    return extend(base, sets, tuple(paths))
