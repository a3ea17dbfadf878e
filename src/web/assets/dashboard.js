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
})();
