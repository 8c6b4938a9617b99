"""Slack message markup (mrkdwn) → CommonMark, for quoting channel messages in a review draft.

Owns the conversion rules: mentions, channel links, broadcasts and user groups become readable
`@name`/`#name`; links become Markdown links; Slack's single-character emphasis becomes
CommonMark's; code is carried over untouched; Slack's HTML entities are decoded. Chat text is
untrusted, so the output never contains raw HTML, inline links or headings the author did not
write through Slack's own syntax, and secrets are masked with the bot's log redaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

from bot.logs import redact_text

# Converted pieces are parked behind private-use placeholders so later rules never rewrite them.
_OPEN, _CLOSE = "\ue000", "\ue001"
_PLACEHOLDER = re.compile(f"{_OPEN}(\\d+){_CLOSE}")

_CODE_BLOCK = re.compile(r"```(.*?)```", re.S)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_ANGLE = re.compile(r"<([^<>\n]+)>")

# Slack emphasis: the marker hugs non-space text, stays on one line and is not inside a word.
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])")

_ENTITIES = {"&lt;": "<", "&gt;": ">", "&amp;": "&"}
_ENTITY = re.compile("|".join(_ENTITIES))

# What would turn chat text into live Markdown/HTML: a tag, comment or autolink opener, an inline
# link or image, an ATX heading at the start of a line. A backslash before punctuation must itself
# be doubled or CommonMark would eat it.
_BACKSLASH = re.compile(r"\\(?=[!-/:-@\[-`{-~])")
_HTML_OPENER = re.compile(r"<(?=[A-Za-z/!?])")
_LINK_CLOSE = re.compile(r"\](?=\()")
_HEADING = re.compile(r"^([ \t]{0,3})(#{1,6})(?=[ \t]|$)", re.M)
# Characters that would format an inserted name or label; `_` only at a word edge, where it could
# open or close emphasis (`@on_call` stays readable).
_INLINE_SPECIAL = re.compile(r"[\\`*~\[\]<>]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_LINK_SCHEMES = ("http://", "https://", "mailto:", "ftp://")


def to_markdown(
    text: str, *, users: Mapping[str, str], channels: Mapping[str, str], secrets: Iterable[str] = ()
) -> str:
    """One Slack message's text as CommonMark with secrets masked."""
    secrets = [s for s in secrets if s]
    # Mask first, on Slack's own escaped form, so no conversion step can split or re-escape a
    # secret out of recognition; the final pass catches anything only visible once decoded.
    escaped = [_slack_escape(s) for s in secrets]
    text = redact_text(text, [*secrets, *escaped])
    text = text.replace(_OPEN, "").replace(_CLOSE, "")

    parked: list[str] = []

    def park(piece: str) -> str:
        parked.append(piece)
        return f"{_OPEN}{len(parked) - 1}{_CLOSE}"

    text = _CODE_BLOCK.sub(lambda m: park(_fence(m)), text)
    text = _INLINE_CODE.sub(lambda m: park(f"`{_unescape(m.group(1))}`"), text)
    text = _ANGLE.sub(lambda m: _angle(m, users, channels, park), text)
    text = _BOLD.sub(r"**\1**", text)
    text = _ITALIC.sub(r"*\1*", text)
    text = _STRIKE.sub(r"~~\1~~", text)
    text = _defuse(_unescape(text))
    text = _PLACEHOLDER.sub(lambda m: parked[int(m.group(1))], text)
    return redact_text(text, secrets)


def referenced_ids(text: str) -> tuple[set[str], set[str]]:
    """The user ids and channel ids a message's markup mentions, to look their names up."""
    users: set[str] = set()
    channels: set[str] = set()
    for match in _ANGLE.finditer(_INLINE_CODE.sub("", _CODE_BLOCK.sub("", text))):
        target = match.group(1).partition("|")[0]
        if target.startswith("@"):
            users.add(target[1:])
        elif target.startswith("#"):
            channels.add(target[1:])
    return users, channels


def _angle(
    match: re.Match[str],
    users: Mapping[str, str],
    channels: Mapping[str, str],
    park: Callable[[str], str],
) -> str:
    """One `<...>` token; anything Slack would not have produced stays as (defused) text."""
    target, bar, label = match.group(1).partition("|")
    label = _unescape(label) if bar else ""
    if target.startswith("@"):
        ident = target[1:]
        return park("@" + _escape_inline(users.get(ident) or label.removeprefix("@") or ident))
    if target.startswith("#"):
        ident = target[1:]
        return park("#" + _escape_inline(channels.get(ident) or label.removeprefix("#") or ident))
    if target.startswith("!"):
        return park(_special(target[1:], label))
    url = _unescape(target)
    if not _SCHEME.match(url):
        return match.group(0)
    if not url.lower().startswith(_LINK_SCHEMES):
        # Any other scheme (javascript:, data:, ...) is shown, never made clickable.
        shown = f"{label} ({url})" if label and label != url else url
        return park(_escape_inline(shown))
    if label and label != url:
        safe_url = url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
        return park(f"[{_escape_inline(label)}]({safe_url})")
    return park(_escape_inline(url))


def _special(command: str, label: str) -> str:
    """`<!here>`, `<!channel>`, `<!everyone>`, `<!subteam^S…|@group>`, `<!date^…|fallback>`."""
    name, _, argument = command.partition("^")
    if name == "subteam":
        return "@" + _escape_inline(label.removeprefix("@") or argument or name)
    if name in ("here", "channel", "everyone"):
        return "@" + name
    return _escape_inline(label or name)


def _fence(match: re.Match[str]) -> str:
    """A fenced block on lines of its own (Slack allows ```code``` mid-line, CommonMark does not).

    The code cannot hold three backticks in a row (they would have ended it), so ``` always fences it.
    """
    code = _unescape(match.group(1)).strip("\n")
    before = "\n" if match.start() > 0 and match.string[match.start() - 1] != "\n" else ""
    after = "\n" if match.end() < len(match.string) and match.string[match.end()] != "\n" else ""
    return f"{before}```\n{code}\n```{after}"


def _unescape(text: str) -> str:
    # One pass, so `&amp;lt;` becomes the text `&lt;`, as the author typed it.
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(0)], text)


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _defuse(text: str) -> str:
    text = _BACKSLASH.sub(r"\\\\", text)
    text = _HTML_OPENER.sub(r"\\<", text)
    text = _LINK_CLOSE.sub(r"\\]", text)
    return _HEADING.sub(r"\1\\\2", text)


def _escape_inline(text: str) -> str:
    return _INLINE_SPECIAL.sub(lambda m: "\\" + m.group(0), text)
