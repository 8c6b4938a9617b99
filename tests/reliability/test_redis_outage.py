"""Redis stops under a running bot and comes back: coordination degrades in-process, loudly, and recovers."""

from __future__ import annotations

import asyncio
import socket
from contextlib import AsyncExitStack
from pathlib import Path

from bot.coordination import RETRY_AFTER_S
from bot.demo.redis_server import redis_server
from localslack import LocalSlack
from tests.conftest import running_bot


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _mention(text: str) -> dict[str, str]:
    return {"type": "app_mention", "user": "U0ALICE", "text": f"<@U0OPSBOT> {text}", "channel": "C0INCIDENT"}


def _redis_gauge(metrics_text: str) -> float:
    line = next(x for x in metrics_text.splitlines() if x.startswith("opsbot_coordination_redis "))
    return float(line.split()[1])


async def test_redis_down_then_back_nothing_is_handled_twice_and_the_backend_is_reported(
    slack: LocalSlack, database_url: str, data_dir: Path, tmp_path: Path
) -> None:
    port = _free_port()
    first_redis = AsyncExitStack()
    async with first_redis:
        url = await first_redis.enter_async_context(redis_server(tmp_path / "redis", port=port))
        async with running_bot(slack, database_url, data_dir, REDIS_URL=url) as bot:
            assert bot.runtime is not None
            metrics = bot.runtime.metrics
            assert _redis_gauge(metrics.render().decode()) == 1
            await _handled_once(slack, _mention("with redis"), expected=1)

            await first_redis.aclose()
            await _handled_once(slack, _mention("redis is down"), expected=2)
            assert _redis_gauge(metrics.render().decode()) == 0, "the fallback must show in /metrics"
            help_reply = await slack.slash("alice", "incident-response", "/opsbot help")
            assert help_reply.ok and "/incident" in str(help_reply.ack)

            async with redis_server(tmp_path / "redis", port=port):
                await asyncio.sleep(RETRY_AFTER_S)  # degraded, Redis is only tried this often
                await _handled_once(slack, _mention("redis is back"), expected=3)
                assert _redis_gauge(metrics.render().decode()) == 1


async def _handled_once(slack: LocalSlack, event: dict[str, str], *, expected: int) -> None:
    """Deliver `event`, replay the very same delivery, and see exactly one more reply."""
    await slack.send_event(event)
    await slack.wait_for(lambda: len(slack.calls("chat.postMessage")) >= expected, timeout=10)
    again = await slack.replay_last()
    assert again.status == 200
    await asyncio.sleep(0.5)  # a second, wrongly handled copy would reply well within this
    assert len(slack.calls("chat.postMessage")) == expected, "a replayed delivery was handled twice"
