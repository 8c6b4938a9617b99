"""Web API emulation: importing this package registers every method family."""

from localslack.webapi import chat, conversations, files, history, misc, reactions_pins, users, views
from localslack.webapi.handler import WebApi
from localslack.webapi.registry import METHODS

__all__ = [
    "METHODS",
    "WebApi",
    "chat",
    "conversations",
    "files",
    "history",
    "misc",
    "reactions_pins",
    "users",
    "views",
]
