"""Read a synthesized CloudFormation template and resolve its intrinsics to local physical names.

Why its own resolver: the local runtime must run exactly what ``cdk synth`` produced (no second
wiring), so every Ref / Fn::GetAtt / Fn::Join / Fn::Sub in environment variables, event source
mappings, rule targets and outputs has to become the name or ARN of the resource created on the
local moto server. Names are deterministic (``<stack>-<logicalId>`` unless the template names the
resource), so a restart gives the same tables, queues and URLs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ACCOUNT_ID",
    "REGION",
    "Resource",
    "Template",
    "TemplateError",
    "UnresolvedError",
]

ACCOUNT_ID = "123456789012"  # moto's default account
REGION = "us-east-1"
PARTITION = "aws"

_NO_VALUE = object()


class TemplateError(Exception):
    """The template cannot be read or uses something the local runtime cannot emulate."""


class UnresolvedError(TemplateError):
    """An intrinsic refers to an attribute that is not known (yet)."""


@dataclass
class Resource:
    """One template resource plus what the local cloud knows about it once created."""

    logical_id: str
    type: str
    properties: dict[str, Any]
    metadata: dict[str, Any]
    depends_on: list[str]
    condition: str | None = None
    ref: str | None = None  # what Ref returns
    attributes: dict[str, str] = field(default_factory=dict)  # what Fn::GetAtt returns

    @property
    def cdk_path(self) -> str:
        return str(self.metadata.get("aws:cdk:path", self.logical_id))


def _safe(name: str, limit: int) -> str:
    """Truncate like CloudFormation does, keeping the name unique with a short hash."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9]}-{digest}"


class Template:
    """A parsed template: resources by type, a resolver for intrinsics, deterministic names."""

    def __init__(self, body: Mapping[str, Any], stack_name: str, *, source: Path | None = None):
        self.body = body
        self.stack_name = stack_name
        self.source = source
        self.parameters: dict[str, Any] = {}
        for name, spec in (body.get("Parameters") or {}).items():
            self.parameters[name] = spec.get("Default")
        self.mappings: dict[str, Any] = body.get("Mappings") or {}
        self.conditions_spec: dict[str, Any] = body.get("Conditions") or {}
        self._conditions: dict[str, bool] = {}
        self.resources: dict[str, Resource] = {}
        for logical_id, spec in (body.get("Resources") or {}).items():
            depends = spec.get("DependsOn") or []
            self.resources[logical_id] = Resource(
                logical_id=logical_id,
                type=spec["Type"],
                properties=spec.get("Properties") or {},
                metadata=spec.get("Metadata") or {},
                depends_on=[depends] if isinstance(depends, str) else list(depends),
                condition=spec.get("Condition"),
            )
        self.outputs: dict[str, Any] = body.get("Outputs") or {}
        self._assign_default_names()

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | str, stack_name: str | None = None) -> Template:
        path = Path(path)
        try:
            body = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise TemplateError(f"cannot read template {path}: {exc}") from exc
        name = stack_name or path.name.removesuffix(".template.json")
        return cls(body, name, source=path)

    # -- queries ---------------------------------------------------------------------------

    def of_type(self, *types: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type in types and self.is_active(r)]

    def is_active(self, resource: Resource) -> bool:
        return resource.condition is None or self.condition(resource.condition)

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            if name not in self.conditions_spec:
                raise TemplateError(f"unknown condition {name!r}")
            self._conditions[name] = bool(self.resolve(self.conditions_spec[name]))
        return self._conditions[name]

    def referenced_ids(self, value: Any) -> Iterator[str]:
        """Logical ids a value refers to (Ref, GetAtt, Sub) — for dependency ordering."""
        if isinstance(value, dict):
            if len(value) == 1:
                (key, arg), = value.items()
                if key == "Ref" and isinstance(arg, str) and arg in self.resources:
                    yield arg
                elif key == "Fn::GetAtt":
                    target = arg[0] if isinstance(arg, list) else str(arg).split(".", 1)[0]
                    if target in self.resources:
                        yield target
                elif key == "Fn::Sub":
                    text = arg if isinstance(arg, str) else arg[0]
                    for var in re.findall(r"\$\{([^!][^}]*)\}", text):
                        head = var.split(".", 1)[0]
                        if head in self.resources:
                            yield head
            for item in value.values():
                yield from self.referenced_ids(item)
        elif isinstance(value, list):
            for item in value:
                yield from self.referenced_ids(item)

    def dependency_order(self, resources: list[Resource]) -> list[Resource]:
        """Topological order among the given resources (DependsOn + references)."""
        wanted = {r.logical_id: r for r in resources}
        order: list[Resource] = []
        state: dict[str, int] = {}

        def visit(rid: str) -> None:
            if state.get(rid) == 2:
                return
            if state.get(rid) == 1:
                raise TemplateError(f"circular dependency through {rid}")
            state[rid] = 1
            res = wanted[rid]
            deps = set(res.depends_on) | set(self.referenced_ids(res.properties))
            for dep in sorted(deps):
                if dep in wanted and dep != rid:
                    visit(dep)
            state[rid] = 2
            order.append(res)

        for rid in wanted:
            visit(rid)
        return order

    # -- naming ----------------------------------------------------------------------------

    def physical_name(self, resource: Resource) -> str:
        """The name the local cloud gives a resource (the template's own name if it sets one)."""
        props = resource.properties
        explicit = {
            "AWS::DynamoDB::Table": "TableName",
            "AWS::DynamoDB::GlobalTable": "TableName",
            "AWS::S3::Bucket": "BucketName",
            "AWS::SQS::Queue": "QueueName",
            "AWS::SNS::Topic": "TopicName",
            "AWS::Events::EventBus": "Name",
            "AWS::Events::Rule": "Name",
            "AWS::Lambda::Function": "FunctionName",
            "AWS::Lambda::LayerVersion": "LayerName",
            "AWS::Logs::LogGroup": "LogGroupName",
            "AWS::IAM::Role": "RoleName",
        }.get(resource.type)
        if explicit and isinstance(props.get(explicit), (str, dict)):
            value = self.resolve(props[explicit])
            if isinstance(value, str) and value:
                return value
        base = f"{self.stack_name}-{resource.logical_id}"
        if resource.type == "AWS::S3::Bucket":
            return _safe(re.sub(r"[^a-z0-9.-]", "-", base.lower()), 63)
        if resource.type == "AWS::SQS::Queue":
            fifo = str(self.resolve(props.get("FifoQueue", False))).lower() == "true"
            return _safe(base, 75) + (".fifo" if fifo else "")
        if resource.type in ("AWS::Lambda::Function", "AWS::Events::Rule", "AWS::IAM::Role"):
            return _safe(base, 64)
        return _safe(base, 255)

    def _assign_default_names(self) -> None:
        """Deterministic Ref / GetAtt values for every resource (the cloud refines some later)."""
        arn = f"arn:{PARTITION}:%s:{REGION}:{ACCOUNT_ID}:%s"
        for res in self.resources.values():
            t = res.type
            try:
                name = self.physical_name(res)
            except UnresolvedError:
                name = f"{self.stack_name}-{res.logical_id}"
            attrs = res.attributes
            if t in ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"):
                res.ref = name
                attrs["Arn"] = arn % ("dynamodb", f"table/{name}")
            elif t == "AWS::S3::Bucket":
                res.ref = name
                attrs.update(
                    Arn=f"arn:{PARTITION}:s3:::{name}",
                    DomainName=f"{name}.s3.amazonaws.com",
                    RegionalDomainName=f"{name}.s3.{REGION}.amazonaws.com",
                    WebsiteURL=f"http://{name}.s3-website-{REGION}.amazonaws.com",
                )
            elif t == "AWS::SQS::Queue":
                res.ref = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{name}"
                attrs.update(Arn=arn % ("sqs", name), QueueName=name, QueueUrl=res.ref)
            elif t == "AWS::SNS::Topic":
                res.ref = arn % ("sns", name)
                attrs.update(TopicArn=res.ref, TopicName=name)
            elif t == "AWS::Events::EventBus":
                res.ref = name
                attrs.update(Arn=arn % ("events", f"event-bus/{name}"), Name=name)
            elif t == "AWS::Events::Rule":
                bus = res.properties.get("EventBusName")
                try:
                    bus_name = self.resolve(bus) if bus else "default"
                except UnresolvedError:
                    bus_name = "default"
                bus_name = str(bus_name).rsplit("/", 1)[-1]
                path = f"rule/{name}" if bus_name == "default" else f"rule/{bus_name}/{name}"
                res.ref = name if bus_name == "default" else f"{bus_name}|{name}"
                attrs["Arn"] = arn % ("events", path)
            elif t == "AWS::Lambda::Function":
                res.ref = name
                attrs["Arn"] = arn % ("lambda", f"function:{name}")
            elif t == "AWS::Lambda::LayerVersion":
                res.ref = arn % ("lambda", f"layer:{name}:1")
                attrs["LayerVersionArn"] = res.ref
            elif t == "AWS::Lambda::EventSourceMapping":
                res.ref = _uuid_for(self.stack_name, res.logical_id)
                attrs["Id"] = res.ref
            elif t == "AWS::ApiGatewayV2::Api":
                api_id = _short_id(self.stack_name, res.logical_id, 10)
                res.ref = api_id
                attrs.update(ApiId=api_id, ApiEndpoint=f"https://{api_id}.execute-api.{REGION}.amazonaws.com")
            elif t in ("AWS::ApiGatewayV2::Integration", "AWS::ApiGatewayV2::Route",
                       "AWS::ApiGatewayV2::Authorizer"):
                res.ref = _short_id(self.stack_name, res.logical_id, 7)
            elif t == "AWS::ApiGatewayV2::Stage":
                res.ref = str(res.properties.get("StageName", "$default"))
            elif t == "AWS::Cognito::UserPool":
                pool_id = f"{REGION}_{_short_id(self.stack_name, res.logical_id, 9, alphabet='mixed')}"
                res.ref = pool_id
                attrs.update(
                    Arn=arn % ("cognito-idp", f"userpool/{pool_id}"),
                    ProviderName=f"cognito-idp.{REGION}.amazonaws.com/{pool_id}",
                    ProviderURL=f"https://cognito-idp.{REGION}.amazonaws.com/{pool_id}",
                    UserPoolId=pool_id,
                )
            elif t == "AWS::Cognito::UserPoolClient":
                res.ref = _short_id(self.stack_name, res.logical_id, 26)
                attrs["ClientId"] = res.ref
            elif t == "AWS::Logs::LogGroup":
                res.ref = name
                attrs["Arn"] = arn % ("logs", f"log-group:{name}:*")
            elif t == "AWS::IAM::Role":
                res.ref = name
                attrs.update(Arn=f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/{name}", RoleId=_short_id(
                    self.stack_name, res.logical_id, 21))
            else:
                # Not emulated (dashboards, alarms, policies …): a stable placeholder keeps
                # references to it resolvable; nothing local ever calls it.
                res.ref = name

    # -- intrinsics ------------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic in ``value`` (recursively) to local values."""
        result = self._resolve(value)
        return None if result is _NO_VALUE else result

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self._resolve(v) for v in value]
            return [v for v in items if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            fn = self._FUNCTIONS.get(key)
            if fn is not None:
                return fn(self, arg)
        out = {}
        for k, v in value.items():
            r = self._resolve(v)
            if r is not _NO_VALUE:
                out[k] = r
        return out

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{self.stack_name}/local",
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
        }
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            value = self.parameters[name]
            if value is None:
                raise UnresolvedError(f"parameter {name} has no default")
            return value
        res = self.resources.get(name)
        if res is None:
            raise TemplateError(f"Ref to unknown {name!r}")
        if res.ref is None:
            raise UnresolvedError(f"Ref {name} is not known yet")
        return res.ref

    def _get_att(self, arg: Any) -> Any:
        if isinstance(arg, str):
            logical_id, attr = arg.split(".", 1)
        else:
            logical_id, attr = arg[0], self._resolve(arg[1])
        res = self.resources.get(logical_id)
        if res is None:
            raise TemplateError(f"Fn::GetAtt on unknown {logical_id!r}")
        if attr in res.attributes:
            return res.attributes[attr]
        if res.type in ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable") and attr == "StreamArn":
            raise UnresolvedError(f"{logical_id}.StreamArn is known once the table exists")
        # Unknown attribute of a resource nobody emulates: a recognisable placeholder.
        return f"arn:{PARTITION}:local:{REGION}:{ACCOUNT_ID}:{logical_id}/{attr}"

    def _join(self, arg: Any) -> str:
        sep, items = arg
        values = self._resolve(items)
        return str(self._resolve(sep)).join(_as_str(v) for v in values)

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, str):
            text, variables = arg, {}
        else:
            text, variables = arg[0], {k: self._resolve(v) for k, v in arg[1].items()}

        def replace(match: re.Match[str]) -> str:
            var = match.group(1)
            if var.startswith("!"):
                return "${" + var[1:] + "}"
            if var in variables:
                return _as_str(variables[var])
            if "." in var and var.split(".", 1)[0] in self.resources:
                return _as_str(self._get_att(var))
            return _as_str(self._ref(var))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def _select(self, arg: Any) -> Any:
        index, items = arg
        values = self._resolve(items)
        return values[int(self._resolve(index))]

    def _split(self, arg: Any) -> list[str]:
        sep, text = arg
        return str(self._resolve(text)).split(sep)

    def _if(self, arg: Any) -> Any:
        name, when_true, when_false = arg
        return self._resolve(when_true if self.condition(name) else when_false)

    def _equals(self, arg: Any) -> bool:
        a, b = (self._resolve(x) for x in arg)
        return a == b

    def _find_in_map(self, arg: Any) -> Any:
        m, k1, k2 = (self._resolve(x) for x in arg)
        return self.mappings[m][k1][k2]

    def _import_value(self, arg: Any) -> Any:
        raise TemplateError(f"Fn::ImportValue {arg!r}: cross-stack imports are not emulated locally")

    _FUNCTIONS: dict[str, Callable[[Template, Any], Any]] = {
        "Ref": _ref,
        "Fn::GetAtt": _get_att,
        "Fn::Join": _join,
        "Fn::Sub": _sub,
        "Fn::Select": _select,
        "Fn::Split": _split,
        "Fn::If": _if,
        "Fn::Equals": _equals,
        "Fn::Not": lambda self, a: not self._resolve(a[0]),
        "Fn::And": lambda self, a: all(self._resolve(x) for x in a),
        "Fn::Or": lambda self, a: any(self._resolve(x) for x in a),
        "Condition": lambda self, a: self.condition(a),
        "Fn::Base64": lambda self, a: base64.b64encode(str(self._resolve(a)).encode()).decode(),
        "Fn::FindInMap": _find_in_map,
        "Fn::GetAZs": lambda self, a: [f"{REGION}a", f"{REGION}b", f"{REGION}c"],
        "Fn::ImportValue": _import_value,
    }


def _as_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _uuid_for(*parts: str) -> str:
    h = hashlib.sha1("/".join(parts).encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _short_id(stack: str, logical_id: str, length: int, alphabet: str = "lower") -> str:
    digest = hashlib.sha256(f"{stack}/{logical_id}".encode()).digest()
    chars = "abcdefghijklmnopqrstuvwxyz0123456789"
    if alphabet == "mixed":
        chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(chars[b % len(chars)] for b in digest[:length])
