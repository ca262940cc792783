/* Upshift dashboard: live updates (and the viewer's time zone on the calendar).
   Plain JS, no library. Everything works without it: it only re-fetches the page's main
   fragment (?fragment=main) when the server-sent event stream /dashboard/stream says
   "changed", and swaps it in, so the page updates without a reload. */
(function () {
  "use strict";
  var body = document.body;

  // Calendar: show times in the viewer's zone too, unless the URL already names one.
  if (body.dataset.page === "calendar") {
    var url = new URL(window.location.href);
    var zone = null;
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { zone = null; }
    if (zone && !url.searchParams.has("tz")) {
      url.searchParams.set("tz", zone);
      window.location.replace(url.toString());
      return;
    }
  }

  var main = document.getElementById("main");
  var status = document.getElementById("live-status");
  if (!main || !main.dataset.live || !window.EventSource || !window.fetch) return;

  var busy = false, again = false, updates = 0;

  function say(text) { if (status) status.textContent = text; }

  function typing() {
    // do not swap the form someone is filling in; refresh when they leave it
    var el = document.activeElement;
    return el && main.contains(el) && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT");
  }

  function refresh() {
    if (busy || typing()) { again = true; return; }
    busy = true;
    var url = new URL(window.location.href);
    url.searchParams.set("fragment", "main");
    fetch(url.toString(), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.redirected || r.status === 401 || r.status === 403) { window.location.reload(); return null; }
        return r.ok || r.status === 400 ? r.text() : null;
      })
      .then(function (html) {
        if (html === null || html === undefined) return;
        main.innerHTML = html;
        updates += 1;
        main.dataset.updates = String(updates);
        say("live · updated " + new Date().toLocaleTimeString());
      })
      .catch(function () { say("live · update failed, retrying"); })
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  main.addEventListener("focusout", function () { if (again) { setTimeout(refresh, 0); } });

  var stream = new EventSource("/dashboard/stream");
  stream.addEventListener("changed", refresh);
  // (re)connected: fetch once for whatever changed while the stream was not listening
  stream.addEventListener("open", function () { say("live"); refresh(); });
  stream.addEventListener("error", function () { say("live · reconnecting"); });
})();
