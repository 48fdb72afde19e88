import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
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

class ContactChannel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTACT_CHANNEL_UNSPECIFIED: _ClassVar[ContactChannel]
    CONTACT_CHANNEL_EMAIL: _ClassVar[ContactChannel]
    CONTACT_CHANNEL_SMS: _ClassVar[ContactChannel]
    CONTACT_CHANNEL_PUSH: _ClassVar[ContactChannel]
    CONTACT_CHANNEL_PHONE: _ClassVar[ContactChannel]
    CONTACT_CHANNEL_PERSONALIZED_ADS: _ClassVar[ContactChannel]
CONTACT_CHANNEL_UNSPECIFIED: ContactChannel
CONTACT_CHANNEL_EMAIL: ContactChannel
CONTACT_CHANNEL_SMS: ContactChannel
CONTACT_CHANNEL_PUSH: ContactChannel
CONTACT_CHANNEL_PHONE: ContactChannel
CONTACT_CHANNEL_PERSONALIZED_ADS: ContactChannel

class Identifier(_message.Message):
    __slots__ = ("phone_number", "email", "device_id", "open_id")
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    OPEN_ID_FIELD_NUMBER: _ClassVar[int]
    phone_number: str
    email: str
    device_id: str
    open_id: str
    def __init__(self, phone_number: _Optional[str] = ..., email: _Optional[str] = ..., device_id: _Optional[str] = ..., open_id: _Optional[str] = ...) -> None: ...

class ResolveIdentityRequest(_message.Message):
    __slots__ = ("identifiers", "region_code", "create_if_missing")
    IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    REGION_CODE_FIELD_NUMBER: _ClassVar[int]
    CREATE_IF_MISSING_FIELD_NUMBER: _ClassVar[int]
    identifiers: _containers.RepeatedCompositeFieldContainer[Identifier]
    region_code: str
    create_if_missing: bool
    def __init__(self, identifiers: _Optional[_Iterable[_Union[Identifier, _Mapping]]] = ..., region_code: _Optional[str] = ..., create_if_missing: _Optional[bool] = ...) -> None: ...

class ResolveIdentityResponse(_message.Message):
    __slots__ = ("unified_id", "pseudonymous_id", "created", "merged_unified_ids")
    UNIFIED_ID_FIELD_NUMBER: _ClassVar[int]
    PSEUDONYMOUS_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    MERGED_UNIFIED_IDS_FIELD_NUMBER: _ClassVar[int]
    unified_id: str
    pseudonymous_id: str
    created: bool
    merged_unified_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, unified_id: _Optional[str] = ..., pseudonymous_id: _Optional[str] = ..., created: _Optional[bool] = ..., merged_unified_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Consent(_message.Message):
    __slots__ = ("channel", "granted", "update_time")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    GRANTED_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    channel: ContactChannel
    granted: bool
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, channel: _Optional[_Union[ContactChannel, str]] = ..., granted: _Optional[bool] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Profile(_message.Message):
    __slots__ = ("unified_id", "given_name", "family_name", "email", "phone_number", "birth_date", "language_code", "region_code", "consents", "create_time", "update_time", "version")
    UNIFIED_ID_FIELD_NUMBER: _ClassVar[int]
    GIVEN_NAME_FIELD_NUMBER: _ClassVar[int]
    FAMILY_NAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    BIRTH_DATE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    REGION_CODE_FIELD_NUMBER: _ClassVar[int]
    CONSENTS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    unified_id: str
    given_name: str
    family_name: str
    email: str
    phone_number: str
    birth_date: _common_pb2.Date
    language_code: str
    region_code: str
    consents: _containers.RepeatedCompositeFieldContainer[Consent]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    version: int
    def __init__(self, unified_id: _Optional[str] = ..., given_name: _Optional[str] = ..., family_name: _Optional[str] = ..., email: _Optional[str] = ..., phone_number: _Optional[str] = ..., birth_date: _Optional[_Union[_common_pb2.Date, _Mapping]] = ..., language_code: _Optional[str] = ..., region_code: _Optional[str] = ..., consents: _Optional[_Iterable[_Union[Consent, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[int] = ...) -> None: ...

class UpsertProfileRequest(_message.Message):
    __slots__ = ("profile", "update_mask", "expected_version")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    profile: Profile
    update_mask: _field_mask_pb2.FieldMask
    expected_version: int
    def __init__(self, profile: _Optional[_Union[Profile, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., expected_version: _Optional[int] = ...) -> None: ...

class UpsertProfileResponse(_message.Message):
    __slots__ = ("profile", "created")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    profile: Profile
    created: bool
    def __init__(self, profile: _Optional[_Union[Profile, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class GetProfileRequest(_message.Message):
    __slots__ = ("unified_id",)
    UNIFIED_ID_FIELD_NUMBER: _ClassVar[int]
    unified_id: str
    def __init__(self, unified_id: _Optional[str] = ...) -> None: ...

class GetProfileResponse(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: Profile
    def __init__(self, profile: _Optional[_Union[Profile, _Mapping]] = ...) -> None: ...

class EraseProfileRequest(_message.Message):
    __slots__ = ("unified_id", "reason")
    UNIFIED_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    unified_id: str
    reason: str
    def __init__(self, unified_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class EraseProfileResponse(_message.Message):
    __slots__ = ("erasure_id", "erase_time", "already_erased")
    ERASURE_ID_FIELD_NUMBER: _ClassVar[int]
    ERASE_TIME_FIELD_NUMBER: _ClassVar[int]
    ALREADY_ERASED_FIELD_NUMBER: _ClassVar[int]
    erasure_id: str
    erase_time: _timestamp_pb2.Timestamp
    already_erased: bool
    def __init__(self, erasure_id: _Optional[str] = ..., erase_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., already_erased: _Optional[bool] = ...) -> None: ...
