"""The ASGI app: built by a factory from Settings; the lifespan opens the broker and hub."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from types import FrameType
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pushhub import __version__, metrics
from pushhub.auth import load_or_create_secret
from pushhub.config import Settings
from pushhub.errors import PushhubError, Unavailable
from pushhub.gctune import tune_for_serving
from pushhub.middleware import LimitsMiddleware
from pushhub.routes import api, stream
from pushhub.routes.common import error_response, json_response
from pushhub.runtime import Runtime, make_runtime

log = logging.getLogger("pushhub")


async def healthz(request: Request) -> Response:
    """The process is alive and its event loop turns."""
    return json_response({"status": "ok", "version": __version__})


async def readyz(request: Request) -> Response:
    """Ready to take readers: the store answers within its timeout."""
    rt: Runtime = request.app.state.runtime
    reason = None
    if rt.draining:
        reason = "draining: shutting down"
    elif rt.hub.stalled_recently(2 * rt.settings.watchdog_interval):
        reason = "a blog subscription stalled; refilled from the store"
    else:
        try:
            await rt.broker.ping()
        except Unavailable as exc:
            reason = exc.message
    body = {
        "status": "unavailable" if reason else "ready",
        "store": rt.broker.name,
        "readers": rt.hub.reader_count,
        "stalls": rt.hub.stalls,
        "divergences": rt.hub.divergences,
    }
    if reason:
        body["reason"] = reason
    return json_response(body, 503 if reason else 200)


async def _pushhub_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PushhubError)
    rt: Runtime = request.app.state.runtime
    rt.errors[exc.code] += 1
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    request.app.state.runtime.errors[code] += 1
    return json_response({"error": code, "message": str(exc.detail)}, exc.status_code)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    request.app.state.runtime.errors["internal"] += 1
    return json_response({"error": "internal", "message": "internal server error"}, 500)


def _page_routes() -> list[BaseRoute]:
    try:
        from pushhub.routes import pages
    except ImportError:  # the reader pages are optional while they are being built
        return []
    page_routes: list[BaseRoute] = pages.routes()
    return page_routes


def _drain_on_sigterm(rt: Runtime) -> Callable[[], None]:
    """Chain onto the SIGTERM handler uvicorn installed: start draining at once, while uvicorn
    stops accepting and waits for in-flight requests. Returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(sig: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(rt.begin_drain)
        if callable(previous):
            previous(sig, frame)

    signal.signal(signal.SIGTERM, on_sigterm)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


def create_app(settings: Settings, secret: str) -> Starlette:
    rt = make_runtime(settings, secret)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await rt.broker.start(rt.hub)
        rt.wire.start()
        watchdog = asyncio.create_task(rt.hub.watch(settings.watchdog_interval))
        restore = _drain_on_sigterm(rt)
        demo: asyncio.Task[None] | None = None
        if settings.demo:
            from pushhub.demo import run_demo

            demo = asyncio.create_task(run_demo(rt.service))
        try:
            yield
        finally:
            if demo is not None:
                demo.cancel()
                with contextlib.suppress(BaseException):
                    await demo
            restore()
            watchdog.cancel()
            rt.begin_drain()
            if rt.drained is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(settings.drain_window + 1):
                        await rt.drained
            await rt.wire.close(1012, "server restarting")
            await rt.hub.close()
            await rt.broker.close()

    routes: list[BaseRoute] = [
        *stream.routes,  # first: the router tries routes in order, and readers are the crowd
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics.metrics),
        *api.routes,
        *_page_routes(),
    ]
    handlers: dict[Any, Any] = {
        PushhubError: _pushhub_error,
        HTTPException: _http_error,
        Exception: _unexpected,
    }
    middleware = [
        Middleware(LimitsMiddleware, max_query=settings.max_query, max_headers=settings.max_headers)
    ]
    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers=handlers, middleware=middleware
    )
    app.state.runtime = rt
    app.state.metrics = metrics.registry_for(rt)
    app.state.service = rt.service
    return app


def app_from_env() -> Starlette:
    """Factory for uvicorn (`--factory`): every worker builds its app from PUSHHUB_* variables."""
    settings = Settings.from_env()
    secret = settings.secret or load_or_create_secret(settings.data_dir)[0]
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(settings, secret)
    tune_for_serving()
    return app
