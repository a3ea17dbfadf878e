// overlayd viewer page: the channel's recent events, newest first, live over SSE.
(function () {
  "use strict";
  var cfg = window.OVERLAYD_CHANNEL, list = document.getElementById("events");
  var KINDS = ["follow", "sub", "resub", "subgift", "giftbomb", "cheer", "raid", "redemption", "announcement",
    "stream.online", "stream.offline", "hypetrain.begin", "hypetrain.progress", "hypetrain.end"];
  var source = new EventSource(cfg.events);
  KINDS.forEach(function (kind) {
    source.addEventListener(kind, function (e) {
      var ev; try { ev = JSON.parse(e.data); } catch (err) { return; }
      if (!ev.html || list.querySelector('[data-id="' + ev.id + '"]')) return;
      var item = document.createElement("div");
      item.className = "item"; item.dataset.id = ev.id;
      item.innerHTML = ev.html; // rendered and escaped by the theme on the server
      list.insertBefore(item, list.firstChild);
      while (list.children.length > cfg.limit) list.removeChild(list.lastChild);
    });
  });
  source.onopen = function () { document.documentElement.dataset.connected = "1"; };
})();
