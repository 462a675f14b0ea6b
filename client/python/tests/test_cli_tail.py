"""`pushhub tail`: a blog followed live in the terminal, as a real process."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from client_helpers import FAST_RETRY, cli_env, new_slug, program
from pushhub_client import AsyncPushHub

from tests.support.servers import PushhubProcess


class Tail:
    """A running `pushhub tail`, with its output read line by line under a deadline."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.out: list[str] = []
        self.err: list[str] = []
        self._err_task = asyncio.create_task(self._collect_stderr())

    async def _collect_stderr(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.err.append(raw.decode().rstrip("\n"))

    async def until(self, predicate: Callable[[str], bool], seconds: float = 15.0) -> str:
        """Read stdout until a line satisfies `predicate`; that line."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(seconds):
            while True:
                raw = await self.proc.stdout.readline()
                if not raw:
                    raise AssertionError(f"tail ended; stdout {self.out}, stderr {self.err}")
                line = raw.decode().rstrip("\n")
                self.out.append(line)
                if predicate(line):
                    return line

    async def until_err(self, text: str, seconds: float = 20.0) -> None:
        async with asyncio.timeout(seconds):
            while not any(text in line for line in self.err):
                await asyncio.sleep(0.05)

    async def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(10):
            code = await self.proc.wait()
            await self._err_task
        return code


def _interruptible() -> None:
    # A test run started in the background (`scripts/test &`) ignores SIGINT, and an ignored
    # signal stays ignored across exec: the child would never see the Ctrl-C this file sends.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@asynccontextmanager
async def tail(server: PushhubProcess, *args: str) -> AsyncIterator[Tail]:
    proc = await asyncio.create_subprocess_exec(
        *program("pushhub"), "tail", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=cli_env(server, None),
        preexec_fn=_interruptible,
    )  # fmt: skip
    running = Tail(proc)
    try:
        yield running
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        running._err_task.cancel()


async def test_tail_shows_entries_edits_pins_and_deletes(
    embedded_server: PushhubProcess, token: str
) -> None:
    async with AsyncPushHub(embedded_server.url, token, retry=FAST_RETRY) as hub:
        slug = new_slug("tail")
        await hub.create_blog(slug, "Tail me")
        await hub.publish(slug, "Already there.", title="Before tail")
        async with tail(embedded_server, slug) as t:
            await t.until(lambda ln: ln.startswith("== Tail me [live]"))
            await t.until(lambda ln: "Before tail" in ln)

            new = await hub.publish(slug, "Fresh *news*.", title="Arrived live", key=True)
            line = await t.until(lambda ln: ln.startswith("+ "))
            assert "Arrived live [key]" in line and new.entry.id in line
            # The reader stream carries HTML only: tail shows its text, not the Markdown.
            await t.until(lambda ln: ln.strip() == "Fresh news.")

            await hub.edit(slug, new.entry.id, body="Fresher **news**.\n\n- one\n- two")
            line = await t.until(lambda ln: ln.startswith("~ edited"))
            assert new.entry.id in line
            assert await t.until(lambda ln: True) == "    Fresher news."
            assert await t.until(lambda ln: ln.strip() != "") == "    - one"

            await hub.pin(slug, new.entry.id)
            line = await t.until(lambda ln: ln.startswith("* "))
            assert line == f"* pinned {new.entry.id} (Arrived live)"

            await hub.delete(slug, new.entry.id)
            line = await t.until(lambda ln: ln.startswith("- "))
            assert line == f"- deleted {new.entry.id} (Arrived live)"

            await hub.update_blog(slug, status="ended")
            line = await t.until(lambda ln: ln.startswith("* blog"))
            assert line == "* blog changed: Tail me [ended]"

            assert await t.interrupt() == 130
            assert not any("Traceback" in line for line in t.err), t.err


async def test_tail_json_prints_one_frame_per_line(
    embedded_server: PushhubProcess, token: str
) -> None:
    async with AsyncPushHub(embedded_server.url, token, retry=FAST_RETRY) as hub:
        slug = new_slug("tail")
        start = await hub.create_blog(slug, "Tail JSON")
        async with tail(embedded_server, slug, "--json") as t:
            snapshot = json.loads(await t.until(lambda ln: True))
            assert snapshot["type"] == "snapshot" and snapshot["seq"] == start.seq
            created = await hub.publish(slug, "one")
            event = json.loads(await t.until(lambda ln: True))
            as_published = created.entry.to_json()
            assert as_published.pop("body") == "one", "the editor's answer has the Markdown"
            assert event == {
                "type": "event",
                "seq": created.seq,
                "epoch": created.epoch,
                "op": "create",
                "entry": as_published,
            }, "readers get every field but the Markdown source"
            await t.interrupt()


@pytest.mark.parametrize("store_kind", ["embedded"])
@pytest.mark.timeout(90)
async def test_tail_shows_reconnects_and_misses_nothing(server: PushhubProcess, token: str) -> None:
    async with AsyncPushHub(server.url, token, retry=FAST_RETRY) as hub:
        slug = new_slug("tail")
        await hub.create_blog(slug, "Tail restart")
        async with tail(server, slug) as t:
            await t.until(lambda ln: ln.startswith("== Tail restart"))
            await asyncio.to_thread(server.restart)
            during = await hub.publish(slug, "While you were away.", title="During restart")
            await t.until_err("reconnected, resuming after seq")
            assert any("reconnecting in" in line for line in t.err), t.err
            await t.until(lambda ln: "During restart" in ln)
            after = await hub.publish(slug, "And after.", title="After restart")
            await t.until(lambda ln: "After restart" in ln)
            await t.interrupt()
    shown = [ln for ln in t.out if ln.startswith("+ ")]
    assert len(shown) == 2, t.out
    assert during.entry.id in shown[0] and after.entry.id in shown[1]
