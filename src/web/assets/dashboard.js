// overlayd dashboard: fills in OBS URLs, scales previews, sends test events, polls /health.
(function () {
  "use strict";
  document.querySelectorAll(".url input").forEach(function (input) {
    input.value = location.origin + input.dataset.path;
  });
  document.querySelectorAll("button.copy").forEach(function (b) {
    b.addEventListener("click", function () {
      var input = b.parentNode.querySelector("input");
      input.select();
      var done = function () { b.textContent = "Copied!"; setTimeout(function () { b.textContent = "Copy URL"; }, 1500); };
      if (navigator.clipboard) navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); });
      else { document.execCommand("copy"); done(); }
    });
  });
  function scale() {
    document.querySelectorAll(".preview iframe").forEach(function (f) {
      var w = +f.dataset.w, h = +f.dataset.h, box = f.parentNode.clientWidth;
      f.style.width = w + "px"; f.style.height = h + "px";
      f.style.transform = "scale(" + (box / w) + ")";
    });
  }
  window.addEventListener("resize", scale); scale();

  var result = document.getElementById("test-result");
  document.querySelectorAll("button.test").forEach(function (b) {
    b.addEventListener("click", function () {
      var channel = document.getElementById("test-channel").value;
      fetch("/api/events", { method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ channel: channel, kind: b.dataset.kind, data: {} }) })
        .then(function (r) { return r.json().then(function (j) { return [r.status, j]; }); })
        .then(function (p) {
          result.textContent = p[0] < 300 ? "sent " + b.dataset.kind + " #" + p[1].id + " to " + p[1].subscribers + " stream(s)" : p[1].error;
        })
        .catch(function (e) { result.textContent = String(e); });
    });
  });

  function health() {
    fetch("/health").then(function (r) { return r.json(); }).then(function (h) {
      document.getElementById("health").textContent = h.status + " · " + h.subscribers + " open stream(s) · up " + h.uptime_s + " s";
      var ul = document.getElementById("sources"); ul.innerHTML = "";
      var names = Object.keys(h.sources || {});
      if (!names.length) ul.innerHTML = "<li class=muted>no sources running</li>";
      names.forEach(function (n) {
        var s = h.sources[n], li = document.createElement("li");
        var st = document.createElement("span"); st.className = "state state-" + s.state; st.textContent = s.state;
        li.appendChild(st); li.appendChild(document.createTextNode(" " + n + ": " + s.detail));
        if (s.last_error && s.state !== "error" && s.state !== "backoff") {
          var le = document.createElement("div"); le.className = "muted last-error";
          le.textContent = "last error, " + new Date(s.last_error_ms).toLocaleTimeString() + ": " + s.last_error;
          li.appendChild(le);
        }
        ul.appendChild(li);
      });
      var errs = document.getElementById("errors"); errs.innerHTML = "";
      (h.theme_errors || []).concat(h.overlay_errors || []).concat((h.render_errors || []).map(function (e) { return "failed to render: " + e; })).forEach(function (e) {
        var d = document.createElement("div"); d.className = "theme-error"; d.textContent = e; errs.appendChild(d);
      });
    }).catch(function () { document.getElementById("health").textContent = "server not reachable"; });
  }
  health(); setInterval(health, 3000);

  // Twitch login: device code (shown here, approved on twitch.tv/activate on any device), or a
  // browser redirect when the server has a client secret.
  var tState = document.getElementById("twitch-state"), tCode = document.getElementById("twitch-code");
  var tDevice = document.getElementById("twitch-device"), tBrowser = document.getElementById("twitch-browser");
  var tLogout = document.getElementById("twitch-logout");
  function twitch() {
    fetch("/auth/status").then(function (r) { return r.json(); }).then(function (s) {
      if (!s.configured) {
        tState.textContent = "Set [twitch] client_id in overlay.toml to log in (see the README).";
        tDevice.hidden = tBrowser.hidden = tLogout.hidden = true;
        return;
      }
      tState.textContent = s.logged_in ? "Logged in as " + s.login + "." : (s.state ? s.state.detail : "Not logged in.");
      tDevice.hidden = s.logged_in; tBrowser.hidden = s.logged_in || !s.browser_login; tLogout.hidden = !s.logged_in;
      if (s.device) {
        tCode.hidden = false; tCode.textContent = "";
        var a = document.createElement("a"); a.href = s.device.verification_uri; a.target = "_blank"; a.rel = "noopener";
        a.textContent = s.device.verification_uri;
        tCode.appendChild(document.createTextNode("Open ")); tCode.appendChild(a);
        tCode.appendChild(document.createTextNode(" and enter ")); var b = document.createElement("b"); b.textContent = s.device.user_code; tCode.appendChild(b);
      } else { tCode.hidden = true; }
    }).catch(function () {});
  }
  tDevice.addEventListener("click", function () { fetch("/auth/device", { method: "POST" }).then(twitch); });
  tLogout.addEventListener("click", function () { fetch("/auth/logout", { method: "POST" }).then(twitch); });
  twitch(); setInterval(twitch, 2000);

  // ---- alerts: each alert overlay's queue with its buttons, safe mode and the recent events
  // of every channel with a replay button per row. Every button is the HTTP API.
  function post(path, body, method) {
    return fetch(path, { method: method || "POST", headers: { "content-type": "application/json" },
      body: body ? JSON.stringify(body) : "" })
      .then(function (r) { return r.json().then(function (j) { if (!r.ok) throw new Error(j.error); return j; }); })
      .catch(function (e) { result.textContent = String(e.message || e); });
  }
  function text(el, value) { el.textContent = value; return el; }
  var channelsWithAlerts = [];
  document.querySelectorAll(".channel[data-alerts-channel=true]").forEach(function (p) { channelsWithAlerts.push(p.dataset.channel); });
  document.querySelectorAll(".alert-queue").forEach(function (box) {
    box.querySelectorAll("button[data-action]").forEach(function (b) {
      b.addEventListener("click", function () {
        var path = "/api/channels/" + encodeURIComponent(box.dataset.channel) + "/alerts/" + b.dataset.action +
          "?overlay=" + encodeURIComponent(box.dataset.alerts);
        post(path).then(alertState);
      });
    });
  });
  function drawQueue(box, o) {
    var line = o.paused ? "Paused" : o.held ? "Waiting until the overlay is on air in OBS" : "Playing as alerts come";
    if (o.muted) line += " · muted";
    line += " · " + o.queued_count + " queued (bound " + o.max_queue + ")";
    if (o.refused) line += " · " + o.refused + " refused while full";
    if (!o.hold_off_air) line += " · plays without waiting for OBS";
    text(box.querySelector(".state-line"), line);
    text(box.querySelector(".playing"), o.playing ? "Now: " + o.playing.summary + (o.playing.replay ? " (replay)" : "") : "Nothing on screen");
    var ol = box.querySelector(".queued"); ol.innerHTML = "";
    o.queued.slice(0, 8).forEach(function (a) { ol.appendChild(text(document.createElement("li"), a.summary + (a.replay ? " (replay)" : ""))); });
    if (o.queued_count > 8) ol.appendChild(text(document.createElement("li"), "… and " + (o.queued_count - 8) + " more")).className = "muted";
    box.querySelector("[data-action=pause]").hidden = o.paused;
    box.querySelector("[data-action=resume]").hidden = !o.paused;
    box.querySelector("[data-action=mute]").hidden = o.muted;
    box.querySelector("[data-action=unmute]").hidden = !o.muted;
  }
  function alertState(s) {
    if (!s || !s.overlays) return;
    s.overlays.forEach(function (o) {
      var box = document.querySelector('.alert-queue[data-alerts="' + CSS.escape(o.overlay) + '"]');
      if (box) drawQueue(box, o);
    });
    var banner = document.querySelector('.safe-banner[data-channel="' + CSS.escape(s.channel) + '"]');
    var end = document.querySelector('.safe-end[data-channel="' + CSS.escape(s.channel) + '"]');
    if (banner) {
      banner.hidden = !s.safe_mode; end.hidden = !s.safe_mode;
      if (s.safe_mode) {
        var m = Math.ceil(s.safe_mode.remaining_s / 60);
        banner.textContent = "Safe mode on: queued alerts cleared, " + (s.safe_mode.all ? "every alert" : "follow alerts") +
          " stopped for " + m + " more minute" + (m === 1 ? "" : "s") + ".";
      }
    }
  }
  function alertsPoll() {
    channelsWithAlerts.forEach(function (c) {
      fetch("/api/channels/" + encodeURIComponent(c) + "/alerts").then(function (r) { return r.json(); }).then(alertState).catch(function () {});
    });
  }
  alertsPoll(); setInterval(alertsPoll, 1500);
  document.querySelectorAll("button.safe-mode").forEach(function (b) {
    b.addEventListener("click", function () { post("/api/channels/" + encodeURIComponent(b.dataset.channel) + "/safe-mode", {}).then(alertState); });
  });
  document.querySelectorAll("button.safe-end").forEach(function (b) {
    b.addEventListener("click", function () { post("/api/channels/" + encodeURIComponent(b.dataset.channel) + "/safe-mode", null, "DELETE").then(alertState); });
  });

  // ---- widgets: counters, timers and sessions, each button the HTTP API; a card's preview
  // can show a made-up session instead of the live one.
  function widgetPath(box, op) {
    var c = "/api/channels/" + encodeURIComponent(box.dataset.channel);
    if (box.dataset.widget === "counter") return c + "/counters/" + encodeURIComponent(box.dataset.name);
    if (box.dataset.widget === "timer") return c + "/timers/" + encodeURIComponent(box.dataset.name);
    return c + "/session/" + op;
  }
  document.querySelectorAll(".widget-controls").forEach(function (box) {
    box.querySelectorAll("button[data-op]").forEach(function (b) {
      b.addEventListener("click", function () {
        var body = { op: b.dataset.op };
        if (b.dataset.seconds) body.seconds = Number(b.dataset.seconds);
        post(widgetPath(box, b.dataset.op), body).then(function (j) {
          if (!j) return;
          var line = j.value !== undefined ? box.dataset.name + " = " + j.value
            : j.display !== undefined ? (j.running ? "running, " : "paused, ") + j.display + " left"
            : "new session started";
          text(box.querySelector(".value"), line);
        });
      });
    });
    var toggle = box.querySelector(".sample-toggle"), frame = box.parentNode.querySelector(".preview iframe");
    if (toggle && frame) toggle.addEventListener("change", function () {
      frame.src = "/o/" + encodeURIComponent(box.parentNode.dataset.overlay) + "?preview=1" + (toggle.checked ? "&sample=1" : "");
    });
  });
  function sessionLine(s) {
    var t = s.totals, since = new Date(s.started_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return "Session since " + since + (s.live ? " (live)" : s.ended_at ? " (stream ended)" : "") + ": " +
      t.follows + " follows, " + t.subs + " subs, " + t.gifted + " gifted, " + t.bits + " bits, " +
      t.raids + " raids, " + t.money_formatted + ", " + t.chatters + " chatters";
  }
  function sessions() {
    document.querySelectorAll(".session[data-channel]").forEach(function (box) {
      fetch("/api/channels/" + encodeURIComponent(box.dataset.channel) + "/session").then(function (r) { return r.json(); })
        .then(function (s) { text(box.querySelector(".session-line"), sessionLine(s)); }).catch(function () {});
    });
  }
  sessions(); setInterval(sessions, 3000);
  document.querySelectorAll("button.session-reset").forEach(function (b) {
    b.addEventListener("click", function () {
      if (!confirm("Start a new session for #" + b.dataset.channel + "? Labels and credits start empty.")) return;
      post("/api/channels/" + encodeURIComponent(b.dataset.channel) + "/session/reset").then(sessions);
    });
  });

  function recent() {
    document.querySelectorAll("ul.recent").forEach(function (ul) {
      var c = ul.dataset.channel, alertable = channelsWithAlerts.indexOf(c) >= 0;
      fetch("/api/channels/" + encodeURIComponent(c) + "/events?limit=60").then(function (r) { return r.json(); }).then(function (j) {
        var rows = (j.events || []).filter(function (e) { return e.kind.indexOf("chat.") !== 0; }).slice(0, 10);
        ul.innerHTML = "";
        if (!rows.length) ul.appendChild(text(document.createElement("li"), "no events yet")).className = "muted";
        rows.forEach(function (e) {
          var li = document.createElement("li"); li.dataset.event = e.id;
          li.appendChild(text(document.createElement("span"), new Date(e.at).toLocaleTimeString() + " · " + e.kind + " · " +
            (e.data.user_name || e.data.user_login || (e.data.author && e.data.author.display_name) || "")));
          if (alertable) {
            var b = text(document.createElement("button"), "Replay"); b.className = "replay";
            b.addEventListener("click", function () { post("/api/channels/" + encodeURIComponent(c) + "/alerts/replay", { id: e.id }).then(alertState); });
            li.appendChild(b);
          }
          ul.appendChild(li);
        });
      }).catch(function () {});
    });
  }
  recent(); setInterval(recent, 3000);

  // ---- the overlay editor: a form over overlays/<name>.toml. Options of the kind and the
  // fields of its theme, typed; a live preview that follows every change before saving (the
  // page's ?field.<name>= overrides); Save writes the file, keeping its comments.
  var editor = document.getElementById("editor");
  // Fonts most machines with OBS have; any installed font's name works.
  var fonts = el("datalist", { id: "fonts" });
  ["Inter", "Segoe UI", "Arial", "Verdana", "Tahoma", "Trebuchet MS", "Georgia", "Times New Roman", "Courier New",
    "Consolas", "Cascadia Mono", "JetBrains Mono", "Comic Sans MS", "Impact", "Helvetica", "Roboto", "Open Sans"]
    .forEach(function (f) { fonts.appendChild(el("option", { value: f })); });
  document.body.appendChild(fonts);
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }
  function control(key, type, value, spec, assets) {
    var input;
    spec = spec || {};
    if (type === "toggle") {
      input = el("input", { type: "checkbox" }); input.checked = !!value;
    } else if (type === "number") {
      input = el("input", { type: "number", step: spec.step || "any" }); input.value = value;
      if (spec.min !== undefined) input.min = spec.min; if (spec.max !== undefined) input.max = spec.max;
    } else if (type === "slider") {
      input = el("input", { type: "range", min: spec.min, max: spec.max, step: spec.step || 1 }); input.value = value;
    } else if (type === "select") {
      input = el("select");
      (spec.options || []).forEach(function (o) { var opt = el("option", { value: o[0], text: o[1] }); input.appendChild(opt); });
      input.value = value;
    } else if (type === "image" || type === "sound") {
      input = el("select");
      (assets[type === "image" ? "images" : "sounds"] || []).forEach(function (p) { input.appendChild(el("option", { value: p, text: p })); });
      input.value = value;
    } else if (type === "json") {
      input = el("textarea", { rows: 2 }); input.value = JSON.stringify(value);
    } else {
      input = el("input", { type: "text" }); input.value = value === null ? "" : value;
      if (type === "color") input.className = "color";
      if (type === "font") input.setAttribute("list", "fonts");
    }
    input.dataset.key = key; input.dataset.type = type;
    return input;
  }
  function read(input) {
    var t = input.dataset.type;
    if (t === "toggle") return input.checked;
    if (t === "number" || t === "slider") return input.value === "" ? null : Number(input.value);
    if (t === "json") { try { return JSON.parse(input.value); } catch (e) { return input.value; } }
    return input.value;
  }
  function row(label, input, hint) {
    var picker = null;
    if (input.dataset.type === "color") {
      picker = el("input", { type: "color", title: "pick" });
      var hex = (input.value.match(/^#[0-9a-f]{6}/i) || ["#000000"])[0];
      picker.value = hex;
      picker.addEventListener("input", function () { input.value = picker.value; input.dispatchEvent(new Event("input", { bubbles: true })); });
    }
    return el("label", { class: "row" }, [el("span", { text: label }), input, picker,
      hint ? el("small", { class: "muted", text: hint }) : null,
      el("span", { class: "error", "data-error-for": input.dataset.key })]);
  }
  function openEditor(name) {
    fetch("/api/overlays/" + encodeURIComponent(name) + "/form").then(function (r) { return r.json(); }).then(function (f) {
      editor.innerHTML = ""; editor.hidden = false; editor.dataset.overlay = name;
      var form = el("form", { class: "overlay-form" });
      form.appendChild(el("h2", { text: "Edit " + name + " (" + f.kind + ")" }));
      form.appendChild(el("p", { class: "muted", text: f.has_file ? "Writes overlays/" + name + ".toml (its comments and other keys are kept)." : "A built-in overlay: saving writes overlays/" + name + ".toml." }));
      (f.errors || []).forEach(function (e) { form.appendChild(el("div", { class: "theme-error", text: e })); });
      var general = el("fieldset", {}, [el("legend", { text: "Overlay" })]);
      general.appendChild(row("Title", control("title", "text", f.title)));
      general.appendChild(row("Channel", control("channel", "text", f.channel)));
      var theme = control("theme", "select", f.theme, { options: [] });
      document.querySelectorAll("#new-overlay select[name=theme] option").forEach(function (o) { theme.appendChild(el("option", { value: o.value, text: o.value })); });
      theme.value = f.theme;
      general.appendChild(row("Theme", theme, "Saving with another theme shows its fields next time."));
      form.appendChild(general);
      var opts = el("fieldset", {}, [el("legend", { text: "Options" })]);
      f.options.forEach(function (o) { opts.appendChild(row(o.key, control("options." + o.key, o.type, o.value), "default: " + JSON.stringify(o.default))); });
      form.appendChild(opts);
      var groups = {};
      f.fields.forEach(function (fd) {
        var g = fd.group || "Theme";
        if (!groups[g]) { groups[g] = el("fieldset", { class: "fields" }, [el("legend", { text: g })]); form.appendChild(groups[g]); }
        var input = control("fields." + fd.name, fd.type, fd.value, fd, f.assets);
        var r = row(fd.label, input, "default: " + JSON.stringify(fd.default));
        if (fd.type === "image" || fd.type === "sound") {
          var file = el("input", { type: "file", accept: fd.type === "image" ? "image/png,image/jpeg,image/gif,image/webp" : "audio/ogg,audio/mpeg,audio/wav" });
          file.addEventListener("change", function () {
            var up = file.files[0]; if (!up) return;
            fetch("/api/themes/" + encodeURIComponent(f.theme) + "/files?name=" + encodeURIComponent(up.name), { method: "POST", body: up })
              .then(function (res) { return res.json().then(function (j) { return [res.ok, j]; }); })
              .then(function (p) {
                var err = r.querySelector(".error");
                if (!p[0]) { err.textContent = p[1].error; return; }
                err.textContent = "";
                input.appendChild(el("option", { value: p[1].path, text: p[1].path })); input.value = p[1].path;
                input.dispatchEvent(new Event("input", { bubbles: true }));
              });
          });
          r.appendChild(file);
        }
        groups[g].appendChild(r);
      });
      var preview = el("iframe", { class: "form-preview", title: "preview", "data-w": f.width, "data-h": f.height });
      var box = el("div", { class: "preview", style: "aspect-ratio: " + f.width + " / " + f.height }, [preview]);
      function previewUrl() {
        var q = ["preview=1", "sample=1"];
        form.querySelectorAll("[data-key^='fields.']").forEach(function (i) {
          q.push("field." + i.dataset.key.slice(7) + "=" + encodeURIComponent(String(read(i))));
        });
        return "/o/" + encodeURIComponent(name) + "?" + q.join("&");
      }
      var timer = null;
      form.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(function () { preview.src = previewUrl(); }, 150); });
      preview.src = previewUrl();
      var status = el("span", { class: "muted save-status" });
      var save = el("button", { type: "submit", text: "Save" });
      var dup = el("button", { type: "button", class: "duplicate", text: "Duplicate" });
      var del = el("button", { type: "button", class: "delete", text: "Delete" });
      var close = el("button", { type: "button", text: "Close" });
      form.appendChild(el("div", { class: "buttons" }, [save, dup, del, close, status]));
      editor.appendChild(form); editor.appendChild(box);
      function scaleBox() { preview.style.width = f.width + "px"; preview.style.height = f.height + "px"; preview.style.transform = "scale(" + (box.clientWidth / f.width) + ")"; }
      scaleBox();
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        var body = { options: {}, fields: {} };
        form.querySelectorAll("[data-key]").forEach(function (i) {
          var k = i.dataset.key, v = read(i);
          if (k.indexOf("options.") === 0) body.options[k.slice(8)] = v;
          else if (k.indexOf("fields.") === 0) body.fields[k.slice(7)] = v;
          else body[k] = v;
        });
        // Another theme has other fields: the form shows them once saved.
        if (body.theme !== f.theme) body.fields = {};
        form.querySelectorAll(".error").forEach(function (x) { x.textContent = ""; });
        fetch("/api/overlays/" + encodeURIComponent(name), { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
          .then(function (r) { return r.json().then(function (j) { return [r.ok, j]; }); })
          .then(function (p) {
            if (p[0]) {
              status.textContent = "Saved to " + p[1].file;
              if (body.theme !== f.theme) openEditor(name);
              return;
            }
            status.textContent = "Not saved: " + p[1].error;
            (p[1].errors || []).forEach(function (x) {
              var spot = form.querySelector('[data-error-for="' + CSS.escape(x.key) + '"]');
              if (spot) spot.textContent = x.error;
            });
          });
      });
      dup.addEventListener("click", function () {
        var to = prompt("Name of the copy", name + "-copy"); if (!to) return;
        post("/api/overlays/" + encodeURIComponent(name) + "/duplicate", { name: to }).then(function (j) { if (j) location.reload(); });
      });
      del.addEventListener("click", function () {
        if (!confirm("Delete overlay " + name + "? Its file is kept as overlays/" + name + ".toml.deleted.")) return;
        post("/api/overlays/" + encodeURIComponent(name), null, "DELETE").then(function (j) { if (j) location.reload(); });
      });
      close.addEventListener("click", function () { editor.hidden = true; editor.innerHTML = ""; });
      editor.scrollIntoView();
    });
  }
  document.querySelectorAll("button.edit").forEach(function (b) { b.addEventListener("click", function () { openEditor(b.dataset.overlay); }); });
  var created = document.querySelector("form.new-overlay");
  created.addEventListener("submit", function (e) {
    e.preventDefault();
    var body = {}; new FormData(created).forEach(function (v, k) { body[k] = v; });
    fetch("/api/overlays", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
      .then(function (r) { return r.json().then(function (j) { return [r.ok, j]; }); })
      .then(function (p) {
        var err = created.querySelector(".error");
        if (p[0]) { location.hash = "edit=" + p[1].name; location.reload(); return; }
        err.textContent = p[1].error;
      });
  });
  var wanted = /edit=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (wanted) openEditor(wanted[1]);

  // ---- rehearse: the server's player of a recording (a sample, or a file read here).
  var reh = document.querySelector("form.rehearse");
  var source = reh.querySelector("select[name=source]"), fileInput = reh.querySelector("input[type=file]");
  fetch("/api/replay/samples").then(function (r) { return r.json(); }).then(function (list) {
    list.forEach(function (s) { source.appendChild(el("option", { value: "sample:" + s.name, text: s.name + " (" + s.events + " events): " + s.about })); });
    source.appendChild(el("option", { value: "file", text: "a file of mine…" }));
  });
  source.addEventListener("change", function () { fileInput.hidden = source.value !== "file"; });
  function replayStatus(s) {
    if (!s) return;
    var bar = document.querySelector(".replay-progress"), line = document.querySelector(".replay-status");
    bar.max = s.total || 1; bar.value = s.sent || 0;
    line.textContent = s.state === "idle" ? "idle" : s.state + ": " + (s.sent || 0) + " / " + s.total + " of " + s.source +
      " into #" + s.channel + " at " + s.speed + "×" + ((s.errors || []).length ? " · " + s.errors.length + " line(s) skipped: " + s.errors[0] : "");
  }
  reh.addEventListener("submit", function (e) {
    e.preventDefault();
    var body = { channel: reh.channel.value, speed: Number(reh.speed.value), loop: reh.loop.checked, counted: reh.counted.checked };
    function go() { post("/api/replay", body).then(replayStatus); }
    if (source.value === "file") {
      var f = fileInput.files[0]; if (!f) { result.textContent = "pick a recording file"; return; }
      f.text().then(function (t) { body.recording = t; go(); });
    } else { body.sample = source.value.replace(/^sample:/, ""); go(); }
  });
  reh.querySelectorAll("button[data-do]").forEach(function (b) {
    b.addEventListener("click", function () { post("/api/replay/" + b.dataset.do).then(replayStatus); });
  });
  function replayPoll() { fetch("/api/replay").then(function (r) { return r.json(); }).then(replayStatus).catch(function () {}); }
  replayPoll(); setInterval(replayPoll, 1000);
})();
