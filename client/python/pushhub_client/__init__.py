"""pushhub-client: publish to a pushhub live blog, and follow it, from Python.

from pushhub_client import PushHub
with PushHub("http://127.0.0.1:8000", token) as hub:
    hub.publish("city-marathon", "The leaders are through **10 km**.", title="10 km")
"""

from pushhub_client._api import UNSET, Unset
from pushhub_client._retry import Backoff, RetryPolicy
from pushhub_client.aio import AsyncPushHub
from pushhub_client.errors import (
    AuthError,
    Conflict,
    NotFound,
    ProtocolError,
    PushHubError,
    RateLimited,
    ServerError,
    Unavailable,
    ValidationError,
)
from pushhub_client.live import LiveBlog, follow
from pushhub_client.models import (
    Blog,
    BlogState,
    BlogWrite,
    Entry,
    EntryWrite,
    Event,
    EventsPage,
    Frame,
    Image,
    Snapshot,
)
from pushhub_client.subscribe import CloseCode, Connected, Disconnected, Subscription
from pushhub_client.sync import PushHub
from pushhub_client.version import __version__

__all__ = [
    "UNSET",
    "AsyncPushHub",
    "AuthError",
    "Backoff",
    "Blog",
    "BlogState",
    "BlogWrite",
    "CloseCode",
    "Conflict",
    "Connected",
    "Disconnected",
    "Entry",
    "EntryWrite",
    "Event",
    "EventsPage",
    "Frame",
    "Image",
    "LiveBlog",
    "NotFound",
    "ProtocolError",
    "PushHub",
    "PushHubError",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "Snapshot",
    "Subscription",
    "Unavailable",
    "Unset",
    "ValidationError",
    "__version__",
    "follow",
]
