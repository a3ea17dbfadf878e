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
      (h.theme_errors || []).concat(h.overlay_errors || []).forEach(function (e) {
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
    if (!o.hold_off_air) line += " · plays without waiting for OBS";
    text(box.querySelector(".state-line"), line);
    text(box.querySelector(".playing"), o.playing ? "Now: " + o.playing.summary + (o.playing.replay ? " (replay)" : "") : "Nothing on screen");
    var ol = box.querySelector(".queued"); ol.innerHTML = "";
    o.queued.forEach(function (a) { ol.appendChild(text(document.createElement("li"), a.summary + (a.replay ? " (replay)" : ""))); });
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

  function recent() {
    document.querySelectorAll("ul.recent").forEach(function (ul) {
      var c = ul.dataset.channel, alertable = channelsWithAlerts.indexOf(c) >= 0;
      fetch("/api/channels/" + encodeURIComponent(c) + "/events?limit=60").then(function (r) { return r.json(); }).then(function (j) {
        var rows = (j.events || []).filter(function (e) { return e.kind.indexOf("chat.") !== 0; }).slice(0, 15);
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
})();
