"""The soak's verdict, as pure functions: from the editors' writes, what each reader saw and the
server's final state, work out per reader what was lost, duplicated or out of order, and render
the report as Markdown or JSON. No I/O, so tests can feed it made-up runs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.soak_clients import CatchUp, Drop, ReaderRecord, Write


@dataclass
class FinalState:
    """The blog as `GET /api/blogs/{blog}` answered at the end."""

    seq: int
    epoch: str
    entries: dict[str, bytes]  # id -> entry_digest (without the body, as readers get it)
    blog: bytes
    titles: Counter[str]  # create keys (entry titles) -> how many entries carry each


@dataclass
class FaultRecord:
    name: str
    start: float
    end: float = 0.0
    what: list[str] = field(default_factory=list)
    failed: str = ""


@dataclass
class ReaderResult:
    reader: int
    home: str
    slow: bool
    nodes: str
    acknowledged: int
    seen: int  # acknowledged changes that arrived as events
    via_snapshot: int  # acknowledged changes that arrived inside a snapshot
    lost: int
    duplicated: int
    out_of_order: int
    resets: int
    reconnects: int
    cut_off: int
    longest_catch_up_s: float
    longest_offline_s: float
    max_delay_s: float  # worst time from an acknowledgement to this reader having the change
    at_head: bool
    final_equal: bool
    notes: list[str]


Worst = dict[str, tuple[float, int]]  # write key -> (longest delay to any reader, that reader)


def check_reader(
    rec: ReaderRecord, acked: Sequence[Write], final: FinalState, worst: Worst | None = None
) -> ReaderResult:
    """Account for every acknowledged change in what this reader saw. `worst`, when given,
    collects per change the longest any reader took to have it."""
    seen = via_snapshot = lost = wrong = 0
    max_delay = 0.0
    worst = {} if worst is None else worst

    def took(w: Write, at: float) -> None:
        nonlocal max_delay
        assert w.finished is not None
        delay = max(0.0, at - w.finished)
        max_delay = max(max_delay, delay)
        if delay > worst.get(w.key, (-1.0, 0))[0]:
            worst[w.key] = (delay, rec.index)

    for w in acked:
        assert w.seq is not None and w.epoch is not None and w.finished is not None
        got = rec.received.get(w.epoch, {}).get(w.seq)
        if got is not None and got[0] == w.op and (w.op == "blog" or got[1] == w.entry_id):
            seen += 1
            took(w, got[2])
            continue
        # Not received as an event, or the event at that seq was another change (a store that
        # lost writes hands their seqs out again): a later snapshot may still have brought it.
        after = got[2] if got is not None else float("-inf")
        snap = next(
            (
                s for s in rec.snapshots
                if s.epoch == w.epoch and s.seq >= w.seq and s.at >= after
                and (w.op != "create" or w.entry_id in s.ids)
            ),
            None,
        )  # fmt: skip
        if snap is not None:
            via_snapshot += 1
            took(w, snap.at)
        elif got is not None:
            wrong += 1
            rec.note(f"seq {w.seq} was {got[0]} {got[1]}, acknowledged as {w.op} {w.entry_id}")
        else:
            lost += 1
    at_head = rec.seq == final.seq and rec.epoch == final.epoch
    final_equal = at_head and rec.entries == final.entries and rec.blog == final.blog
    catch_ups = rec.catch_ups
    return ReaderResult(
        reader=rec.index, home=rec.home, slow=rec.slow,
        nodes="+".join(f"{n}{c}" for n, c in sorted(rec.nodes_used.items())),
        acknowledged=len(acked), seen=seen, via_snapshot=via_snapshot, lost=lost + wrong,
        duplicated=rec.dup + rec.dup_publish, out_of_order=rec.out_of_order, resets=rec.resets,
        reconnects=rec.reconnects, cut_off=rec.cutoffs,
        longest_catch_up_s=max((c.catch_up for c in catch_ups), default=0.0),
        longest_offline_s=max((c.offline for c in catch_ups), default=0.0),
        max_delay_s=max_delay, at_head=at_head, final_equal=final_equal,
        notes=list(rec.notes),
    )  # fmt: skip


@dataclass
class StoreResult:
    """Checks on the final state itself, whatever the readers saw."""

    missing: list[str]  # keys of acknowledged creates whose entry is not in the final state
    duplicate_publishes: list[str]  # publish keys that made more than one entry
    refused_but_written: list[str]  # keys of refused creates whose entry exists anyway
    seq_clashes: list[str]  # two acknowledged changes given one (epoch, seq)
    epochs: list[str]
    # Failed attempts (by outcome) whose write had in fact been applied: its seq is below that
    # of a change acknowledged before the write's last attempt was even sent.
    applied_despite: Counter[str] = field(default_factory=Counter)


def check_store(writes: Sequence[Write], final: FinalState, epochs: list[str]) -> StoreResult:
    acked = [w for w in writes if w.acked]
    missing = [
        w.key for w in acked if w.op == "create" and w.epoch == final.epoch
        and w.entry_id not in final.entries
    ]  # fmt: skip
    dup = sorted(title for title, n in final.titles.items() if n > 1)
    refused = [w.key for w in writes if not w.acked and w.op == "create" and final.titles[w.key]]
    owner: dict[tuple[str | None, int | None], str] = {}
    clashes = []
    for w in acked:
        first = owner.setdefault((w.epoch, w.seq), w.key)
        if first != w.key:
            clashes.append(f"{w.epoch}/{w.seq}: {first} and {w.key}")
    # The inference below reads the seq order, which means nothing once seqs were reused.
    despite = applied_despite(acked) if not clashes else Counter()
    return StoreResult(missing, dup, refused, clashes, list(epochs), despite)


def applied_despite(acked: Sequence[Write]) -> Counter[str]:
    """For writes acknowledged only after failed attempts: the outcome of the failed attempt
    that, as the seq order shows, had already been applied."""
    out: Counter[str] = Counter()
    by_ack = sorted(acked, key=lambda w: w.finished or 0.0)
    for w in acked:
        if len(w.attempts) < 2 or w.seq is None:
            continue
        last = w.attempts[-1].at
        # Any change acknowledged before our last try went out, with a higher seq, was
        # committed after ours: so an earlier try of ours was committed.
        earlier = (x for x in by_ack if (x.finished or 0.0) < last)
        if any(x.epoch == w.epoch and (x.seq or 0) > w.seq for x in earlier):
            failed = [a for a in w.attempts[:-1] if a.at < last]
            out[failed[0].outcome if failed else "?"] += 1
    return out


# -- what each fault did -----------------------------------------------------------------------


def _fmt_counter(counter: Counter[str]) -> str:
    return ", ".join(f"{k}×{v}" for k, v in sorted(counter.items(), key=lambda kv: -kv[1])) or "–"


def fault_rows(
    faults: Sequence[FaultRecord], writes: Sequence[Write], drops: Sequence[Drop],
    catch_ups: Sequence[CatchUp], worst: Worst, *, margin: float = 3.0,
) -> list[dict[str, Any]]:  # fmt: skip
    """Per fault: editor attempts and outcomes, writes started, reader drops (by close code),
    the catch-ups that followed and the longest any reader waited for a change acknowledged
    then, each counted in the fault's window plus a `margin` (never past the next fault)."""
    rows = []
    for i, f in enumerate(faults):
        lo, hi = f.start, f.end + margin
        if i + 1 < len(faults):
            hi = min(hi, faults[i + 1].start)
        acked_then = [w for w in writes if w.acked and w.finished and lo <= w.finished <= hi]
        late = max((worst.get(w.key, (0.0, 0)) for w in acked_then), default=(0.0, 0))
        attempts: Counter[str] = Counter(
            a.outcome for w in writes for a in w.attempts if lo <= a.at <= hi
        )
        started = [w for w in writes if lo <= w.started <= hi]
        codes: Counter[str] = Counter(
            str(d.code) if d.code is not None else "none"
            for d in drops
            if lo <= d.at <= hi and not d.by_reader
        )
        ups = [c for c in catch_ups if lo <= c.lost_at <= hi]
        rows.append(
            {
                "fault": f.name, "start_s": round(f.start, 1), "end_s": round(f.end, 1),
                "what": "; ".join(f.what), "failed": f.failed,
                "attempts": dict(attempts),
                "writes_acked": sum(w.acked for w in started),
                "writes_refused": sum(not w.acked for w in started),
                "reader_drops": dict(codes),
                "readers_dropped": len({d.reader for d in drops if lo <= d.at <= hi}),
                "longest_catch_up_s": round(max((c.catch_up for c in ups), default=0.0), 2),
                "longest_offline_s": round(max((c.offline for c in ups), default=0.0), 2),
                "max_delay_s": round(late[0], 2),
                "max_delay_reader": late[1],
            }
        )  # fmt: skip
    return rows


# -- the verdict -------------------------------------------------------------------------------


def verdict(
    results: Sequence[ReaderResult], store: StoreResult, *, nodes_agree: bool, faults_failed: int
) -> list[str]:
    """Everything that makes the soak fail (exit 1)."""
    problems = []
    for name, total in (
        ("lost", sum(r.lost for r in results)),
        ("duplicated", sum(r.duplicated for r in results)),
        ("out of order", sum(r.out_of_order for r in results)),
    ):
        if total:
            problems.append(f"{total} acknowledged changes {name} across readers")
    behind = [r.reader for r in results if not r.at_head]
    if behind:
        problems.append(f"{len(behind)} readers never reached the head: {behind[:20]}")
    differ = [r.reader for r in results if r.at_head and not r.final_equal]
    if differ:
        problems.append(f"{len(differ)} readers at the head hold a state unlike the server's")
    if store.missing:
        problems.append(f"{len(store.missing)} acknowledged entries missing from the final state")
    if store.duplicate_publishes:
        problems.append(f"publishes that made two entries: {store.duplicate_publishes[:10]}")
    if store.seq_clashes:
        problems.append(f"acknowledged changes sharing a seq: {store.seq_clashes[:5]}")
    if len(store.epochs) > 1:
        problems.append(f"the epoch changed during the run: {store.epochs}")
    if not nodes_agree:
        problems.append("a node's GET /api/blogs answer differs from the store's state")
    if faults_failed:
        problems.append(f"{faults_failed} faults could not be carried out as planned")
    return problems


def totals(
    results: Sequence[ReaderResult], writes: Sequence[Write], store: StoreResult, worst: Worst
) -> dict[str, Any]:
    acked = [w for w in writes if w.acked]
    slowest = max(acked, key=lambda w: worst.get(w.key, (0.0, 0))[0], default=None)
    steady = [r for r in results if not r.slow] or list(results)
    refused = [w for w in writes if not w.acked]
    attempts: Counter[str] = Counter(a.outcome for w in writes for a in w.attempts)
    return {
        "acknowledged": len(acked),
        "refused": len(refused),
        "refused_reasons": dict(Counter(w.error.split(" ", 1)[0] for w in refused)),
        "refused_but_written": len(store.refused_but_written),
        "retried_then_acknowledged": sum(len(w.attempts) > 1 for w in acked),
        "applied_despite_error": dict(store.applied_despite),
        "lost": sum(r.lost for r in results),
        "dup": sum(r.duplicated for r in results),
        "out_of_order": sum(r.out_of_order for r in results),
        "resets": sum(r.resets for r in results),
        "reconnects": sum(r.reconnects for r in results),
        "cut_off": sum(r.cut_off for r in results),
        "readers_at_head": sum(r.at_head for r in results),
        "readers_equal_to_server": sum(r.final_equal for r in results),
        "longest_catch_up_s": round(max((r.longest_catch_up_s for r in results), default=0.0), 3),
        "longest_offline_s": round(max((r.longest_offline_s for r in results), default=0.0), 3),
        "max_delay_s": round(max((r.max_delay_s for r in steady), default=0.0), 3),
        "max_delay_change": None if slowest is None else {
            "key": slowest.key, "seq": slowest.seq, "acked_at_s": round(slowest.finished or 0, 2),
            "reader": worst.get(slowest.key, (0.0, 0))[1],
        },
        "attempts": dict(attempts),
        "server_5xx_other": sum(
            n for k, n in attempts.items() if k.isdigit() and k.startswith("5")
            and k not in ("502", "503", "504")
        ),
    }  # fmt: skip


# -- rendering ---------------------------------------------------------------------------------

READER_COLUMNS = (
    "reader", "node", "acknowledged", "seen", "via snapshot", "lost", "dup", "out of order",
    "resets", "reconnects", "cut off", "longest catch-up s", "longest offline s", "max delay s",
    "final = server",
)  # fmt: skip


def _row(cells: Iterable[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def reader_table(results: Sequence[ReaderResult]) -> list[str]:
    lines = [_row(READER_COLUMNS), _row("---" for _ in READER_COLUMNS)]
    for r in results:
        name = f"r{r.reader}" + (" (slow)" if r.slow else "")
        lines.append(
            _row(
                (
                    name, r.nodes, r.acknowledged, r.seen, r.via_snapshot, r.lost, r.duplicated,
                    r.out_of_order, r.resets, r.reconnects, r.cut_off,
                    f"{r.longest_catch_up_s:.2f}", f"{r.longest_offline_s:.2f}",
                    f"{r.max_delay_s:.2f}", "yes" if r.final_equal else "**no**",
                )
            )
        )  # fmt: skip
    return lines


def notable(results: Sequence[ReaderResult], worst: int = 5) -> list[ReaderResult]:
    """Slow readers, readers with anything wrong, and the slowest to catch up."""
    picked = {r.reader for r in results if r.slow or r.lost or r.duplicated or r.out_of_order}
    picked |= {r.reader for r in results if not r.final_equal}
    by_catch_up = sorted(results, key=lambda r: -r.longest_catch_up_s)[:worst]
    by_delay = sorted(results, key=lambda r: -r.max_delay_s)[:worst]
    picked |= {r.reader for r in (*by_catch_up, *by_delay)}
    return [r for r in results if r.reader in picked]


def markdown(report: dict[str, Any], results: Sequence[ReaderResult], rows: str) -> str:
    t = report["totals"]
    cfg = report["config"]
    out = [
        f"## pushhub soak: {cfg['readers']} readers on 2 nodes, {cfg['editors']} editors at "
        f"{cfg['rate']}/s each, {cfg['duration']} s; status **{report['status']}**",
        "",
        f"Ran {report['elapsed_s']} s in all; blog head at the end: seq {report['final']['seq']}, "
        f"epoch {report['final']['epoch']}; each node's GET /api/blogs equal to the store: "
        + ", ".join(
            f"{n} {'yes' if ok else '**no**'}"
            for n, ok in report["final"]["node_equals_store"].items()
        )
        + ".",
        "",
        "### Totals",
        "",
        _row(("acknowledged", "refused", "lost", "duplicated", "out of order", "resets",
              "reconnects", "cut off", "longest catch-up s", "longest offline s",
              "max delay s", "readers = server")),
        _row("---" for _ in range(12)),
        _row((t["acknowledged"], t["refused"], t["lost"], t["dup"], t["out_of_order"],
              t["resets"], t["reconnects"], t["cut_off"], t["longest_catch_up_s"],
              t["longest_offline_s"], t["max_delay_s"],
              f"{t['readers_equal_to_server']}/{cfg['readers']}")),
        "",
        f"Editor attempts by outcome: {_fmt_counter(Counter(t['attempts']))}. Acknowledged after "
        f"a retry: {t['retried_then_acknowledged']}, of which already applied by a try that got "
        f"an error (the retry under the same key returned the first result): "
        f"{_fmt_counter(Counter(t['applied_despite_error']))}. Refused: "
        f"{_fmt_counter(Counter(t['refused_reasons']))}; of those written anyway: "
        f"{t['refused_but_written']}.",
        "",
        "### Faults",
        "",
        _row(("at s", "fault", "what happened", "editor attempts", "writes acked / refused",
              "reader drops (close code)", "longest catch-up s", "longest offline s",
              "max delay s")),
        _row("---" for _ in range(9)),
    ]  # fmt: skip
    for f in report["faults"]:
        what = f["what"] + (f" — FAILED: {f['failed']}" if f["failed"] else "")
        out.append(
            _row(
                (
                    f"{f['start_s']}–{f['end_s']}", f["fault"], what,
                    _fmt_counter(Counter(f["attempts"])),
                    f"{f['writes_acked']} / {f['writes_refused']}",
                    f"{f['readers_dropped']} readers: {_fmt_counter(Counter(f['reader_drops']))}",
                    f["longest_catch_up_s"], f["longest_offline_s"], f["max_delay_s"],
                )
            )
        )  # fmt: skip
    if rows != "none":
        shown = list(results) if rows == "all" else notable(results)
        title = "every reader" if rows == "all" else "notable readers (slow, wrong, slowest)"
        out += ["", f"### Per reader: {title}", "", *reader_table(shown)]
    if report["problems"]:
        out += ["", "### Problems", "", *(f"- {p}" for p in report["problems"])]
    if report["warnings"]:
        out += ["", "### Warnings", "", *(f"- {w}" for w in report["warnings"])]
    return "\n".join(out) + "\n"


def reader_json(r: ReaderResult) -> dict[str, Any]:
    doc = asdict(r)
    for key in ("longest_catch_up_s", "longest_offline_s", "max_delay_s"):
        doc[key] = round(doc[key], 3)
    return doc
