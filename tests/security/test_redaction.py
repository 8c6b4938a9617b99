"""Content redaction (`bot/redaction.py`): the corpus of real-looking output, a diagnosis of the real
db.activity runbook against PostgreSQL, and the validation of site-specific patterns.

`pytest -s tests/security/test_redaction.py` prints the corpus results per rule.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from pydantic import ValidationError

from bot.probes import ProbeResult, ProbeRunner
from bot.redaction import ContentRedactor, RedactionSettings, normalize_sql, redact_diagnosis
from bot.runbooks.catalogue import load_catalogue
from bot.runbooks.engine import CheckOutcome, Diagnosis, diagnose
from bot.targets import Targets

ROOT = Path(__file__).resolve().parents[2]
CORPUS: list[dict[str, str]] = yaml.safe_load((Path(__file__).parent / "redaction_corpus.yml").read_text())
JANE = "jane.doe@example.com"
CARD = "4111111111111111"
PROMQL = 'sum(rate(http_requests_total{status=~"5.."}[5m])) > 0.5'


def test_the_corpus_comes_out_as_expected() -> None:
    redactor = ContentRedactor()
    results: dict[str, list[bool]] = {}
    failures = []
    for case in CORPUS:
        redact = redactor.sql if case.get("via") == "sql" else redactor.text
        got = redact(case["input"])
        results.setdefault(case["rule"], []).append(got == case["expected"])
        if got != case["expected"]:
            failures.append(
                f"[{case['rule']}] {case['input']!r}\n   got      {got!r}\n   expected {case['expected']!r}"
            )
    print(f"\n{'rule':<14} {'cases':>5} {'passed':>6}")
    for rule, passed in results.items():
        print(f"{rule:<14} {len(passed):>5} {sum(passed):>6}")
    print(f"{'all':<14} {len(CORPUS):>5} {len(CORPUS) - len(failures):>6}")
    assert len(CORPUS) >= 40
    assert not failures, "\n".join(failures)


def test_each_rule_can_be_switched_off() -> None:
    samples = {
        "emails": f"mail {JANE}",
        "tokens": "key AKIAIOSFODNN7EXAMPLE",
        "card_numbers": f"card {CARD}",
        "url_passwords": "postgresql://app:s3cr3t@db/shop",
    }
    for rule, sample in samples.items():
        assert ContentRedactor().text(sample) != sample, rule
        assert ContentRedactor(RedactionSettings(**{rule: False})).text(sample) == sample, rule
    query = "SELECT 1 FROM t WHERE a = 'x'"
    assert ContentRedactor(RedactionSettings(sql_literals=False)).sql(query) == query


def test_site_patterns_are_applied_and_bad_ones_refused_with_a_readable_message() -> None:
    settings = RedactionSettings.model_validate(
        {"patterns": [{"name": "order_ref", "regex": r"ORD-\d{8}", "replacement": "[order]"}]}
    )
    assert ContentRedactor(settings).text("refund ORD-20261204 done") == "refund [order] done"
    # The replacement is literal text: a group reference does not copy what was matched.
    literal = RedactionSettings.model_validate(
        {"patterns": [{"name": "n", "regex": r"(\d+)", "replacement": r"\1"}]}
    )
    assert ContentRedactor(literal).text("pin 1234") == r"pin \1"
    with pytest.raises(ValidationError) as bad:
        RedactionSettings.model_validate({"patterns": [{"name": "broken", "regex": "ORD-(\\d+"}]})
    message = str(bad.value)
    assert "patterns.0.regex" in message and "not a regular expression: missing )" in message
    with pytest.raises(ValidationError, match="matches the empty string"):
        RedactionSettings.model_validate({"patterns": [{"name": "empty", "regex": "x*"}]})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        RedactionSettings.model_validate({"emails": True, "phone_numbers": True})
    with pytest.raises(ValidationError):
        RedactionSettings().emails = False  # type: ignore[misc]


def test_sql_numbering_continues_after_existing_placeholders_and_masks_a_cut_literal() -> None:
    assert normalize_sql("SELECT $2, 'a', $1, 7") == "SELECT $2, $3, $1, $4"
    assert normalize_sql("SELECT 1 FROM t WHERE s = $$abc") == "SELECT $1 FROM t WHERE s = $2…"
    # An open quoted name or comment is not a value: it stays, and the text rules still run on it.
    assert ContentRedactor().sql('SELECT "col /* jane.doe@example.com') == 'SELECT "col /* [email]'


def _outcome(columns: list[str], rows: list[list[Any]], shown: Any, **values: Any) -> CheckOutcome:
    result = ProbeResult(status="ok", values=values, columns=columns, rows=rows, latency_ms=1.0)
    return CheckOutcome(check_id="c", title="a check", status="ok", value=shown, result=result)


def test_redact_diagnosis_covers_rows_output_values_errors_and_keeps_the_original() -> None:
    logs = _outcome(
        ["output"],
        [[f"login {JANE} Bearer abc.def"], ["GET /health 200"]],
        f"login {JANE} Bearer abc.def",
        last_line=f"login {JANE} Bearer abc.def",
        output_lines=2,
    )
    query = _outcome(
        ["pid", "query", "detail"],
        [[7, "SELECT 'x' AS a", {"note": CARD}]],
        "SELECT 'x' AS a",
        query="SELECT 'x' AS a",
    )
    failed = CheckOutcome(
        check_id="f",
        title="failed",
        status="unknown",
        reason=f"denied for {JANE}",
        result=ProbeResult(status="error", values={}, latency_ms=1.0, error=f"denied for {JANE}"),
    )
    promql = _outcome(["series", "value"], [['{job="api"}', 12.5]], 12.5, value=12.5, query=PROMQL)
    now = datetime.now(UTC)
    original = Diagnosis(
        run_id="run-1",
        runbook_id="logs.tail",
        runbook_version=1,
        title="t",
        params={"service": "api"},
        overall="ok",
        started_at=now,
        finished_at=now,
        checks=[logs, query, failed, promql],
        suggestions=[],
    )
    redacted = redact_diagnosis(original, ContentRedactor())
    shown_logs, shown_query, shown_failed, shown_promql = redacted.checks
    assert shown_logs.result.rows == [["login [email] Bearer [token]"], ["GET /health 200"]]
    assert shown_logs.value == shown_logs.result.values["last_line"] == "login [email] Bearer [token]"
    assert shown_logs.result.values["output_lines"] == 2
    assert shown_query.result.rows == [[7, "SELECT $1 AS a", {"note": "[card]"}]]
    assert shown_query.value == shown_query.result.values["query"] == "SELECT $1 AS a"
    assert shown_failed.reason == shown_failed.result.error == "denied for [email]"
    assert shown_promql.result.values["query"] == PROMQL, "the runbook's own PromQL is not SQL"
    assert shown_promql.value == 12.5
    assert original.checks[0].result.rows[0][0] == f"login {JANE} Bearer abc.def", "the original is untouched"
    assert (redacted.params, redacted.title, redacted.run_id) == (
        original.params,
        original.title,
        original.run_id,
    )


@pytest.fixture
async def chatty_session(app_db_url: str) -> AsyncIterator[None]:
    """Another session whose last query, left in pg_stat_activity, holds an e-mail and a card number."""
    async with await psycopg.AsyncConnection.connect(app_db_url, autocommit=True) as conn:
        await conn.execute(f"SELECT '{JANE}' AS email, {CARD} AS pan, 'Jane Doe' AS holder")
        yield


async def test_a_real_db_activity_diagnosis_shows_query_text_without_its_literals(
    app_db_url: str, chatty_session: None
) -> None:
    runbook = load_catalogue(ROOT / "runbooks").get("db.activity")
    assert runbook is not None and runbook.data == "personal"
    targets = Targets.parse({"targets": {"app_db": {"kind": "postgres", "dsn": app_db_url}}})
    async with ProbeRunner(targets) as runner:
        diagnosis = await asyncio.wait_for(diagnose(runbook, {}, runner), 30)
    connections = diagnosis.outcome("connections")
    assert connections is not None and connections.result.status == "ok"
    column = connections.result.columns.index("query")
    raw = [row[column] for row in connections.result.rows if JANE in str(row[column])]
    assert raw, "the other session's query is in pg_stat_activity"
    shown = redact_diagnosis(diagnosis, ContentRedactor()).outcome("connections")
    assert shown is not None
    texts = [row[column] for row in shown.result.rows]
    assert "SELECT $1 AS email, $2 AS pan, $3 AS holder" in texts
    assert not any(
        JANE in str(row) or CARD in str(row) or "Jane Doe" in str(row) for row in shown.result.rows
    )
    assert [row[0] for row in shown.result.rows] == [row[0] for row in connections.result.rows], "pids stay"
