"""The default demo workspace and caller-supplied seeds."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from slack_sdk.web.async_client import AsyncWebClient

from localslack import AppSeed, ChannelSeed, DriverError, LocalSlack, UserGroupSeed, UserSeed, WorkspaceSeed


def test_default_seed_is_the_opsbot_demo_workspace() -> None:
    slack = LocalSlack()
    assert (slack.state.team_id, slack.state.team_name) == ("T0OPSBOT", "opsbot-demo")
    assert slack.user("alice").title == "On-call engineer"
    assert slack.bot_token.startswith("xoxb-")
    assert slack.app_token.startswith("xapp-")
    assert slack.bot_id.startswith("B")
    assert slack.app_id.startswith("A")
    everyone = {"U0ALICE", "U0BOB", "U0CAROL", "U0DAVE", slack.bot_user_id}
    assert set(slack.channel("#incident-response").members) == everyone
    assert set(slack.channel("general").members) == everyone
    assert slack.state.usergroup("oncall").users == ["U0ALICE", "U0DAVE"]
    assert slack.state.usergroup("@managers").users == ["U0CAROL"]


async def test_custom_seed() -> None:
    seed = WorkspaceSeed(
        team_id="T0TEST",
        team_name="test",
        app=AppSeed(bot_token="xoxb-custom", bot_events=["reaction_added"]),
        users=[UserSeed(id="U0ERIN", name="erin", real_name="Erin E")],
        channels=[ChannelSeed(id="C0OPS", name="ops", members=["erin", "bot"], is_private=True)],
        usergroups=[UserGroupSeed(id="S0SRE", handle="sre", name="SRE", users=["erin"])],
    )
    async with LocalSlack.running(seed) as slack:
        client = AsyncWebClient(token="xoxb-custom", base_url=slack.api_url)
        assert (await client.auth_test())["team_id"] == "T0TEST"
        info = await client.conversations_info(channel="C0OPS")
        assert info["channel"]["is_private"] is True
        d = await slack.post("erin", "#ops", "not subscribed to message events")
        assert d.user_error == "not_subscribed"
        with pytest.raises(DriverError):
            await slack.slash("erin", slack.state.create_channel("other", slack.bot_user_id).id, "/x")


def test_seed_rejects_unknown_members() -> None:
    with pytest.raises(ValidationError, match="unknown members"):
        WorkspaceSeed(channels=[ChannelSeed(id="C1", name="x", members=["mallory"])])


def test_only_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        LocalSlack(host="192.0.2.1")
