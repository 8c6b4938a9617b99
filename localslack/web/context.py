"""What every web client endpoint shares: the emulator, the acting driver and per-view submit errors."""

from __future__ import annotations

from dataclasses import dataclass, field

from localslack.core import Core
from localslack.driver import Driver
from localslack.model import Channel, User, View
from localslack.state import NotFound, Workspace


class ViewErrors:
    """Field errors of each view's last submission; they lapse once the app replaces the view (new hash)."""

    def __init__(self) -> None:
        self._by_view: dict[str, tuple[str, dict[str, str]]] = {}

    def set(self, view: View, errors: dict[str, str]) -> None:
        self._by_view[view.id] = (view.hash, dict(errors))

    def clear(self, view: View) -> None:
        self._by_view.pop(view.id, None)

    def get(self, view: View) -> dict[str, str]:
        entry = self._by_view.get(view.id)
        return dict(entry[1]) if entry and entry[0] == view.hash else {}


@dataclass
class UiContext:
    core: Core
    driver: Driver
    view_errors: ViewErrors = field(default_factory=ViewErrors)

    @property
    def state(self) -> Workspace:
        return self.core.state

    def user(self, ref: str) -> User:
        return self.state.user(ref)

    def visible_channel(self, user: User, ref: str) -> Channel:
        """Public channels can be read by the team's full members; the rest only by their members."""
        ch = self.state.channel(ref)
        if not ch.visible_to(user):
            raise NotFound("channel_not_found", ref)
        return ch

    def open_view(self, user: User, view_id: str) -> View:
        view = self.state.views.get(view_id)
        if view is None or view.closed or view.user != user.id:
            raise NotFound("view_not_found", view_id)
        return view
