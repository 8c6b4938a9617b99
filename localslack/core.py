"""The shared services one emulator instance is made of, handed to every layer."""

from __future__ import annotations

from dataclasses import dataclass, field

from localslack.changes import Changes
from localslack.config import Timing
from localslack.faults import Faults
from localslack.recorder import Recorder
from localslack.response_urls import ResponseUrls
from localslack.socketmode import SocketHub
from localslack.state import Workspace
from localslack.triggers import Triggers


@dataclass
class Core:
    state: Workspace
    timing: Timing
    recorder: Recorder = field(default_factory=Recorder)
    faults: Faults = field(default_factory=Faults)
    changes: Changes = field(default_factory=Changes)
    triggers: Triggers = field(init=False)
    response_urls: ResponseUrls = field(init=False)
    sockets: SocketHub = field(init=False)

    def __post_init__(self) -> None:
        self.triggers = Triggers(self.state.ids, self.timing.trigger_ttl)
        self.response_urls = ResponseUrls(self.state, self.timing, self.changes)
        self.sockets = SocketHub(self.state.app.app_id)

    @property
    def http_base(self) -> str:
        return self.state.public_base

    @property
    def ws_base(self) -> str:
        return "ws" + self.state.public_base.removeprefix("http")
