// overlayd overlay client: one small script, no framework. Receives pre-rendered events over
// server-sent events and places them by overlay kind. Reconnects with Last-Event-ID (the
// browser does that by itself); remembers the last alert id so a reload loses no alert.
(function () {
  "use strict";
  var settings = JSON.parse(document.getElementById("overlay-settings").textContent);
  var root = document.getElementById("root");
  var errorBox = document.getElementById("theme-error");
  var opts = settings.options || {};
  var storeKey = "overlayd:" + settings.name + ":last";
  var KINDS = ["chat.message", "chat.delete", "chat.clear", "follow", "sub", "resub", "subgift",
    "giftbomb", "cheer", "raid", "redemption", "announcement", "stream.online", "stream.offline",
    "hypetrain.begin", "hypetrain.progress", "hypetrain.end"];

  // ---- placing events -----------------------------------------------------------------
  function fragment(html, id) {
    var wrap = document.createElement("div");
    wrap.className = "item";
    wrap.dataset.id = id;
    wrap.innerHTML = html; // server-rendered by the theme; chat text is escaped there
    return wrap;
  }

  function removeItem(el) {
    if (!el || !el.parentNode) return;
    el.classList.add("item-leaving");
    setTimeout(function () { if (el.parentNode) el.parentNode.removeChild(el); }, 500);
  }

  var chat = {
    add: function (ev) {
      if (!ev.html) return;
      var el = fragment(ev.html, ev.id);
      el.dataset.messageId = ev.data.message_id || "";
      el.dataset.user = (ev.data.author && ev.data.author.login) || "";
      el.dataset.userId = (ev.data.author && ev.data.author.id) || "";
      el.dataset.platform = ev.platform || "twitch";
      root.appendChild(el);
      var max = opts.max_messages || 30;
      while (root.children.length > max) root.removeChild(root.firstChild);
      if (opts.fade_after_s > 0) setTimeout(function () { removeItem(el); }, opts.fade_after_s * 1000);
    },
    remove: function (ev) {
      var items = root.querySelectorAll(".item");
      for (var i = 0; i < items.length; i++) {
        var it = items[i];
        // Ids and logins are per platform: a YouTube ban never removes a Twitch line.
        if (it.dataset.platform !== (ev.platform || "twitch")) continue;
        if (ev.kind === "chat.delete" && it.dataset.messageId === ev.data.message_id) it.remove();
        if (ev.kind === "chat.clear") {
          var byId = ev.data.user_id, byLogin = ev.data.user_login;
          if (byId ? it.dataset.userId === String(byId) : !byLogin || it.dataset.user === byLogin) it.remove();
        }
      }
    }
  };

  var alerts = {
    queue: [], playing: false, visible: true,
    add: function (ev) { if (ev.html) { this.queue.push(ev); this.next(); } },
    duration: function (ev) {
      var d = (opts.durations && opts.durations[ev.kind]) || opts.duration_s || 6;
      return d * 1000;
    },
    next: function () {
      if (this.playing || !this.visible || !this.queue.length) return;
      var ev = this.queue.shift(), self = this;
      this.playing = true;
      var el = fragment(ev.html, ev.id);
      root.innerHTML = "";
      root.appendChild(el);
      if (opts.sound) this.sound(ev);
      remember(ev.id);
      setTimeout(function () {
        removeItem(el);
        setTimeout(function () { self.playing = false; self.next(); }, 600);
      }, this.duration(ev));
    },
    sound: function (ev) {
      try {
        var a = new Audio("/themes/" + encodeURIComponent(settings.theme) + "/sound/" + encodeURIComponent(ev.kind));
        a.volume = Math.min(1, Math.max(0, opts.volume || 0.6));
        a.play().catch(function () {});
      } catch (e) { /* no audio in this browser: alerts still show */ }
    }
  };

  var list = {
    add: function (ev) {
      if (!ev.html) return;
      root.insertBefore(fragment(ev.html, ev.id), root.firstChild);
      var limit = opts.limit || 10;
      while (root.children.length > limit) root.removeChild(root.lastChild);
    }
  };

  var whole = { add: function (ev) { if (ev.html) { root.innerHTML = ""; root.appendChild(fragment(ev.html, ev.id)); } } };

  // Applies a smaller limit at once when the overlay's file changes.
  function trim() {
    if (settings.kind === "events") {
      while (root.children.length > (opts.limit || 10)) root.removeChild(root.lastChild);
    } else if (settings.kind === "chat") {
      while (root.children.length > (opts.max_messages || 30)) root.removeChild(root.firstChild);
    }
  }

  function place(ev) {
    switch (settings.kind) {
      case "chat": if (ev.kind === "chat.message") chat.add(ev); else chat.remove(ev); break;
      case "alerts": alerts.add(ev); break;
      case "events": list.add(ev); break;
      default: whole.add(ev);
    }
  }

  function remember(id) { try { localStorage.setItem(storeKey, String(id)); } catch (e) {} }
  function remembered() { try { return localStorage.getItem(storeKey); } catch (e) { return null; } }

  // ---- theme reloads --------------------------------------------------------------------
  function themeReloaded(info) {
    errorBox.hidden = true;
    errorBox.textContent = "";
    if (info.css) {
      var link = document.getElementById("theme-css");
      var fresh = link.cloneNode();
      fresh.href = info.css;
      fresh.onload = function () { link.remove(); fresh.id = "theme-css"; };
      link.parentNode.insertBefore(fresh, link.nextSibling);
    }
    // Re-render what is on screen with the new templates, in place: no page reload, so an
    // alert in progress and the chat already shown stay.
    var items = root.querySelectorAll(".item");
    var ids = [];
    for (var i = 0; i < items.length; i++) ids.push(items[i].dataset.id);
    if (!ids.length) return;
    fetch("/o/" + encodeURIComponent(settings.name) + "/render?ids=" + ids.join(","))
      .then(function (r) { return r.json(); })
      .then(function (rendered) {
        var now = root.querySelectorAll(".item");
        for (var i = 0; i < now.length; i++) {
          var html = rendered[now[i].dataset.id];
          if (typeof html === "string") now[i].innerHTML = html;
        }
        document.dispatchEvent(new CustomEvent("overlayd:rerendered"));
      })
      .catch(function () {});
  }

  function themeError(info) {
    errorBox.textContent = info.error || "unknown error";
    errorBox.hidden = false;
  }
  if (settings.error) themeError({ error: settings.error });

  // ---- OBS: hold alerts while the source is hidden ---------------------------------------
  if (window.obsstudio) {
    window.addEventListener("obsSourceVisibleChanged", function (e) {
      alerts.visible = !!(e.detail && e.detail.visible);
      alerts.next();
    });
  }

  // ---- the stream -------------------------------------------------------------------------
  function handle(type, data) {
    if (type === "theme") {
      if (!data.theme || data.theme === settings.theme) themeReloaded(data);
    } else if (type === "theme-error") {
      if (!data.theme || data.theme === settings.theme) themeError(data);
    } else if (type === "overlay") {
      if (data.kind !== settings.kind || data.theme !== settings.theme) { location.reload(); return; }
      settings = data; opts = data.options || {};
      trim();
    } else if (type === "resync") {
      document.dispatchEvent(new CustomEvent("overlayd:resync", { detail: data }));
    } else {
      place(data);
    }
    document.dispatchEvent(new CustomEvent("overlayd:event", { detail: { type: type, data: data } }));
  }

  // Direct: one EventSource for this page (the browser resumes with Last-Event-ID).
  function direct(url) {
    var source = new EventSource(url);
    KINDS.concat(["theme", "theme-error", "resync", "overlay"]).forEach(function (type) {
      source.addEventListener(type, function (e) {
        var data;
        try { data = JSON.parse(e.data); } catch (err) { return; }
        handle(type, data);
      });
    });
    source.onopen = function () { document.documentElement.dataset.connected = "direct"; };
    return source;
  }

  // Shared: every overlay page of this browser profile shares one multiplexed stream held by a
  // SharedWorker; this page first fetches what it missed (backlog), then applies live events
  // newer than the last one it applied.
  function shared(since) {
    var worker = new SharedWorker("/assets/stream-worker.js", { name: "overlayd" });
    var port = worker.port, applied = -1, ready = false, buffered = [];
    function live(type, data) {
      if (data && typeof data.id === "number") {
        if (data.id <= applied) return;
        applied = data.id;
      }
      handle(type, data);
    }
    port.onmessage = function (m) {
      var msg = m.data;
      if (msg.type === "ready") {
        if (ready) return;
        var done = function () {
          ready = true;
          document.documentElement.dataset.connected = "shared";
          buffered.forEach(function (b) { live(b.type, b.data); });
          buffered = [];
        };
        if (since === null) { done(); return; }
        fetch("/o/" + encodeURIComponent(settings.name) + "/backlog?since=" + since)
          .then(function (r) { return r.json(); })
          .then(function (frames) { frames.forEach(function (f) { live(f.kind, f); }); done(); })
          .catch(done);
      } else if (!ready) {
        buffered.push(msg);
      } else {
        live(msg.type, msg.data);
      }
    };
    port.start();
    port.postMessage({ type: "join", name: settings.name });
    window.addEventListener("pagehide", function () { port.postMessage({ type: "leave", name: settings.name }); });
    return port;
  }

  function connect() {
    // Alerts resume after the last one played (a reload replays none twice and loses none);
    // every other kind redraws from the recent history.
    var since = settings.kind === "alerts" ? remembered() : "0";
    var forceDirect = /[?&]transport=direct\b/.test(location.search);
    if (window.SharedWorker && !forceDirect) {
      try { return shared(since); } catch (e) { /* fall back to a direct stream */ }
    }
    return direct(settings.events + (since !== null ? "?since=" + encodeURIComponent(since) : ""));
  }
  window.overlayd = { settings: settings, stream: connect() };
})();
