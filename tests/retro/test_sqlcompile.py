"""One test per pattern construct: the DuckDB form runs on a real ``cloudtrail`` view, the Trino form is parsed.

Each case gives records on both sides of the pattern; the SQL must select every record the matcher matches
(on the record rebuilt from the row, as retro sees it) and exactly those when it says it is exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
import sqlglot
from sqlglot import exp
from trailguard_engine.events import wrap_record
from trailguard_engine.matcher import PatternError, matches

from trailguard import hunt
from trailguard.retro.rows import columns, record_from_row, select_list
from trailguard.retro.sqlcompile import FALSE, TRUE, CompiledPredicate, combined, compile_pattern, compile_rules

BASE: dict[str, Any] = {
    "eventVersion": "1.08",
    "eventTime": "2024-05-01T10:00:00Z",
    "eventSource": "s3.amazonaws.com",
    "eventName": "GetObject",
    "awsRegion": "us-east-1",
    "recipientAccountId": "111122223333",
}


def rec(**fields: Any) -> dict[str, Any]:
    out = {**BASE, **fields}
    return {k: v for k, v in out.items() if v is not None}


def run(pattern: Mapping[str, Any], records: Sequence[Mapping[str, Any]], where: Path) -> tuple[list[bool], list[bool]]:
    """(SQL selects, matcher matches) per record, after the DuckDB round trip; both forms syntax-checked."""
    trino = compile_pattern(pattern, dialect="trino")
    sqlglot.parse_one(f"SELECT 1 FROM cloudtrail WHERE {trino.sql}", read="trino")
    pred = compile_pattern(pattern, dialect="duckdb")
    assert pred.exact == trino.exact
    path = where / "records.jsonl"
    path.write_bytes(b"".join(orjson.dumps({**r, "eventID": f"e{i}"}) + b"\n" for i, r in enumerate(records)))
    con = hunt.connect(hunt.discover([path]))
    sql = f"SELECT {select_list('duckdb')}, coalesce({pred.sql}, FALSE) FROM cloudtrail ORDER BY eventid"
    rows = con.execute(sql).fetchall()
    con.close()
    n = len(columns())
    hits = [bool(r[n]) for r in rows]
    matched = [matches(pattern, wrap_record(record_from_row(dict(zip(columns(), r[:n], strict=True))))) for r in rows]
    for hit, m in zip(hits, matched, strict=True):
        assert hit or not m, pred.sql  # never a subset
        if pred.exact:
            assert hit == m, pred.sql
    return hits, matched


def check(pattern: Mapping[str, Any], yes: Sequence[Mapping[str, Any]], no: Sequence[Mapping[str, Any]], where: Path,
          *, exact: bool = True) -> CompiledPredicate:  # fmt: skip
    """The matcher matches ``yes`` and not ``no``; the SQL agrees (exactly when ``exact``)."""
    hits, matched = run(pattern, [*yes, *no], where)
    assert matched == [True] * len(yes) + [False] * len(no)
    pred = compile_pattern(pattern, dialect="duckdb")
    assert pred.exact is exact, pred.why_inexact
    if exact:
        assert hits == matched
    return pred


def test_literal_sets_become_in(tmp_path: Path) -> None:
    pred = check(
        {"detail": {"eventName": ["PutObject", "DeleteObject"], "eventSource": ["s3.amazonaws.com"]}},
        [rec(eventName="PutObject"), rec(eventName="DeleteObject")],
        [rec(eventName="putobject"), rec(eventName="GetObject"), rec(eventName="PutObject", eventSource="ec2.amazonaws.com")],
        tmp_path,
    )  # fmt: skip
    assert "eventname IN ('PutObject', 'DeleteObject')" in pred.sql
    assert "eventsource = 's3.amazonaws.com'" in pred.sql


def test_prefix_and_suffix_escape_like_wildcards(tmp_path: Path) -> None:
    check(
        {"detail": {"eventName": [{"prefix": "Put%_"}]}}, [rec(eventName="Put%_x")], [rec(eventName="PutAbx")], tmp_path
    )
    check({"detail": {"eventName": [{"suffix": "!_"}]}}, [rec(eventName="a!_")], [rec(eventName="a!x"), rec(eventName="_")],
          tmp_path)  # fmt: skip


def test_equals_ignore_case_folds_like_python(tmp_path: Path) -> None:
    # Kelvin sign and long s fold to ASCII; sharp s folds to "ss"; dotted capital I does not fold to "i"
    check(
        {"detail": {"userIdentity": {"userName": [{"equals-ignore-case": "Kiss"}]}}},
        [rec(userIdentity={"userName": "\u212aI\u017fS"}), rec(userIdentity={"userName": "KI\u00df"})],
        [rec(userIdentity={"userName": "\u0130ss"}), rec(userIdentity={"userName": "Kis"}), rec()],
        tmp_path,
    )


def test_prefix_and_suffix_ignore_case(tmp_path: Path) -> None:
    check({"detail": {"userAgent": [{"prefix": {"equals-ignore-case": "TERRA"}}]}},
          [rec(userAgent="terraform/1"), rec(userAgent="\ufb06\u212aterra")][:1],
          [rec(userAgent="xterra"), rec(userAgent="\u0130terra")], tmp_path)  # fmt: skip
    check({"detail": {"userAgent": [{"suffix": {"equals-ignore-case": "N"}}]}},
          [rec(userAgent="abn"), rec(userAgent="a\u0149")], [rec(userAgent="na")], tmp_path)  # fmt: skip


def test_non_ascii_ignore_case_is_a_superset(tmp_path: Path) -> None:
    pred = check({"detail": {"userAgent": [{"equals-ignore-case": "\u00e9T\u00e9"}]}},
                 [rec(userAgent="\u00c9t\u00c9")], [rec(userAgent="ete")], tmp_path, exact=False)  # fmt: skip
    assert pred.why_inexact == ("case folding beyond ASCII",)


def test_wildcard(tmp_path: Path) -> None:
    check(
        {"detail": {"userIdentity": {"arn": [{"wildcard": "arn:*:role/a\\*b_*"}]}}},
        [rec(userIdentity={"arn": "arn:aws:iam::1:role/a*b_\nz"}), rec(userIdentity={"arn": "arn::role/a*b_"})],
        [rec(userIdentity={"arn": "arn:aws:role/axb_"}), rec(userIdentity={"arn": "arn:aws:role/a*bx"})],
        tmp_path,
    )


def test_anything_but_forms(tmp_path: Path) -> None:
    check({"detail": {"errorCode": [{"anything-but": ["AccessDenied", "x'y"]}]}},
          [rec(errorCode="Throttling")], [rec(errorCode="x'y"), rec(errorCode="AccessDenied"), rec()], tmp_path)  # fmt: skip
    check({"detail": {"errorCode": [{"anything-but": {"prefix": "Access"}}]}},
          [rec(errorCode="Denied")], [rec(errorCode="AccessDenied"), rec()], tmp_path)  # fmt: skip
    check({"detail": {"errorCode": [{"anything-but": {"suffix": ["Denied", "Found"]}}]}},
          [rec(errorCode="Throttling")], [rec(errorCode="AccessDenied"), rec(errorCode="NotFound")], tmp_path)  # fmt: skip
    check({"detail": {"errorCode": [{"anything-but": {"equals-ignore-case": "accessdenied"}}]}},
          [rec(errorCode="Throttling")], [rec(errorCode="ACCESSDENIED")], tmp_path)  # fmt: skip
    check({"detail": {"errorCode": [{"anything-but": {"wildcard": "*Denied"}}]}},
          [rec(errorCode="Throttling")], [rec(errorCode="AccessDenied")], tmp_path)  # fmt: skip
    check({"detail": {"errorCode": [{"anything-but": [1, 2]}]}}, [rec(errorCode="1")], [rec()], tmp_path)


def test_negated_superset_stays_a_superset(tmp_path: Path) -> None:
    pred = check({"detail": {"errorCode": [{"anything-but": {"equals-ignore-case": "\u00e9"}}]}},
                 [rec(errorCode="x")], [rec(errorCode="\u00c9"), rec()], tmp_path, exact=False)  # fmt: skip
    assert pred.sql == "errorcode IS NOT NULL"


def test_numbers_and_booleans_never_equal_a_string_column(tmp_path: Path) -> None:
    pred = check({"detail": {"eventVersion": [1.08, True, {"numeric": [">", 0]}]}}, [], [rec()], tmp_path)
    assert pred.sql == FALSE


def test_exists_and_null(tmp_path: Path) -> None:
    check({"detail": {"errorCode": [{"exists": False}]}}, [rec()], [rec(errorCode="AccessDenied")], tmp_path)
    check({"detail": {"errorCode": [{"exists": True}]}}, [rec(errorCode="")], [rec()], tmp_path)
    pred = check({"detail": {"errorCode": [None, "x"]}}, [rec(errorCode="x")], [rec(errorCode="y")], tmp_path,
                 exact=False)  # fmt: skip
    assert pred.why_inexact == ("an explicit null and an absent field are both SQL NULL",)


def test_cidr_is_a_selective_superset(tmp_path: Path) -> None:
    pred = check({"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/8"}]}}, [rec(sourceIPAddress="10.1.2.3")],
                 [rec(sourceIPAddress="11.1.2.3"), rec(sourceIPAddress="ec2.amazonaws.com")], tmp_path, exact=False)  # fmt: skip
    hits, _ = run({"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/8"}]}}, [rec(sourceIPAddress="ec2.amazonaws.com")],
                  tmp_path)  # fmt: skip
    assert hits == [False]
    check({"detail": {"sourceIPAddress": [{"cidr": "fe80::/10"}]}}, [rec(sourceIPAddress="fe80::1")],
          [rec(sourceIPAddress="10.0.0.1")], tmp_path, exact=False)  # fmt: skip
    assert pred.why_inexact


def test_or_and_nested_objects(tmp_path: Path) -> None:
    pattern = {
        "source": ["aws.s3"],
        "detail": {"$or": [{"eventName": ["PutObject"]}, {"errorCode": ["AccessDenied"], "eventName": ["GetObject"]}]},
    }
    check(pattern, [rec(eventName="PutObject"), rec(errorCode="AccessDenied")],
          [rec(), rec(eventName="PutObject", eventSource="ec2.amazonaws.com")], tmp_path)  # fmt: skip


def test_source_mirrors_source_for(tmp_path: Path) -> None:
    check({"source": ["aws.s3"]},
          [rec(eventSource="s3.amazonaws.com.cn"), rec(eventSource=" s3.amazonaws.com\u3000"), rec(eventSource="s3")],
          [rec(eventSource="s3.amazonaws.com\nx"), rec(eventSource="s3.amazonaws.com.cn.amazonaws.com")], tmp_path)  # fmt: skip
    check({"source": ["aws.unknown"]}, [rec(eventSource=".amazonaws.com"), rec(eventSource=" ")], [rec()], tmp_path)


def test_source_operators_use_the_full_expression(tmp_path: Path) -> None:
    check(
        {"source": [{"prefix": "aws.s3x"}, {"anything-but": ["aws.ec2", "aws.s3"]}]},
        [rec(eventSource="\u2003s3x.amazonaws.com.cn "), rec(eventSource="sts.amazonaws.com")],
        [rec(eventSource="ec2.amazonaws.com"), rec(eventSource=" s3.amazonaws.com.cn")],
        tmp_path,
    )


def test_source_implied_by_event_source_is_dropped(tmp_path: Path) -> None:
    pattern = {"source": ["aws.s3"], "detail": {"eventSource": ["s3.amazonaws.com"]}}
    pred = check(pattern, [rec()], [rec(eventSource="s3.amazonaws.com.cn")], tmp_path)
    assert pred.sql == "eventsource = 's3.amazonaws.com'"
    # not implied: both conjuncts stay (and nothing matches)
    pattern = {"source": ["aws.ec2"], "detail": {"eventSource": ["s3.amazonaws.com"]}}
    pred = check(pattern, [], [rec(), rec(eventSource="ec2.amazonaws.com")], tmp_path)
    assert "regexp_replace" in pred.sql


def test_detail_type_mirrors_detail_type_for(tmp_path: Path) -> None:
    assert compile_pattern({"detail-type": ["AWS Console Signin via CloudTrail"]}, dialect="trino").sql == FALSE
    check({"detail-type": ["AWS Console Sign In via CloudTrail"]},
          [rec(eventName="ConsoleLogin"), rec(eventType="AwsConsoleSignIn")],
          [rec(eventName="ConsoleLogin", eventType="AwsApiCall"), rec()], tmp_path)  # fmt: skip
    check({"detail-type": ["AWS Service Event via CloudTrail"]},
          [rec(serviceEventDetails={"a": 1}), rec(eventType="AwsServiceEvent")],
          [rec(eventType="AwsApiCall", serviceEventDetails={"a": 1}), rec(eventType="Other")], tmp_path)  # fmt: skip
    check({"detail-type": [{"prefix": "AWS API"}]}, [rec(), rec(eventType="Other")], [rec(eventName="ConsoleLogin")],
          tmp_path)  # fmt: skip


def test_account_region_time(tmp_path: Path) -> None:
    check({"account": ["111122223333"], "region": [{"prefix": "us-"}], "time": [{"prefix": "2024-05"}]},
          [rec()], [rec(recipientAccountId="444455556666"), rec(awsRegion="eu-west-1")], tmp_path)  # fmt: skip
    check({"account": [""]}, [rec(recipientAccountId=None)], [rec()], tmp_path)


def test_constant_envelope_fields(tmp_path: Path) -> None:
    assert compile_pattern({"version": ["0"]}, dialect="duckdb").sql == TRUE
    assert compile_pattern({"version": ["1"]}, dialect="duckdb").sql == FALSE
    assert compile_pattern({"resources": [{"exists": False}]}, dialect="duckdb").sql == TRUE
    assert compile_pattern({"resources": ["x"]}, dialect="duckdb").sql == FALSE
    assert compile_pattern({"detail": [{"exists": True}]}, dialect="duckdb").sql == FALSE
    assert compile_pattern({"id": [{"exists": True}]}, dialect="duckdb").sql == TRUE
    pred = compile_pattern({"id": [{"prefix": "a"}], "detail": {"eventName": ["X"]}}, dialect="duckdb")
    assert (pred.sql, pred.exact) == ("eventname = 'X'", False)
    check({"id": [{"prefix": "0"}], "detail": {"eventName": ["GetObject"]}}, [], [rec(eventName="X")], tmp_path,
          exact=False)  # fmt: skip


def test_resources_any_element(tmp_path: Path) -> None:
    check({"detail": {"resources": {"ARN": [{"prefix": "arn:aws:s3:::b"}]}}},
          [rec(resources=[{"ARN": "arn:aws:s3:::a"}, {"ARN": "arn:aws:s3:::b/k"}])],
          [rec(resources=[{"ARN": "arn:aws:s3:::a"}]), rec(resources=[]), rec()], tmp_path)  # fmt: skip
    check({"detail": {"resources": {"type": [{"exists": False}]}}},
          [rec(resources=[{"ARN": "x"}]), rec()], [rec(resources=[{"ARN": "x"}, {"type": "AWS::S3::Object"}])],
          tmp_path)  # fmt: skip


def test_resources_consistency_is_a_superset(tmp_path: Path) -> None:
    pattern = {"detail": {"resources": {"ARN": ["a"], "type": ["T"]}}}
    hits, matched = run(pattern, [rec(resources=[{"ARN": "a", "type": "U"}, {"ARN": "b", "type": "T"}])], tmp_path)
    assert (hits, matched) == ([True], [False])
    pred = compile_pattern({"detail": {"resources": {"ARN": ["a"], "type": [{"exists": False}]}}}, dialect="duckdb")
    assert not pred.exact
    run(pattern, [rec(resources=[{"ARN": "a"}, {"ARN": "b", "type": "T"}])], tmp_path)


def test_read_only(tmp_path: Path) -> None:
    check({"detail": {"readOnly": [False]}}, [rec(readOnly=False)], [rec(readOnly=True), rec()], tmp_path)
    check({"detail": {"readOnly": [{"anything-but": "x"}]}}, [rec(readOnly=True), rec(readOnly="y")],
          [rec(readOnly="x"), rec()], tmp_path)  # fmt: skip
    check({"detail": {"readOnly": ["true"]}}, [], [rec(readOnly=True)], tmp_path)


def test_struct_members(tmp_path: Path) -> None:
    check({"detail": {"userIdentity": {"sessionContext": {"sessionIssuer": {"arn": [{"suffix": "/Admin"}]}}}}},
          [rec(userIdentity={"sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::1:role/Admin"}}})],
          [rec(userIdentity={"type": "Root"}), rec()], tmp_path)  # fmt: skip
    # a member the schema does not have, and a struct (an object, never a leaf)
    assert compile_pattern({"detail": {"userIdentity": {"nope": ["x"]}}}, dialect="trino").sql == FALSE
    assert compile_pattern({"detail": {"userIdentity": {"sessionContext": ["x"]}}}, dialect="trino").sql == FALSE
    # a struct member whose key is not CloudTrail's spelling is another field
    assert compile_pattern({"detail": {"userIdentity": {"ARN": ["x"]}}}, dialect="duckdb").sql == FALSE


def test_json_columns_are_a_superset_across_arrays_and_types(tmp_path: Path) -> None:
    pattern = {"detail": {"requestParameters": {"items": {"group": ["all"]}, "x-amz-acl": [{"prefix": "public"}]}}}
    pred = check(pattern,
                 [rec(requestParameters={"items": [{"group": "x"}, {"group": ["all"]}], "x-amz-acl": ["public-read"]}),
                  rec(requestParameters={"items": {"group": "all"}, "x-amz-acl": "public-read-write"})],
                 [rec(requestParameters={"items": {"group": "al"}, "x-amz-acl": "public"}),
                  rec(requestParameters={"items": {"group": "all"}, "x-amz-acl": "private"}), rec()],
                 tmp_path, exact=False)  # fmt: skip
    hits, _ = run(pattern, [rec(requestParameters={"items": {"group": "all"}, "x-amz-acl": "private"})], tmp_path)
    assert hits == [False]  # still selective where no array is crossed
    assert pred.why_inexact == ("JSON-string columns: array crushing and JSON types are left to the matcher",)
    check({"detail": {"requestParameters": {"flag": [True], "n": [{"numeric": [">", 1]}]}}},
          [rec(requestParameters={"flag": True, "n": 2})], [rec(requestParameters={"flag": "true", "n": 2}),
          rec(requestParameters={"flag": True, "n": "2"})], tmp_path, exact=False)  # fmt: skip
    check({"detail": {"additionalEventData": {"MFAUsed": [{"exists": False}]}}},
          [rec(), rec(additionalEventData={"MFAUsed": []})], [rec(additionalEventData={"MFAUsed": None})],
          tmp_path, exact=False)  # fmt: skip
    check({"detail": {"responseElements": {"a b": ["x"]}}}, [rec(responseElements={"a b": "x"})],
          [rec(responseElements={"a b": "y"})], tmp_path, exact=False)  # fmt: skip


def test_fields_the_table_drops(tmp_path: Path) -> None:
    pred = check({"detail": {"managementEvent": [{"exists": False}]}}, [rec()], [], tmp_path, exact=False)
    assert pred.sql == TRUE
    assert compile_pattern({"detail": {"managementEvent": [True]}}, dialect="duckdb").sql == FALSE


def test_a_true_leaf_does_not_open_the_rule() -> None:
    pred = compile_pattern({"id": ["x"], "detail": {"eventName": ["A"], "requestParameters": {"k": [None]}}},
                           dialect="duckdb")  # fmt: skip
    assert pred.sql == "(eventname = 'A' AND requestparameters IS NOT NULL)"


def test_invalid_patterns_and_dialects_are_refused() -> None:
    with pytest.raises(PatternError):
        compile_pattern({"detail": {"eventName": []}}, dialect="trino")
    with pytest.raises(ValueError, match="dialect"):
        compile_pattern({"source": ["aws.s3"]}, dialect="mysql")  # type: ignore[arg-type]


def test_compile_rules_and_combined() -> None:
    class R:
        def __init__(self, rid: str, pattern: dict[str, Any]) -> None:
            self.id, self.event_pattern = rid, pattern

    preds = compile_rules([R("a", {"detail": {"eventName": ["A"]}}), R("b", {"version": ["0"]})], dialect="trino")
    assert list(preds) == ["a", "b"]
    assert combined(preds.values()) == TRUE
    assert combined([preds["a"]]) == "eventname = 'A'"
    assert combined([]) == FALSE


def test_every_catalog_rule_parses_as_trino() -> None:
    from trailguard_engine.catalog import load_catalog

    preds = compile_rules(load_catalog(), dialect="trino")
    for rule_id, pred in preds.items():
        tree = sqlglot.parse_one(f"SELECT 1 FROM cloudtrail WHERE {pred.sql}", read="trino")
        assert tree.find(exp.Where) is not None, rule_id
        assert "?" not in pred.sql, rule_id  # on Athena a ? is an execution parameter
    where = sqlglot.parse_one(f"SELECT 1 FROM cloudtrail WHERE {combined(preds.values())}", read="trino")
    assert isinstance(where, exp.Select)


def test_folding_and_space_tables_are_pythons() -> None:
    """The SQL tables of characters equal what ``str.casefold`` and ``str.strip`` use on this Python."""
    from trailguard.retro import sqlcompile

    folds = [chr(i) for i in range(128, 0x110000) if any(ord(c) < 128 for c in chr(i).casefold())]
    assert [c for c, _ in sqlcompile._FOLD_TO_ASCII] == folds
    spaces = [chr(i) for i in range(0x110000) if chr(i).isspace()]
    pattern = sqlcompile._SPACE_CLASS
    con = duckdb.connect()
    (found,) = con.execute(
        "SELECT list(i ORDER BY i) FROM range(1, 12289) t(i) WHERE regexp_full_match(chr(i::INTEGER), ?)", [pattern]
    ).fetchone() or ([],)
    con.close()
    assert [chr(i) for i in found] == spaces


def test_anything_but_never_matches_an_absent_field_even_when_the_excluded_test_is_two_valued(tmp_path: Path) -> None:
    """Found by hypothesis: ``anything-but {wildcard: '*'}`` compiled to ``NOT type IS NOT NULL`` (absent -> TRUE)."""
    pattern = {"detail": {"userIdentity": {"type": [{"anything-but": {"wildcard": "*"}}]}}}
    check(pattern, [], [rec(), rec(userIdentity={"type": "Root"})], tmp_path)
    suffix = {"detail": {"userIdentity": {"type": [{"anything-but": {"suffix": "t"}}]}}}
    check(suffix, [rec(userIdentity={"type": "IAMUser"})], [rec(), rec(userIdentity={"type": "Root"})], tmp_path)


def test_json_exists_false_holds_where_the_path_holds_an_object(tmp_path: Path) -> None:
    """Found by reading ``_json_field``: ``exists: false`` compiled to ``json_extract(...) IS NULL``, which drops a
    record whose value at the path is an object (an object is never a leaf, so the matcher matches it)."""
    check({"detail": {"requestParameters": {"items": [{"exists": False}]}}},
          [rec(requestParameters={"items": {"group": "x"}}), rec(requestParameters="s"), rec()],
          [rec(requestParameters={"items": "x"}), rec(requestParameters={"items": None})], tmp_path, exact=False)  # fmt: skip
    check({"detail": {"requestParameters": [{"exists": False}]}},
          [rec(requestParameters={"items": {"group": "x"}}), rec(requestParameters=[]), rec()],
          [rec(requestParameters="s")], tmp_path, exact=False)  # fmt: skip
