"""What an action does when it runs: a write on a target, or steps only a person can take.

These are declarations; executing them (after approval) belongs to the approvals service. Like
probe specs, any parameter appears as a whole `{name}` value and travels as data: a bind value,
one argv element, one Redis argument, a JSON body field — never spliced into text.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.probes.base import BindValue, SpecBase, check_literal_or_ref, refs_in


class PostgresWrite(SpecBase):
    """SQL that changes state (terminate backends, VACUUM, CREATE INDEX…), bind parameters only."""

    kind: Literal["postgres"] = "postgres"
    sql: str = Field(min_length=1, max_length=20_000)
    binds: dict[str, BindValue] = Field(default_factory=dict)
    autocommit: bool = False

    @field_validator("binds")
    @classmethod
    def _binds(cls, binds: dict[str, BindValue]) -> dict[str, BindValue]:
        for key, value in binds.items():
            check_literal_or_ref(value, f"binds.{key}")
        return binds

    def param_names(self) -> frozenset[str]:
        return refs_in(self.binds)


RedisWriteCommand = Literal["CONFIG SET", "FLUSHDB", "DEL", "UNLINK", "CLIENT KILL", "MEMORY PURGE", "BGSAVE"]


class RedisWrite(SpecBase):
    """One Redis command from a short allow-list of state-changing commands."""

    kind: Literal["redis"] = "redis"
    command: RedisWriteCommand
    args: list[BindValue] = Field(default_factory=list, max_length=8)

    @field_validator("args")
    @classmethod
    def _args(cls, args: list[BindValue]) -> list[BindValue]:
        for index, value in enumerate(args):
            check_literal_or_ref(value, f"args[{index}]")
        return args

    def param_names(self) -> frozenset[str]:
        return refs_in(self.args)


class HttpCall(SpecBase):
    """A call to an admin endpoint (feature flag, rate limit, traffic switch) with a JSON body."""

    kind: Literal["http"] = "http"
    method: Literal["POST", "PUT", "PATCH", "DELETE"] = "POST"
    path: str = Field(pattern=r"^/[A-Za-z0-9/_.-]*$", max_length=300)
    json_body: dict[str, BindValue] = Field(default_factory=dict)
    expect_status: list[int] = Field(default_factory=lambda: [200, 201, 202, 204], min_length=1)

    @field_validator("json_body")
    @classmethod
    def _body(cls, body: dict[str, BindValue]) -> dict[str, BindValue]:
        for key, value in body.items():
            check_literal_or_ref(value, f"json_body.{key}")
        return body

    def param_names(self) -> frozenset[str]:
        return refs_in(self.json_body)


Argv = Annotated[list[BindValue], Field(min_length=1, max_length=64)]


class CommandRun(SpecBase):
    """An argv run on a `command` target (systemctl restart, docker compose up --scale…), no shell.

    `then` lists further argvs run in order after `argv`, each only if the one before exited 0 —
    a fixed sequence approved once (stop, wait, start), never a shell line. The first failure
    ends the run; the steps after it are not run.
    """

    kind: Literal["command"] = "command"
    argv: Argv
    then: list[Argv] = Field(default_factory=list, max_length=7)

    @field_validator("argv")
    @classmethod
    def _argv(cls, argv: list[BindValue]) -> list[BindValue]:
        return _checked_argv(argv, "argv")

    @field_validator("then")
    @classmethod
    def _then(cls, then: list[list[BindValue]]) -> list[list[BindValue]]:
        return [_checked_argv(argv, f"then[{index}]") for index, argv in enumerate(then)]

    @property
    def argvs(self) -> list[list[BindValue]]:
        """Every argv this step runs, in order."""
        return [self.argv, *self.then]

    def param_names(self) -> frozenset[str]:
        return frozenset().union(*(refs_in(argv) for argv in self.argvs))


def _checked_argv(argv: list[BindValue], where: str) -> list[BindValue]:
    for index, value in enumerate(argv):
        check_literal_or_ref(value, f"{where}[{index}]")
    return argv


class ManualSteps(BaseModel):
    """Steps the bot cannot take safely: shown as a checklist, ticked off by a person."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["manual"] = "manual"
    steps: list[Annotated[str, Field(min_length=3, max_length=400)]] = Field(min_length=1, max_length=20)

    def param_names(self) -> frozenset[str]:
        return frozenset()


ActionStep = Annotated[
    PostgresWrite | RedisWrite | HttpCall | CommandRun | ManualSteps, Field(discriminator="kind")
]
