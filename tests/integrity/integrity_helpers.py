"""Build CloudTrail digest chains in the documented format, signed with a test RSA key, in moto S3.

The layout follows the AWS documentation ("CloudTrail digest file structure", "Custom implementations
of CloudTrail log file integrity validation"): gzip JSON digests with the documented fields in the
documented order, the signature as hex in the object metadata (``x-amz-meta-signature`` and
``x-amz-meta-signature-algorithm``), the data-signing string ``end\\nbucket/key\\nsha256(uncompressed
digest)\\nprevious signature or null``, log-file hashes over the uncompressed content. The key is made
once per session by ``cryptography``; no result depends on its value. The fingerprint is the MD5 of the
DER key (the test's choice: the verifier matches fingerprints as ListPublicKeys lists them).

Import from here, never from ``conftest``.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ACCOUNT = "111122223333"
ACCOUNT_B = "444455556666"
ORG = "o-exampleorgid"
BUCKET = "trail-archive"
TRAIL = "org-trail"
HOME = "us-east-1"
#: The first digest of a test chain ends here (fixed: tests never read a clock).
T0 = datetime(2026, 10, 1, 0, 1, 31, tzinfo=UTC)
ISO = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Signer:
    private: rsa.RSAPrivateKey
    fingerprint: str

    @classmethod
    def generate(cls) -> Signer:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(key, hashlib.md5(pkcs1_der(key)).hexdigest())  # a label (32 hex digits, like CloudTrail's)

    def sign(self, data: bytes) -> str:
        return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256()).hex()

    def key_entry(self, *, start: datetime | None = None, end: datetime | None = None) -> dict[str, Any]:
        """One ``list-public-keys`` entry as the AWS CLI prints it (base64 DER PKCS#1, epoch seconds)."""
        start = start or T0 - timedelta(days=30)
        end = end or T0 + timedelta(days=30)
        return {
            "ValidityStartTime": start.timestamp(),
            "ValidityEndTime": end.timestamp(),
            "Value": base64.b64encode(pkcs1_der(self.private)).decode(),
            "Fingerprint": self.fingerprint,
        }

    def keys_doc(self, **kw: Any) -> dict[str, Any]:
        return {"PublicKeyList": [self.key_entry(**kw)]}


def pkcs1_der(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)


def log_body(records: list[dict[str, Any]]) -> tuple[bytes, bytes]:
    """(uncompressed, gzip) bytes of a CloudTrail log file."""
    raw = json.dumps({"Records": records}).encode()
    return raw, gzip.compress(raw, mtime=0)


def record(at: datetime, name: str = "DescribeInstances", account: str = ACCOUNT, region: str = HOME) -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "eventTime": at.strftime(ISO),
        "eventSource": "ec2.amazonaws.com",
        "eventName": name,
        "awsRegion": region,
        "recipientAccountId": account,
        "eventID": hashlib.sha256(f"{at}{name}{account}{region}".encode()).hexdigest()[:36],
    }


@dataclass
class Chain:
    """One trail's digest chain in one account and region folder, written into a moto bucket."""

    s3: Any
    signer: Signer
    account: str = ACCOUNT
    region: str = HOME
    home: str = HOME
    trail: str = TRAIL
    org: str | None = None
    prefix: str = ""
    bucket: str = BUCKET
    digests: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    signatures: dict[str, str] = field(default_factory=dict)
    _previous: tuple[str, bytes, str] | None = None  # (key, uncompressed, signature)

    def root(self) -> str:
        org = f"{self.org}/" if self.org else ""
        return f"{self.prefix}AWSLogs/{org}{self.account}/"

    def log_key(self, at: datetime, n: int, region: str | None = None) -> str:
        region = region or self.region
        uniq = hashlib.sha256(f"{self.account}{region}{at}{n}".encode()).hexdigest()[:16]
        return (
            f"{self.root()}CloudTrail/{region}/{at:%Y/%m/%d}/"
            f"{self.account}_CloudTrail_{region}_{at:%Y%m%dT%H%M}Z_{uniq}.json.gz"
        )

    def put_log(self, at: datetime, n: int = 0, region: str | None = None) -> tuple[str, bytes]:
        key = self.log_key(at, n, region)
        raw, body = log_body([record(at, account=self.account, region=region or self.region)])
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        self.logs.append(key)
        return key, raw

    def digest_key(self, end: datetime) -> str:
        return (
            f"{self.root()}CloudTrail-Digest/{self.region}/{end:%Y/%m/%d}/"
            f"{self.account}_CloudTrail-Digest_{self.region}_{self.trail}_{self.home}_{end:%Y%m%dT%H%M%SZ}.json.gz"
        )

    def put_digest(self, end: datetime, logs: list[tuple[str, bytes]], *, signer: Signer | None = None) -> str:
        """Write the digest for the hour ending at ``end`` listing ``logs`` (key, uncompressed bytes)."""
        signer = signer or self.signer
        key = self.digest_key(end)
        prev = self._previous
        times = [end - timedelta(minutes=20)] if logs else []
        doc: dict[str, Any] = {
            "awsAccountId": self.account,
            "digestStartTime": (end - timedelta(hours=1)).strftime(ISO),
            "digestEndTime": end.strftime(ISO),
            "digestS3Bucket": self.bucket,
            "digestS3Object": key,
            "digestPublicKeyFingerprint": signer.fingerprint,
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": times[0].strftime(ISO) if times else None,
            "oldestEventTime": times[0].strftime(ISO) if times else None,
            "previousDigestS3Bucket": self.bucket if prev else None,
            "previousDigestS3Object": prev[0] if prev else None,
            "previousDigestHashValue": hashlib.sha256(prev[1]).hexdigest() if prev else None,
            "previousDigestHashAlgorithm": "SHA-256" if prev else None,
            "previousDigestSignature": prev[2] if prev else None,
            "logFiles": [
                {
                    "s3Bucket": self.bucket,
                    "s3Object": lk,
                    "hashValue": hashlib.sha256(raw).hexdigest(),
                    "hashAlgorithm": "SHA-256",
                    "newestEventTime": times[0].strftime(ISO),
                    "oldestEventTime": times[0].strftime(ISO),
                }
                for lk, raw in logs
            ],
        }
        raw = json.dumps(doc, indent=2).encode()
        to_sign = "\n".join(
            (doc["digestEndTime"], f"{self.bucket}/{key}", hashlib.sha256(raw).hexdigest(), prev[2] if prev else "null")
        ).encode()
        signature = signer.sign(to_sign)
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=gzip.compress(raw, mtime=0),
            Metadata={"signature": signature, "signature-algorithm": "SHA256withRSA"},
        )
        self._previous = (key, raw, signature)
        self.digests.append(key)
        self.signatures[key] = signature
        return key

    def hours(self, n: int, *, logs_per_hour: int = 2, empty: tuple[int, ...] = (), start: datetime = T0) -> Chain:
        """``n`` hourly digests from ``start``; hour ``i`` lists ``logs_per_hour`` log files unless in ``empty``."""
        for i in range(n):
            end = start + timedelta(hours=i)
            logs = (
                []
                if i in empty
                else [self.put_log(end - timedelta(minutes=40 - 10 * j), j) for j in range(logs_per_hour)]
            )
            self.put_digest(end, logs)
        return self


def rewrite(s3: Any, bucket: str, key: str, body: bytes, *, keep_metadata: bool = True) -> None:
    """Overwrite an object's bytes (keeping its metadata unless told otherwise): what a tamperer does."""
    meta = s3.head_object(Bucket=bucket, Key=key).get("Metadata", {}) if keep_metadata else {}
    s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata=meta)


def download_tree(s3: Any, bucket: str, dest: Any, prefix: str = "") -> None:
    """``aws s3 sync s3://bucket/prefix dest``: object bytes only, no metadata."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            path = dest / o["Key"][len(prefix) :]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read())
