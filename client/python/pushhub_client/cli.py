"""Editor commands: publish, edit, delete, pin/unpin, blog create|update|list|show, tail.

`register(subparsers)` adds them to another program's parser (`pushhub`); `main()` is the
standalone `pushhub-client`. Each command is `func(args) -> exit code` and never lets an
exception out: errors are one line on stderr, and the exit code says what went wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from pushhub_client import _render
from pushhub_client._api import UNSET, Unset
from pushhub_client._retry import RetryPolicy
from pushhub_client.errors import (
    AuthError,
    NotFound,
    PushHubError,
    Unavailable,
    ValidationError,
)
from pushhub_client.live import LiveBlog
from pushhub_client.models import Event, Image, Snapshot
from pushhub_client.subscribe import Connected, ConnectionEvent, Disconnected, Subscription
from pushhub_client.sync import PushHub
from pushhub_client.version import __version__

DEFAULT_URL = "http://127.0.0.1:8000"

# Exit codes, documented in docs/editors.md: scripts may rely on them.
OK = 0
FAILED = 1  # server error, unavailable after retries, conflict, rate limited, protocol
USAGE = 2
AUTH = 3
NOT_FOUND = 4
INVALID = 5
INTERRUPTED = 130

Handler = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """A command line that cannot work (missing body, options that exclude each other)."""


# --- plumbing ------------------------------------------------------------------------------------


def _say(line: str) -> None:
    print(line, flush=True)


def _warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _emit_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False), flush=True)


def exit_code(error: PushHubError) -> int:
    if isinstance(error, AuthError):
        return AUTH
    if isinstance(error, NotFound):
        return NOT_FOUND
    if isinstance(error, ValidationError):
        return INVALID
    return FAILED


def describe(error: PushHubError) -> str:
    """One line: what kind of failure, then the server's own words."""
    if isinstance(error, AuthError):
        kind = "not allowed" if error.status == 403 else "authentication failed"
    elif isinstance(error, NotFound):
        kind = "not found"
    elif isinstance(error, ValidationError):
        kind = "invalid"
    elif isinstance(error, Unavailable):
        kind = "unavailable"
    else:
        kind = "failed"
    status = f" (HTTP {error.status})" if error.status is not None else ""
    message = " ".join(error.message.split()) or type(error).__name__
    return f"{kind}{status}: {message}"


def _guarded(prog: str, handler: Handler) -> Handler:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except UsageError as exc:
            _warn(f"{prog}: usage: {exc}")
            return USAGE
        except PushHubError as exc:
            _warn(f"{prog}: {describe(exc)}")
            return exit_code(exc)
        except KeyboardInterrupt:
            return INTERRUPTED
        except BrokenPipeError:
            # `pushhub tail blog | head`: the reader left. Point stdout at /dev/null so the
            # interpreter's last flush does not complain, and stop quietly.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return FAILED
        except OSError as exc:
            # A body file that cannot be read: the editor's side, not the server's.
            _warn(f"{prog}: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
            return USAGE if isinstance(exc, FileNotFoundError | IsADirectoryError) else FAILED
        except Exception as exc:  # a bug of ours must still not print a traceback at an editor
            _warn(f"{prog}: internal error: {type(exc).__name__}: {exc}")
            return FAILED

    return run


def _hub(args: argparse.Namespace, *, needs_token: bool = True) -> PushHub:
    token = args.token or os.environ.get("PUSHHUB_TOKEN") or None
    if needs_token and not token:
        raise AuthError(
            "no token: pass --token or set PUSHHUB_TOKEN (make one with `pushhub token create`)"
        )
    return PushHub(
        _url(args),
        token,
        timeout=args.timeout,
        retry=RetryPolicy(attempts=args.retries + 1),
    )


def _url(args: argparse.Namespace) -> str:
    return str(args.url or os.environ.get("PUSHHUB_URL") or DEFAULT_URL)


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("server")
    group.add_argument("--url", help=f"server URL (default: $PUSHHUB_URL or {DEFAULT_URL})")
    group.add_argument("--token", help="editor token (default: $PUSHHUB_TOKEN)")
    group.add_argument("--json", action="store_true", help="print JSON, for scripts")
    group.add_argument(
        "--timeout", type=float, default=10.0, help="seconds per request (default: 10)"
    )
    group.add_argument(
        "--retries", type=int, default=4, help="retries of transient failures (default: 4)"
    )
    return common


# --- reading the entry fields off the command line ------------------------------------------------


def _body(args: argparse.Namespace, *, from_stdin: bool) -> str | None:
    if args.body is not None:
        return str(args.body)
    if args.body_file == "-":
        return sys.stdin.read()
    if args.body_file is None and from_stdin:
        # Waiting on a terminal for a body nobody announced would look like a hang.
        if sys.stdin is None or sys.stdin.isatty():
            raise UsageError("no body: give --body TEXT, --body-file FILE, or pipe it on stdin")
        return sys.stdin.read()
    if args.body_file is not None:
        return Path(args.body_file).read_text(encoding="utf-8")
    return None


def _image(args: argparse.Namespace) -> Image | None:
    if args.image is None:
        if args.caption is not None or args.credit is not None:
            raise UsageError("--caption and --credit go with --image URL")
        return None
    return Image(args.image, args.caption, args.credit)


def _add_body_options(parser: argparse.ArgumentParser, stdin_note: str) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--body", help="the entry's text, in Markdown")
    source.add_argument(
        "--body-file", metavar="FILE", help=f"read the body from FILE ({stdin_note})"
    )
    parser.add_argument("--author", help="byline (default: the token's editor name)")
    parser.add_argument("--image", metavar="URL", help="picture URL (http or https)")
    parser.add_argument("--caption", help="picture caption, with --image")
    parser.add_argument("--credit", help="picture credit, with --image")


# --- commands ------------------------------------------------------------------------------------


def cmd_publish(args: argparse.Namespace) -> int:
    body = _body(args, from_stdin=True) or ""
    with _hub(args) as hub:
        result = hub.publish(
            args.blog,
            body,
            title=args.title,
            author=args.author,
            image=_image(args),
            pinned=args.pin,
            key=args.key,
            idempotency_key=args.idempotency_key,
        )
    if args.json:
        _emit_json(result.to_json())
    else:
        _say(f"published {result.entry.id} to {args.blog} (seq {result.seq})")
    return OK


def cmd_edit(args: argparse.Namespace) -> int:
    title: str | Unset | None = UNSET if args.title is None else args.title
    if args.no_title:
        title = None
    if args.no_image and args.image is not None:
        raise UsageError("--image and --no-image exclude each other")
    new_image = _image(args)  # also refuses a --caption or --credit without --image
    image: Image | Unset | None = None if args.no_image else (new_image or UNSET)
    body = _body(args, from_stdin=False)
    changes: dict[str, Any] = {
        "title": title,
        "body": UNSET if body is None else body,
        "author": UNSET if args.author is None else args.author,
        "image": image,
        "pinned": UNSET if args.pinned is None else args.pinned,
        "key": UNSET if args.key is None else args.key,
    }
    if all(value is UNSET for value in changes.values()):
        raise UsageError("nothing to change: give --title, --body, --image, --pin, … (see --help)")
    with _hub(args) as hub:
        result = hub.edit(args.blog, args.id, **changes)
    return _report_entry(args, "edited", result.entry.id, result.seq, result.to_json())


def _report_entry(args: argparse.Namespace, verb: str, entry_id: str, seq: int, data: Any) -> int:
    if args.json:
        _emit_json(data)
    else:
        _say(f"{verb} {entry_id} in {args.blog} (seq {seq})")
    return OK


def cmd_delete(args: argparse.Namespace) -> int:
    with _hub(args) as hub:
        result = hub.delete(args.blog, args.id)
    return _report_entry(args, "deleted", result.entry.id, result.seq, result.to_json())


def cmd_pin(args: argparse.Namespace) -> int:
    with _hub(args) as hub:
        result = hub.pin(args.blog, args.id) if args.pinned else hub.unpin(args.blog, args.id)
    verb = "pinned" if args.pinned else "unpinned"
    return _report_entry(args, verb, result.entry.id, result.seq, result.to_json())


def cmd_blog_create(args: argparse.Namespace) -> int:
    with _hub(args) as hub:
        result = hub.create_blog(
            args.slug,
            args.title,
            summary=args.summary,
            status=args.status,
            allowed_origins=args.origin,
        )
    if args.json:
        _emit_json(result.to_json())
    elif result.created:
        _say(f"created blog {args.slug} (seq {result.seq})")
    else:
        _say(f"updated blog {args.slug} (seq {result.seq}): it already existed")
    return OK


def cmd_blog_update(args: argparse.Namespace) -> int:
    origins: list[str] | None = [] if args.any_origin else args.origin
    if all(v is None for v in (args.title, args.summary, args.status, origins)):
        raise UsageError("nothing to change: give --title, --summary, --status or --origin")
    with _hub(args) as hub:
        result = hub.update_blog(
            args.slug,
            title=args.title,
            summary=args.summary,
            status=args.status,
            allowed_origins=origins,
        )
    if args.json:
        _emit_json(result.to_json())
    else:
        _say(f"updated blog {args.slug} (seq {result.seq})")
    return OK


def cmd_blog_list(args: argparse.Namespace) -> int:
    with _hub(args, needs_token=False) as hub:
        blogs = hub.list_blogs()
    if args.json:
        _emit_json({"blogs": [b.to_json() for b in blogs]})
    else:
        for blog in blogs:
            _say(_render.blog_row(blog))
    return OK


def cmd_blog_show(args: argparse.Namespace) -> int:
    with _hub(args, needs_token=False) as hub:
        state = hub.get_blog(args.slug)
    if args.json:
        _emit_json(state.to_json())
    else:
        _say(_render.blog_line(state.blog))
        for entry in state.entries:
            _say(_render.entry_row(entry))
    return OK


def cmd_tail(args: argparse.Namespace) -> int:
    return asyncio.run(_tail(args))


async def _tail(args: argparse.Namespace) -> int:
    live = LiveBlog(args.blog)
    lost = False

    def on_connection(event: ConnectionEvent) -> None:
        nonlocal lost
        if isinstance(event, Disconnected):
            lost = True
            _warn(f"-- {event.reason}; reconnecting in {event.retry_in:.1f}s")
        elif isinstance(event, Connected) and lost:
            lost = False
            after = f" after seq {event.resumed_after}" if event.resumed_after is not None else ""
            _warn(f"-- reconnected, resuming{after}")

    async with Subscription(
        _url(args),
        args.blog,
        since=args.since,
        epoch=args.epoch,
        on_connection=on_connection,
        max_attempts=args.max_attempts,
    ) as subscription:
        async for frame in subscription:
            before = None
            if isinstance(frame, Event) and frame.entry_id is not None:
                before = live.get(frame.entry_id)
            # Resumed with --since there is no snapshot, hence no copy to keep: show events as is.
            if isinstance(frame, Snapshot) or live.seq is not None:
                live.apply(frame)
            if args.json:
                _emit_json(frame.to_json())
            elif isinstance(frame, Snapshot):
                _show_snapshot(frame, args.lines)
            else:
                for line in _render.change(frame, before):
                    _say(line)
    _warn("-- the server ended the stream")
    return OK


def _show_snapshot(snapshot: Snapshot, lines: int) -> None:
    if snapshot.reset:
        _warn("-- the blog's history was replaced on the server; showing it afresh")
    _say(_render.blog_line(snapshot.blog))
    oldest_first = sorted(snapshot.entries, key=lambda e: (e.created_at, e.id))
    for entry in oldest_first[-lines:] if lines > 0 else []:
        for line in _render.entry_block(entry):
            _say(line)


# --- the parser ---------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[Any], prog: str = "pushhub") -> None:
    """Add the editor commands to `subparsers`; each stores `func(args) -> exit code`."""
    common = _common()

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = subparsers.add_parser(
            name, help=help_text, description=help_text, parents=[common]
        )
        parser.set_defaults(func=_guarded(prog, handler))
        return parser

    p = add("publish", cmd_publish, "publish a new entry")
    p.add_argument("blog", help="blog slug")
    p.add_argument("--title", help="headline (plain text)")
    _add_body_options(p, "- for stdin; with no body option, stdin is read")
    p.add_argument("--pin", action="store_true", help="pin the entry to the top")
    p.add_argument("--key", action="store_true", help="mark it a key event")
    p.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="your own idempotency key: re-running with the same key never publishes twice",
    )

    p = add("edit", cmd_edit, "change fields of an entry")
    p.add_argument("blog", help="blog slug")
    p.add_argument("id", help="entry id")
    titles = p.add_mutually_exclusive_group()
    titles.add_argument("--title", help="new headline")
    titles.add_argument("--no-title", action="store_true", help="remove the headline")
    _add_body_options(p, "- for stdin")
    p.add_argument("--no-image", action="store_true", help="remove the picture")
    pins = p.add_mutually_exclusive_group()
    pins.add_argument("--pin", dest="pinned", action="store_const", const=True, help="pin it")
    pins.add_argument("--unpin", dest="pinned", action="store_const", const=False, help="unpin it")
    keys = p.add_mutually_exclusive_group()
    keys.add_argument(
        "--key", dest="key", action="store_const", const=True, help="mark as key event"
    )
    keys.add_argument("--no-key", dest="key", action="store_const", const=False, help="unmark it")

    for name, pinned in (("pin", True), ("unpin", False)):
        p = add(name, cmd_pin, f"{name} an entry")
        p.add_argument("blog", help="blog slug")
        p.add_argument("id", help="entry id")
        p.set_defaults(pinned=pinned)

    p = add("delete", cmd_delete, "delete an entry")
    p.add_argument("blog", help="blog slug")
    p.add_argument("id", help="entry id")

    blog = subparsers.add_parser("blog", help="create, update, list or show blogs")
    blog_commands = blog.add_subparsers(dest="blog_command", metavar="{create,update,list,show}")
    blog_commands.required = True

    def add_blog(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = blog_commands.add_parser(
            name, help=help_text, description=help_text, parents=[common]
        )
        parser.set_defaults(func=_guarded(prog, handler))
        return parser

    p = add_blog("create", cmd_blog_create, "create a blog (or update it if it exists)")
    p.add_argument("slug", help="blog slug: a-z, 0-9 and -")
    p.add_argument("--title", required=True)
    p.add_argument("--summary")
    p.add_argument("--status", choices=("live", "ended"))
    p.add_argument("--origin", action="append", help="origin allowed to embed it (repeatable)")

    p = add_blog("update", cmd_blog_update, "change a blog's title, summary, status or origins")
    p.add_argument("slug", help="blog slug")
    p.add_argument("--title")
    p.add_argument("--summary")
    p.add_argument("--status", choices=("live", "ended"))
    origins = p.add_mutually_exclusive_group()
    origins.add_argument(
        "--origin", action="append", help="origin allowed to embed it (repeatable)"
    )
    origins.add_argument("--any-origin", action="store_true", help="let any site embed it")

    add_blog("list", cmd_blog_list, "list the blogs")
    p = add_blog("show", cmd_blog_show, "show a blog and its entries")
    p.add_argument("slug", help="blog slug")

    p = add("tail", cmd_tail, "follow a blog live, like tail -f (Ctrl-C stops)")
    p.add_argument("blog", help="blog slug")
    p.add_argument(
        "-n", "--lines", type=int, default=10, help="entries to show first (default: 10)"
    )
    p.add_argument("--since", type=int, help="resume after this seq instead of a snapshot")
    p.add_argument("--epoch", help="the epoch that --since belongs to")
    p.add_argument(
        "--max-attempts", type=int, help="give up after this many failed connects (default: never)"
    )


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (and exit 2), as for every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: usage: {message} (see --help)\n")


def build_parser(prog: str = "pushhub-client") -> argparse.ArgumentParser:
    parser = _OneLineParser(prog=prog, description="Publish to and follow pushhub live blogs.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.required = True
    register(commands, prog=prog)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code
