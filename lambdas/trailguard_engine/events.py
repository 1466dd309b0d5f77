"""Normalise input into EventBridge envelopes and read CloudTrail fields safely.

Input can be an EventBridge envelope (what a rule delivers) or a bare CloudTrail
record (one entry of a log file's ``Records``). Bare records are wrapped the way
EventBridge wraps them. Anything else is a :class:`RejectedEvent` with a reason.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from typing import Any, TypeGuard

from trailguard_engine.exceptions import RejectedEvent


def _is_map(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """``isinstance(value, Mapping)``, with JSON's plain dict answered first (the ABC check is the slow path)."""
    return type(value) is dict or isinstance(value, Mapping)


SIGNIN_DETAIL_TYPE = "AWS Console Sign In via CloudTrail"
SIGNIN_DETAIL_TYPES = ("AWS Console Sign In via CloudTrail", "AWS Console Signin via CloudTrail")

_DETAIL_TYPE = {
    "AwsApiCall": "AWS API Call via CloudTrail",
    "AwsConsoleSignIn": SIGNIN_DETAIL_TYPE,
    "AwsConsoleAction": "AWS Console Action via CloudTrail",
    "AwsServiceEvent": "AWS Service Event via CloudTrail",
    "AwsCloudTrailInsight": "AWS Insight via CloudTrail",
    "AwsVpceEvent": "AWS Network Activity Event via CloudTrail",
}
#: The detail-types EventBridge gives CloudTrail events. Nothing else is a CloudTrail event.
CLOUDTRAIL_DETAIL_TYPES = frozenset(_DETAIL_TYPE.values()) | frozenset(SIGNIN_DETAIL_TYPES)
_SUFFIX = re.compile(r"\.amazonaws\.com(\.cn)?$")
_MAX_ID = 256


def source_for(event_source: str) -> str:
    """EventBridge ``source`` for a CloudTrail ``eventSource`` (s3.amazonaws.com -> aws.s3)."""
    prefix = _SUFFIX.sub("", event_source.strip())
    return "aws." + prefix if prefix else "aws.unknown"


def detail_type_for(record: Mapping[str, Any]) -> str:
    et = record.get("eventType")
    if isinstance(et, str) and et in _DETAIL_TYPE:
        return _DETAIL_TYPE[et]
    if record.get("eventName") == "ConsoleLogin":
        return SIGNIN_DETAIL_TYPE
    if "serviceEventDetails" in record:
        return _DETAIL_TYPE["AwsServiceEvent"]
    return _DETAIL_TYPE["AwsApiCall"]


def _is_record(obj: Mapping[str, Any]) -> bool:
    return isinstance(obj.get("eventName"), str) and isinstance(obj.get("eventSource"), str)


def not_a_record(obj: Mapping[str, Any]) -> str | None:
    """Why an object with ``eventName`` and ``eventSource`` is still not a CloudTrail record, or None.

    CloudTrail writes ``eventTime`` and ``eventID`` in every record ("CloudTrail record contents":
    Optional False; ``eventID`` since format 1.01, ``requestID`` where the service has one), so an
    object without a time and an id is something else that names an API call: a label or
    annotation file, a finding, a rule's test fixture. ``eventVersion`` is always written too, but
    exports drop it (the shared corpus's S3 data events rebuilt from a CSV keep time and ids, not
    the version), so it is not required. CloudTrail Insights events name the API they measure but
    record no call (``eventType`` ``AwsCloudTrailInsight``): not a record either.
    """
    missing = [] if isinstance(obj.get("eventTime"), str) and obj["eventTime"] else ["eventTime"]
    if not isinstance(obj.get("eventID"), str) and not isinstance(obj.get("requestID"), str):
        missing.append("eventID or requestID")
    if missing:
        return f"not a CloudTrail record: it has eventName and eventSource but no {' and no '.join(missing)}"
    if obj.get("eventType") == "AwsCloudTrailInsight" or "insightDetails" in obj:
        return "not a CloudTrail record: a CloudTrail Insights event (it measures API calls, it records none)"
    return None


_URL_NAMESPACE = uuid.NAMESPACE_URL.bytes


def envelope_id_for(event_id: str) -> str:
    """``str(uuid.uuid5(uuid.NAMESPACE_URL, f"cloudtrail-event:{event_id}"))``, without building UUID objects.

    Every wrapped record gets one (replay wraps every record that may match a rule; issue 19). RFC 4122 section
    4.3: the first 16 bytes of SHA-1(namespace + name), version 5, variant RFC 4122.
    """
    digest = bytearray(
        hashlib.sha1(_URL_NAMESPACE + f"cloudtrail-event:{event_id}".encode(), usedforsecurity=False).digest()[:16]
    )
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def wrap_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """Wrap a bare CloudTrail record in the envelope EventBridge would deliver."""
    # The account the event happened in. Never the caller's userIdentity.accountId:
    # for cross-account calls that is a different account.
    account = record.get("recipientAccountId")
    seed = record.get("eventID")
    env_id = envelope_id_for(seed) if isinstance(seed, str) else str(uuid.uuid4())
    return {
        "version": "0",
        "id": env_id,
        "detail-type": detail_type_for(record),
        "source": source_for(str(record.get("eventSource", ""))),
        "account": account if isinstance(account, str) else "",
        "time": record.get("eventTime") if isinstance(record.get("eventTime"), str) else "",
        "region": record.get("awsRegion") if isinstance(record.get("awsRegion"), str) else "",
        "resources": [],
        "detail": dict(record),
    }


def to_envelope(obj: Any) -> dict[str, Any]:
    """Return an EventBridge envelope for ``obj`` or raise :class:`RejectedEvent`."""
    if not _is_map(obj):
        raise RejectedEvent(f"expected a JSON object, got {type(obj).__name__}")
    if "detail" in obj and "detail-type" in obj:
        detail = obj.get("detail")
        if not _is_map(detail):
            raise RejectedEvent("envelope 'detail' is not an object")
        if not _is_record(detail):
            raise RejectedEvent("envelope 'detail' is not a CloudTrail record (no eventName/eventSource)")
        _check_envelope(obj)
        _check_record(detail)
        return dict(obj)
    if _is_record(obj):
        why = not_a_record(obj)
        if why is not None:
            raise RejectedEvent(why)
        _check_record(obj)
        return wrap_record(obj)
    raise RejectedEvent("not a CloudTrail record or EventBridge envelope (no eventName/eventSource)")


def _check_envelope(envelope: Mapping[str, Any]) -> None:
    """Only AWS services emit CloudTrail events: ``source`` ``aws.*`` and a CloudTrail detail-type.

    ``PutEvents`` callers cannot use an ``aws.`` source, so this refuses custom events crafted to
    look like CloudTrail (a member with PutEvents on the central bus, a direct invoke).
    """
    source = envelope.get("source")
    if not isinstance(source, str) or not source.startswith("aws."):
        raise RejectedEvent(f"envelope source {str(source)[:64]!r} is not an AWS service (aws.*)")
    detail_type = envelope.get("detail-type")
    if not isinstance(detail_type, str) or detail_type not in CLOUDTRAIL_DETAIL_TYPES:
        raise RejectedEvent(f"envelope detail-type {str(detail_type)[:64]!r} is not a CloudTrail detail-type")


def _check_record(record: Mapping[str, Any]) -> None:
    event_id = record.get("eventID")
    if event_id is not None and (not isinstance(event_id, str) or len(event_id) > _MAX_ID):
        raise RejectedEvent("eventID is not a string of at most 256 characters")
    for key in ("userIdentity", "requestParameters", "responseElements"):
        value = record.get(key)
        if value is not None and not _is_map(value):
            raise RejectedEvent(f"{key} is a {type(value).__name__}, expected an object or null")


class CloudTrailEvent:
    """Read-only, type-safe view of an envelope and its CloudTrail record.

    Every accessor returns a value of the declared type, never raises on
    missing or mistyped fields: decision functions can stay simple.
    """

    __slots__ = ("caller_memo", "detail", "envelope")

    def __init__(self, envelope: Mapping[str, Any]) -> None:
        self.envelope = envelope
        #: (config, Caller) of the last ``caller.classify`` of this event: every matching rule asks again
        self.caller_memo: tuple[Any, Any] | None = None
        detail = envelope.get("detail")
        self.detail: Mapping[str, Any] = detail if _is_map(detail) else {}

    # --- scalar fields ----------------------------------------------------- #
    def _str(self, key: str) -> str:
        v = self.detail.get(key)
        return v if isinstance(v, str) else ""

    @property
    def envelope_id(self) -> str:
        v = self.envelope.get("id")
        return v if isinstance(v, str) else ""

    @property
    def event_id(self) -> str:
        return self._str("eventID")

    @property
    def event_name(self) -> str:
        return self._str("eventName")

    @property
    def event_source(self) -> str:
        return self._str("eventSource")

    @property
    def event_time(self) -> str:
        return self._str("eventTime")

    @property
    def event_type(self) -> str:
        return self._str("eventType")

    @property
    def error_code(self) -> str:
        return self._str("errorCode")

    @property
    def failed(self) -> bool:
        """The call failed: any non-empty ``errorCode``, whatever its type (a mistyped one is not a success)."""
        v = self.detail.get("errorCode")
        return v is not None and v != "" and v is not False

    @property
    def error_message(self) -> str:
        return self._str("errorMessage")

    @property
    def source_ip(self) -> str:
        return self._str("sourceIPAddress")

    @property
    def user_agent(self) -> str:
        return self._str("userAgent")

    @property
    def account(self) -> str:
        v = self.envelope.get("account")
        if v is None or v == "":
            return self._str("recipientAccountId")
        return v if isinstance(v, str) else ""

    @property
    def region(self) -> str:
        v = self.envelope.get("region")
        if v is None or v == "":
            return self._str("awsRegion")
        return v if isinstance(v, str) else ""

    @property
    def read_only(self) -> bool:
        v = self.detail.get("readOnly")
        return v is True or (isinstance(v, str) and v.lower() == "true")

    # --- nested objects ---------------------------------------------------- #
    @property
    def identity(self) -> Mapping[str, Any]:
        v = self.detail.get("userIdentity")
        return v if _is_map(v) else {}

    def identity_str(self, key: str) -> str:
        v = self.identity.get(key)
        return v if isinstance(v, str) else ""

    @property
    def identity_type(self) -> str:
        return self.identity_str("type")

    @property
    def principal_arn(self) -> str:
        """Caller ARN; for assumed roles, the session ARN (``...:assumed-role/Role/session``)."""
        return self.identity_str("arn")

    @property
    def session_issuer_arn(self) -> str:
        ctx = self.identity.get("sessionContext")
        if _is_map(ctx):
            issuer = ctx.get("sessionIssuer")
            if _is_map(issuer):
                arn = issuer.get("arn")
                return arn if isinstance(arn, str) else ""
        return ""

    @property
    def mfa_authenticated(self) -> bool:
        ctx = self.identity.get("sessionContext")
        if _is_map(ctx):
            attrs = ctx.get("attributes")
            if _is_map(attrs):
                v = attrs.get("mfaAuthenticated")
                return v is True or v == "true"
        return False

    @property
    def invoked_by(self) -> str:
        return self.identity_str("invokedBy")

    @property
    def access_key_id(self) -> str:
        return self.identity_str("accessKeyId")

    @property
    def actor(self) -> str:
        """Who made the call, for a finding's reason: the caller ARN, else its access key, else the service."""
        return self.principal_arn or self.access_key_id or self.invoked_by or "unknown principal"

    @property
    def request(self) -> Mapping[str, Any]:
        v = self.detail.get("requestParameters")
        return v if _is_map(v) else {}

    @property
    def response(self) -> Mapping[str, Any]:
        v = self.detail.get("responseElements")
        return v if _is_map(v) else {}

    @property
    def additional(self) -> Mapping[str, Any]:
        v = self.detail.get("additionalEventData")
        return v if _is_map(v) else {}

    def req(self, *path: str | int) -> Any:
        """Walk ``requestParameters`` by keys/indices; ``None`` when any step is missing."""
        return dig(self.request, *path)

    def resp(self, *path: str | int) -> Any:
        return dig(self.response, *path)


def text(value: Any) -> str:
    """A request value as stripped text; "" for anything that is not a string (crafted numbers, lists, null)."""
    return value.strip() if isinstance(value, str) else ""


def get_ci(obj: Any, *keys: str) -> Any:
    """``obj[key]`` for the first of ``keys`` present, its exact spelling first, then compared case-insensitively.

    CloudTrail renders one request field in camelCase, PascalCase or lower case depending on the API, the
    SDK and the XML body (S3, EC2, Security Hub ...). None when ``obj`` is not a mapping or no key is present.
    """
    if not _is_map(obj):
        return None
    for key in keys:
        if key in obj:
            return obj[key]
        low = key.lower()
        for k, v in obj.items():
            if isinstance(k, str) and k.lower() == low:
                return v
    return None


def dig(obj: Any, *path: str | int) -> Any:
    """Walk nested dicts/lists; return ``None`` on any missing key, bad index or wrong type."""
    cur = obj
    for step in path:
        if isinstance(step, int):
            if isinstance(cur, list) and -len(cur) <= step < len(cur):
                cur = cur[step]
            else:
                return None
        elif _is_map(cur):
            cur = cur.get(step)
        else:
            return None
    return cur


def as_list(value: Any) -> list[Any]:
    """CloudTrail often renders one-element lists as a bare object: normalise to a list."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]
