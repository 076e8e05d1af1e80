// The deployments pages in the reader's browser. Served as a file of its own: the pages' CSP
// allows no inline script.
//
// - Every <span class="ago" data-since="ISO"> beside a time says how long ago it was, and
//   every <span class="elapsed" data-since="ISO"> how long a run has gone on: computed here,
//   so the server's HTML never changes as time passes and an unchanged board keeps its ETag.
// - A page with <main id="board" data-src=…> refreshes itself: every few seconds it asks for
//   its body alone (an HTML fragment the server rendered and escaped) and swaps it in when it
//   changed, keeping the keyboard focus on the same element (by id).
// - One polite live region (#announce) says in words only what changed between two polls:
//   the elements marked data-watch="key" data-value="…" data-say="…" whose value changed (or,
//   marked data-new, that appeared), and the board going offline or coming back. A poll that
//   changed nothing says nothing. The status line (#live) is not a live region.
(() => {
  "use strict";

  const ago = (ms) => {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 45) return "just now";
    const m = Math.round(s / 60);
    if (m < 60) return `${m} min ago`;
    const h = Math.round(s / 3600);
    if (h < 36) return `${h} h ago`;
    const d = Math.round(s / 86400);
    if (d < 60) return `${d} d ago`;
    const mo = Math.round(d / 30.4);
    if (mo < 24) return `${mo} months ago`;
    return `${Math.round(d / 365)} years ago`;
  };

  const elapsed = (ms) => {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${s % 60} s`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
  };

  function times(root) {
    const now = Date.now();
    for (const span of root.querySelectorAll("span.ago[data-since]")) {
      const at = Date.parse(span.dataset.since);
      const text = ` (${ago(now - at)})`;
      if (!Number.isNaN(at) && span.textContent !== text) span.textContent = text;
    }
    for (const span of root.querySelectorAll("span.elapsed[data-since]")) {
      const at = Date.parse(span.dataset.since);
      const text = elapsed(now - at);
      if (!Number.isNaN(at) && span.textContent !== text) span.textContent = text;
    }
  }

  times(document);
  setInterval(() => times(document), 1000);

  const board = document.getElementById("board");
  const live = document.getElementById("live");
  const announce = document.getElementById("announce");
  if (!board || !board.dataset.src || !live) return;
  const source = board.dataset.src;
  const every = Number(board.dataset.every) || 2000;
  let etag = board.dataset.etag || "";
  let timer = null;
  let polls = 0;
  let lastGood = new Date();
  let offlineSince = null;

  // What the watched elements say now: key -> {value, say, fresh}.
  function facts(root) {
    const found = new Map();
    for (const element of root.querySelectorAll("[data-watch]")) {
      found.set(element.dataset.watch, {
        value: element.dataset.value || "",
        say: element.dataset.say || "",
        fresh: element.hasAttribute("data-new"),
      });
    }
    return found;
  }

  let known = facts(board);

  function changes(before, after) {
    const said = [];
    for (const [key, now] of after) {
      const was = before.get(key);
      const changed = was === undefined ? now.fresh : was.value !== now.value;
      if (changed && now.say && !said.includes(now.say)) said.push(now.say);
    }
    return said;
  }

  function speak(words) {
    if (!announce || words.length === 0) return;
    announce.textContent = words.join(" ");
  }

  const clock = (at) => at.toLocaleTimeString([], { hour12: false });

  function show(state, text) {
    live.dataset.state = state;
    live.textContent = text;
  }

  function swap(html) {
    const focused = document.activeElement;
    const id = focused && board.contains(focused) ? focused.id : "";
    board.innerHTML = html;
    times(board);
    if (id) {
      const again = document.getElementById(id);
      if (again) again.focus({ preventScroll: true });
    }
  }

  async function refresh() {
    timer = null;
    let problem = null;
    try {
      const headers = etag ? { "If-None-Match": etag } : {};
      const response = await fetch(source, { headers, cache: "no-store" });
      if (response.status === 200) {
        const html = await response.text();
        etag = response.headers.get("ETag") || "";
        board.dataset.etag = etag;
        swap(html);
      } else if (response.status === 401) {
        // the login ended (expired, or logged out in another tab): to Discord's login, and
        // back to this page after it
        const here = window.location.pathname + window.location.search;
        window.location.assign(`/login?next=${encodeURIComponent(here)}`);
        return;
      } else if (response.status !== 304) {
        const text = response.statusText ? ` ${response.statusText}` : "";
        problem = `the server answered HTTP ${response.status}${text}`;
        if (response.status === 403) problem += " (you are no longer admitted: reload to see why)";
      }
    } catch (error) {
      problem = "the server could not be reached (network error)";
    }
    polls += 1;
    board.dataset.polls = String(polls);
    if (problem === null) {
      const said = changes(known, facts(board));
      known = facts(board);
      lastGood = new Date();
      if (offlineSince !== null) said.unshift("The board is back online.");
      offlineSince = null;
      speak(said);
      show("live", `Live · checked ${clock(lastGood)}`);
    } else {
      if (offlineSince === null) {
        offlineSince = new Date();
        speak([`The board is offline: ${problem}.`]);
      }
      show(
        "offline",
        `Offline since ${clock(offlineSince)}: ${problem}. ` +
          `Last good update at ${clock(lastGood)}; retrying every ${every / 1000} s.`,
      );
    }
    schedule();
  }

  function schedule() {
    if (timer === null && !document.hidden) timer = setTimeout(refresh, every);
  }

  document.addEventListener("visibilitychange", () => {
    clearTimeout(timer);
    timer = null;
    if (!document.hidden) refresh();
  });
  schedule();
})();
