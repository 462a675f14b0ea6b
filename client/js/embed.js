/*! pushhub embed.js: the live blog widget for any site.
 *
 *   <div data-pushhub-blog="SLUG"></div>
 *   <script src="https://HOST/embed.js" async></script>
 *
 * Options (data attributes on the div): data-max-entries="10" (1-100), data-theme="auto|light|dark",
 * data-height="480" (pixels, or a CSS length; the list scrolls inside), data-transports="sse,poll".
 * Each widget renders in its own Shadow DOM with its own connection; restyle it with the
 * --pushhub-* custom properties on the div (see docs/browser.md).
 *
 * GET /embed.js serves this file with pushhub.js and render.js in one closure (PUSHHUB_SCOPE);
 * loaded on its own it expects window.PushHub and window.PushHubRender.
 */
(function (scope) {
  "use strict";

  var PushHub = scope.PushHub;
  var R = scope.PushHubRender;
  if (!PushHub || !R) return;

  var script = document.currentScript;
  var BASE = (function () {
    try {
      return new URL(script && script.src ? script.src : location.href).origin;
    } catch (e) {
      return location.origin;
    }
  })();
  var SLUG = /^[a-z0-9-]{1,64}$/;
  var LABELS = {
    connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…",
    offline: "Offline", stopped: "Offline",
  };

  // Public custom property, light default, dark default. Inside: var(--name).
  var VARS = [
    ["bg", "#ffffff", "#15181d"], ["card", "#ffffff", "#1b1f26"], ["fg", "#16191d", "#e8eaed"],
    ["muted", "#5b6470", "#a0a8b3"], ["border", "#dde1e6", "#2c313a"], ["accent", "#c8102e", "#ff5a6e"],
    ["key", "#8a5a00", "#ffc857"], ["key-bg", "#fff4d6", "#33290f"], ["pinned-bg", "#eef4ff", "#16233a"],
    ["live", "#13803b", "#3ddc84"], ["warn", "#b25e00", "#ffb454"],
  ];
  function vars(col) {
    return VARS.map(function (v) { return "--" + v[0] + ":var(--pushhub-" + v[0] + "," + v[col] + ")"; }).join(";");
  }
  var DARK = vars(2) + ";color-scheme:dark";
  var CSS =
    // The host element keeps whatever layout the site gives it; inside, "all: initial" cuts off
    // every inherited style of the site, so only custom properties reach in.
    ":host{display:block}:host([hidden]){display:none}" +
    ".root{all:initial;display:block;box-sizing:border-box;" + vars(1) + ";color-scheme:light;" +
    "font:15px/1.5 var(--pushhub-font,system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif);" +
    "color:var(--fg);background:var(--bg);border:1px solid var(--border);border-radius:var(--pushhub-radius,10px);" +
    "overflow:hidden;text-align:left}" +
    ".root[data-theme=dark]{" + DARK + "}" +
    "@media (prefers-color-scheme:dark){.root[data-theme=auto]{" + DARK + "}}" +
    ".root *,.root *::before,.root *::after{box-sizing:border-box}" +
    ".head{display:flex;flex-wrap:wrap;align-items:center;gap:.3em .6em;padding:.6em .8em;border-bottom:1px solid var(--border)}" +
    ".flag{font-size:.72em;font-weight:700;letter-spacing:.08em;text-transform:uppercase;color:#fff;background:var(--muted);padding:.1em .45em;border-radius:4px}" +
    ".flag[hidden]{display:none}" +
    ".title{font-weight:700;flex:1 1 12em;min-width:0;overflow-wrap:anywhere}" +
    ".conn{display:inline-flex;align-items:center;gap:.35em;font-size:.8em;color:var(--muted)}" +
    ".dot{width:.55em;height:.55em;border-radius:50%;background:var(--muted)}" +
    ".conn[data-state=live]{color:var(--live)}.conn[data-state=live] .dot{background:var(--live)}" +
    ".conn[data-state=connecting] .dot,.conn[data-state=reconnecting] .dot{background:var(--warn)}" +
    ".conn[data-state=reconnecting]{color:var(--warn)}" +
    ".scroller{position:relative;overflow:auto;overscroll-behavior:contain}" +
    ".list{display:grid;gap:.6em;padding:.7em .8em}" +
    ".note{margin:0;padding:.7em .8em;color:var(--muted)}" +
    ".new{position:sticky;top:.4em;z-index:1;display:block;margin:.4em auto 0;font:inherit;font-size:.85em;font-weight:600;" +
    "color:#fff;background:var(--accent);border:0;border-radius:999px;padding:.35em .9em;cursor:pointer}" +
    ".new[hidden]{display:none}" +
    "a{color:var(--accent)}a:focus-visible,button:focus-visible{outline:2px solid var(--accent);outline-offset:2px}" +
    ".more{display:block;padding:.5em .8em .7em;font-size:.85em}" +
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}" +
    ".ph-entry{background:var(--card);border:1px solid var(--border);border-left:3px solid var(--border);border-radius:8px;padding:.6em .75em;overflow-wrap:anywhere}" +
    ".ph-entry.ph-key{border-left-color:var(--key)}.ph-entry.ph-pinned{background:var(--pinned-bg);border-left-color:var(--accent)}" +
    ".ph-meta{display:flex;flex-wrap:wrap;align-items:baseline;gap:.2em .5em;font-size:.8em;color:var(--muted)}" +
    ".ph-time{font-weight:600;color:var(--fg)}.ph-ago{margin-left:.35em;font-weight:400;color:var(--muted)}" +
    ".ph-author::before{content:'· '}" +
    ".ph-badge{font-size:.85em;font-weight:700;text-transform:uppercase;border-radius:3px;padding:0 .35em}" +
    ".ph-badge-pinned{color:#fff;background:var(--accent)}.ph-badge-key{color:var(--key);background:var(--key-bg)}" +
    ".ph-title{margin:.3em 0 .1em;font-size:1.05em;line-height:1.3}" +
    ".ph-body>:first-child{margin-top:.3em}.ph-body>:last-child{margin-bottom:0}" +
    ".ph-body p{margin:.5em 0}.ph-body img,.ph-figure img{display:block;max-width:100%;height:auto;border-radius:5px}" +
    ".ph-body blockquote{margin:.5em 0;padding-left:.7em;border-left:3px solid var(--border);color:var(--muted)}" +
    ".ph-body pre{overflow-x:auto}.ph-figure{margin:.5em 0 0}" +
    ".ph-figure figcaption{margin-top:.3em;font-size:.8em;color:var(--muted)}.ph-credit{margin-left:.35em;font-style:italic}";

  var sheet = null;
  function styleInto(shadow) {
    // A constructed sheet is shared by every widget of this script and is not subject to the
    // host page's style-src; older browsers get a <style> element.
    try {
      if (!sheet) {
        sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
      }
      shadow.adoptedStyleSheets = [sheet];
    } catch (e) {
      var style = document.createElement("style");
      style.textContent = CSS;
      shadow.appendChild(style);
    }
  }

  function make(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  function cssLength(value) {
    if (!value) return "";
    if (/^\d{1,5}$/.test(value)) return value + "px";
    return /^\d{1,5}(\.\d+)?(px|em|rem|vh|svh|dvh|%)$/.test(value) ? value : "";
  }

  function mount(host) {
    if (host.shadowRoot || host.hasAttribute("data-pushhub-mounted")) return;
    var slug = (host.getAttribute("data-pushhub-blog") || "").trim();
    if (!SLUG.test(slug)) return;
    host.setAttribute("data-pushhub-mounted", "");
    var max = parseInt(host.getAttribute("data-max-entries"), 10);
    max = max >= 1 ? Math.min(max, 100) : 10;
    var theme = host.getAttribute("data-theme");
    theme = theme === "light" || theme === "dark" ? theme : "auto";
    var height = cssLength((host.getAttribute("data-height") || "").trim());
    var transports = host.getAttribute("data-transports");

    var shadow = host.attachShadow({ mode: "open" });
    styleInto(shadow);
    var rootEl = make("div", "root");
    rootEl.setAttribute("data-theme", theme);
    rootEl.setAttribute("part", "root");
    var head = make("div", "head");
    var flag = make("span", "flag", "Coverage ended");
    flag.hidden = true; // the connection indicator already says "Live"
    var title = make("span", "title");
    var conn = make("span", "conn");
    conn.setAttribute("data-state", "connecting");
    conn.appendChild(make("span", "dot"));
    var connLabel = make("span", "label", LABELS.connecting);
    conn.appendChild(connLabel);
    head.appendChild(flag);
    head.appendChild(title);
    head.appendChild(conn);
    var scroller = make("div", "scroller");
    if (height) scroller.style.maxHeight = height;
    var top = make("div", "top");
    var newButton = make("button", "new");
    newButton.type = "button";
    newButton.hidden = true;
    var list = make("div", "list");
    list.setAttribute("aria-label", "Live updates, newest first");
    list.setAttribute("role", "region");
    var note = make("p", "note", "Loading live updates…");
    scroller.appendChild(top);
    scroller.appendChild(newButton);
    scroller.appendChild(list);
    scroller.appendChild(note);
    var more = make("a", "more", "Open the full live blog");
    more.href = BASE + "/blogs/" + slug;
    more.target = "_blank";
    more.rel = "noopener";
    var announcer = make("div", "sr");
    announcer.setAttribute("role", "status");
    announcer.setAttribute("aria-live", "polite");
    rootEl.appendChild(head);
    rootEl.appendChild(scroller);
    rootEl.appendChild(more);
    rootEl.appendChild(announcer);
    shadow.appendChild(rootEl);

    function isAway() {
      if (height) return scroller.scrollTop > 16;
      return top.getBoundingClientRect().top < -8;
    }

    var view = new R.FeedView({
      doc: document, feed: list, max: max, isAway: isAway, heading: "h3", linkTarget: "_blank",
    });

    function announce(text) {
      announcer.textContent = "";
      setTimeout(function () { announcer.textContent = text; }, 50);
    }

    function refresh() {
      var n = view.pending.size;
      newButton.hidden = n === 0;
      newButton.textContent = n === 1 ? "↑ 1 new update" : "↑ " + n + " new updates";
      if (client && client.status !== "stopped") {
        note.hidden = view.visible().length > 0;
        note.textContent = "No updates yet.";
      }
    }

    function flush(jump) {
      if (!view.pending.size) return;
      var shown = view.flush();
      refresh();
      if (jump) {
        if (height) scroller.scrollTop = 0;
        else top.scrollIntoView({ block: "start" });
        var first = shown.length && list.querySelector('[data-id="' + shown[0].id + '"]');
        if (first) first.focus({ preventScroll: true });
      }
    }
    newButton.addEventListener("click", function () { flush(true); });
    var scrollTarget = height ? scroller : window;
    function onScroll() {
      if (view.pending.size && !isAway()) flush(false);
    }
    scrollTarget.addEventListener("scroll", onScroll, { passive: true });

    var client = null;
    client = PushHub.connect({
      base: BASE,
      blog: slug,
      transports: transports ? transports.split(",") : undefined,
      onchange: function (change) {
        var blog = change.blog;
        if (blog) {
          title.textContent = blog.title || "";
          var ended = blog.status === "ended";
          flag.hidden = !ended;
        }
        var result = view.update(change.entries);
        refresh();
        if (result.added.length === 1) announce("New update: " + R.entryLabel(result.added[0], document));
        else if (result.added.length > 1) announce(result.added.length + " new updates");
        else if (result.pending && change.kind === "create") announce(result.pending + " new updates above");
      },
      onstatus: function (status, info) {
        conn.setAttribute("data-state", status);
        conn.setAttribute("data-transport", (info && info.transport) || "");
        connLabel.textContent = LABELS[status] || status;
        var gone = info && (info.code === 4404 || info.status === 404);
        if ((status === "stopped" || gone) && !view.entries.length) {
          note.hidden = false;
          note.textContent = info && (info.code === 4403 || info.status === 403)
            ? "This live blog cannot be shown on this site."
            : "This live blog is not available.";
        }
      },
    });

    var ticker = setInterval(function () { R.formatTimes(list, Date.now()); }, 30000);
    live.push({
      host: host,
      stop: function () {
        clearInterval(ticker);
        client.close();
        scrollTarget.removeEventListener("scroll", onScroll);
      },
    });
  }

  // Widgets of this script that are on the page; one the site removes takes its connection along.
  var live = [];
  function sweep() {
    live = live.filter(function (w) {
      if (w.host.isConnected) return true;
      w.stop();
      return false;
    });
  }

  function scan() {
    var nodes = document.querySelectorAll("[data-pushhub-blog]");
    for (var i = 0; i < nodes.length; i++) mount(nodes[i]);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scan);
  else scan();
  // Widgets a single-page site adds later mount too; mutations are handled in batches.
  if (typeof MutationObserver === "function") {
    var queued = false;
    new MutationObserver(function () {
      if (queued) return;
      queued = true;
      // A timer, not requestAnimationFrame: a hidden tab must still let removed widgets go.
      setTimeout(function () {
        queued = false;
        sweep();
        scan();
      }, 50);
    }).observe(document.documentElement, { childList: true, subtree: true });
  }
})(typeof PUSHHUB_SCOPE === "object" ? PUSHHUB_SCOPE : globalThis);
