/*! pushhub page.js: brings the server-rendered live blog page (and its iframe variant) to life.
 * The page is complete without this script; it only adds live updates, local times and the
 * connection indicator. Needs pushhub.js and render.js loaded first.
 */
(function () {
  "use strict";

  var PushHub = window.PushHub;
  var R = window.PushHubRender;
  var main = document.getElementById("ph-main");
  var stateNode = document.getElementById("ph-state");
  if (!PushHub || !R || !main || !stateNode) return;

  var state = JSON.parse(stateNode.textContent);
  var frame = main.getAttribute("data-layout") === "frame";
  var feed = document.getElementById("ph-feed");
  var newButton = document.getElementById("ph-new");
  var announcer = document.getElementById("ph-announcer");
  var conn = document.getElementById("ph-conn");
  var connText = document.getElementById("ph-conn-text");
  var keyNav = document.getElementById("ph-keyevents");
  var keyList = document.getElementById("ph-keylist");
  var empty = document.getElementById("ph-empty");
  var top = document.getElementById("ph-top");

  // Whether the top of the feed is out of view above: then new entries wait behind the button.
  // An iframe cannot see the host page's scroll, so the frame asks an IntersectionObserver.
  var topVisible = true;
  if (frame && typeof IntersectionObserver === "function") {
    new IntersectionObserver(function (records) {
      topVisible = records[records.length - 1].isIntersecting;
      if (topVisible) flush(false);
    }).observe(top);
  }
  function isAway() {
    if (frame) return !topVisible;
    return top.getBoundingClientRect().top < -8;
  }

  var view = new R.FeedView({
    doc: document,
    feed: feed,
    max: Number(main.getAttribute("data-max")) || Infinity,
    isAway: isAway,
    linkTarget: frame ? "_blank" : null,
  });
  view.adopt(state.entries || []);

  var params = new URLSearchParams(location.search);
  var only = params.get("transport");

  var client = PushHub.connect({
    blog: main.getAttribute("data-blog"),
    initial: state,
    transports: only ? only.split(",") : undefined,
    onchange: onChange,
    onstatus: onStatus,
  });

  function onChange(change) {
    if (change.initial) return; // the server already rendered this state
    var result = view.update(change.entries);
    if (change.kind === "blog" || change.kind === "snapshot") showBlog(change.blog);
    afterRender();
    if (result.added.length === 1) {
      announce("New update: " + R.entryLabel(result.added[0], document));
    } else if (result.added.length > 1) {
      announce(result.added.length + " new updates");
    }
    if (result.pending && change.kind === "create") {
      announce(result.pending === 1 ? "1 new update above" : result.pending + " new updates above");
    }
  }

  function afterRender() {
    var visible = view.visible();
    empty.hidden = visible.length > 0;
    var n = view.pending.size;
    newButton.hidden = n === 0;
    newButton.textContent = n === 1 ? "1 new update" : n + " new updates";
    renderKeyEvents(visible);
    if (frame) postHeight();
  }

  function renderKeyEvents(visible) {
    if (!keyList) return;
    var keys = visible.filter(function (e) { return e.key; });
    var items = keys.map(function (e) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = "#entry-" + e.id;
      a.textContent = R.entryLabel(e, document, 90);
      li.appendChild(a);
      return li;
    });
    keyList.replaceChildren.apply(keyList, items);
    keyNav.hidden = keys.length === 0;
  }

  function showBlog(blog) {
    if (!blog) return;
    var title = document.getElementById("ph-title");
    var summary = document.getElementById("ph-summary");
    var flag = document.getElementById("ph-flag");
    if (title) title.textContent = blog.title || "";
    if (summary) summary.textContent = blog.summary || "";
    if (flag) {
      flag.textContent = blog.status === "ended" ? "Coverage ended" : "Live coverage";
      flag.setAttribute("data-status", blog.status === "ended" ? "ended" : "live");
    }
    if (!frame && blog.title) document.title = blog.title;
  }

  var LABELS = {
    connecting: "Connecting…",
    live: "Live",
    reconnecting: "Reconnecting…",
    offline: "Offline",
    stopped: "Offline",
  };
  function onStatus(status, info) {
    conn.hidden = false;
    conn.setAttribute("data-state", status);
    conn.setAttribute("data-transport", (info && info.transport) || client.transport || "");
    connText.textContent = LABELS[status] || status;
    conn.title = status === "stopped" && info && info.reason ? "Stopped: " + info.reason : "";
  }
  onStatus(client.status, { transport: client.transport });

  function announce(text) {
    // Clearing first makes screen readers announce a repeat of the same text too.
    announcer.textContent = "";
    setTimeout(function () { announcer.textContent = text; }, 50);
  }

  function flush(jump) {
    if (!view.pending.size) return;
    var shown = view.flush();
    afterRender();
    if (jump && shown.length) {
      top.scrollIntoView({ block: "start" });
      var first = document.getElementById("entry-" + shown[0].id);
      if (first) first.focus({ preventScroll: true });
    }
    announce(shown.length === 1 ? "Showing 1 new update" : "Showing " + shown.length + " new updates");
  }

  newButton.addEventListener("click", function () { flush(true); });
  if (!frame) {
    window.addEventListener("scroll", function () {
      if (view.pending.size && !isAway()) flush(false);
    }, { passive: true });
  }

  function tick() { R.formatTimes(document, Date.now()); }
  tick();
  setInterval(tick, 30000);
  afterRender();

  // --- iframe variant: tell the host page our height ---------------------------------------
  var lastHeight = -1;
  function postHeight() {
    if (!frame || window.parent === window) return;
    var h = Math.ceil(document.documentElement.getBoundingClientRect().height);
    if (h === lastHeight) return;
    lastHeight = h;
    var slug = main.getAttribute("data-blog");
    // The height is not a secret, and the host's origin is unknown to us: any parent may hear it.
    window.parent.postMessage({ type: "pushhub:height", blog: slug, height: h }, "*");
    window.parent.postMessage({ sentinel: "amp", type: "embed-size", height: h }, "*");
  }
  if (frame) {
    if (typeof ResizeObserver === "function") new ResizeObserver(postHeight).observe(document.documentElement);
    window.addEventListener("load", postHeight);
    postHeight();
  }

  // For tests and for curious readers in the console; not an API.
  window.pushhubPage = { client: client, view: view };
})();
