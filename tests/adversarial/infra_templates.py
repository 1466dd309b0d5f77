"""Read the policies of the synthesized templates as the deployed, concrete documents.

Templates carry CloudFormation intrinsics (``Ref``, ``Fn::GetAtt``, ``Fn::Join``); the evaluator
needs plain strings. :class:`Resolver` resolves exactly the intrinsics trailguard's templates use
for policy documents, for one account and region, and raises on anything else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

ORG_ID = "o-a1b2c3d4e5"
MANAGEMENT = "111111111111"
LOG_ARCHIVE = "222222222222"
SECURITY = "333333333333"
#: A member account of the example organization: where the hostile admin sits.
MEMBER = "444455556666"
#: Standalone templates are environment-agnostic: the account they are deployed to.
STANDALONE = "777788889999"
HOME = "us-east-1"
OUTSIDER = "999900001111"


class Unresolvable(ValueError):
    """An intrinsic the resolver does not model."""


@dataclass(frozen=True)
class Resolver:
    template: Mapping[str, Any]
    account: str
    region: str = HOME
    partition: str = "aws"

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.resolve(n) for n in node]
        if not isinstance(node, Mapping):
            return node
        if "Ref" in node:
            return self._ref(node["Ref"])
        if "Fn::GetAtt" in node:
            lid, attr = node["Fn::GetAtt"]
            return self._get_att(lid, attr)
        if "Fn::Join" in node:
            sep, parts = node["Fn::Join"]
            return sep.join(str(self.resolve(p)) for p in parts)
        if any(k.startswith("Fn::") for k in node):
            raise Unresolvable(json.dumps(node))
        return {k: self.resolve(v) for k, v in node.items()}

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::Partition": self.partition,
            "AWS::AccountId": self.account,
            "AWS::Region": self.region,
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        res = self._resource(name)
        p, a, r = self.partition, self.account, self.region
        physical = self._name(name)
        if res["Type"] == "AWS::IAM::ManagedPolicy":
            return f"arn:{p}:iam::{a}:policy/{physical}"
        if res["Type"] == "AWS::SNS::Topic":
            return f"arn:{p}:sns:{r}:{a}:{physical}"
        if res["Type"] == "AWS::SQS::Queue":
            return f"https://sqs.{r}.amazonaws.com/{a}/{physical}"
        return physical

    #: The property holding a resource's physical name, where the template may set one.
    _NAME_PROPS: ClassVar[dict[str, str | None]] = {
        "AWS::S3::Bucket": "BucketName",
        "AWS::Events::EventBus": "Name",
        "AWS::Events::Rule": "Name",
        "AWS::IAM::Role": "RoleName",
        "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
        "AWS::DynamoDB::Table": "TableName",
        "AWS::Logs::LogGroup": "LogGroupName",
        "AWS::SNS::Topic": "TopicName",
        "AWS::SQS::Queue": "QueueName",
        "AWS::Lambda::Function": "FunctionName",
        "AWS::SSM::Parameter": "Name",
        "AWS::KMS::Key": None,
    }

    def _name(self, lid: str) -> str:
        """The physical name: the template's, or (CloudFormation generates it) the logical id as a stand-in."""
        res = self._resource(lid)
        if res["Type"] not in self._NAME_PROPS:
            raise Unresolvable(f"Ref {lid} ({res['Type']})")
        prop = self._NAME_PROPS[res["Type"]]
        props = res.get("Properties", {})
        if prop and prop in props:
            return str(self.resolve(props[prop]))
        return lid

    def _get_att(self, lid: str, attr: str) -> str:
        res = self._resource(lid)
        name = self._name(lid)
        p, a, r = self.partition, self.account, self.region
        arns = {
            ("AWS::S3::Bucket", "Arn"): f"arn:{p}:s3:::{name}",
            ("AWS::Events::EventBus", "Arn"): f"arn:{p}:events:{r}:{a}:event-bus/{name}",
            ("AWS::Events::Rule", "Arn"): f"arn:{p}:events:{r}:{a}:rule/{name}",
            ("AWS::IAM::Role", "Arn"): f"arn:{p}:iam::{a}:role/{name}",
            ("AWS::DynamoDB::Table", "Arn"): f"arn:{p}:dynamodb:{r}:{a}:table/{name}",
            ("AWS::Logs::LogGroup", "Arn"): f"arn:{p}:logs:{r}:{a}:log-group:{name}:*",
            ("AWS::KMS::Key", "Arn"): f"arn:{p}:kms:{r}:{a}:key/{name}",
            ("AWS::SQS::Queue", "Arn"): f"arn:{p}:sqs:{r}:{a}:{name}",
            ("AWS::SNS::Topic", "TopicArn"): f"arn:{p}:sns:{r}:{a}:{name}",
            ("AWS::Lambda::Function", "Arn"): f"arn:{p}:lambda:{r}:{a}:function:{name}",
        }
        key = (res["Type"], attr)
        if key not in arns:
            raise Unresolvable(f"Fn::GetAtt {lid}.{attr} ({res['Type']})")
        return arns[key]

    def _resource(self, lid: str) -> Mapping[str, Any]:
        try:
            res: Mapping[str, Any] = self.template["Resources"][lid]
        except KeyError as exc:
            raise Unresolvable(f"no resource {lid}") from exc
        return res


def resources(template: Mapping[str, Any], type_: str) -> dict[str, Mapping[str, Any]]:
    return {k: v for k, v in template.get("Resources", {}).items() if v.get("Type") == type_}


def role_lid(template: Mapping[str, Any], role_name_prefix: str) -> str:
    """The logical id of the one role whose RoleName starts with ``role_name_prefix``."""
    hits = []
    for lid, res in resources(template, "AWS::IAM::Role").items():
        name = res["Properties"].get("RoleName")
        text = json.dumps(name) if not isinstance(name, str) else name
        if name is not None and role_name_prefix in text:
            hits.append(lid)
    if len(hits) != 1:
        raise AssertionError(f"expected one role named {role_name_prefix}*, found {hits}")
    return hits[0]


def identity_policies(template: Mapping[str, Any], lid: str, resolver: Resolver) -> list[dict[str, Any]]:
    """Every policy document attached to role ``lid``: inline, AWS::IAM::Policy and customer managed."""
    role = template["Resources"][lid]
    docs = [p["PolicyDocument"] for p in role["Properties"].get("Policies", [])]
    for type_ in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for res in resources(template, type_).values():
            if {"Ref": lid} in res["Properties"].get("Roles", []):
                docs.append(res["Properties"]["PolicyDocument"])
    for arn in role["Properties"].get("ManagedPolicyArns", []):
        raise AssertionError(f"AWS-managed policy {arn} on {lid} is not modelled")
    return [resolver.resolve(d) for d in docs]


def stackset_member_template(synth: Any) -> dict[str, Any]:
    (res,) = synth.resources("TrailguardMemberStackSet", "AWS::CloudFormation::StackSet").values()
    body: dict[str, Any] = json.loads(res["Properties"]["TemplateBody"])
    return body
