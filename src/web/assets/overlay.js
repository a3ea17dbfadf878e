// overlayd overlay client: one small script, no framework. Receives pre-rendered events over
// server-sent events and places them by overlay kind. Reconnects with Last-Event-ID (the
// browser does that by itself); alerts play from the server's queue and widgets draw the
// state the server keeps, so a reload loses neither.
(function () {
  "use strict";
  var settings = JSON.parse(document.getElementById("overlay-settings").textContent);
  var root = document.getElementById("root");
  var errorBox = document.getElementById("theme-error");
  var opts = settings.options || {};
  var KINDS = ["chat.message", "chat.delete", "chat.clear", "follow", "sub", "resub", "subgift",
    "giftbomb", "cheer", "raid", "redemption", "announcement", "stream.online", "stream.offline",
    "hypetrain.begin", "hypetrain.progress", "hypetrain.end", "gift", "tip", "poll.begin",
  "poll.progress", "poll.end", "prediction.begin", "prediction.progress", "prediction.lock",
  "prediction.end"];

  // ---- theme fields: CSS custom properties set through the CSSOM (a value can never become
  // another declaration), on <html> so every rule of the theme can use them. A page's own
  // `?field.<name>=` overrides stay across settings changes.
  var own = {};
  location.search.replace(/[?&]field\.([a-z0-9_-]+)=/g, function (_, n) { own["--field-" + n] = true; return ""; });
  var pageCss = settings.css || {};
  function applyFields(css) {
    var style = document.documentElement.style;
    for (var i = style.length - 1; i >= 0; i--) {
      var p = style[i];
      if (p.indexOf("--field-") === 0 && !own[p]) style.removeProperty(p);
    }
    Object.keys(css || {}).forEach(function (k) { if (!own[k]) style.setProperty(k, css[k]); });
    Object.keys(own).forEach(function (k) { if (pageCss[k] !== undefined) style.setProperty(k, pageCss[k]); });
  }
  applyFields(settings.css);

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
        // Ids and logins are per platform: a YouTube ban never removes a Twitch line (a clear
        // of safe mode is for every platform).
        if (!ev.data.all_platforms && it.dataset.platform !== (ev.platform || "twitch")) continue;
        if (ev.kind === "chat.delete" && it.dataset.messageId === ev.data.message_id) it.remove();
        if (ev.kind === "chat.clear") {
          var byId = ev.data.user_id, byLogin = ev.data.user_login;
          if (byId ? it.dataset.userId === String(byId) : !byLogin || it.dataset.user === byLogin) it.remove();
        }
      }
    }
  };

  // Alerts play from the server's queue: every page of this overlay shows what its state says
  // (`event: alerts` frames, and GET /o/<name>/alerts on every (re)connect). The page says
  // whether OBS has it on air; the queue waits while no page of the overlay is.
  var preview = /[?&]preview=1\b/.test(location.search);
  var alerts = {
    state: null, seq: -1, received: 0, el: null, shown: null, done: null, timer: null, audio: null,
    onAir: document.visibilityState === "visible",
    page: Math.random().toString(36).slice(2) + Date.now().toString(36),
    apply: function (s) {
      if (!s || typeof s.seq !== "number" || s.seq < this.seq) return;
      this.seq = s.seq; this.state = s; this.received = Date.now();
      this.draw();
    },
    // What this page shows: the alert on screen if this page is on air (a preview always
    // shows, silently), else nothing.
    draw: function () {
      var s = this.state, p = s && s.playing, de = document.documentElement;
      if (s) { de.dataset.alertsPaused = s.paused; de.dataset.alertsMuted = s.muted; }
      if (s && s.muted) this.silence();
      if (!p || !(this.onAir || preview) || p.play === this.done) { this.leave(); return; }
      if (this.shown === p.play) return;
      var left = p.remaining_ms - (Date.now() - this.received);
      if (left <= 0) { this.leave(); return; }
      this.leave(true);
      var el = fragment(p.html || "", p.id);
      if (p.replay) { el.classList.add("alert-replay"); el.dataset.replay = "true"; }
      el.dataset.play = p.play;
      // A variation's text delay: the message shows that long after the alert starts.
      if (p.text_delay_ms > 0) {
        el.dataset.textDelay = p.text_delay_ms;
        var wait = p.text_delay_ms - (p.duration_ms - p.remaining_ms);
        setTimeout(function () { el.classList.add("alert-text-shown"); }, Math.max(0, wait));
      }
      root.innerHTML = "";
      root.appendChild(el);
      this.el = el; this.shown = p.play;
      // Sound only for an alert that is just starting (not one joined halfway).
      if (opts.sound && s.sound !== false && !s.muted && !preview && p.duration_ms - p.remaining_ms < 1500) this.sound(p);
      var self = this, play = p.play;
      this.timer = setTimeout(function () { self.done = play; self.leave(); }, left);
      document.dispatchEvent(new CustomEvent("overlayd:alert", { detail: p }));
    },
    leave: function (now) {
      clearTimeout(this.timer); this.timer = null;
      this.silence();
      if (this.el) { if (now) this.el.remove(); else removeItem(this.el); }
      this.el = null; this.shown = null;
    },
    silence: function () { if (this.audio) { try { this.audio.pause(); } catch (e) {} this.audio = null; } },
    sound: function (p) {
      try {
        var a = new Audio(p.sound_url || settings.sound_url || ("/themes/" + encodeURIComponent(settings.theme) + "/sound/" + encodeURIComponent(p.kind)));
        var volume = typeof p.volume === "number" ? p.volume : (opts.volume || 0.6);
        a.volume = Math.min(1, Math.max(0, volume));
        this.audio = a;
        var played = a.play();
        if (played && played.catch) played.catch(function () {});
      } catch (e) { /* no audio in this browser: alerts still show */ }
    },
    fetch: function () {
      var self = this;
      fetch("/o/" + encodeURIComponent(settings.name) + "/alerts", { cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (s) { self.apply(s); })
        .catch(function () {});
    },
    report: function (gone) {
      if (preview) return;
      var body = JSON.stringify({ page: this.page, on_air: gone ? null : this.onAir });
      var url = "/o/" + encodeURIComponent(settings.name) + "/presence";
      if (gone && navigator.sendBeacon) { navigator.sendBeacon(url, body); return; }
      var self = this;
      fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: body })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (a) { if (a && a.seq !== self.seq) self.fetch(); })
        .catch(function () {});
    },
    setOnAir: function (on) {
      if (on === this.onAir) return;
      this.onAir = on;
      document.documentElement.dataset.onAir = on;
      this.report();
      this.draw();
    }
  };

  // Widgets (labels, counter, timer, credits) show state the server keeps: every page of the
  // overlay is sent it rendered (`event: widget`) and fetches it on every (re)connect, so a
  // reload shows the same count and the same time left. A timer's clock ticks here, from the
  // server's end time and clock.
  var isWidget = ["labels", "counter", "timer", "credits", "hypetrain", "poll"].indexOf(settings.kind) >= 0;
  var sampleMode = /[?&]sample=1\b/.test(location.search);
  var widget = {
    seq: -1, state: null, offset: 0, current: 0, shownAt: 0, pending: null,
    apply: function (w, sample) {
      if (!w || typeof w.seq !== "number" || w.seq < this.seq || (sampleMode && !sample)) return;
      this.seq = w.seq; this.state = w.state || {};
      var serverNow = this.state.now || (this.state.timer && this.state.timer.now);
      if (serverNow) this.offset = serverNow - Date.now();
      // A credits roll takes new names at the end of a pass: redrawing would start it over.
      var roll = root.querySelector(".credits-roll");
      if (roll && roll.getAnimations && roll.getAnimations().length) { this.pending = w.html; return; }
      this.draw(w.html);
    },
    draw: function (html) {
      this.pending = null;
      root.innerHTML = "";
      root.appendChild(fragment(html || "", "widget"));
      var roll = root.querySelector(".credits-roll"), self = this;
      if (roll) {
        var at = /[?&]at=(\d+(?:\.\d+)?)/.exec(location.search);
        if (at) roll.style.animationDelay = "-" + at[1] + "s";
        roll.addEventListener("animationiteration", function () { if (self.pending !== null) self.draw(self.pending); });
      }
      this.tick(); this.rotate(true);
      document.documentElement.dataset.widgetSeq = this.seq;
      document.dispatchEvent(new CustomEvent("overlayd:widget", { detail: this.state }));
    },
    // The clocks, every quarter second: a timer's `[data-timer-clock]`, a hype train's or a
    // poll's `[data-clock]` (time left until `ends_at`); and the hype train or poll hidden once
    // its `hide_at` has passed.
    tick: function () {
      var s = this.state || {}, now = Date.now() + this.offset;
      if (typeof s.ends_at === "number") {
        var clocks = root.querySelectorAll("[data-clock]");
        for (var c = 0; c < clocks.length; c++) clocks[c].textContent = clock(Math.max(0, s.ends_at - now));
      }
      if (typeof s.hide_at === "number") root.hidden = now >= s.hide_at;
      var t = s.timer;
      if (!t || t.error) return;
      var left = t.running ? Math.max(0, t.ends_at - (Date.now() + this.offset)) : t.remaining_ms;
      var clocks = root.querySelectorAll("[data-timer-clock]");
      for (var i = 0; i < clocks.length; i++) clocks[i].textContent = clock(left);
      var box = root.querySelector(".timer");
      if (box) { box.classList.toggle("is-finished", t.started && left <= 0); box.classList.toggle("is-running", t.running && left > 0); }
      document.documentElement.dataset.timerLeft = Math.ceil(left / 1000);
    },
    // Several labels with `rotate_s`: one at a time (`.label-current`), in turn.
    rotate: function (redrawn) {
      var box = root.querySelector(".labels"), every = (this.state && this.state.rotate_s) || 0;
      if (!box) return;
      var items = box.querySelectorAll("[data-label]");
      if (items.length < 2 || every <= 0) { box.classList.remove("is-rotating"); return; }
      box.classList.add("is-rotating");
      if (!redrawn && Date.now() - this.shownAt >= every * 1000) { this.current++; this.shownAt = Date.now(); }
      if (!this.shownAt) this.shownAt = Date.now();
      var n = this.current % items.length;
      for (var i = 0; i < items.length; i++) items[i].classList.toggle("label-current", i === n);
    },
    fetch: function () {
      var self = this;
      fetch("/o/" + encodeURIComponent(settings.name) + "/widget" + (sampleMode ? "?sample=1" : ""), { cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (w) { self.apply(w, sampleMode); })
        .catch(function () {});
    }
  };
  function clock(ms) {
    var s = Math.ceil(ms / 1000), h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, r = s % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    return (h > 0 ? h + ":" + two(m) : two(m)) + ":" + two(r);
  }
  if (isWidget) {
    setInterval(function () { widget.tick(); }, 250);
    setInterval(function () { widget.rotate(false); }, 1000);
  }

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
      case "alerts": break; // played from the queue's state (see `alerts`)
      case "events": list.add(ev); break;
      default: whole.add(ev);
    }
  }

  // ---- theme reloads --------------------------------------------------------------------
  function themeReloaded(info) {
    errorBox.hidden = true;
    errorBox.textContent = "";
    if (isWidget) widget.fetch();
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

  // ---- OBS: on air is *active* (program output); *visible* also counts the Studio Mode
  // preview and projectors, so it never starts an alert. Nothing fires at page load: start
  // from document.visibilityState. A source shown nowhere is hidden and its timers stall.
  if (settings.kind === "alerts") {
    document.documentElement.dataset.onAir = alerts.onAir;
    if (window.obsstudio) {
      window.addEventListener("obsSourceActiveChanged", function (e) {
        alerts.setOnAir(!!(e.detail && e.detail.active));
      });
    }
    document.addEventListener("visibilitychange", function () {
      var visible = document.visibilityState === "visible";
      // In OBS, visible again may be the preview only: wait for obsSourceActiveChanged.
      if (!visible || !window.obsstudio) alerts.setOnAir(visible);
    });
    alerts.report();
    setInterval(function () { alerts.report(); }, 5000);
    window.addEventListener("pagehide", function () { alerts.report(true); });
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
      applyFields(data.css);
      trim();
    } else if (type === "alerts") {
      if (settings.kind === "alerts") alerts.apply(data);
    } else if (type === "widget") {
      if (isWidget) widget.apply(data);
    } else if (type === "resync") {
      if (settings.kind === "alerts") alerts.fetch();
      if (isWidget) widget.fetch();
      document.dispatchEvent(new CustomEvent("overlayd:resync", { detail: data }));
    } else {
      place(data);
    }
    document.dispatchEvent(new CustomEvent("overlayd:event", { detail: { type: type, data: data } }));
  }

  // Direct: one EventSource for this page (the browser resumes with Last-Event-ID).
  function direct(url) {
    var source = new EventSource(url);
    KINDS.concat(["theme", "theme-error", "resync", "overlay", "alerts", "widget"]).forEach(function (type) {
      source.addEventListener(type, function (e) {
        var data;
        try { data = JSON.parse(e.data); } catch (err) { return; }
        handle(type, data);
      });
    });
    source.onopen = function () {
      document.documentElement.dataset.connected = "direct";
      if (settings.kind === "alerts") alerts.fetch();
      if (isWidget) widget.fetch();
    };
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
          if (settings.kind === "alerts") alerts.fetch();
          if (isWidget) widget.fetch();
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
    // Alerts come from the queue's state, not from history; every other kind redraws from the
    // recent history.
    var since = settings.kind === "alerts" || isWidget ? null : "0";
    var forceDirect = /[?&]transport=direct\b/.test(location.search);
    if (window.SharedWorker && !forceDirect) {
      try { return shared(since); } catch (e) { /* fall back to a direct stream */ }
    }
    return direct(settings.events + (since !== null ? "?since=" + encodeURIComponent(since) : ""));
  }
  // The dashboard's preview of a form (`?sample=1`): sample events of every kind it shows.
  if (sampleMode && isWidget) {
    widget.fetch();
  } else if (sampleMode) {
    fetch("/o/" + encodeURIComponent(settings.name) + "/samples").then(function (r) { return r.json(); })
      .then(function (list) {
        list.forEach(function (ev) {
          if (settings.kind === "alerts") { if (!root.firstChild) root.appendChild(fragment(ev.html, ev.id)); }
          else place(ev);
        });
        document.documentElement.dataset.samples = list.length;
      }).catch(function () {});
  }
  window.overlayd = { settings: settings, stream: connect() };
})();
