// Live updates: the console's event stream (same origin, the session cookie) reloads the
// list when a request opens or is decided, and a request's page when that request changes.
(function () {
  "use strict";
  var watch = document.body.getAttribute("data-watch");
  if (!watch || !window.EventSource) return;
  var pending = null;
  function reload() {
    if (pending) return;
    pending = setTimeout(function () { window.location.reload(); }, 250);
  }
  var source = new EventSource("/api/v1/events");
  ["request_opened", "request_decided", "request_expired", "vote_counted"].forEach(function (name) {
    source.addEventListener(name, function (event) {
      if (watch === "all") return reload();
      try {
        if (JSON.parse(event.data).request_id === watch) reload();
      } catch (e) { /* a frame we cannot read changes nothing */ }
    });
  });
  window.addEventListener("beforeunload", function () { source.close(); });
})();
