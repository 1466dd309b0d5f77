"""The named-query catalog: ``trailguard/queries/*.sql``, shared by Athena and DuckDB.

One ``.sql`` file is one query. The same text runs in two places:

* **Athena** (Trino dialect) as an ``AWS::Athena::NamedQuery`` over the Glue table
  built by ``stacks/constructs/query_layer.py``;
* **DuckDB** (``trailguard hunt``) over local CloudTrail log files, through a view
  built by :mod:`trailguard.hunt`.

The contract that makes this work:

* The SQL reads from one relation named ``cloudtrail`` whose columns are the Glue
  table's (:data:`CLOUDTRAIL_COLUMNS`): lower-case names, ``requestparameters``,
  ``responseelements``, ``additionaleventdata`` and ``serviceeventdetails`` are JSON
  *strings*, ``readonly`` is the string ``'true'``/``'false'``, ``useridentity`` is a
  struct, ``eventtime`` is the ISO-8601 string CloudTrail writes. ``account``,
  ``region`` and ``"date"`` (``yyyy/MM/dd``) are the partition columns; ``date`` is
  always double-quoted because it is a keyword.
* Parameters are written ``{{name}}`` *without* quotes, and always stand for a
  value. They are never pasted into the text: Athena gets ``?`` (execution
  parameters, in order of appearance) and DuckDB gets ``$name`` bind parameters.
* Only functions that exist in both engines are used. DuckDB lacks two Trino names,
  which :mod:`trailguard.hunt` defines as macros (the whole substitution list):
  ``json_extract_scalar(j, p)`` = ``json_extract_string(j, p)`` and
  ``regexp_like(s, p)`` = ``regexp_matches(s, p)``.

Header (``--`` comment lines before the SQL)::

    -- name: root-activity                     (must equal the file name)
    -- title: Root user activity
    -- description: One line on what it finds and when to run it.
    -- param start timestamp = 1970-01-01T00:00:00Z: Window start, inclusive.
    -- param principal string: ARN, user name or principal ID.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from trailguard.exceptions import TrailguardError
from trailguard.suggest import did_you_mean

QUERIES_DIR = Path(__file__).resolve().parent / "queries"

#: The relation every query reads from.
RELATION = "cloudtrail"

#: Glue / Hive column types of the CloudTrail table (the AWS documented layout, as
#: read by ``com.amazon.emr.hive.serde.CloudTrailSerde``). The DuckDB view exposes
#: exactly these names. Each entry: (column, hive type, JSON key in the log record).
CLOUDTRAIL_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("eventversion", "string", "eventVersion"),
    (
        "useridentity",
        "struct<type:string,principalid:string,arn:string,accountid:string,invokedby:string,"
        "accesskeyid:string,username:string,onbehalfof:struct<userid:string,identitystorearn:string>,"
        "sessioncontext:struct<attributes:struct<mfaauthenticated:string,creationdate:string>,"
        "sessionissuer:struct<type:string,principalid:string,arn:string,accountid:string,username:string>,"
        "sourceidentity:string,ec2roledelivery:string>>",
        "userIdentity",
    ),
    ("eventtime", "string", "eventTime"),
    ("eventsource", "string", "eventSource"),
    ("eventname", "string", "eventName"),
    ("awsregion", "string", "awsRegion"),
    ("sourceipaddress", "string", "sourceIPAddress"),
    ("useragent", "string", "userAgent"),
    ("errorcode", "string", "errorCode"),
    ("errormessage", "string", "errorMessage"),
    ("requestparameters", "string", "requestParameters"),
    ("responseelements", "string", "responseElements"),
    ("additionaleventdata", "string", "additionalEventData"),
    ("requestid", "string", "requestID"),
    ("eventid", "string", "eventID"),
    ("resources", "array<struct<arn:string,accountid:string,type:string>>", "resources"),
    ("eventtype", "string", "eventType"),
    ("apiversion", "string", "apiVersion"),
    ("readonly", "string", "readOnly"),
    ("recipientaccountid", "string", "recipientAccountId"),
    ("serviceeventdetails", "string", "serviceEventDetails"),
    ("sharedeventid", "string", "sharedEventID"),
    ("vpcendpointid", "string", "vpcEndpointId"),
    ("eventcategory", "string", "eventCategory"),
    ("sessioncredentialfromconsole", "string", "sessionCredentialFromConsole"),
    ("tlsdetails", "struct<tlsversion:string,ciphersuite:string,clientprovidedhostheader:string>", "tlsDetails"),
)

#: CloudTrail JSON key of each lower-case struct member of the Glue schema (DuckDB view, retro rows, SQL).
STRUCT_KEYS: dict[str, str] = {
    k.lower(): k
    for k in (
        "type", "principalId", "arn", "accountId", "invokedBy", "accessKeyId", "userName", "onBehalfOf",
        "userId", "identityStoreArn", "sessionContext", "attributes", "mfaAuthenticated", "creationDate",
        "sessionIssuer", "sourceIdentity", "ec2RoleDelivery", "tlsVersion", "cipherSuite", "clientProvidedHostHeader",
    )
}  # fmt: skip
#: ``resources[].ARN`` is upper-case in CloudTrail.
RESOURCE_KEYS: dict[str, str] = {"arn": "ARN", "accountid": "accountId", "type": "type"}

#: Partition columns (projected on Athena, derived from the file path locally).
PARTITION_COLUMNS: tuple[str, ...] = ("account", "region", "date")

#: JSON-typed CloudTrail fields that the Glue table exposes as strings.
JSON_STRING_COLUMNS: frozenset[str] = frozenset(
    {"requestparameters", "responseelements", "additionaleventdata", "serviceeventdetails"}
)

PARAM_TYPES: tuple[str, ...] = ("timestamp", "string", "integer")

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")
_PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_HEADER_RE = re.compile(r"^--\s*([a-z]+)\s*(.*)$")
_PARAM_RE = re.compile(
    r"^(?P<name>[a-z_][a-z0-9_]*)\s+(?P<type>[a-z]+)(?:\s*=\s*(?P<default>\S+))?\s*:\s*(?P<description>.+)$"
)
_TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?Z?)?$")
_INTEGER_RE = re.compile(r"^-?\d{1,12}$")
_FROM_RELATION_RE = re.compile(rf"(?i)\b(from|join)(\s+){RELATION}\b")
_MAX_STRING_PARAM = 2048


class QueryError(TrailguardError):
    """A query file is malformed, a query is unknown, or its parameters are wrong."""


class UnknownQueryError(QueryError):
    """No query has the requested name."""


class ParameterError(QueryError):
    """A parameter is missing, unknown or has an invalid value."""


@dataclass(frozen=True)
class QueryParam:
    name: str
    type: str
    description: str
    default: str | None = None

    def validate(self, value: str) -> str:
        """Return ``value`` if it is valid for this parameter's type, else raise :class:`ParameterError`."""
        if self.type == "timestamp" and not _TIMESTAMP_RE.match(value):
            raise ParameterError(
                f"parameter {self.name!r}: expected an ISO-8601 UTC time such as 2024-05-01 or "
                f"2024-05-01T13:00:00Z, got {value!r}"
            )
        if self.type == "integer" and not _INTEGER_RE.match(value):
            raise ParameterError(f"parameter {self.name!r}: expected an integer, got {value!r}")
        if len(value) > _MAX_STRING_PARAM or "\x00" in value:
            raise ParameterError(f"parameter {self.name!r}: value too long or contains NUL")
        return value


@dataclass(frozen=True)
class Query:
    """One named query: header metadata plus the SQL body with ``{{param}}`` placeholders."""

    name: str
    title: str
    description: str
    params: tuple[QueryParam, ...]
    sql: str
    path: Path | None = None

    def placeholders(self) -> list[str]:
        """Parameter names in order of appearance in the SQL (repeats included)."""
        return _PLACEHOLDER_RE.findall(self.sql)

    def param(self, name: str) -> QueryParam:
        for p in self.params:
            if p.name == name:
                return p
        raise ParameterError(f"query {self.name!r} has no parameter {name!r}")

    def bind(self, given: Mapping[str, str]) -> dict[str, str]:
        """Validate user-supplied values, apply defaults; return every parameter's value."""
        known = {p.name for p in self.params}
        unknown = sorted(set(given) - known)
        if unknown:
            names = ", ".join(sorted(known)) or "none"
            raise ParameterError(f"query {self.name!r} has no parameter {unknown[0]!r} (parameters: {names})")
        values: dict[str, str] = {}
        for p in self.params:
            if p.name in given:
                values[p.name] = p.validate(given[p.name])
            elif p.default is not None:
                values[p.name] = p.default
            else:
                raise ParameterError(f"query {self.name!r} needs --param {p.name}=... ({p.description})")
        return values

    def duckdb_sql(self) -> str:
        """The SQL with each ``{{name}}`` turned into a DuckDB named bind parameter ``$name``."""
        return _PLACEHOLDER_RE.sub(lambda m: f"${m.group(1)}", self.sql)

    def athena_sql(self, table: str | None = None) -> str:
        """The SQL for Athena: ``?`` execution parameters, ``cloudtrail`` optionally qualified as ``table``."""
        text = _PLACEHOLDER_RE.sub("?", self.sql)
        if table is not None:
            text = _FROM_RELATION_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{table}", text)
        return text

    def athena_description(self) -> str:
        """Named-query description: what it does, then the execution parameters in order."""
        order = self.placeholders()
        text = self.description
        if order:
            text += " Execution parameters in order (quote strings, e.g. '2024-05-01'): " + ", ".join(order) + "."
        return text[:1024]


def parse_query(text: str, source: str) -> Query:
    """Parse one ``.sql`` file; raise :class:`QueryError` naming ``source`` on any problem."""
    meta: dict[str, str] = {}
    params: list[QueryParam] = []
    body_lines: list[str] = []
    in_header = True
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if in_header and (not line or line.startswith("--")):
            m = _HEADER_RE.match(line)
            if not m:
                continue
            key, value = m.group(1), m.group(2).strip()
            if key == "param":
                pm = _PARAM_RE.match(value)
                if not pm:
                    raise QueryError(f"{source}:{lineno}: expected '-- param <name> <type>[ = <default>]: <text>'")
                ptype = pm.group("type")
                if ptype not in PARAM_TYPES:
                    raise QueryError(f"{source}:{lineno}: parameter type {ptype!r} not one of {list(PARAM_TYPES)}")
                param = QueryParam(pm.group("name"), ptype, pm.group("description").strip(), pm.group("default"))
                if param.default is not None:
                    try:
                        param.validate(param.default)
                    except ParameterError as exc:
                        raise QueryError(f"{source}:{lineno}: default: {exc}") from exc
                params.append(param)
            elif value.startswith(":") and key in ("name", "title", "description"):
                meta[key] = value[1:].strip()
            continue
        in_header = False
        body_lines.append(raw)
    sql = "\n".join(body_lines).strip().rstrip(";").strip()
    for key in ("name", "title", "description"):
        if not meta.get(key):
            raise QueryError(f"{source}: header line '-- {key}: ...' is missing")
    if not _NAME_RE.match(meta["name"]):
        raise QueryError(f"{source}: name {meta['name']!r} must be lowercase letters, digits and dashes")
    if not sql:
        raise QueryError(f"{source}: no SQL after the header")
    if ";" in _PLACEHOLDER_RE.sub("", sql).replace("';'", ""):
        raise QueryError(f"{source}: one statement per file (found ';' inside the SQL)")
    used = set(_PLACEHOLDER_RE.findall(sql))
    declared = [p.name for p in params]
    if len(set(declared)) != len(declared):
        raise QueryError(f"{source}: a parameter is declared twice")
    if used != set(declared):
        raise QueryError(
            f"{source}: declared parameters {sorted(declared)} differ from those used in the SQL {sorted(used)}"
        )
    return Query(meta["name"], meta["title"], meta["description"], tuple(params), sql)


def load_queries(directory: Path | None = None) -> dict[str, Query]:
    """Load every ``*.sql`` query of ``directory`` (default: the packaged catalog), keyed by name."""
    folder = directory or QUERIES_DIR
    out: dict[str, Query] = {}
    for path in sorted(folder.glob("*.sql")):
        q = parse_query(path.read_text(encoding="utf-8"), str(path))
        if q.name != path.stem:
            raise QueryError(f"{path}: name {q.name!r} must equal the file name {path.stem!r}")
        out[q.name] = Query(q.name, q.title, q.description, q.params, q.sql, path)
    return out


def get_query(name: str, directory: Path | None = None) -> Query:
    """One query by name; :class:`UnknownQueryError` lists the close names."""
    queries = load_queries(directory)
    if name not in queries:
        close = [n for n in queries if name in n or n in name]
        hint = did_you_mean(name, queries) or (
            f" (did you mean: {', '.join(close)}?)" if close else " (see 'trailguard hunt --list')"
        )
        raise UnknownQueryError(f"unknown query {name!r}{hint}")
    return queries[name]
