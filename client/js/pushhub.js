/*! pushhub.js: reader client for pushhub live blogs. No dependencies, no build step.
 *
 * Classic script: <script src="/static/pushhub.js"></script> sets window.PushHub.
 * ES module:      import { PushHub } from "/static/pushhub.mjs";
 *
 *   const client = PushHub.connect({
 *     blog: "city-marathon",
 *     base: "https://live.example",           // default: this page's origin
 *     initial: { seq, epoch, blog, entries },  // optional: a copy to resume from
 *     onchange(change) { ... },                // {kind, entry, entries, blog, seq, epoch, reset}
 *     onstatus(status, info) { ... },          // connecting | live | reconnecting | offline | stopped
 *   });
 *
 * The wire contract is docs/protocol.md.
 */
(function (root) {
  "use strict";

  var TRANSPORTS = ["ws", "sse", "poll"];
  // Close codes and HTTP statuses after which retrying cannot help (docs/protocol.md).
  var FATAL_CLOSE = [1000, 1003, 1008, 1009, 4400, 4403];
  var FATAL_HTTP = [400, 403];
  // Unknown blog: maybe mistyped, maybe being re-created after a wipe. Retry, but much later.
  var GONE_CLOSE = 4404;
  var GONE_HTTP = 404;
  // A connection that stayed up this long proves the path works: backoff starts over.
  var STABLE_MS = 5000;
  var UPGRADE_CAP_MS = 15 * 60000;

  function noop() {}

  function hasWindow() {
    return typeof window !== "undefined" && typeof window.addEventListener === "function";
  }

  /** Pinned first, then newest first by created_at, then by id (ids sort by creation time). */
  function compareEntries(a, b) {
    if (!!a.pinned !== !!b.pinned) return a.pinned ? -1 : 1;
    if (a.created_at !== b.created_at) return a.created_at < b.created_at ? 1 : -1;
    if (a.id === b.id) return 0;
    return a.id < b.id ? 1 : -1;
  }

  function parseFrame(text) {
    try {
      var f = JSON.parse(text);
      return f && typeof f === "object" ? f : null;
    } catch (e) {
      return null;
    }
  }

  function later(fn) {
    return setTimeout(fn, 0);
  }

  // --- transports -----------------------------------------------------------------------------
  // Each opener returns {close(), probe(ms)} and reports through h.open(), h.frame(f), h.close(info)
  // exactly as a connection lives: open at most once, close exactly once (unless closed by us).

  function openWebSocket(c, h) {
    var ws;
    var timers = [];
    var lastIn = Date.now();
    var done = false;
    try {
      ws = new WebSocket(c._url("ws"));
    } catch (e) {
      later(function () { h.close({ code: 0, reason: "WebSocket unavailable" }); });
      return { close: noop, probe: noop };
    }
    function clear() {
      timers.forEach(function (t) { clearTimeout(t); clearInterval(t); });
      timers = [];
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    }
    function finish(info) {
      if (done) return;
      done = true;
      clear();
      try { ws.close(4000, info.reason || ""); } catch (e) { /* already closing */ }
      h.close(info);
    }
    function probe(ms) {
      if (done || ws.readyState !== 1) return;
      var sentAt = Date.now();
      try { ws.send('{"type":"ping"}'); } catch (e) { return; }
      // Judged on arrival time, not on timer punctuality: hidden tabs run timers late.
      timers.push(setTimeout(function () {
        if (lastIn < sentAt) finish({ code: 0, reason: "ping timeout" });
      }, ms));
    }
    timers.push(setTimeout(function () {
      finish({ code: 0, reason: "connect timeout" });
    }, c.connectTimeout));
    var opened = false;
    ws.onopen = function () {
      // The handshake alone proves little (a proxy may accept it and pass nothing): the socket
      // counts as open at the first message, and the ping makes sure one comes.
      try { ws.send('{"type":"ping"}'); } catch (e) { /* onclose follows */ }
    };
    ws.onmessage = function (ev) {
      lastIn = Date.now();
      if (!opened) {
        opened = true;
        clearTimeout(timers.shift());
        h.open();
        timers.push(setInterval(function () {
          if (Date.now() - lastIn >= c.pingInterval) probe(c.pingTimeout);
        }, c.pingInterval));
      }
      if (typeof ev.data !== "string") return;
      var f = parseFrame(ev.data);
      if (f) h.frame(f);
    };
    ws.onclose = function (ev) {
      finish({ code: ev.code, reason: ev.reason || "closed" });
    };
    ws.onerror = noop; // onclose always follows and carries the code
    return {
      close: function () {
        if (done) return;
        done = true;
        clear();
        try { ws.close(1000); } catch (e) { /* already closing */ }
      },
      probe: probe,
    };
  }

  function openEventSource(c, h) {
    if (typeof EventSource === "undefined") {
      later(function () { h.close({ code: 0, reason: "EventSource unavailable" }); });
      return { close: noop, probe: noop };
    }
    var es = new EventSource(c._url("sse"));
    var done = false;
    var timer = setTimeout(function () { finish({ code: 0, reason: "connect timeout" }); }, c.connectTimeout);
    function onData(ev) {
      var f = parseFrame(ev.data);
      if (f && !done) h.frame(f);
    }
    function detach() {
      clearTimeout(timer);
      es.onopen = es.onmessage = es.onerror = null;
      es.removeEventListener("snapshot", onData);
      es.removeEventListener("event", onData);
      es.close();
    }
    function finish(info) {
      if (done) return;
      done = true;
      detach();
      h.close(info);
    }
    es.onopen = function () {
      clearTimeout(timer);
      h.open();
    };
    es.onmessage = onData;
    // Tolerate a server that names its events after the frame type.
    es.addEventListener("snapshot", onData);
    es.addEventListener("event", onData);
    // EventSource would reconnect by itself, without our since/epoch or backoff: take over.
    es.onerror = function () { finish({ code: 0, reason: "event stream error" }); };
    return {
      close: function () {
        if (done) return;
        done = true;
        detach();
      },
      probe: function () { c._catchUp(); },
    };
  }

  function openPoll(c, h) {
    var done = false;
    var opened = false;
    var ctrl = null;
    var timer = null;
    function fail(info) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      h.close(info);
    }
    function round() {
      if (done) return;
      var started = Date.now();
      ctrl = typeof AbortController === "function" ? new AbortController() : null;
      var guard = setTimeout(function () { if (ctrl) ctrl.abort(); }, (c.pollWait + 15) * 1000);
      // The first request does not wait: it proves the path (and catches up) at once.
      fetch(c._url(opened ? "poll" : "catchup"), {
        signal: ctrl ? ctrl.signal : undefined,
        credentials: "omit",
        cache: "no-store",
        headers: { Accept: "application/json" },
      })
        .then(function (res) {
          if (!res.ok) {
            var err = new Error("HTTP " + res.status);
            err.status = res.status;
            throw err;
          }
          return res.json();
        })
        .then(function (body) {
          clearTimeout(guard);
          if (done) return;
          var first = !opened;
          if (first) {
            opened = true;
            h.open();
          }
          var frames = (body && body.frames) || [];
          for (var i = 0; i < frames.length && !done; i++) h.frame(frames[i]);
          // A server that answers an empty poll at once must not turn this into a busy loop.
          var quick = !frames.length && Date.now() - started < 1000 && !first;
          var pause = quick ? 1000 : 0;
          timer = setTimeout(round, pause);
        })
        .catch(function (err) {
          clearTimeout(guard);
          fail({ code: 0, status: err.status || 0, reason: String(err.message || err) });
        });
    }
    round();
    return {
      close: function () {
        done = true;
        clearTimeout(timer);
        if (ctrl) ctrl.abort();
      },
      probe: noop, // a poll is at most pollWait old: it catches up on its own
    };
  }

  var OPENERS = { ws: openWebSocket, sse: openEventSource, poll: openPoll };

  // --- client ---------------------------------------------------------------------------------

  /**
   * One reader of one blog: keeps a local copy, applies frames in seq order and survives
   * transport failures. Use PushHub.connect(options) to create and start one.
   */
  function Client(options) {
    var o = options || {};
    if (!o.blog) throw new TypeError("PushHub: options.blog is required");
    this.blog = String(o.blog);
    var here = typeof location !== "undefined" ? location.href : undefined;
    this.base = new URL(o.base || here).origin;
    this.wsBase = this.base.replace(/^http/, "ws");
    var wanted = o.transports || TRANSPORTS;
    this.transports = TRANSPORTS.filter(function (t) { return wanted.indexOf(t) >= 0; });
    if (!this.transports.length) throw new TypeError("PushHub: no known transport in options.transports");
    this.backoffBase = o.backoffBase || 1000;
    this.backoffCap = o.backoffCap || 30000;
    this.connectTimeout = o.connectTimeout || 10000;
    this.pingInterval = o.pingInterval || 25000;
    this.pingTimeout = o.pingTimeout || 10000;
    this.pollWait = o.pollWait || 25;
    this.goneRetry = o.goneRetry || 60000;
    // Live on a fallback, try the first transport again after this long, then twice as long
    // after each failed try, up to UPGRADE_CAP_MS: a WebSocket lost to a deploy or a network
    // hiccup comes back, a blocked one costs one refused handshake now and then.
    this.upgradeAfter = o.upgradeAfter || 60000;
    this.onchange = o.onchange || noop;
    this.onstatus = o.onstatus || noop;

    this.seq = null;
    this.epoch = null;
    this.blogData = null;
    this.byId = new Map();
    this.list = [];
    var init = o.initial;
    if (init && typeof init.seq === "number" && init.epoch) {
      this.seq = init.seq;
      this.epoch = String(init.epoch);
      this.blogData = init.blog || null;
      var self = this;
      (init.entries || []).forEach(function (e) { self.byId.set(e.id, e); });
      this._sort();
    }

    this.status = "connecting";
    this.transport = null; // name of the transport in use or being tried
    this.conn = null;
    this.timer = null;
    this.index = 0; // transport being tried in this round
    this.working = -1; // last transport that opened: later rounds start there
    this.failures = 0; // consecutive failed rounds, for the backoff
    this.upgrade = null; // {timer, conn}: the next try of the first transport while on a fallback
    this.upgradeFailures = 0;
    this.stopped = false;
    this.hiddenAt = 0;
    this._listeners = [];
  }

  Client.prototype._url = function (kind) {
    var path = kind === "ws" ? "/ws/blogs/" : kind === "sse" ? "/sse/blogs/" : "/api/blogs/";
    var url = (kind === "ws" ? this.wsBase : this.base) + path + encodeURIComponent(this.blog);
    if (kind === "poll" || kind === "catchup") url += "/events";
    var q = [];
    if (this.seq !== null) {
      q.push("since=" + this.seq);
      q.push("epoch=" + encodeURIComponent(this.epoch || ""));
    }
    if (kind === "poll") q.push("wait=" + this.pollWait);
    if (kind === "catchup") q.push("wait=0");
    return q.length ? url + "?" + q.join("&") : url;
  };

  Client.prototype._sort = function () {
    this.list = Array.from(this.byId.values()).sort(compareEntries);
  };

  Client.prototype._setStatus = function (status, info, again) {
    if (this.status === status && !again) return;
    this.status = status;
    try {
      this.onstatus(status, info || { transport: this.transport });
    } catch (e) {
      later(function () { throw e; });
    }
  };

  Client.prototype._emit = function (change) {
    change.entries = this.list.slice();
    change.blog = this.blogData;
    change.seq = this.seq;
    change.epoch = this.epoch;
    try {
      this.onchange(change);
    } catch (e) {
      // A broken callback must not break the stream.
      later(function () { throw e; });
    }
  };

  Client.prototype._on = function (target, type, fn) {
    target.addEventListener(type, fn);
    this._listeners.push([target, type, fn]);
  };

  /** Open the first connection and watch the network and the tab. Called by PushHub.connect. */
  Client.prototype.start = function () {
    var self = this;
    if (hasWindow()) {
      this._on(window, "online", function () { self._wake(); });
      this._on(window, "offline", function () {
        if (self.status !== "stopped") self._setStatus("offline");
      });
      // Leave the back/forward cache possible, and resume when the page comes back from it.
      this._on(window, "pagehide", function (ev) { if (ev.persisted) self._suspend(); });
      this._on(window, "pageshow", function (ev) { if (ev.persisted) self._wake(); });
    }
    if (typeof document !== "undefined" && document.addEventListener) {
      this._on(document, "visibilitychange", function () {
        if (document.visibilityState === "hidden") {
          self.hiddenAt = Date.now();
        } else if (!self.conn || Date.now() - self.hiddenAt >= 5000) {
          // A socket that lived through a long hidden spell may be dead without knowing it.
          self._wake();
        }
      });
    }
    if (this.seq !== null) this._emit({ kind: "snapshot", reset: false, initial: true });
    this._open();
    return this;
  };

  Client.prototype._open = function () {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = null;
    var self = this;
    var name = this.transports[this.index];
    var conn = { name: name, opened: false, openedAt: 0, t: null };
    this.transport = name;
    this.conn = conn;
    conn.t = OPENERS[name](this, {
      open: function () {
        if (self.conn !== conn) return;
        conn.opened = true;
        conn.openedAt = Date.now();
        self.working = self.index;
        self._setStatus("live", { transport: name });
        self._planUpgrade();
      },
      frame: function (f) {
        if (self.conn === conn) self._frame(f);
      },
      close: function (info) {
        if (self.conn === conn) self._closed(conn, info || {});
      },
    });
  };

  Client.prototype._closed = function (conn, info) {
    this.conn = null;
    this._cancelUpgrade();
    if (this.stopped) return;
    if (FATAL_CLOSE.indexOf(info.code) >= 0 || FATAL_HTTP.indexOf(info.status) >= 0) {
      this._stop({ transport: conn.name, code: info.code, status: info.status, reason: info.reason });
      return;
    }
    if (info.code === GONE_CLOSE || info.status === GONE_HTTP) {
      this._retryLater({ transport: conn.name, code: info.code, status: info.status, reason: "unknown blog" });
      return;
    }
    if (!conn.opened && this.index < this.transports.length - 1) {
      // Never opened: this transport may be blocked on the way. Try the next one at once.
      this.index += 1;
      this._setStatus(this.status === "connecting" ? "connecting" : "reconnecting");
      var self = this;
      this.timer = later(function () { self._open(); });
      return;
    }
    if (conn.opened && Date.now() - conn.openedAt >= STABLE_MS) this.failures = 0;
    this._retry();
  };

  /** Live on a fallback: try the first transport again later, without leaving this one. */
  Client.prototype._planUpgrade = function () {
    this._cancelUpgrade();
    if (this.index === 0 || this.stopped) return;
    var self = this;
    var wait = Math.min(UPGRADE_CAP_MS, this.upgradeAfter * Math.pow(2, this.upgradeFailures));
    var up = { timer: null, conn: null };
    up.timer = setTimeout(function () {
      up.timer = null;
      self._tryUpgrade(up);
    }, wait * (1 + Math.random() / 2));
    this.upgrade = up;
  };

  /**
   * Open the first transport beside the live one, resuming from the copy. Once it opens it
   * takes over and the fallback is closed: what both carried is applied once, by seq.
   */
  Client.prototype._tryUpgrade = function (up) {
    var current = this.conn;
    if (this.upgrade !== up || !current || !current.opened) return;
    var self = this;
    var name = this.transports[0];
    var conn = { name: name, opened: false, openedAt: 0, t: null };
    up.conn = conn;
    conn.t = OPENERS[name](this, {
      open: function () {
        if (self.upgrade !== up || self.conn !== current) {
          conn.t.close(); // overtaken while it opened: cancelling closes it, this is the backstop
          return;
        }
        self.upgrade = null;
        self.upgradeFailures = 0;
        conn.opened = true;
        conn.openedAt = Date.now();
        self.conn = conn;
        self.index = self.working = 0;
        self.transport = name;
        current.t.close();
        self._setStatus("live", { transport: name }, true);
      },
      frame: function (f) {
        if (self.conn === conn) self._frame(f);
      },
      close: function (info) {
        if (self.conn === conn) {
          self._closed(conn, info || {});
        } else if (self.upgrade === up) {
          self.upgradeFailures += 1;
          self._planUpgrade();
        }
      },
    });
  };

  Client.prototype._cancelUpgrade = function () {
    var up = this.upgrade;
    if (!up) return;
    this.upgrade = null;
    clearTimeout(up.timer);
    if (up.conn) up.conn.t.close();
  };

  /** Capped exponential backoff with full jitter, then a new round from the last working transport. */
  Client.prototype._retry = function () {
    var self = this;
    this.failures += 1;
    var ceiling = Math.min(this.backoffCap, this.backoffBase * Math.pow(2, this.failures - 1));
    var delay = Math.random() * ceiling;
    this.index = Math.max(this.working, 0);
    this.transport = this.transports[this.index];
    var offline = typeof navigator !== "undefined" && navigator.onLine === false;
    this._setStatus(offline ? "offline" : "reconnecting");
    clearTimeout(this.timer);
    this.timer = setTimeout(function () {
      self.timer = null;
      self._open();
    }, delay);
  };

  Client.prototype._retryLater = function (info) {
    var self = this;
    this.index = Math.max(this.working, 0);
    this._setStatus("offline", info);
    clearTimeout(this.timer);
    this.timer = setTimeout(function () {
      self.timer = null;
      self._open();
    }, this.goneRetry);
  };

  /** The copy is out of step with the stream: drop this connection and resume from seq. */
  Client.prototype._resync = function (reason) {
    var conn = this.conn;
    if (!conn) return;
    this.conn = null;
    conn.t.close();
    this._cancelUpgrade();
    this._setStatus("reconnecting", { transport: conn.name, reason: reason });
    this._retry();
  };

  Client.prototype._frame = function (f) {
    var conn = this.conn;
    if (conn && conn.opened && this.status !== "live") this._setStatus("live", { transport: conn.name });
    if (f.type === "snapshot") {
      this._snapshot(f);
      return;
    }
    if (f.type !== "event" || typeof f.seq !== "number") return; // pong, or a frame we do not know
    if (this.seq === null || f.epoch !== this.epoch) {
      this._resync("epoch");
      return;
    }
    if (f.seq <= this.seq) return; // already applied: never twice
    if (f.seq !== this.seq + 1) {
      this._resync("gap");
      return;
    }
    this.seq = f.seq;
    if (f.op === "blog") {
      this.blogData = f.blog || this.blogData;
      this._emit({ kind: "blog" });
      return;
    }
    var entry = f.entry || {};
    var previous = this.byId.get(entry.id) || null;
    if (f.op === "delete") {
      this.byId.delete(entry.id);
      this._sort();
      this._emit({ kind: "delete", entry: previous || entry, previous: previous });
    } else if (f.op === "create" || f.op === "update") {
      this.byId.set(entry.id, entry);
      this._sort();
      // A create for an id we hold is applied as an update: one entry, one place.
      this._emit({ kind: previous ? "update" : "create", entry: entry, previous: previous });
    } else {
      this._emit({ kind: "unknown", op: f.op });
    }
  };

  Client.prototype._snapshot = function (f) {
    var map = new Map();
    (f.entries || []).forEach(function (e) { map.set(e.id, e); });
    this.byId = map;
    this.blogData = f.blog || this.blogData;
    this.seq = typeof f.seq === "number" ? f.seq : 0;
    this.epoch = f.epoch == null ? null : String(f.epoch);
    this._sort();
    this._emit({ kind: "snapshot", reset: !!f.reset });
  };

  /** One immediate poll (wait=0) whose frames go through the same seq checks as the stream. */
  Client.prototype._catchUp = function () {
    var self = this;
    if (this.seq === null || typeof fetch !== "function") return;
    var conn = this.conn;
    fetch(this._url("catchup"), { credentials: "omit", cache: "no-store" })
      .then(function (res) {
        if (!res.ok) throw new Error("HTTP " + res.status);
        return res.json();
      })
      .then(function (body) {
        if (self.conn !== conn || self.stopped) return;
        var frames = (body && body.frames) || [];
        for (var i = 0; i < frames.length && self.conn === conn; i++) self._frame(frames[i]);
      })
      .catch(function () {
        // The stream may be dead without knowing it: resume it now rather than at the next error.
        if (self.conn === conn && conn) self._resync("catch-up failed");
      });
  };

  /** The tab became visible or the network came back: catch up now, not at the next timer. */
  Client.prototype._wake = function () {
    if (this.stopped) return;
    if (!this.conn) {
      this.failures = 0;
      this.index = Math.max(this.working, 0);
      this._open();
      return;
    }
    if (this.conn.opened && this.conn.t.probe) this.conn.t.probe(3000);
  };

  Client.prototype._suspend = function () {
    clearTimeout(this.timer);
    this.timer = null;
    this._cancelUpgrade();
    if (this.conn) {
      this.conn.t.close();
      this.conn = null;
    }
  };

  Client.prototype._stop = function (info) {
    this.stopped = true;
    this._suspend();
    this._listeners.forEach(function (l) { l[0].removeEventListener(l[1], l[2]); });
    this._listeners = [];
    this._setStatus("stopped", info);
  };

  /** Stop for good: close the connection, cancel timers, forget listeners. */
  Client.prototype.close = function () {
    if (!this.stopped) this._stop({ reason: "closed by the page" });
  };

  /** Reconnect now (skipping any backoff wait), resuming from the copy. */
  Client.prototype.reconnect = function () {
    if (this.stopped) return;
    this._suspend();
    this._wake();
  };

  /** The local copy: {blog, entries (pinned first, newest first), seq, epoch}. */
  Client.prototype.state = function () {
    return { blog: this.blogData, entries: this.list.slice(), seq: this.seq, epoch: this.epoch };
  };

  var PushHub = {
    version: "1.0.0",
    Client: Client,
    compareEntries: compareEntries,
    connect: function (options) {
      return new Client(options).start();
    },
  };

  root.PushHub = PushHub;
})(typeof PUSHHUB_SCOPE === "object" ? PUSHHUB_SCOPE : globalThis);
