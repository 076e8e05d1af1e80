// The deployments board refreshes itself: every few seconds it asks for the board alone
// (an HTML fragment the server rendered and escaped) and swaps it in when it changed. The
// page itself is never reloaded. Served as a file of its own: the page's CSP allows no
// inline script.
(() => {
  "use strict";
  const board = document.getElementById("board");
  const live = document.getElementById("live");
  if (!board || !live) return;
  const source = board.dataset.src;
  const every = Number(board.dataset.every) || 2000;
  let etag = board.dataset.etag || "";
  let timer = null;

  const show = (state, text) => {
    live.dataset.state = state;
    live.textContent = text;
  };

  async function refresh() {
    timer = null;
    try {
      const headers = etag ? { "If-None-Match": etag } : {};
      const response = await fetch(source, { headers, cache: "no-store" });
      if (response.status === 200) {
        const html = await response.text();
        etag = response.headers.get("ETag") || "";
        board.innerHTML = html;
        board.dataset.etag = etag;
      } else if (response.status !== 304) {
        throw new Error(`the board answered ${response.status}`);
      }
      show("live", `Live · checked ${new Date().toLocaleTimeString()}`);
    } catch (error) {
      show("offline", "Offline · retrying");
    }
    schedule();
  }

  function schedule() {
    if (timer === null && !document.hidden) timer = setTimeout(refresh, every);
  }

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) {
      clearTimeout(timer);
      timer = null;
    } else {
      clearTimeout(timer);
      timer = null;
      refresh();
    }
  });
  schedule();
})();
