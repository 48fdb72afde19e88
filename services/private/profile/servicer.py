"""ProfileService gRPC adapter: validate and normalise -> store (worker thread) -> response."""

from __future__ import annotations

import grpc

from isthmus.profile.v1 import profile_pb2, profile_pb2_grpc
from services.core.blocking import BlockingPool
from services.core.errors import InvalidArgument
from services.core.identity import current_caller
from services.core.validation import Violations
from services.private.clock import to_timestamp
from services.private.profile.normalize import resolve_identifiers, validate_profile
from services.private.profile.store import ProfileStore

WRITABLE = frozenset(
    {
        "given_name",
        "family_name",
        "email",
        "phone_number",
        "birth_date",
        "language_code",
        "region_code",
        "consents",
    }
)


class ProfileServicer(profile_pb2_grpc.ProfileServiceServicer):
    def __init__(self, store: ProfileStore, pool: BlockingPool) -> None:
        self._store = store
        self._pool = pool

    async def ResolveIdentity(
        self, request: profile_pb2.ResolveIdentityRequest, context: grpc.aio.ServicerContext
    ) -> profile_pb2.ResolveIdentityResponse:
        ids = resolve_identifiers(request)
        caller = current_caller().name
        found = await self._pool.run(
            context, self._store.resolve, ids, request.create_if_missing, caller
        )
        return profile_pb2.ResolveIdentityResponse(
            unified_id=found.unified_id,
            pseudonymous_id=found.pseudonymous_id,
            created=found.created,
            merged_unified_ids=list(found.merged),
        )

    async def UpsertProfile(
        self, request: profile_pb2.UpsertProfileRequest, context: grpc.aio.ServicerContext
    ) -> profile_pb2.UpsertProfileResponse:
        paths = _update_paths(request)
        profile = validate_profile(request.profile, paths)
        caller = current_caller().name
        stored, created = await self._pool.run(
            context, self._store.upsert, profile, paths, request.expected_version, caller
        )
        return profile_pb2.UpsertProfileResponse(profile=stored, created=created)

    async def GetProfile(
        self, request: profile_pb2.GetProfileRequest, context: grpc.aio.ServicerContext
    ) -> profile_pb2.GetProfileResponse:
        _require_id(request.unified_id)
        profile = await self._pool.run(
            context, self._store.get, request.unified_id, current_caller().name
        )
        return profile_pb2.GetProfileResponse(profile=profile)

    async def EraseProfile(
        self, request: profile_pb2.EraseProfileRequest, context: grpc.aio.ServicerContext
    ) -> profile_pb2.EraseProfileResponse:
        v = Violations()
        v.token("unified_id", request.unified_id, max_len=64)
        v.text("reason", request.reason, max_len=500)
        v.raise_if_any()
        erased = await self._pool.run(
            context,
            self._store.erase,
            request.unified_id,
            request.reason,
            current_caller().name,
        )
        return profile_pb2.EraseProfileResponse(
            erasure_id=erased.erasure_id,
            erase_time=to_timestamp(erased.erase_us),
            already_erased=erased.already,
        )


def _update_paths(request: profile_pb2.UpsertProfileRequest) -> set[str]:
    if not request.HasField("profile"):
        raise InvalidArgument.field("profile", "is required")
    paths = list(request.update_mask.paths)
    if not paths:
        return set(WRITABLE)
    v = Violations()
    for i, path in enumerate(paths):
        if path not in WRITABLE:
            v.add(f"update_mask.paths[{i}]", f"{path!r} is not a writable Profile field")
    v.raise_if_any()
    return set(paths)


def _require_id(unified_id: str) -> None:
    v = Violations()
    v.token("unified_id", unified_id, max_len=64)
    v.raise_if_any()
