import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from isthmus.common.v1 import common_pb2 as _common_pb2
from isthmus.options.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgeBand(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGE_BAND_UNSPECIFIED: _ClassVar[AgeBand]
    AGE_BAND_UNDER_18: _ClassVar[AgeBand]
    AGE_BAND_ADULT: _ClassVar[AgeBand]

class DegradedReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEGRADED_REASON_UNSPECIFIED: _ClassVar[DegradedReason]
    DEGRADED_REASON_NO_MODEL_AVAILABLE: _ClassVar[DegradedReason]
    DEGRADED_REASON_DEFAULT_FEATURES: _ClassVar[DegradedReason]
AGE_BAND_UNSPECIFIED: AgeBand
AGE_BAND_UNDER_18: AgeBand
AGE_BAND_ADULT: AgeBand
DEGRADED_REASON_UNSPECIFIED: DegradedReason
DEGRADED_REASON_NO_MODEL_AVAILABLE: DegradedReason
DEGRADED_REASON_DEFAULT_FEATURES: DegradedReason

class RankRequest(_message.Message):
    __slots__ = ("request_id", "pseudonymous_user_id", "context", "candidates", "max_results")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PSEUDONYMOUS_USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULTS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    pseudonymous_user_id: str
    context: RankContext
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    max_results: int
    def __init__(self, request_id: _Optional[str] = ..., pseudonymous_user_id: _Optional[str] = ..., context: _Optional[_Union[RankContext, _Mapping]] = ..., candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., max_results: _Optional[int] = ...) -> None: ...

class RankContext(_message.Message):
    __slots__ = ("placement_id", "slot_count", "device_type", "channel", "request_time", "age_band", "region_code")
    PLACEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SLOT_COUNT_FIELD_NUMBER: _ClassVar[int]
    DEVICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_TIME_FIELD_NUMBER: _ClassVar[int]
    AGE_BAND_FIELD_NUMBER: _ClassVar[int]
    REGION_CODE_FIELD_NUMBER: _ClassVar[int]
    placement_id: str
    slot_count: int
    device_type: _common_pb2.DeviceType
    channel: _common_pb2.Channel
    request_time: _timestamp_pb2.Timestamp
    age_band: AgeBand
    region_code: str
    def __init__(self, placement_id: _Optional[str] = ..., slot_count: _Optional[int] = ..., device_type: _Optional[_Union[_common_pb2.DeviceType, str]] = ..., channel: _Optional[_Union[_common_pb2.Channel, str]] = ..., request_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., age_band: _Optional[_Union[AgeBand, str]] = ..., region_code: _Optional[str] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("ad_id", "campaign_id", "advertiser_id", "item_id", "cpc_bid_micros", "categories")
    AD_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    ADVERTISER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    CPC_BID_MICROS_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    ad_id: str
    campaign_id: str
    advertiser_id: str
    item_id: str
    cpc_bid_micros: int
    categories: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ad_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., advertiser_id: _Optional[str] = ..., item_id: _Optional[str] = ..., cpc_bid_micros: _Optional[int] = ..., categories: _Optional[_Iterable[str]] = ...) -> None: ...

class RankResponse(_message.Message):
    __slots__ = ("request_id", "ads", "model_version", "degraded", "degraded_reason", "exclusions")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ADS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_REASON_FIELD_NUMBER: _ClassVar[int]
    EXCLUSIONS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    ads: _containers.RepeatedCompositeFieldContainer[RankedAd]
    model_version: str
    degraded: bool
    degraded_reason: DegradedReason
    exclusions: _containers.RepeatedCompositeFieldContainer[Exclusion]
    def __init__(self, request_id: _Optional[str] = ..., ads: _Optional[_Iterable[_Union[RankedAd, _Mapping]]] = ..., model_version: _Optional[str] = ..., degraded: _Optional[bool] = ..., degraded_reason: _Optional[_Union[DegradedReason, str]] = ..., exclusions: _Optional[_Iterable[_Union[Exclusion, _Mapping]]] = ...) -> None: ...

class RankedAd(_message.Message):
    __slots__ = ("ad_id", "campaign_id", "position", "pctr", "ecpm_micros")
    AD_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    PCTR_FIELD_NUMBER: _ClassVar[int]
    ECPM_MICROS_FIELD_NUMBER: _ClassVar[int]
    ad_id: str
    campaign_id: str
    position: int
    pctr: float
    ecpm_micros: float
    def __init__(self, ad_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., position: _Optional[int] = ..., pctr: _Optional[float] = ..., ecpm_micros: _Optional[float] = ...) -> None: ...

class Exclusion(_message.Message):
    __slots__ = ("ad_id", "rule")
    AD_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    ad_id: str
    rule: str
    def __init__(self, ad_id: _Optional[str] = ..., rule: _Optional[str] = ...) -> None: ...
