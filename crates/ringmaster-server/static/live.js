// Keeps the live part of a dashboard page current: every few seconds it
// fetches the same page and swaps in the new #live section, unless the
// user is typing in a form inside it. Pages work without it.
(function () {
  var live = document.getElementById('live');
  if (!live) { return; }
  var every = 5000;
  function busy() {
    var el = document.activeElement;
    return el && live.contains(el) && (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT');
  }
  function refresh() {
    if (busy()) { setTimeout(refresh, every); return; }
    fetch(location.href, { credentials: 'same-origin', redirect: 'manual' })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html) {
          var next = new DOMParser().parseFromString(html, 'text/html').getElementById('live');
          if (next && next.innerHTML !== live.innerHTML) { live.innerHTML = next.innerHTML; }
        }
      })
      .catch(function () {})
      .then(function () { setTimeout(refresh, every); });
  }
  setTimeout(refresh, every);
})();
