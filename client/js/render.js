/*! pushhub render.js: entries to DOM for the live blog page and the embed widget.
 *
 * Editor text (title, author, caption, credit) goes in with textContent. The server-sanitized
 * "html" field is the only HTML inserted, and it passes a second allowlist here on the way in,
 * so a sanitizer bug on the server is not enough to run script in a reader's page.
 * The markup mirrors pushhub/routes/pages.py, which renders the same entries server-side.
 */
(function (root) {
  "use strict";

  var KEEP = {};
  ("p br hr em strong b i u s del ins mark small sub sup a ul ol li blockquote q cite code pre kbd " +
    "img h1 h2 h3 h4 h5 h6 table thead tbody tfoot tr th td caption figure figcaption span abbr dl dt dd")
    .split(" ").forEach(function (t) { KEEP[t] = true; });
  var ATTRS = {
    a: ["href", "title"],
    img: ["src", "alt", "title", "width", "height"],
    ol: ["start"],
    td: ["colspan", "rowspan"],
    th: ["colspan", "rowspan", "scope"],
    abbr: ["title"],
    code: ["class"],
  };
  // Removed with everything inside; any other unknown element is unwrapped to its children.
  var DROP = {};
  ("script style iframe frame frameset object embed applet template noscript noembed svg math " +
    "form input button textarea select option link meta base title xmp plaintext")
    .split(" ").forEach(function (t) { DROP[t] = true; });

  var policy = null;
  function trusted(html) {
    if (policy === null) {
      policy = false;
      var tt = typeof window !== "undefined" && window.trustedTypes;
      if (tt && tt.createPolicy) {
        try {
          policy = tt.createPolicy("pushhub", { createHTML: function (s) { return s; } });
        } catch (e) {
          policy = false; // the page's CSP did not allow our policy name
        }
      }
    }
    return policy ? policy.createHTML(html) : html;
  }

  /** url if it is absolute http(s) (or mailto: for links), else null. */
  function safeUrl(url, allowMailto) {
    if (typeof url !== "string" || !url) return null;
    try {
      var u = new URL(url, typeof location !== "undefined" ? location.href : undefined);
      if (u.protocol === "http:" || u.protocol === "https:") return u.href;
      if (allowMailto && u.protocol === "mailto:") return u.href;
    } catch (e) { /* not a URL */ }
    return null;
  }

  function cleanNode(node) {
    var child = node.firstChild;
    while (child) {
      var next = child.nextSibling;
      if (child.nodeType === 1) {
        var tag = child.nodeName.toLowerCase();
        if (DROP[tag]) {
          node.removeChild(child);
        } else if (!KEEP[tag] || child.namespaceURI !== "http://www.w3.org/1999/xhtml") {
          cleanNode(child);
          while (child.firstChild) node.insertBefore(child.firstChild, child);
          node.removeChild(child);
        } else {
          cleanAttrs(child, tag);
          cleanNode(child);
        }
      } else if (child.nodeType !== 3) {
        node.removeChild(child); // comments, processing instructions
      }
      child = next;
    }
  }

  function cleanAttrs(el, tag) {
    var allowed = ATTRS[tag] || [];
    Array.from(el.attributes).forEach(function (a) {
      if (allowed.indexOf(a.name) < 0) el.removeAttribute(a.name);
    });
    if (tag === "a") {
      var href = safeUrl(el.getAttribute("href"), true);
      if (href) el.setAttribute("href", href);
      else el.removeAttribute("href");
      el.setAttribute("rel", "noopener nofollow ugc");
    } else if (tag === "img") {
      var src = safeUrl(el.getAttribute("src"), false);
      if (src) el.setAttribute("src", src);
      else el.removeAttribute("src");
      el.setAttribute("loading", "lazy");
      el.setAttribute("decoding", "async");
    } else if (tag === "code" && !/^language-[\w-]{1,32}$/.test(el.getAttribute("class") || "")) {
      el.removeAttribute("class");
    }
  }

  /** Parse the sanitized entry HTML inertly, clean it again, and return a fragment. */
  function htmlFragment(html, doc) {
    var tpl = doc.createElement("template");
    try {
      tpl.innerHTML = trusted(String(html == null ? "" : html));
    } catch (e) {
      // A host page that enforces Trusted Types without our policy: fall back to text.
      tpl.content.textContent = String(html == null ? "" : html).replace(/<[^>]*>/g, " ");
    }
    cleanNode(tpl.content);
    return tpl.content;
  }

  /** Plain text of an entry for labels and announcements: its title, else its text, shortened. */
  function entryLabel(entry, doc, max) {
    var text = entry.title;
    if (!text) text = htmlFragment(entry.html, doc).textContent || "";
    text = text.replace(/\s+/g, " ").trim();
    var limit = max || 80;
    return text.length > limit ? text.slice(0, limit - 1).trimEnd() + "…" : text;
  }

  function el(doc, tag, cls, text) {
    var e = doc.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = String(text);
    return e;
  }

  function timeElement(doc, iso) {
    var t = el(doc, "time", "ph-time");
    t.dateTime = iso || "";
    t.appendChild(el(doc, "span", "ph-clock", utcText(iso)));
    t.appendChild(el(doc, "span", "ph-ago"));
    return t;
  }

  var MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(" ");
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  // What the server renders before the script runs; replaced by local time once it does.
  function utcText(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return iso || "";
    return d.getUTCDate() + " " + MONTHS[d.getUTCMonth()] + " " + d.getUTCFullYear() + ", " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + " UTC";
  }

  /** An <article> for one entry, the same markup the server renders. */
  function entryElement(entry, doc, options) {
    var heading = (options && options.heading) || "h2";
    var art = el(doc, "article", "ph-entry");
    art.id = "entry-" + entry.id;
    art.setAttribute("data-id", entry.id);
    art.tabIndex = -1; // a target for "jump to" and "show new updates"
    if (entry.pinned) art.classList.add("ph-pinned");
    if (entry.key) art.classList.add("ph-key");
    var meta = el(doc, "div", "ph-meta");
    if (entry.pinned) meta.appendChild(el(doc, "span", "ph-badge ph-badge-pinned", "Pinned"));
    if (entry.key) meta.appendChild(el(doc, "span", "ph-badge ph-badge-key", "Key event"));
    meta.appendChild(timeElement(doc, entry.created_at));
    if (entry.author) meta.appendChild(el(doc, "span", "ph-author", entry.author));
    art.appendChild(meta);
    if (entry.title) art.appendChild(el(doc, heading, "ph-title", entry.title));
    var body = el(doc, "div", "ph-body");
    body.appendChild(htmlFragment(entry.html, doc));
    if (options && options.linkTarget) {
      Array.from(body.querySelectorAll("a[href]")).forEach(function (a) { a.target = options.linkTarget; });
    }
    art.appendChild(body);
    var image = entry.image;
    var src = image && safeUrl(image.url, false);
    if (src) {
      var fig = el(doc, "figure", "ph-figure");
      var img = el(doc, "img");
      img.src = src;
      img.alt = image.caption || "";
      img.loading = "lazy";
      img.decoding = "async";
      fig.appendChild(img);
      if (image.caption || image.credit) {
        var cap = el(doc, "figcaption");
        if (image.caption) cap.appendChild(el(doc, "span", "ph-caption", image.caption));
        if (image.credit) cap.appendChild(el(doc, "span", "ph-credit", image.credit));
        fig.appendChild(cap);
      }
      art.appendChild(fig);
    }
    return art;
  }

  // --- times ----------------------------------------------------------------------------------

  var fmt = null;
  function formatters() {
    if (!fmt) {
      fmt = {
        clock: new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" }),
        date: new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }),
        full: new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" }),
        rel: typeof Intl.RelativeTimeFormat === "function"
          ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto", style: "short" })
          : null,
      };
    }
    return fmt;
  }

  function relative(ms) {
    var f = formatters();
    if (!f.rel) return "";
    var s = Math.round(ms / 1000);
    if (s < 45) return f.rel.format(0, "second");
    var m = Math.round(s / 60);
    if (m < 60) return f.rel.format(-m, "minute");
    var h = Math.round(m / 60);
    if (h < 24) return f.rel.format(-h, "hour");
    return f.rel.format(-Math.round(h / 24), "day");
  }

  /** Show every <time class="ph-time"> under scope in the reader's zone, with a relative time. */
  function formatTimes(scope, now) {
    var f = formatters();
    var today = new Date(now).toDateString();
    var nodes = scope.querySelectorAll("time.ph-time");
    for (var i = 0; i < nodes.length; i++) {
      var t = nodes[i];
      var d = new Date(t.dateTime);
      if (isNaN(d.getTime())) continue;
      var clock = t.querySelector(".ph-clock");
      var ago = t.querySelector(".ph-ago");
      if (clock) clock.textContent = d.toDateString() === today ? f.clock.format(d) : f.date.format(d);
      if (ago) ago.textContent = relative(Math.max(0, now - d.getTime()));
      t.title = f.full.format(d);
    }
  }

  // --- feed -----------------------------------------------------------------------------------

  /**
   * Keeps a container of <article>s equal to the client's ordered entries, in place: unchanged
   * entries keep their nodes, edited ones are replaced where they stand, new ones wait in
   * "pending" while the reader is scrolled away from the top (isAway), so nothing jumps.
   */
  function FeedView(options) {
    this.doc = options.doc || document;
    this.feed = options.feed;
    this.max = options.max || Infinity;
    this.isAway = options.isAway || function () { return false; };
    this.heading = options.heading || "h2";
    this.linkTarget = options.linkTarget || null;
    this.entries = [];
    this.known = new Set();
    this.pending = new Set();
    this.nodes = new Map(); // id -> article
    this.shown = new Map(); // id -> JSON of the entry the article shows
    this.primed = false;
  }

  /** Take over articles the server rendered for entries instead of building them again. */
  FeedView.prototype.adopt = function (entries) {
    var self = this;
    var byId = new Map(entries.map(function (e) { return [e.id, e]; }));
    Array.from(this.feed.querySelectorAll("article.ph-entry")).forEach(function (node) {
      var e = byId.get(node.getAttribute("data-id"));
      if (!e) return;
      self.nodes.set(e.id, node);
      self.shown.set(e.id, JSON.stringify(e));
    });
    entries.forEach(function (e) { self.known.add(e.id); });
    this.entries = entries;
    this.primed = true;
  };

  /** Apply the client's ordered entries. Returns {added: [entries shown now], pending: count}. */
  FeedView.prototype.update = function (entries) {
    var self = this;
    var away = this.primed && this.isAway();
    var added = [];
    var ids = new Set();
    entries.forEach(function (e) {
      ids.add(e.id);
      if (self.known.has(e.id)) return;
      self.known.add(e.id);
      if (!self.primed) return;
      if (away) self.pending.add(e.id);
      else added.push(e);
    });
    this.pending.forEach(function (id) { if (!ids.has(id)) self.pending.delete(id); });
    this.primed = true;
    this.entries = entries;
    this.render();
    return { added: added, pending: this.pending.size };
  };

  /** Show the entries that were waiting; returns them. */
  FeedView.prototype.flush = function () {
    var self = this;
    var shown = this.entries.filter(function (e) { return self.pending.has(e.id); });
    this.pending.clear();
    this.render();
    return shown;
  };

  FeedView.prototype.visible = function () {
    var self = this;
    return this.entries.filter(function (e) { return !self.pending.has(e.id); }).slice(0, this.max);
  };

  FeedView.prototype.render = function () {
    var self = this;
    var visible = this.visible();
    var keep = new Set(visible.map(function (e) { return e.id; }));
    this.nodes.forEach(function (node, id) {
      if (keep.has(id)) return;
      node.remove();
      self.nodes.delete(id);
      self.shown.delete(id);
    });
    var fresh = [];
    visible.forEach(function (e, i) {
      var json = JSON.stringify(e);
      var node = self.nodes.get(e.id);
      if (!node || self.shown.get(e.id) !== json) {
        var built = entryElement(e, self.doc, { heading: self.heading, linkTarget: self.linkTarget });
        if (node) node.replaceWith(built);
        node = built;
        self.nodes.set(e.id, node);
        self.shown.set(e.id, json);
        fresh.push(node);
      }
      var at = self.feed.children[i];
      if (at !== node) self.feed.insertBefore(node, at || null);
    });
    var now = Date.now();
    fresh.forEach(function (node) { formatTimes(node, now); });
  };

  root.PushHubRender = {
    entryElement: entryElement,
    entryLabel: entryLabel,
    htmlFragment: htmlFragment,
    safeUrl: safeUrl,
    formatTimes: formatTimes,
    FeedView: FeedView,
  };
})(typeof PUSHHUB_SCOPE === "object" ? PUSHHUB_SCOPE : globalThis);
