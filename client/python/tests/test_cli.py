"""The editor commands, run as the real `pushhub` (and `pushhub-client`) programs."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from client_helpers import cli_env, new_slug, program, token_for
from pushhub_client import PushHub

from tests.support.servers import PushhubProcess, free_port

Run = Callable[..., subprocess.CompletedProcess[str]]


def runner(server: PushhubProcess, name: str, default_token: str | None) -> Run:
    command = program(name)

    def run(
        *args: str,
        stdin: str | None = None,
        token: str | None = default_token,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*command, *args],
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
            env=cli_env(server, token),
        )
        assert "Traceback" not in done.stderr, done.stderr
        if check:
            assert done.returncode == 0, done.stderr
        return done

    return run


@pytest.fixture
def cli(embedded_server: PushhubProcess, token: str) -> Run:
    """Runs `pushhub COMMAND …` as an editor would, against the shared embedded server."""
    return runner(embedded_server, "pushhub", token)


@pytest.fixture
def blog(embedded_server: PushhubProcess, token: str) -> str:
    slug = new_slug("cli")
    with PushHub(embedded_server.url, token) as hub:
        hub.create_blog(slug, "CLI blog")
    return slug


@pytest.fixture
def reader(embedded_server: PushhubProcess) -> Iterator[PushHub]:
    with PushHub(embedded_server.url) as hub:
        yield hub


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout)


def test_blog_create_update_list_show(cli: Run, reader: PushHub) -> None:
    slug = new_slug("cli")
    created = cli("blog", "create", slug, "--title", "Harbour night", "--json", check=True)
    assert as_json(created)["blog"]["title"] == "Harbour night"
    again = cli("blog", "create", slug, "--title", "Harbour night", check=True)
    assert "already existed" in again.stdout
    cli("blog", "update", slug, "--status", "ended", "--origin", "https://news.example", check=True)
    state = reader.get_blog(slug)
    assert state.blog.status == "ended" and state.blog.allowed_origins == ("https://news.example",)
    cli("blog", "update", slug, "--any-origin", check=True)
    assert reader.get_blog(slug).blog.allowed_origins == ()

    listed = cli("blog", "list", token=None, check=True)
    assert any(line.split()[0] == slug for line in listed.stdout.splitlines())
    slugs = {b["slug"] for b in as_json(cli("blog", "list", "--json", token=None))["blogs"]}
    assert slug in slugs
    shown = cli("blog", "show", slug, "--json", token=None, check=True)
    assert as_json(shown)["blog"]["slug"] == slug and as_json(shown)["entries"] == []


def test_publish_from_flag_file_and_stdin(
    cli: Run, blog: str, reader: PushHub, tmp_path: Path
) -> None:
    flagged = cli(
        "publish", blog, "--title", "Start", "--body", "Boats *leave*.",
        "--image", "https://images.example/quay.jpg", "--caption", "The quay",
        "--credit", "K. Lowe", "--pin", "--key", "--author", "Kim Lowe", "--json", check=True,
    )  # fmt: skip
    entry = as_json(flagged)["entry"]
    assert entry["html"] == "<p>Boats <em>leave</em>.</p>" and entry["pinned"] and entry["key"]
    assert entry["image"]["url"] == "https://images.example/quay.jpg"
    assert entry["author"] == "Kim Lowe"

    body_file = tmp_path / "body.md"
    body_file.write_text("From a **file**.\n", encoding="utf-8")
    from_file = cli("publish", blog, "--body-file", str(body_file), check=True)
    assert from_file.stdout.startswith("published ") and f"to {blog}" in from_file.stdout
    piped = cli("publish", blog, "--title", "Piped", stdin="From *stdin*.\n", check=True)
    piped_id = piped.stdout.split()[1]

    entries = {e.id: e for e in reader.list_entries(blog)}
    # The API answers with the Markdown source (readers' frames do not).
    bodies = {entry_id: (e.body or "").strip() for entry_id, e in entries.items()}
    assert len(entries) == 3 and bodies[piped_id] == "From *stdin*."
    assert "From a **file**." in bodies.values()
    assert entries[entry["id"]].author == "Kim Lowe"


def test_edit_pin_unpin_delete(cli: Run, blog: str, reader: PushHub) -> None:
    entry_id = as_json(cli("publish", blog, "--body", "v1", "--title", "T", "--json"))["entry"][
        "id"
    ]
    edited = cli("edit", blog, entry_id, "--body", "v2", "--no-title", "--key", "--json")
    assert as_json(edited)["entry"]["body"] == "v2" and as_json(edited)["entry"]["title"] is None
    assert f"pinned {entry_id}" in cli("pin", blog, entry_id, check=True).stdout
    assert reader.list_entries(blog)[0].pinned
    cli("unpin", blog, entry_id, check=True)
    [entry] = reader.list_entries(blog)
    assert not entry.pinned and entry.key and entry.body == "v2"
    deleted = cli("delete", blog, entry_id, "--json", check=True)
    assert as_json(deleted)["entry"]["id"] == entry_id
    assert reader.list_entries(blog) == []


def test_same_idempotency_key_publishes_once(cli: Run, blog: str, reader: PushHub) -> None:
    first = cli("publish", blog, "--body", "once", "--idempotency-key", "run-7", "--json")
    second = cli("publish", blog, "--body", "once", "--idempotency-key", "run-7", "--json")
    assert as_json(first)["entry"]["id"] == as_json(second)["entry"]["id"]
    assert len(reader.list_entries(blog)) == 1


@pytest.mark.parametrize(
    ("args", "who", "code", "says"),
    [
        (["publish", "{blog}", "--body", "x"], "bad-token", 3, "authentication failed"),
        (["publish", "{blog}", "--body", "x"], "nobody", 3, "no token"),
        (["publish", "{blog}", "--body", "x"], "other-blog", 3, "not allowed"),
        (["publish", "no-such-blog-here", "--body", "x"], "editor", 4, "not found"),
        (["delete", "{blog}", "0nosuchentry0"], "editor", 4, "not found"),
        (["blog", "show", "no-such-blog-here"], "nobody", 4, "not found"),
        (["publish", "{blog}", "--body", "x", "--image", "ftp://x/y"], "editor", 5, "image.url"),
        (["publish", "{blog}", "--body", "   "], "editor", 5, "body"),
        (["blog", "update", "{blog}", "--origin", "nope"], "editor", 5, "allowed_origins"),
        (["edit", "{blog}", "0abc"], "editor", 2, "nothing to change"),
        (["publish", "{blog}", "--body", "x", "--caption", "c"], "editor", 2, "--image"),
        (["publish", "{blog}", "--body-file", "/no/such/file.md"], "editor", 2, "/no/such/file"),
        (["publish", "{blog}"], "editor", 5, "body"),  # stdin is empty: an empty body
    ],
)
def test_errors_are_one_line_with_a_meaningful_exit_code(
    cli: Run, blog: str, token: str, args: list[str], who: str, code: int, says: str
) -> None:
    tokens = {
        "bad-token": "not-a-jwt",
        "nobody": None,
        "other-blog": token_for("some-other-blog"),
        "editor": token,
    }
    done = cli(*[a.format(blog=blog) for a in args], token=tokens[who])
    assert done.returncode == code, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert says in done.stderr and done.stdout == ""


def test_unreachable_server_exits_1_and_usage_errors_exit_2(cli: Run) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    down = cli("publish", "b", "--body", "x", "--url", url, "--retries", "1")
    assert down.returncode == 1 and "unavailable" in down.stderr and "cannot connect" in down.stderr
    assert len(down.stderr.strip().splitlines()) == 1
    bad = cli("publish", "b", "--no-such-option")
    assert bad.returncode == 2 and "unrecognized arguments" in bad.stderr


def test_standalone_pushhub_client_program_has_the_same_commands(
    embedded_server: PushhubProcess, token: str, reader: PushHub
) -> None:
    run = runner(embedded_server, "pushhub-client", token)
    slug = new_slug("cli")
    run("blog", "create", slug, "--title", "Standalone", check=True)
    entry_id = as_json(run("publish", slug, "--body", "hi", "--json", check=True))["entry"]["id"]
    run("edit", slug, entry_id, "--title", "Hello", "--pin", check=True)
    [entry] = reader.list_entries(slug)
    assert entry.title == "Hello" and entry.pinned
    missing = run("delete", slug, "0nosuchentry0")
    assert missing.returncode == 4 and missing.stderr.startswith("pushhub-client: not found")
    bad = run("publish", slug, "--no-such-option")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    run("delete", slug, entry_id, check=True)
    assert reader.list_entries(slug) == []
