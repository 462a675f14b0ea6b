"""The demo blog of `pushhub serve --demo`: an invented open-water swim, covered live.

`run_demo` creates (or resets) the blog, then plays a script of publishes, edits, pins and a
deletion, one step every `interval` seconds, through the same `Service` the HTTP API uses, so a
newcomer sees entries arrive, change and move within seconds. When the script ends the blog is
marked ended for a while, then cleared and the swim starts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pushhub.service import Service

log = logging.getLogger("pushhub.demo")

EDITOR = "Demo Desk"
IMAGES = "https://images.example/kestrel-swim"
# A step that keeps failing (the store is down, a reader deleted its entry) is skipped after
# this many tries, so one bad step never stalls the demo.
MAX_TRIES = 3
# Ticks the finished blog stays "ended" before the swim starts again.
PAUSE_AFTER_FINISH = 6

BLOG: dict[str, Any] = {
    "title": "Kestrel Strait Swim — live",
    "summary": (
        "Forty-two swimmers, eleven kilometres of cold water from Port Anwen to Kestrel Island. "
        "An invented event, published by `pushhub serve --demo`."
    ),
    "status": "live",
}


@dataclass(frozen=True)
class Step:
    """One thing the demo desk does: `ref` names the entry so later steps can edit it."""

    action: Literal["publish", "edit", "delete", "blog"]
    ref: str = ""
    fields: Mapping[str, Any] = field(default_factory=dict)


def publish(ref: str, body: str, **fields: Any) -> Step:
    return Step("publish", ref, {"body": body, **fields})


def edit(ref: str, **fields: Any) -> Step:
    return Step("edit", ref, fields)


def image(name: str, caption: str, credit: str) -> dict[str, str]:
    return {"url": f"{IMAGES}/{name}", "caption": caption, "credit": credit}


SCRIPT: tuple[Step, ...] = (
    publish(
        "welcome",
        "Good morning from the harbour wall at **Port Anwen**. Forty-two swimmers are about to "
        "set off across the Kestrel Strait: eleven kilometres of open water to the lighthouse "
        "steps on Kestrel Island.\n\nWe will follow every stroke here. *Everything on this "
        "page is invented: it is pushhub's demo blog.*",
        title="Welcome to the Kestrel Strait Swim",
        author="Mira Okafor",
    ),
    publish(
        "conditions",
        "Water **14 °C**, a light south-westerly, and a flood tide that should help the field "
        "for the first two hours. The race officer has declared conditions *green*.",
        title="Conditions at the start",
        author="Jonas Feld",
        image=image("slipway-dawn.jpg", "Swimmers gather on the slipway at dawn", "Mira Okafor"),
    ),
    publish(
        "start",
        "The horn sounds at 07:00 sharp and the field surges off the slipway. Within a minute "
        "the pack has split into three groups, each shadowed by its own safety kayaks.",
        title="And they're off",
        author="Mira Okafor",
        key=True,
    ),
    edit("welcome", pinned=True),
    publish(
        "early-leader",
        "Local favourite **Tamsin Roe** has gone straight to the front, with last year's "
        "runner-up *Idris Vane* tucked in on her feet.",
        author="Jonas Feld",
    ),
    publish(
        "feeding",
        "First feed stop at 2 km. The support boats pass out, in order of popularity:\n\n"
        "- warm sweet tea on a string\n- banana halves\n- one (1) jelly baby per swimmer, "
        "strictly rationed",
        title="Feeding time",
        author="Priya Sand",
    ),
    edit(
        "conditions",
        body="Water **15 °C** (corrected: the harbour buoy was reading a degree low), a light "
        "south-westerly, and a flood tide that should help the field for the first two hours. "
        "The race officer has declared conditions *green*.",
    ),
    publish(
        "dolphins",
        "A pod of dolphins has joined the lead group near the 4 km marker. The safety crews "
        "report the dolphins are *not* drafting, which is against the rules.",
        title="Unexpected company",
        author="Priya Sand",
        image=image("dolphins.jpg", "Dolphins alongside the lead kayak", "Harbour Patrol"),
    ),
    publish(
        "halfway",
        "Halfway, 5.5 km: Roe leads by **90 seconds** from Vane, with a chasing group of six "
        "another two minutes back.",
        title="Halfway: Roe in control",
        author="Jonas Feld",
        key=True,
    ),
    publish(
        "coach",
        "> She trained in this strait every morning all winter. The cold does not scare her; "
        "the jelly-baby rationing might.\n\n— Roe's coach, **Beth Marlowe**, from the lead boat",
        author="Mira Okafor",
    ),
    publish(
        "withdrawals",
        "Two swimmers have been helped out of the water by the safety crews with cramp. Both "
        "are warm, fine and already complaining about missing the finish.",
        title="Two withdrawals",
        author="Priya Sand",
    ),
    edit(
        "withdrawals",
        title="Three withdrawals",
        body="Three swimmers have now been helped out of the water by the safety crews, two "
        "with cramp and one with a lost goggle strap. All are warm, fine and already "
        "complaining about missing the finish.",
    ),
    publish(
        "oops",
        "test test — is this thing on?",
        title="Testing",
        author="Demo Desk",
    ),
    Step("delete", "oops"),
    publish(
        "tide",
        "The tide is turning earlier than forecast. Swimmers in the back half of the field are "
        "now pushing against it; the race officer says the cut-off stays at **6 hours**.",
        title="The tide turns",
        author="Jonas Feld",
    ),
    publish(
        "final-km",
        "One kilometre to go. Vane has closed the gap to **40 seconds** and the crowd on the "
        "lighthouse steps can see both caps now.",
        title="Final kilometre: it's close",
        author="Mira Okafor",
        key=True,
    ),
    publish(
        "winner",
        "**Tamsin Roe** touches the lighthouse steps first, in **3:41:07**. Idris Vane is second, "
        "22 seconds behind.",
        title="Roe wins the Kestrel Strait Swim",
        author="Mira Okafor",
        key=True,
        image=image("finish.jpg", "Roe climbs the lighthouse steps", "Priya Sand"),
    ),
    edit("welcome", pinned=False),
    edit("winner", pinned=True),
    publish(
        "record",
        "The timing team confirms Roe's time is a **course record** by eleven seconds, set in "
        "the year the harbour buoy read a degree low.",
        title="A course record",
        author="Jonas Feld",
    ),
    edit(
        "winner",
        body="**Tamsin Roe** touches the lighthouse steps first, in **3:41:07**, a course "
        "record. Idris Vane is second, 22 seconds behind. Full results are on the "
        "[race site](https://results.example/kestrel-strait).",
    ),
    publish(
        "results",
        "Official top five:\n\n1. Tamsin Roe — 3:41:07\n2. Idris Vane — 3:41:29\n"
        "3. Noor Halloran — 3:52:40\n4. Felix Amberley — 3:55:02\n5. Sunniva Holt — 3:58:16",
        title="Results",
        author="Priya Sand",
    ),
    publish(
        "last-home",
        "The last swimmer, **Arthur Penhale** (71), reaches the island after 5 hours 38 minutes "
        "to the loudest cheer of the day.",
        title="Everyone home",
        author="Mira Okafor",
    ),
    publish(
        "wrap",
        "That's all from the Kestrel Strait. Thanks for following along, and see you on the "
        "slipway next year.",
        title="That's a wrap",
        author="Demo Desk",
    ),
    Step("blog", fields={"status": "ended"}),
)


async def run_demo(
    service: Service,
    *,
    slug: str = "demo",
    interval: float = 4.0,
    stop: asyncio.Event | None = None,
    rounds: int | None = None,
) -> None:
    """Play the demo on blog `slug` until cancelled or `stop` is set; returns when stopped.

    `rounds` plays the script that many times and returns (tests); None plays on forever.
    """
    stop = stop or asyncio.Event()
    played = 0
    while not stop.is_set():
        if not await _attempt(functools.partial(_reset, service, slug), "reset the demo blog"):
            if await _sleep(stop, interval):
                return
            continue
        if not await _play_round(service, slug, interval, stop):
            return
        played += 1
        if rounds is not None and played >= rounds:
            return
        if await _sleep(stop, interval * PAUSE_AFTER_FINISH):
            return


async def _play_round(service: Service, slug: str, interval: float, stop: asyncio.Event) -> bool:
    """The script once through, a step per `interval`; False if `stop` was set meanwhile."""
    ids: dict[str, str] = {}
    for step in SCRIPT:
        await _attempt(functools.partial(_play, service, slug, step, ids), _what(step))
        if await _sleep(stop, interval):
            return False
    return True


async def _reset(service: Service, slug: str) -> None:
    """Create the blog, or take it back to an empty, live blog (left over from an earlier run)."""
    await service.put_blog(slug, BLOG, editor=EDITOR)
    view = await service.read_blog(slug)
    for entry in view.entries:
        await service.delete_entry(slug, entry["id"], editor=EDITOR)


async def _play(service: Service, slug: str, step: Step, ids: dict[str, str]) -> None:
    if step.action == "blog":
        await service.put_blog(slug, step.fields, editor=EDITOR)
        return
    if step.action == "publish":
        result = await service.create_entry(slug, step.fields, editor=EDITOR)
        if result.entry is None:
            raise RuntimeError("create_entry answered without the entry")
        ids[step.ref] = result.entry["id"]
        return
    entry_id = ids.get(step.ref)
    if entry_id is None:
        return  # its publish failed and was skipped: nothing to edit
    if step.action == "edit":
        await service.update_entry(slug, entry_id, step.fields, editor=EDITOR)
    else:
        await service.delete_entry(slug, entry_id, editor=EDITOR)
        del ids[step.ref]


async def _attempt(run: Callable[[], Awaitable[None]], what: str) -> bool:
    """Run a step, retrying a little; the demo must outlive a store that comes and goes."""
    for attempt in range(1, MAX_TRIES + 1):
        try:
            await run()
            return True
        except Exception as exc:
            log.warning("demo: could not %s (try %d of %d): %s", what, attempt, MAX_TRIES, exc)
            await asyncio.sleep(0.5 * attempt)
    return False


def _what(step: Step) -> str:
    return f"{step.action} {step.ref}".strip()


async def _sleep(stop: asyncio.Event, seconds: float) -> bool:
    """Wait `seconds`, or less if `stop` is set; True when it is time to stop."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()
