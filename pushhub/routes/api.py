"""The editors' JSON API and the blog reads (see docs/protocol.md)."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pushhub.errors import BadRequest
from pushhub.routes.common import (
    check_origin,
    cors_headers,
    idempotency_key,
    json_response,
    position,
    read_json,
    runtime,
)

MAX_WAIT = 30.0


async def list_blogs(request: Request) -> Response:
    blogs = await runtime(request).service.list_blogs()
    return json_response({"blogs": blogs})


async def get_blog(request: Request) -> Response:
    view = await runtime(request).service.read_blog(request.path_params["blog"])
    return json_response(view.to_json(), headers=cors_headers(view.blog, _origin(request)))


async def put_blog(request: Request) -> Response:
    rt = runtime(request)
    blog = request.path_params["blog"]
    editor = await rt.editor(request.headers.get("authorization"), blog)
    fields = await read_json(request, rt.settings.max_body)
    result = await rt.service.put_blog(
        blog, fields, editor=editor.name, idempotency_key=idempotency_key(request)
    )
    return json_response(result.to_json(), 201 if result.created else 200)


async def create_entry(request: Request) -> Response:
    rt = runtime(request)
    blog = request.path_params["blog"]
    editor = await rt.editor(request.headers.get("authorization"), blog)
    fields = await read_json(request, rt.settings.max_body)
    result = await rt.service.create_entry(
        blog, fields, editor=editor.name, idempotency_key=idempotency_key(request)
    )
    return json_response(result.to_json(), 201)


async def update_entry(request: Request) -> Response:
    rt = runtime(request)
    blog = request.path_params["blog"]
    editor = await rt.editor(request.headers.get("authorization"), blog)
    fields = await read_json(request, rt.settings.max_body)
    result = await rt.service.update_entry(
        blog, request.path_params["entry"], fields,
        editor=editor.name, idempotency_key=idempotency_key(request),
    )  # fmt: skip
    return json_response(result.to_json())


async def delete_entry(request: Request) -> Response:
    rt = runtime(request)
    blog = request.path_params["blog"]
    editor = await rt.editor(request.headers.get("authorization"), blog)
    result = await rt.service.delete_entry(
        blog, request.path_params["entry"],
        editor=editor.name, idempotency_key=idempotency_key(request),
    )  # fmt: skip
    return json_response(result.to_json())


async def events(request: Request) -> Response:
    """Long-poll: the frames after `since`, waiting up to `wait` seconds for one to exist."""
    rt = runtime(request)
    if request.client is not None:
        rt.check_connect_rate(request.client.host)
    q = request.query_params
    pos = position(q.get("since"), q.get("epoch"))
    wait = _wait(q.get("wait"))
    ch = await rt.hub.acquire(request.path_params["blog"])
    try:
        headers = cors_headers(ch.live.blog, _origin(request))
        check_origin(ch.live.blog, request.headers)
        frames = ch.live.catch_up(pos)
        if not frames and wait > 0 and pos.since is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await rt.hub.wait_past(ch, pos.since)
            frames = ch.live.catch_up(pos)
        replica = ch.live
        body = (
            f'{{"frames":[{",".join(f.text for f in frames)}],'
            f'"seq":{replica.head},"epoch":"{replica.epoch}"}}'
        )
    finally:
        rt.hub.release(ch)
    return Response(body, media_type="application/json", headers=headers)


def _wait(raw: str | None) -> float:
    if raw is None or raw == "":
        return 0.0
    try:
        wait = float(raw)
    except ValueError:
        raise BadRequest("wait must be a number of seconds from 0 to 30") from None
    if not 0 <= wait <= MAX_WAIT:
        raise BadRequest("wait must be a number of seconds from 0 to 30")
    return wait


def _origin(request: Request) -> str | None:
    return request.headers.get("origin")


routes = [
    Route("/api/blogs", list_blogs, methods=["GET"]),
    Route("/api/blogs/{blog}", get_blog, methods=["GET"]),
    Route("/api/blogs/{blog}", put_blog, methods=["PUT"]),
    Route("/api/blogs/{blog}/entries", create_entry, methods=["POST"]),
    Route("/api/blogs/{blog}/entries/{entry}", update_entry, methods=["PATCH"]),
    Route("/api/blogs/{blog}/entries/{entry}", delete_entry, methods=["DELETE"]),
    Route("/api/blogs/{blog}/events", events, methods=["GET"]),
]
