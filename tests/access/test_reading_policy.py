"""The reading policy on its own: `decide` with real group membership (localslack's `oncall` group,
asked through the bot's `Directory`), the safe defaults, overrides, and the policy file."""

from __future__ import annotations

from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.access.facts import ChannelFacts, ChannelKind, PersonFacts
from bot.access.reading import DataClass, ReadingPolicy, decide
from bot.approvals.policy import PolicyError, load_policy
from bot.slack.directory import Directory
from localslack import LocalSlack

ALICE, BOB = "U0ALICE", "U0BOB"  # alice is in @oncall, bob is not


@pytest.fixture
async def directory(slack: LocalSlack) -> Directory:
    return Directory(AsyncWebClient(token=slack.bot_token, base_url=slack.api_url))


def member(user: str, *, guest: bool = False, team: str = "T0OPSBOT") -> PersonFacts:
    return PersonFacts(
        user_id=user, team_id=team, is_guest=guest, is_external=team != "T0OPSBOT", is_bot=False
    )


def channel(kind: ChannelKind, *, incident: bool = False, ext_shared: bool = False) -> ChannelFacts:
    return ChannelFacts(id="C0TEST", kind=kind, is_ext_shared=ext_shared, is_incident=incident)


@pytest.mark.parametrize(
    ("data", "user", "where", "allowed", "ephemeral", "redact"),
    [
        ("operational", BOB, channel("public"), True, False, False),
        ("operational", BOB, channel("im"), True, False, False),
        ("personal", BOB, channel("private"), False, False, False),
        ("personal", ALICE, channel("public"), False, False, False),
        ("personal", ALICE, channel("public", incident=True), True, False, True),
        ("personal", ALICE, channel("private"), True, False, True),
        ("personal", ALICE, channel("mpim"), True, False, True),
        ("secret_adjacent", ALICE, channel("im"), True, True, True),
        ("secret_adjacent", BOB, channel("im"), False, False, False),
    ],
)
async def test_the_defaults_decide_by_class_reader_and_place(
    directory: Directory,
    data: DataClass,
    user: str,
    where: ChannelFacts,
    allowed: bool,
    ephemeral: bool,
    redact: bool,
) -> None:
    decision = await decide(ReadingPolicy(), "x.y", data, member(user), where, directory.includes)
    assert (decision.allowed, decision.ephemeral, decision.redact) == (allowed, ephemeral, redact)
    assert bool(decision.reason) is not allowed


async def test_refusal_reasons_name_what_was_wrong(directory: Directory) -> None:
    policy = ReadingPolicy()
    cases = [
        (member(BOB, guest=True), channel("public"), "guest"),
        (member(BOB, team="T0PARTNER"), channel("public"), "external user (team T0PARTNER)"),
        (member(ALICE), channel("private", ext_shared=True), "externally shared channel"),
        (member(BOB), channel("private"), "not one of the readers (oncall)"),
    ]
    for person, where, reason in cases:
        data: DataClass = "operational" if reason != "not one of the readers (oncall)" else "personal"
        decision = await decide(policy, "x.y", data, person, where, directory.includes)
        assert (decision.allowed, decision.reason) == (False, reason)


async def test_ext_shared_channels_are_refused_whatever_the_policy_says(directory: Directory) -> None:
    wide_open = ReadingPolicy.model_validate(
        {"overrides": {"x.y": {"readers": [], "channels": ["public", "private", "incident", "im"]}}}
    )
    shared = channel("public", incident=True, ext_shared=True)
    decision = await decide(wide_open, "x.y", "operational", member(ALICE), shared, directory.includes)
    assert not decision.allowed


async def test_an_unattended_run_is_judged_by_the_channel_alone(directory: Directory) -> None:
    policy = ReadingPolicy()
    assert (await decide(policy, "x.y", "personal", None, channel("private"), directory.includes)).allowed
    assert not (await decide(policy, "x.y", "personal", None, channel("public"), directory.includes)).allowed
    secret = await decide(policy, "x.y", "secret_adjacent", None, channel("private"), directory.includes)
    assert not secret.allowed and "nobody asked" in secret.reason


async def test_overrides_and_class_defaults_come_from_the_policy_file(
    tmp_path: Path, directory: Directory
) -> None:
    path = tmp_path / "policy.yml"
    path.write_text(
        "reading:\n"
        "  defaults:\n"
        "    operational: {readers: [approvers], channels: [incident]}\n"
        "  overrides:\n"
        "    db.user: {readers: [U0BOB], channels: [public], redact: false}\n"
    )
    reading = load_policy(path).reading
    bob_public = await decide(
        reading, "db.user", "personal", member(BOB), channel("public"), directory.includes
    )
    assert (bob_public.allowed, bob_public.redact) == (True, False)
    # A class the file leaves out keeps its safe default.
    assert reading.rule_for("other", "personal").readers == ["oncall"]
    alice_ops = await decide(
        reading, "db.conn", "operational", member(ALICE), channel("public", incident=True), directory.includes
    )
    assert not alice_ops.allowed  # alice is not an approver


def test_a_bad_reading_section_is_one_line_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "policy.yml"
    path.write_text("reading:\n  defaults:\n    personal: {channels: [lobby]}\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert caught.value.problems[0].startswith(
        f"OPSBOT_POLICY: {path}: reading.defaults.personal.channels[0]: Input should be 'public'"
    )
