"""Deployment configuration: a YAML file validated with pydantic.

The same model is used by ``app.py`` (``cdk synth -c config=path``) and by
``trailguard validate-config``. With no file at all the defaults describe a
standalone deployment, so ``cdk synth`` works out of the box.

The Lambda functions never import this module (pydantic is too slow to import
on a cold start). The subset they need at run time is serialised by
:meth:`TrailguardConfig.runtime_document` into an SSM parameter and read by
``trailguard_engine.runtime_config``.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from trailguard_engine.caller import iac_principal_error
from trailguard_engine.catalog import load_catalog
from trailguard_engine.intended import (
    DEFAULT_PORT_TAG,
    DEFAULT_TAG_FORBIDDEN_PORTS,
    DEFAULT_TAG_MAX_PORTS,
    DEFAULT_WEBSITE_TAG,
    parse_port_spec,
)

from trailguard.exceptions import ConfigError
from trailguard.suggest import did_you_mean

# --------------------------------------------------------------------------- #
# Constrained scalar types
# --------------------------------------------------------------------------- #

#: Every public commercial region (opt-in ones included). GovCloud and China
#: are separate partitions and are not supported by this release.
KNOWN_REGIONS: tuple[str, ...] = (
    "us-east-1", "us-east-2", "us-west-1", "us-west-2",
    "af-south-1",
    "ap-east-1", "ap-east-2", "ap-south-1", "ap-south-2",
    "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4",
    "ap-southeast-5", "ap-southeast-7",
    "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ca-central-1", "ca-west-1",
    "eu-central-1", "eu-central-2", "eu-west-1", "eu-west-2", "eu-west-3",
    "eu-south-1", "eu-south-2", "eu-north-1",
    "il-central-1", "me-south-1", "me-central-1",
    "mx-central-1", "sa-east-1",
)  # fmt: skip

#: The 17 regions enabled by default in every account: the default set of
#: governed regions.
DEFAULT_GOVERNED_REGIONS: tuple[str, ...] = (
    "us-east-1", "us-east-2", "us-west-1", "us-west-2",
    "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ap-southeast-1", "ap-southeast-2", "ca-central-1",
    "eu-central-1", "eu-west-1", "eu-west-2", "eu-west-3", "eu-north-1",
    "sa-east-1",
)  # fmt: skip

#: Retention values CloudWatch Logs accepts (days).
CLOUDWATCH_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

_ACCOUNT_RE = re.compile(r"\A[0-9]{12}\Z")  # ASCII digits only; \d would take other scripts' digits
_ORG_ID_RE = re.compile(r"^o-[a-z0-9]{10,32}$")
_OU_RE = re.compile(r"^(r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32})$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_RULE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{2,80}$")
_ARN_PATTERN_RE = re.compile(r"^arn:(aws|\*):[a-z0-9*-]*:[a-z0-9*-]*:(\d{12}|\*)?:.+$")
#: An exact IAM role ARN: account pinned, no wildcard (IAM's role path and name characters).
_ROLE_ARN_RE = re.compile(r"^arn:aws:iam::\d{12}:role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}$")


#: Region prefixes of the AWS partitions other than ``aws`` (GovCloud, China, the isolated regions).
_OTHER_PARTITION_PREFIXES: tuple[tuple[str, str], ...] = (
    ("us-gov-", "aws-us-gov (GovCloud)"),
    ("cn-", "aws-cn (China)"),
    ("us-iso", "an isolated AWS partition"),
    ("eu-isoe-", "an isolated AWS partition"),
)


def _unquoted_account_id(value: Any) -> Any:
    """YAML reads unquoted digits as a number (and 0-prefixed ones as octal): say so, with the fix."""
    if isinstance(value, int) and not isinstance(value, bool):
        digits = str(value)
        if len(digits) == 12:
            raise ValueError(f'the account ID {digits} is unquoted, so YAML reads it as a number: quote it, "{digits}"')
        raise ValueError(
            f"an unquoted account ID that YAML read as the number {value} (a leading zero is dropped, and digits "
            '0-7 after a leading zero are read as octal): quote the 12 digits as written, such as "012345678901"'
        )
    return value


def _account_id(value: str) -> str:
    if not _ACCOUNT_RE.match(value):
        raise ValueError(f"expected a 12-digit AWS account ID, got {value!r}")
    return value


def _region(value: str) -> str:
    if value not in KNOWN_REGIONS:
        for prefix, partition in _OTHER_PARTITION_PREFIXES:
            if value.startswith(prefix):
                raise ValueError(
                    f"{value!r} is in the {partition} partition: partition not supported yet (trailguard deploys "
                    "to the commercial aws partition only; list commercial regions such as 'us-east-1')"
                )
        raise ValueError(
            f"expected an AWS region such as 'us-east-1', got {value!r}{did_you_mean(value, KNOWN_REGIONS)}"
        )
    return value


def _org_id(value: str) -> str:
    if not _ORG_ID_RE.match(value):
        raise ValueError(f"expected an organization ID like 'o-a1b2c3d4e5', got {value!r}")
    return value


def _ou_id(value: str) -> str:
    if not _OU_RE.match(value):
        raise ValueError(f"expected a root ID 'r-xxxx' or an OU ID 'ou-xxxx-xxxxxxxx', got {value!r}")
    return value


def _email(value: str) -> str:
    if not _EMAIL_RE.match(value):
        raise ValueError(f"expected an email address, got {value!r}")
    return value


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as exc:
        raise ValueError(f"expected a CIDR block such as '10.0.0.0/8', got {value!r} ({exc})") from exc


def _arn_pattern(value: str) -> str:
    if not _ARN_PATTERN_RE.match(value):
        raise ValueError(f"expected an ARN or ARN glob such as 'arn:aws:iam::*:role/BreakGlass*', got {value!r}")
    return value


def _role_arn(value: str) -> str:
    if not _ROLE_ARN_RE.match(value):
        raise ValueError(
            f"expected an exact IAM role ARN with its account ID, such as "
            f"'arn:aws:iam::111122223333:role/security-break-glass', got {value!r} "
            "(no wildcards: a pattern lets any account admin create a matching role)"
        )
    return value


def _port(value: int) -> int:
    if not 0 <= value <= 65535:
        raise ValueError(f"expected a TCP/UDP port between 0 and 65535, got {value}")
    return value


def _cw_retention(value: int) -> int:
    if value not in CLOUDWATCH_RETENTION_DAYS:
        raise ValueError(
            f"expected a CloudWatch Logs retention in days, one of {list(CLOUDWATCH_RETENTION_DAYS)}, got {value}"
        )
    return value


AccountId = Annotated[str, BeforeValidator(_unquoted_account_id), AfterValidator(_account_id)]
Region = Annotated[str, AfterValidator(_region)]
OrgId = Annotated[str, AfterValidator(_org_id)]
OuId = Annotated[str, AfterValidator(_ou_id)]
Email = Annotated[str, AfterValidator(_email)]
Cidr = Annotated[str, AfterValidator(_cidr)]
ArnPattern = Annotated[str, AfterValidator(_arn_pattern)]
RoleArn = Annotated[str, AfterValidator(_role_arn)]
Port = Annotated[int, AfterValidator(_port)]
RuleMode = Literal["remediate", "alert", "off"]
CallerKind = Literal["human", "iac", "service", "identity-center", "trailguard", "unknown"]
CallerMode = Literal["remediate", "alert", "notice"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- #
# Sections
# --------------------------------------------------------------------------- #


class OrganizationSettings(_Strict):
    """Accounts and scope of an AWS Organization deployment."""

    org_id: OrgId
    management_account_id: AccountId
    log_archive_account_id: AccountId
    security_tooling_account_id: AccountId
    target_ous: list[OuId] = Field(min_length=1, description="Root or OU IDs the member StackSet deploys to.")
    delegated_admin_account_id: AccountId | None = Field(
        default=None,
        description="CloudTrail delegated administrator. When set, the trail stack is deployed there.",
    )
    accounts: list[AccountId] | None = Field(
        default=None,
        description="The organization's accounts, for offline replay: a share with one of them is not "
        "external. The engine adds the organization's current list (organizations:ListAccounts, cached); "
        "null: replay knows only the accounts named elsewhere in this file.",
    )

    @model_validator(mode="after")
    def _admin_not_management(self) -> OrganizationSettings:
        if self.delegated_admin_account_id is not None and (
            self.delegated_admin_account_id == self.management_account_id
        ):
            raise ValueError(
                "delegated_admin_account_id: the management account cannot be the CloudTrail delegated "
                "administrator (AWS refuses it); name a member account such as the security tooling account, "
                "or remove the key to deploy the trail in the management account"
            )
        return self


class Exemptions(_Strict):
    """Events and resources the engine never acts on (it still records them)."""

    accounts: list[AccountId] = Field(default_factory=list)
    regions: list[Region] = Field(default_factory=list)
    principal_arn_patterns: list[ArnPattern] = Field(
        default_factory=list, description="fnmatch-style globs matched against the caller ARN."
    )
    resource_tags: dict[str, str] = Field(
        default_factory=lambda: {"trailguard:exempt": "true"},
        description="A resource carrying any of these tag key/value pairs is never remediated (read live). "
        "trailguard's own resources (its trail, rules, roles, functions, stacks) are never exempt by tag.",
    )
    source_cidrs: list[Cidr] = Field(
        default_factory=list,
        description="Calls whose sourceIPAddress is inside one of these networks are alerted, never remediated.",
    )


def _iac_principal(value: str) -> str:
    err = iac_principal_error(value)
    if err:
        raise ValueError(err)
    return value


IacPrincipal = Annotated[str, AfterValidator(_iac_principal)]


class Callers(_Strict):
    """Caller classes (human, iac, service, identity-center, trailguard, unknown): docs/deploy.md, "Caller classes"."""

    iac_principals: list[IacPrincipal] = Field(
        default_factory=list,
        description="Your IaC pipeline principals: exact role/user ARNs or fnmatch patterns with a literal 12-digit "
        "account ID (arn:aws:iam::111122223333:role/cfn-exec, arn:aws:sts::111122223333:assumed-role/terraform-ci/*). "
        "Their calls are class iac on trusted evidence: only these can be set to notice.",
    )
    modes: dict[str, dict[CallerKind, CallerMode]] = Field(
        default_factory=dict,
        description="Per rule id, or '*' for every rule: caller kind -> remediate|alert|notice. Overrides the "
        "rule's caller_modes; the effective action is the least of this and the rule mode. A Terraform/CDK user "
        "agent or invokedBy CloudFormation is never lowered below alert.",
    )

    @model_validator(mode="after")
    def _known(self) -> Callers:
        ids = {r.id for r in load_catalog()}
        for key, per_kind in self.modes.items():
            if key != "*" and key not in ids:
                raise ValueError(
                    f"callers.modes: {key!r} is not a catalog rule id (or '*'){did_you_mean(key, ids)}; "
                    "see `trailguard rules`"
                )
            if per_kind.get("trailguard", "notice") != "notice":
                raise ValueError(f"callers.modes[{key!r}].trailguard: trailguard's own calls are always 'notice'")
        return self


class Retention(_Strict):
    cloudwatch_logs_days: Annotated[int, AfterValidator(_cw_retention)] = 400
    archive_days: int = Field(default=2557, ge=365, le=36500, description="Expire log objects after this many days.")
    transition_to_infrequent_access_days: int = Field(default=90, ge=30)
    transition_to_glacier_days: int = Field(default=365, ge=90)
    athena_results_days: int = Field(default=30, ge=1, le=3650)

    @model_validator(mode="after")
    def _ordered(self) -> Retention:
        if not (self.transition_to_infrequent_access_days < self.transition_to_glacier_days < self.archive_days):
            raise ValueError(
                "expected transition_to_infrequent_access_days < transition_to_glacier_days < archive_days"
            )
        return self


class DataEvents(_Strict):
    s3: bool = False
    lambda_: bool = Field(default=False, alias="lambda")
    network_activity: bool = False

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CloudTrailLake(_Strict):
    enabled: bool = False
    retention_days: int = Field(default=2557, ge=7, le=3653)


class ObjectLock(_Strict):
    enabled: bool = False
    mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE"
    days: int = Field(default=365, ge=1, le=36500)


class Features(_Strict):
    data_events: DataEvents = Field(default_factory=DataEvents)
    insights: bool = False
    cloudtrail_lake: CloudTrailLake = Field(default_factory=CloudTrailLake)
    object_lock: ObjectLock = Field(default_factory=ObjectLock)
    scps: bool = Field(default=False, description="Organization mode only: attach the guardrail SCPs.")
    sns_delivery_notifications: bool = False
    security_hub_findings: bool = True
    tracing: bool = Field(default=False, description="X-Ray tracing in the engine (about +0.5 s cold start).")


class Remediation(_Strict):
    max_actions_per_resource_per_hour: int = Field(
        default=2,
        ge=1,
        le=100,
        description="Remediations that changed something, per resource, in any 3600 s (a sliding hour). A "
        "remediation reverted twice stops for that hour and the flapping alert names who reverts it, so values "
        "above 2 act as 2; set 1 to act once per resource per hour.",
    )
    protected_key_tag: dict[str, str] = Field(default_factory=lambda: {"trailguard:protected": "true"})
    idempotency_ttl_hours: int = Field(default=72, ge=1, le=720)
    max_event_age_minutes: int = Field(
        default=60,
        ge=1,
        le=1440,
        description="Act only on events younger than this (by eventTime); older ones are alert-only, with the reason.",
    )
    alerts_per_account_per_hour: int = Field(
        default=200,
        ge=1,
        le=100000,
        description="Alerts (SNS and Security Hub) per source account per hour; the rest are counted, not sent. "
        "Change records (severity INFO) have a budget of their own with the same number (Security Hub imports only): "
        "they never use up the alerts.",
    )


class Notifications(_Strict):
    emails: list[Email] = Field(default_factory=list)


def _port_spec(value: str) -> str:
    parse_port_spec(value)  # ValueError says what is wrong
    return value.strip().lower()


def _vpc_id(value: str) -> str:
    if not re.fullmatch(r"vpc-[0-9a-f]{8,17}", value):
        raise ValueError(f"expected a VPC ID (vpc-0123456789abcdef0), got {value!r}")
    return value


PortSpec = Annotated[str, AfterValidator(_port_spec)]
VpcId = Annotated[str, AfterValidator(_vpc_id)]


class IntendedExposure(_Strict):
    """Exposure that is intended, as data (docs/deploy.md, "Intended exposure").

    The global ``allowed_public_ports`` (80 and 443, any protocol) apply everywhere; these add
    protocol-aware ``PORT/PROTO`` or ``LO-HI/PROTO`` entries (``51820/udp``, ``4500/udp``, ``25/tcp``).
    """

    public_ports_by_account: dict[AccountId, list[PortSpec]] = Field(
        default_factory=dict, description="Public ports allowed on every security group of an account."
    )
    public_ports_by_vpc: dict[VpcId, list[PortSpec]] = Field(
        default_factory=dict, description="Public ports allowed on every security group of a VPC (read live)."
    )
    allow_public_ports_tag: str = Field(
        default=DEFAULT_PORT_TAG,
        min_length=1,
        max_length=128,
        description="Security-group tag whose value lists allowed public ports (51820/udp,25/tcp). Read live; "
        "bounded by tag_max_ports and tag_forbidden_ports because account admins control tags.",
    )
    tag_max_ports: int = Field(
        default=DEFAULT_TAG_MAX_PORTS, ge=1, le=1024, description="Most ports one allow tag may open, in total."
    )
    tag_forbidden_ports: list[Port] = Field(
        default_factory=lambda: sorted(DEFAULT_TAG_FORBIDDEN_PORTS),
        description="Ports an allow tag may never open (allow them per account or VPC here instead).",
    )
    public_website_tag: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_WEBSITE_TAG),
        description="Buckets with this tag may be publicly readable (public writes are still remediated).",
    )
    public_ami_accounts: list[AccountId] = Field(
        default_factory=list,
        description="Accounts that publish public AMIs: making an AMI public there is not remediated. Made by a "
        "proven pipeline (a callers.iac_principals entry, or an AWS service as itself) it is a release, not an "
        "alert; made by anyone else it is alerted.",
    )
    trusted_accounts: list[AccountId] = Field(
        default_factory=list,
        description="Accounts a snapshot, AMI or RDS snapshot may be shared with without an alert (your "
        "organization's accounts, backup and DR accounts, partners). A share with any other account is alerted.",
    )


#: The engine's reserved concurrency when the config does not set one (size it with ``trailguard cost``).
DEFAULT_ENGINE_RESERVED_CONCURRENCY = 20


class EngineSettings(_Strict):
    """The remediation engine function."""

    reserved_concurrency: int | None = Field(
        default=DEFAULT_ENGINE_RESERVED_CONCURRENCY,
        ge=1,
        le=1000,
        description="Reserved concurrency of the engine: a cap on engines running at once (a runaway storm "
        "cannot exhaust the account) and a guarantee. Size it as events per second x average duration "
        "(`trailguard cost` prints a recommendation). null: no function of trailguard reserves concurrency "
        "(reconcile and verify keep their caps through their SQS event sources' maximum concurrency). Use null "
        "where the account's Lambda concurrency quota is low: Lambda lets you reserve only up to the account's "
        "unreserved concurrency minus 100, and new accounts can start with a quota of 10 or 50 (the default "
        "quota is 1,000), where any reservation fails to deploy ('decreases account's "
        "UnreservedConcurrentExecution below its minimum value').",
    )


# --------------------------------------------------------------------------- #
# Root
# --------------------------------------------------------------------------- #


class TrailguardConfig(_Strict):
    """Root of ``trailguard.yaml``."""

    mode: Literal["standalone", "organization"] = "standalone"
    organization: OrganizationSettings | None = None
    home_region: Region = "us-east-1"
    governed_regions: list[Region] = Field(default_factory=lambda: list(DEFAULT_GOVERNED_REGIONS), min_length=1)
    trail_name: str = Field(default="trailguard", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{2,127}$")
    notifications: Notifications = Field(default_factory=Notifications)
    rule_modes: dict[str, RuleMode] = Field(
        default_factory=dict, description="Per-rule mode overrides, keyed by rule id."
    )
    exemptions: Exemptions = Field(default_factory=Exemptions)
    callers: Callers = Field(default_factory=Callers)
    allowed_public_ports: list[Port] = Field(default_factory=lambda: [80, 443])
    intended_exposure: IntendedExposure = Field(default_factory=IntendedExposure)
    dry_run: bool = Field(
        default=True,
        description="true by default: the engine decides and reports what it would do, and changes nothing, "
        "until the config sets dry_run: false.",
    )
    break_glass_role_arns: list[RoleArn] = Field(
        default_factory=list,
        description="Exact ARNs (account pinned) of the roles allowed past the guardrail SCP and the archive "
        "delete protection. Empty: no exception.",
    )
    deployment_role_arns: list[RoleArn] = Field(
        default_factory=list,
        description="Exact ARNs of the pipeline roles that deploy trailguard (the CDK deploy role, which creates "
        "change sets, and the CloudFormation execution role): the only principals whose changes to trailguard's "
        "own rules, functions, parameters, roles and stacks are not alerted as tampering, and the only ones the "
        "guardrail SCP lets change trailguard-* roles and forwarding rules (with the break-glass roles).",
    )
    runbook_base_url: str | None = Field(
        default=None,
        pattern=r"^https://\S+$",
        description="Where the generated runbooks are published; alert messages link <base>/<rule-id>.md.",
    )
    reader_role_arns: list[ArnPattern] = Field(
        default_factory=list, description="Roles allowed to decrypt the trail logs (for example your SIEM)."
    )
    retention: Retention = Field(default_factory=Retention)
    features: Features = Field(default_factory=Features)
    remediation: Remediation = Field(default_factory=Remediation)
    engine: EngineSettings = Field(default_factory=EngineSettings)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "break_glass_role_pattern" in data:
            raise ValueError(
                "break_glass_role_pattern was replaced by break_glass_role_arns: list the exact role ARNs, with "
                "their account IDs (a pattern such as arn:aws:iam::*:role/x lets any account admin create the role)"
            )
        return data

    @model_validator(mode="after")
    def _consistent(self) -> TrailguardConfig:
        if self.mode == "organization" and self.organization is None:
            raise ValueError(
                "mode 'organization' needs an 'organization' section with org_id, "
                "management_account_id, log_archive_account_id, security_tooling_account_id and target_ous"
            )
        if self.mode == "standalone" and self.organization is not None:
            raise ValueError("the 'organization' section is only valid with mode 'organization'")
        if self.home_region not in self.governed_regions:
            raise ValueError(f"home_region {self.home_region!r} must be one of governed_regions")
        if len(set(self.governed_regions)) != len(self.governed_regions):
            raise ValueError("governed_regions lists a region twice")
        catalog_ids = {r.id for r in load_catalog()}
        for rule_id in self.rule_modes:
            if not _RULE_ID_RE.match(rule_id):
                raise ValueError(f"rule_modes: {rule_id!r} is not a rule id (lowercase letters, digits, dashes)")
            if rule_id not in catalog_ids:
                raise ValueError(
                    f"rule_modes: {rule_id!r} is not a catalog rule id{did_you_mean(rule_id, catalog_ids)}; "
                    "see `trailguard rules`"
                )
        lock = self.features.object_lock
        if lock.enabled and lock.days > self.retention.archive_days:
            raise ValueError(
                f"features.object_lock.days ({lock.days}) is longer than retention.archive_days "
                f"({self.retention.archive_days}): the lifecycle rule cannot expire a locked object, so log files "
                "would outlive the retention you set; lower object_lock.days or raise retention.archive_days"
            )
        return self

    # ----------------------------------------------------------------------- #

    @property
    def org(self) -> OrganizationSettings:
        """The organization section; only valid in organization mode."""
        if self.organization is None:
            raise ConfigError(["<config>: organization: not set (standalone mode)"])
        return self.organization

    def except_break_glass(self) -> dict[str, Any]:
        """The IAM condition exempting the break-glass roles (exact ARNs), or ``{}`` when there are none."""
        if not self.break_glass_role_arns:
            return {}
        return {"ArnNotEquals": {"aws:PrincipalArn": list(self.break_glass_role_arns)}}

    def _deployed_trail(self) -> dict[str, str]:
        """trailguard's organization trail as deployed (commercial partition): what UpdateTrail is compared with."""
        o, region = self.org, self.home_region
        return {
            "arn": f"arn:aws:cloudtrail:{region}:{o.management_account_id}:trail/{self.trail_name}",
            "bucket": f"trailguard-archive-{o.log_archive_account_id}-{region}",
            "kms_key": f"arn:aws:kms:{region}:{o.log_archive_account_id}:alias/trailguard-trail",
            "log_group": f"/trailguard/cloudtrail/{self.trail_name}",
        }

    def _organization_accounts(self) -> list[str] | None:
        """``organization.accounts`` plus the accounts the organization section names; None when not listed."""
        o = self.organization
        if o is None or o.accounts is None:
            return None
        named = {o.management_account_id, o.log_archive_account_id, o.security_tooling_account_id}
        if o.delegated_admin_account_id:
            named.add(o.delegated_admin_account_id)
        return sorted(set(o.accounts) | named)

    def runtime_document(self) -> dict[str, Any]:
        """The subset the Lambda functions read at run time (stored in SSM).

        Keys are stable: ``trailguard_engine.runtime_config`` parses them.
        """
        return {
            "version": 1,
            "dry_run": self.dry_run,
            "rule_modes": dict(sorted(self.rule_modes.items())),
            "allowed_public_ports": sorted(set(self.allowed_public_ports)),
            "intended_exposure": self.intended_exposure.model_dump(mode="json"),
            "exemptions": {
                "accounts": list(self.exemptions.accounts),
                "regions": list(self.exemptions.regions),
                "principal_arn_patterns": list(self.exemptions.principal_arn_patterns),
                "resource_tags": dict(self.exemptions.resource_tags),
                "source_cidrs": list(self.exemptions.source_cidrs),
            },
            "callers": {
                "iac_principals": list(self.callers.iac_principals),
                "modes": {k: dict(sorted(v.items())) for k, v in sorted(self.callers.modes.items())},
            },
            "org_id": self.organization.org_id if self.organization else None,
            # Where trailguard's own functions run (the loop guard trusts their roles there only).
            # Standalone: the deploying account, filled in by the detection stack.
            "engine_account_id": self.organization.security_tooling_account_id if self.organization else None,
            "max_actions_per_resource_per_hour": self.remediation.max_actions_per_resource_per_hour,
            "max_event_age_minutes": self.remediation.max_event_age_minutes,
            "alerts_per_account_per_hour": self.remediation.alerts_per_account_per_hour,
            "deployment_role_arns": list(self.deployment_role_arns),
            # The guardrail SCP denies member admins the creation of stacksets-exec-* roles, so with it (and
            # only in member accounts, where SCPs apply) such a session is the StackSet deploying trailguard.
            "stacksets_exec_protected": self.mode == "organization" and self.features.scps,
            "management_account_id": self.organization.management_account_id if self.organization else None,
            "organization_accounts": self._organization_accounts(),
            # trailguard's own trail as it will be deployed, for replay (the detection stack writes the same, with
            # the real partition and, in standalone mode, the account); names as in stacks/names.py.
            **({"trailguard_trail": self._deployed_trail()} if self.organization else {}),
            "protected_key_tag": dict(self.remediation.protected_key_tag),
            "security_hub_findings": self.features.security_hub_findings,
            "runbook_base_url": self.runbook_base_url,
        }


# --------------------------------------------------------------------------- #
# Loading
# --------------------------------------------------------------------------- #


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the section holding ``loc``'s last key accepts (empty when it is not a model section)."""
    model: type[BaseModel] = TrailguardConfig
    for part in loc[:-1]:
        field = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            optional = [a for a in getattr(annotation, "__args__", ()) if isinstance(a, type)]
            models = [a for a in optional if issubclass(a, BaseModel)]
            if len(models) != 1:
                return []
            annotation = models[0]
        model = annotation
    return [f.alias or n for n, f in model.model_fields.items()]


def _format_errors(source: str, exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            hint = did_you_mean(str(err["loc"][-1]), _known_keys(err["loc"])) if err["loc"] else ""
            msg = f"unknown key{hint} (check the spelling; see config/trailguard.schema.json)"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        elif err["type"] == "literal_error":
            msg = f"{msg}, got {err.get('input')!r}"
        lines.append(f"{source}: {loc}: {msg}")
    return lines


def parse_config(data: Any, source: str = "<config>") -> TrailguardConfig:
    """Validate an already-parsed document; raise :class:`ConfigError` with one line per problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: <root>: expected a mapping of settings, got {type(data).__name__}"])
    try:
        return TrailguardConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from exc


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (plain YAML keeps the last one, silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<: *anchor`` may be overridden, by design
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:  # an unhashable key: SafeLoader reports it below
                continue
            if first is not key_node:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first on line {first.start_mark.line + 1}); keep one: YAML would "
                    "silently use the last",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def _read_text(p: Path) -> str:
    """The file as UTF-8 text; a clear error (where, and the fix) for any other encoding."""
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read config file ({exc.strerror or exc})"]) from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            [
                f"{p}: line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8 "
                "(for example: iconv -f latin1 -t utf-8)"
            ]
        ) from exc


def load_config(path: str | Path | None) -> TrailguardConfig:
    """Load and validate a config file. ``None`` means the built-in standalone defaults."""
    if path is None:
        return TrailguardConfig()
    p = Path(path)
    text = _read_text(p)
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "?"
        raise ConfigError([f"{p}: {where}: not valid YAML ({getattr(exc, 'problem', exc)})"]) from exc
    return parse_config(data, str(p))


def config_warnings(cfg: TrailguardConfig) -> list[str]:
    """Valid but probably unintended settings, one line each with the fix (validate-config and synth print them)."""
    warnings = []
    if "us-east-1" not in cfg.governed_regions:
        warnings.append(
            "governed_regions: us-east-1 is not governed, but global services (IAM, STS, CloudFront, Route 53, "
            "Organizations, console sign-in) deliver their events there, so their rules would never fire; "
            "add us-east-1 to governed_regions"
        )
    return warnings


def json_schema() -> dict[str, Any]:
    """JSON Schema of the config file, for editors (``config/trailguard.schema.json``)."""
    schema = TrailguardConfig.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "trailguard configuration"
    return schema
