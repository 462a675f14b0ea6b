"""`pushhub`: serve, mint editor tokens, and (from pushhub-client) the editor sub-commands."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

from pushhub.auth import issue_token, load_or_create_secret
from pushhub.config import Settings, env_name


def _duration(text: str) -> int:
    match = re.fullmatch(r"(\d+)([smhd]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError("use a duration like 90s, 30m, 12h or 7d")
    return int(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


class _Usage(Exception):
    """A problem with the configuration: one line on stderr and exit code 2, no traceback."""


def _configured(**overrides: Any) -> tuple[Settings, str, bool]:
    """Settings from the environment (and flags), and the signing secret: configured, or the
    one kept in the data directory (True when it was just made)."""
    try:
        settings = Settings.from_env(**overrides)
        if settings.secret:
            return settings, settings.secret, False
        secret, created = load_or_create_secret(settings.data_dir)
    except (ValueError, OSError) as exc:
        raise _Usage(str(exc)) from None
    return settings, secret, created


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings, secret, created = _configured(
        host=args.host, port=args.port, workers=args.workers, demo=args.demo or None
    )
    store = (
        f"redis at {settings.redis_url}"
        if settings.redis_url
        else f"embedded ({settings.data_dir})"
    )
    print(f"pushhub: store {store}; listening on http://{settings.host}:{settings.port}")
    if not settings.secret:
        where = settings.data_dir / "secret"
        print(f"pushhub: signing secret {'created in' if created else 'read from'} {where}")
        token = issue_token(secret, subject="dev-editor", ttl_seconds=12 * 3600)
        print(f"pushhub: editor token (12 h, all blogs):\n  export PUSHHUB_TOKEN={token}")
    if settings.demo:
        print(f"pushhub: demo blog at http://{settings.host}:{settings.port}/blogs/demo")
    sys.stdout.flush()
    # Workers are separate processes: they read the same settings from the environment.
    os.environ.update(settings.to_env())
    os.environ[env_name("secret")] = secret
    uvicorn.run(
        "pushhub.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        # The fast path's own handshake (upgrade.py); the ASGI path keeps uvicorn's.
        ws="pushhub.upgrade:ReaderUpgrade" if settings.wire == "fast" else "websockets-sansio",
        ws_max_size=settings.reader_max_message,
        # Deflate is negotiated by pushhub itself (one compression per event, see wire.py);
        # uvicorn's own would hold a zlib context per reader.
        ws_per_message_deflate=False,
        ws_ping_interval=settings.ws_ping_interval,
        ws_ping_timeout=settings.ws_ping_interval,
        # In-flight publishes finish and readers are closed over the drain window first.
        timeout_graceful_shutdown=int(settings.drain_window) + 5,
        # Only from the proxies named: the headers are the client's word otherwise.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
    )
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    settings, secret, _ = _configured()
    print(
        issue_token(
            secret,
            subject=args.sub,
            blogs=args.blog or ["*"],
            ttl_seconds=args.ttl,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
    )
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    """Deny a leaked token on every node that shares this store, until it would expire."""
    import asyncio
    import time

    import jwt

    settings, secret, _ = _configured()
    if args.token.count(".") == 2:
        try:
            claims = jwt.decode(
                args.token, secret, algorithms=["HS256"], options={"verify_exp": False,
                "verify_aud": False, "verify_iss": False},
            )  # fmt: skip
        except jwt.InvalidTokenError as exc:
            print(f"pushhub: not a token signed with this server's secret: {exc}", file=sys.stderr)
            return 2
        token_id, until = claims.get("jti"), float(claims.get("exp", time.time() + args.ttl))
        if not token_id:
            print("pushhub: this token has no jti and cannot be revoked", file=sys.stderr)
            return 2
    else:
        token_id, until = args.token, time.time() + args.ttl

    async def revoke() -> None:
        from pushhub.runtime import make_broker

        broker = make_broker(settings)
        await broker.start(_NoListener())
        try:
            await broker.revoke(str(token_id), until)
        finally:
            await broker.close()

    try:
        asyncio.run(revoke())
    except Exception as exc:  # one clear line for scripts, never a traceback
        print(f"pushhub: could not revoke: {exc}", file=sys.stderr)
        return 1
    print(f"revoked {token_id} until {int(until)}")
    return 0


class _NoListener:
    def on_message(self, blog: str, frame: str) -> None: ...

    def on_resync(self) -> None: ...


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pushhub", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the server (embedded store unless PUSHHUB_REDIS_URL)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--workers", type=int, help="worker processes (Redis only)")
    serve.add_argument("--demo", action="store_true", help="publish a demo blog on a timer")
    serve.set_defaults(func=cmd_serve)

    token = sub.add_parser("token", help="editor tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_sub.add_parser("create", help="print a new editor token")
    create.add_argument("--blog", action="append", help="a blog it may write (repeat; default all)")
    create.add_argument("--ttl", type=_duration, default=12 * 3600, help="lifetime, e.g. 12h")
    create.add_argument("--sub", default="editor", help="the editor's name (default 'editor')")
    create.set_defaults(func=cmd_token_create)
    revoke = token_sub.add_parser("revoke", help="deny a token (or its jti) on every node")
    revoke.add_argument("token", help="the token itself, or its jti")
    revoke.add_argument(
        "--ttl", type=_duration, default=7 * 86400, help="with a bare jti: how long (default 7d)"
    )
    revoke.set_defaults(func=cmd_token_revoke)

    try:
        from pushhub_client import cli as client_cli
    except ImportError:
        pass  # the editor sub-commands come with pushhub-client (client/python)
    else:
        client_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except _Usage as exc:
        print(f"pushhub: {exc}", file=sys.stderr)
        return 2
    return code
