import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from isthmus.options.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ZoneKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ZONE_KIND_UNSPECIFIED: _ClassVar[ZoneKind]
    ZONE_KIND_PRIVATE: _ClassVar[ZoneKind]
    ZONE_KIND_PUBLIC: _ClassVar[ZoneKind]

class EndpointState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENDPOINT_STATE_UNSPECIFIED: _ClassVar[EndpointState]
    ENDPOINT_STATE_HEALTHY: _ClassVar[EndpointState]
    ENDPOINT_STATE_UNHEALTHY: _ClassVar[EndpointState]
    ENDPOINT_STATE_EJECTED: _ClassVar[EndpointState]
    ENDPOINT_STATE_DRAINED: _ClassVar[EndpointState]
ZONE_KIND_UNSPECIFIED: ZoneKind
ZONE_KIND_PRIVATE: ZoneKind
ZONE_KIND_PUBLIC: ZoneKind
ENDPOINT_STATE_UNSPECIFIED: EndpointState
ENDPOINT_STATE_HEALTHY: EndpointState
ENDPOINT_STATE_UNHEALTHY: EndpointState
ENDPOINT_STATE_EJECTED: EndpointState
ENDPOINT_STATE_DRAINED: EndpointState

class ListRoutesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRoutesResponse(_message.Message):
    __slots__ = ("routes", "config_version")
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    routes: _containers.RepeatedCompositeFieldContainer[Route]
    config_version: str
    def __init__(self, routes: _Optional[_Iterable[_Union[Route, _Mapping]]] = ..., config_version: _Optional[str] = ...) -> None: ...

class Route(_message.Message):
    __slots__ = ("name", "match", "clusters", "per_try_timeout", "max_attempts", "degraded_fallback", "timeout", "retry_on")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MATCH_FIELD_NUMBER: _ClassVar[int]
    CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    PER_TRY_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FALLBACK_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    RETRY_ON_FIELD_NUMBER: _ClassVar[int]
    name: str
    match: RouteMatch
    clusters: _containers.RepeatedScalarFieldContainer[str]
    per_try_timeout: _duration_pb2.Duration
    max_attempts: int
    degraded_fallback: bool
    timeout: _duration_pb2.Duration
    retry_on: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., match: _Optional[_Union[RouteMatch, _Mapping]] = ..., clusters: _Optional[_Iterable[str]] = ..., per_try_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_attempts: _Optional[int] = ..., degraded_fallback: _Optional[bool] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., retry_on: _Optional[_Iterable[str]] = ...) -> None: ...

class RouteMatch(_message.Message):
    __slots__ = ("method", "service", "prefix")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    method: str
    service: str
    prefix: str
    def __init__(self, method: _Optional[str] = ..., service: _Optional[str] = ..., prefix: _Optional[str] = ...) -> None: ...

class GetClusterHealthRequest(_message.Message):
    __slots__ = ("cluster",)
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    def __init__(self, cluster: _Optional[str] = ...) -> None: ...

class GetClusterHealthResponse(_message.Message):
    __slots__ = ("clusters",)
    CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    clusters: _containers.RepeatedCompositeFieldContainer[ClusterHealth]
    def __init__(self, clusters: _Optional[_Iterable[_Union[ClusterHealth, _Mapping]]] = ...) -> None: ...

class ClusterHealth(_message.Message):
    __slots__ = ("name", "zone", "zone_kind", "endpoints", "in_flight", "pending")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    ZONE_KIND_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    name: str
    zone: str
    zone_kind: ZoneKind
    endpoints: _containers.RepeatedCompositeFieldContainer[EndpointHealth]
    in_flight: int
    pending: int
    def __init__(self, name: _Optional[str] = ..., zone: _Optional[str] = ..., zone_kind: _Optional[_Union[ZoneKind, str]] = ..., endpoints: _Optional[_Iterable[_Union[EndpointHealth, _Mapping]]] = ..., in_flight: _Optional[int] = ..., pending: _Optional[int] = ...) -> None: ...

class EndpointHealth(_message.Message):
    __slots__ = ("address", "state", "in_flight", "consecutive_failures", "ejected_until", "ejection_count")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    EJECTED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    EJECTION_COUNT_FIELD_NUMBER: _ClassVar[int]
    address: str
    state: EndpointState
    in_flight: int
    consecutive_failures: int
    ejected_until: _timestamp_pb2.Timestamp
    ejection_count: int
    def __init__(self, address: _Optional[str] = ..., state: _Optional[_Union[EndpointState, str]] = ..., in_flight: _Optional[int] = ..., consecutive_failures: _Optional[int] = ..., ejected_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ejection_count: _Optional[int] = ...) -> None: ...

class DrainEndpointRequest(_message.Message):
    __slots__ = ("cluster", "address", "undrain", "wait_timeout")
    CLUSTER_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    UNDRAIN_FIELD_NUMBER: _ClassVar[int]
    WAIT_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    cluster: str
    address: str
    undrain: bool
    wait_timeout: _duration_pb2.Duration
    def __init__(self, cluster: _Optional[str] = ..., address: _Optional[str] = ..., undrain: _Optional[bool] = ..., wait_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class DrainEndpointResponse(_message.Message):
    __slots__ = ("endpoint", "in_flight_remaining")
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_REMAINING_FIELD_NUMBER: _ClassVar[int]
    endpoint: EndpointHealth
    in_flight_remaining: int
    def __init__(self, endpoint: _Optional[_Union[EndpointHealth, _Mapping]] = ..., in_flight_remaining: _Optional[int] = ...) -> None: ...

class ReloadConfigRequest(_message.Message):
    __slots__ = ("dry_run",)
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    dry_run: bool
    def __init__(self, dry_run: _Optional[bool] = ...) -> None: ...

class ReloadConfigResponse(_message.Message):
    __slots__ = ("config_version", "applied", "changes", "load_time")
    CONFIG_VERSION_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    LOAD_TIME_FIELD_NUMBER: _ClassVar[int]
    config_version: str
    applied: bool
    changes: _containers.RepeatedScalarFieldContainer[str]
    load_time: _timestamp_pb2.Timestamp
    def __init__(self, config_version: _Optional[str] = ..., applied: _Optional[bool] = ..., changes: _Optional[_Iterable[str]] = ..., load_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
