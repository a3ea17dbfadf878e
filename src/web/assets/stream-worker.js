// overlayd stream worker: one SharedWorker per origin holds a single multiplexed SSE stream
// (/events?o=a,b,c) for every overlay page open in this browser profile. Browsers allow six
// HTTP/1.1 connections per host and OBS's browser sources all share one profile, so with one
// EventSource per page the seventh overlay would never receive anything.
"use strict";
var overlays = {};      // name -> array of ports
var lastId = null;      // highest event id seen: a reconnect with more overlays resumes here
var source = null;
var pendingReady = [];  // ports waiting for the stream that includes their overlay
var reconnectTimer = null;
var KINDS = ["chat.message", "chat.delete", "chat.clear", "follow", "sub", "resub", "subgift",
  "giftbomb", "cheer", "raid", "redemption", "announcement", "stream.online", "stream.offline",
  "hypetrain.begin", "hypetrain.progress", "hypetrain.end", "gift", "tip", "poll.begin",
  "poll.progress", "poll.end", "prediction.begin", "prediction.progress", "prediction.lock",
  "prediction.end"];
var CONTROL = ["theme", "theme-error", "resync", "overlay", "alerts", "widget"];

function post(ports, msg) { ports.forEach(function (p) { try { p.postMessage(msg); } catch (e) {} }); }
function allPorts() {
  var out = [];
  Object.keys(overlays).forEach(function (n) { out = out.concat(overlays[n]); });
  return out;
}

function connect() {
  reconnectTimer = null;
  if (source) source.close();
  var names = Object.keys(overlays);
  if (!names.length) { source = null; return; }
  var url = "/events?o=" + names.map(encodeURIComponent).join(",");
  if (lastId !== null) url += "&since=" + lastId;
  source = new EventSource(url);
  var waiting = pendingReady; pendingReady = [];
  source.onopen = function () { post(waiting, { type: "ready" }); waiting = []; };
  KINDS.forEach(function (kind) {
    source.addEventListener(kind, function (e) {
      var data; try { data = JSON.parse(e.data); } catch (err) { return; }
      if (lastId === null || data.id > lastId) lastId = data.id;
      post(overlays[data.overlay] || [], { type: kind, data: data });
    });
  });
  CONTROL.forEach(function (kind) {
    source.addEventListener(kind, function (e) {
      var data; try { data = JSON.parse(e.data); } catch (err) { return; }
      var ports = kind === "overlay" || kind === "widget" ? (overlays[data.name] || [])
        : kind === "alerts" ? (overlays[data.overlay] || []) : allPorts();
      post(ports, { type: kind, data: data });
    });
  });
}

onconnect = function (e) {
  var port = e.ports[0];
  port.onmessage = function (m) {
    var msg = m.data || {};
    if (msg.type === "join") {
      var fresh = !overlays[msg.name];
      (overlays[msg.name] = overlays[msg.name] || []).push(port);
      if (fresh || !source) {
        // Reconnect (debounced: a scene loads many sources at once) with the new list.
        pendingReady.push(port);
        if (!reconnectTimer) reconnectTimer = setTimeout(connect, 30);
      } else if (source.readyState === 1) {
        port.postMessage({ type: "ready" });
      } else {
        pendingReady.push(port);
      }
    } else if (msg.type === "leave") {
      var ports = overlays[msg.name] || [];
      var i = ports.indexOf(port);
      if (i >= 0) ports.splice(i, 1);
      if (!ports.length) delete overlays[msg.name];
    }
  };
  port.start();
};
