"""Content redaction: what production data a diagnosis may show once it leaves the bot.

Diagnoses read live systems, so their rows and output can carry other people's data: literals in
query text (`WHERE email = 'jane@…'`), e-mail addresses, tokens and API keys in log lines, card
numbers, passwords inside connection URLs. `ContentRedactor` masks those by their *shape*, which
is what is left once the known secrets (`bot.logs.Redactor`, which masks values the bot itself
holds) have been removed: the bot cannot know a customer's e-mail in advance.

- `text()` is for free text (log lines, column values): URL passwords, tokens, e-mails, card
  numbers (Luhn-checked and with a card-issuer prefix, so ids and epoch timestamps stay), the site's
  own `patterns`, and the statement of a PostgreSQL log line (`statement: …`) as `sql()` does it.
- `sql()` is for query text (`pg_stat_activity.query`, `pg_stat_statements.query`): every literal
  becomes `$n` as pg_stat_statements prints it, found with PostgreSQL's own lexer (pglast), so
  identifiers, keywords, casts and existing `$n`/`%(name)s` binds stay. Text cut off inside a
  literal (pg_stat_activity truncates at `track_activity_query_size`) is masked from the cut on; a
  word the lexer cannot read (`5m`) is masked and reading goes on after it.
- `redact_diagnosis()` applies both to a whole `Diagnosis`: a column named `query`, `query_text`
  or `statement` (in the rows and as a value) as SQL, every other string as text.

`RedactionSettings` is the `redaction:` section of a configuration file; every rule is on by
default and a site adds its own shapes (`patterns`) as validated regular expressions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, Literal

from pglast.parser import ParseError, Token, scan
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.probes.result import ProbeResult
from bot.runbooks.engine import CheckOutcome, Diagnosis

QUERY_COLUMNS = frozenset({"query", "query_text", "statement"})
"""Columns and probe values holding SQL text: redacted by `ContentRedactor.sql`."""

# Token kinds of PostgreSQL's lexer that are literal values: strings (plain, E'', U&'', dollar-
# quoted: all SCONST/USCONST), bit and hex strings, integers and decimals.
_LITERAL_TOKENS = frozenset({"SCONST", "USCONST", "BCONST", "XCONST", "ICONST", "FCONST"})
# Where the lexer stops in text cut off mid-query: an open string is a literal and is masked from
# there on; an open identifier or comment is not a value and is left to the text rules.
_OPEN_LITERAL = (
    "unterminated quoted string",
    "unterminated dollar-quoted string",
    "unterminated bit string",
    "unterminated hexadecimal string",
)
_OPEN_OTHER = ("unterminated quoted identifier", "unterminated /* comment")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Pattern(_Frozen):
    """A site-specific shape to mask, e.g. {name: order_ref, regex: 'ORD-[0-9]{8}', replacement: '[order]'}.

    The replacement is literal text (no group references), so a pattern cannot copy what it matched.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,40}$")
    regex: str = Field(min_length=1, max_length=500)
    replacement: str = Field("[redacted]", max_length=40)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        if compiled.fullmatch("") is not None:
            raise ValueError("matches the empty string, so it would mask between every character")
        return value


class RedactionSettings(_Frozen):
    """Which shapes of data are masked before a diagnosis is shown; every rule is on by default."""

    sql_literals: bool = True
    emails: bool = True
    tokens: bool = True
    card_numbers: bool = True
    url_passwords: bool = True
    patterns: list[Pattern] = Field(default_factory=list, max_length=50)


Rule = Callable[[str], str]


def _sub(pattern: str, replacement: str, flags: int = 0) -> Rule:
    compiled = re.compile(pattern, flags)
    return lambda text: compiled.sub(replacement, text)


def _literal(compiled: re.Pattern[str], replacement: str) -> Rule:
    """A site pattern's rule: its replacement is inserted as it is, never read as a template."""
    return lambda text: compiled.sub(lambda _: replacement, text)


_URL_USERINFO = r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*):[^\s/@]+@"
_KEY_VALUE = (
    r"(?i)(?<![a-z0-9])((?:api[_-]?key|apikey|access[_-]?token|auth[_-]?token|refresh[_-]?token|"
    r"session[_-]?token|client[_-]?secret|secret[_-]?key|token|secret|password|passwd)"
    r"[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,;)\]}]+"
)
# Shapes of credentials that are recognisable without a key name in front of them.
_TOKEN_SHAPES = (
    r"\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*",  # JWT: base64url JSON header . payload . signature
    r"\bsk-(?:proj-|ant-)?[\w-]{20,}",  # OpenAI / Anthropic style
    r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}",  # Stripe
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}",  # Slack
    r"\bxapp-\d-[A-Za-z0-9-]{10,}",  # Slack app-level
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key id
    r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b",  # GitHub
    r"\bgithub_pat_\w{22,255}\b",  # GitHub fine-grained
    r"\bglpat-[\w-]{20,}",  # GitLab
)
_EMAIL = r"(?<![\w.%+/-])[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
# 13 to 19 digits, single spaces or dashes between them, starting like a card issuer's number (2-6):
# epoch timestamps (1…) and the digits of ids joined by other characters do not qualify.
_CARD = re.compile(r"(?<![\w-])[2-6](?:[ -]?\d){12,18}(?![\w-])")
_PG_STATEMENT = re.compile(r"(?m)\b((?:statement|STATEMENT|execute [^:\n]{1,64}|QUERY):\s+)(.+)$")


def luhn_valid(digits: str) -> bool:
    """The card-number check digit test (ISO/IEC 7812)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[card]" if 13 <= len(digits) <= 19 and luhn_valid(digits) else match.group(0)


def _scan(text: str) -> tuple[list[Token], int | None, str]:
    """The lexer's tokens up to where it stops (None: the end), and why it stopped there."""
    try:
        return list(scan(text)), None, ""
    except ParseError as exc:
        message, location = str(exc.args[0]), exc.args[1] if len(exc.args) > 1 else None
        if not isinstance(location, int) or not 0 <= location < len(text):
            raise
        tokens, earlier, why = _scan(text[:location])
        return (tokens, earlier, why) if earlier is not None else (tokens, location, message)


Piece = tuple[Literal["text", "param", "literal", "open"], str]


def _pieces(query: str) -> list[Piece]:
    """`query` cut into text, `$n` parameters and literals. Where the lexer stops, an open string
    runs to the end (`open`); an open quoted name or comment is text; anything else it cannot read
    (`5m`, `$1x`) is masked up to the end of the word, and reading goes on after it."""
    pieces: list[Piece] = []
    position = 0
    while position < len(query):
        rest = query[position:]
        tokens, stop, why = _scan(rest)
        cursor = 0
        for token in tokens:
            kind: Literal["param", "literal"] | None = (
                "literal" if token.name in _LITERAL_TOKENS else "param" if token.name == "PARAM" else None
            )
            if kind is not None:
                pieces += [("text", rest[cursor : token.start]), (kind, rest[token.start : token.end + 1])]
                cursor = token.end + 1
        if stop is None:
            return [*pieces, ("text", rest[cursor:])]
        pieces.append(("text", rest[cursor:stop]))
        if why.startswith(_OPEN_LITERAL):
            return [*pieces, ("open", rest[stop:])]
        if why.startswith(_OPEN_OTHER):
            return [*pieces, ("text", rest[stop:])]
        word = re.match(r"[\w.$]+", rest[stop:])
        length = word.end() if word else 1
        pieces.append(("literal", rest[stop : stop + length]))
        position += stop + length
    return pieces


def normalize_sql(query: str) -> str:
    """`query` with every literal as `$n`, numbered after the highest `$n` it already has, the way
    pg_stat_statements shows it. Raises `ParseError` only for text the lexer cannot read at all."""
    pieces = _pieces(query)
    number = max((int(p[1:]) for kind, p in pieces if kind == "param" and p[1:].isdigit()), default=0)
    out = []
    for kind, piece in pieces:
        if kind in ("literal", "open"):
            number += 1
            piece = f"${number}" + ("…" if kind == "open" else "")
        out.append(piece)
    return "".join(out)


class ContentRedactor:
    """Masks data by its shape, as `RedactionSettings` asks; see the module docstring."""

    def __init__(self, settings: RedactionSettings | None = None) -> None:
        self.settings = settings or RedactionSettings()
        self._rules = list(self._build_rules())

    def _build_rules(self) -> Iterator[Rule]:
        # URL passwords first: the e-mail shape would otherwise see `pass@host.example`.
        s = self.settings
        if s.url_passwords:
            yield _sub(_URL_USERINFO, r"\1:***@")
        if s.tokens:
            yield _sub(r"(?i)\b(bearer\s+)[\w.~+/-]+=*", r"\1[token]")
            yield _sub(_KEY_VALUE, r"\1***")
            yield from (_sub(shape, "[token]") for shape in _TOKEN_SHAPES)
        if s.emails:
            yield _sub(_EMAIL, "[email]")
        if s.card_numbers:
            yield lambda text: _CARD.sub(_mask_card, text)
        yield from (_literal(re.compile(extra.regex), extra.replacement) for extra in s.patterns)

    def text(self, value: str) -> str:
        """Free text (a log line, a column value) with every enabled rule applied."""
        if self.settings.sql_literals:
            value = _PG_STATEMENT.sub(lambda m: m.group(1) + self._literals(m.group(2)), value)
        for rule in self._rules:
            value = rule(value)
        return value

    def sql(self, query: str) -> str:
        """Query text: literals as `$n` placeholders (when `sql_literals`), then the text rules."""
        return self.text(self._literals(query) if self.settings.sql_literals else query)

    def _literals(self, query: str) -> str:
        try:
            return normalize_sql(query)
        except ParseError:
            # Text the lexer cannot read is not shown as it is: its literals cannot be told apart.
            return "[query text not shown: it does not read as SQL]"

    def deep(self, value: Any, rule: Rule | None = None) -> Any:
        """Every string inside `value` (lists and mappings included) through `rule` (default `text`)."""
        rule = rule or self.text
        if isinstance(value, str):
            return rule(value)
        if isinstance(value, list):
            return [self.deep(item, rule) for item in value]
        if isinstance(value, dict):
            return {key: self.deep(item, rule) for key, item in value.items()}
        return value


def redact_diagnosis(diagnosis: Diagnosis, redactor: ContentRedactor) -> Diagnosis:
    """A copy of `diagnosis` whose measured data (values, rows, output, errors) is redacted; the
    runbook's own words (titles, thresholds, suggestions) and the typed parameters are kept."""
    return diagnosis.model_copy(update={"checks": [_outcome(c, redactor) for c in diagnosis.checks]})


def _query_columns(result: ProbeResult) -> set[str]:
    """The result's columns holding SQL text. A value counts only when it is also a column: a
    Prometheus result's `query` value is the runbook's own PromQL, not a query someone ran."""
    return {column for column in result.columns if column.lower() in QUERY_COLUMNS}


def _outcome(outcome: CheckOutcome, redactor: ContentRedactor) -> CheckOutcome:
    queries = [outcome.result.values.get(column) for column in _query_columns(outcome.result)]
    rule = redactor.sql if isinstance(outcome.value, str) and outcome.value in queries else redactor.text
    return outcome.model_copy(
        update={
            "value": redactor.deep(outcome.value, rule),
            "reason": redactor.text(outcome.reason),
            "result": _result(outcome.result, redactor),
        }
    )


def _result(result: ProbeResult, redactor: ContentRedactor) -> ProbeResult:
    queries = _query_columns(result)

    def rule(name: str) -> Rule:
        return redactor.sql if name in queries else redactor.text

    rules = [rule(column) for column in result.columns]
    rows = [
        [redactor.deep(cell, rules[i] if i < len(rules) else redactor.text) for i, cell in enumerate(row)]
        for row in result.rows
    ]
    values = {key: redactor.deep(value, rule(key)) for key, value in result.values.items()}
    error = None if result.error is None else redactor.text(result.error)
    return result.model_copy(update={"rows": rows, "values": values, "error": error})
