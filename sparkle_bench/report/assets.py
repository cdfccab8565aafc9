"""The report's inline style and script: no CDN, no network, nothing to fetch but the videos."""

CSS = """
:root { --fg: #1d2230; --muted: #667085; --line: #e4e7ec; --paper: #f7f3e8; --bad: #c4320a; --ok: #067647; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); margin: 0 auto;
  padding: 1.5rem; max-width: 1500px; }
h1 { font-size: 1.5rem; margin: 0 0 .3rem; }
h2 { font-size: 1.15rem; margin: 2rem 0 .6rem; border-bottom: 1px solid var(--line); padding-bottom: .3rem; }
.meta, .legend, .note { color: var(--muted); font-size: 12.5px; }
.legend .entry { white-space: nowrap; }
small.ci, small.count, small.group { color: var(--muted); font-size: 11px; }
.scroll { overflow-x: auto; }
table.board, table.frozen { border-collapse: collapse; font-variant-numeric: tabular-nums; }
table.board th, table.board td, table.frozen th, table.frozen td {
  padding: .25rem .55rem; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
table.board th:first-child, table.board td:first-child, table.frozen td:first-child, table.frozen th:first-child {
  text-align: left; }
table.board thead th { cursor: pointer; user-select: none; position: sticky; top: 0; background: #fff; }
table.board thead th[data-order=asc]::after { content: " ▲"; }
table.board thead th[data-order=desc]::after { content: " ▼"; }
table.board th.group { cursor: default; text-align: center; color: var(--muted); font-weight: 500; }
tbody.paper tr { background: var(--paper); font-style: italic; }
.badge { display: inline-block; font-size: 11px; font-style: normal; padding: 0 .35rem; border-radius: .6rem;
  background: #e9dfc3; margin-left: .35rem; }
td.na { color: var(--bad); } td.none { color: var(--muted); }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
.charts img { max-width: 100%; height: auto; }
.filters { position: sticky; top: 0; background: #fff; padding: .5rem 0; z-index: 2; display: flex; gap: 1rem;
  align-items: center; flex-wrap: wrap; border-bottom: 1px solid var(--line); }
article.sample { border: 1px solid var(--line); border-radius: .5rem; padding: .8rem; margin: .9rem 0;
  scroll-margin-top: 4.5rem; }
article.sample header { display: flex; gap: .6rem; align-items: baseline; flex-wrap: wrap; }
.prompt { margin: .35rem 0 .6rem; white-space: pre-wrap; }
.videos { display: grid; grid-template-columns: repeat(var(--videos, 4), minmax(0, 1fr)); gap: .7rem; }
@media (max-width: 1000px) { .videos { grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); } }
figure { margin: 0; min-width: 0; }
video { width: 100%; background: #111; border-radius: .3rem; aspect-ratio: 16 / 9; object-fit: contain; }
figcaption { font-weight: 600; margin: .2rem 0; }
.placeholder { aspect-ratio: 16 / 9; min-height: 0; overflow: auto; overflow-wrap: anywhere; display: flex;
  align-items: safe center; justify-content: safe center; text-align: center; padding: .6rem; background: #fef3f2;
  color: var(--bad); border-radius: .3rem; font-size: 12.5px; }
table.kv td { overflow-wrap: anywhere; }
table.kv { font-size: 12px; border-collapse: collapse; font-variant-numeric: tabular-nums; }
table.kv td { padding: 0 .5rem 0 0; }
.tag { font-size: 11px; padding: 0 .35rem; border-radius: .6rem; background: #fee4e2; color: var(--bad); }
details pre { white-space: pre-wrap; font-size: 12px; background: #f9fafb; padding: .5rem; border-radius: .3rem;
  max-height: 18rem; overflow: auto; }
[hidden] { display: none !important; }
"""

JS = """
(() => {
  "use strict";
  const value = cell => (cell.dataset.v === undefined ? cell.textContent.trim().toLowerCase()
    : (cell.dataset.v === "" ? null : Number(cell.dataset.v)));
  // Leaderboard: a click on a header sorts every tbody on its own, so published rows never mix with measured ones.
  document.querySelectorAll("table.sortable").forEach(table => {
    const heads = [...table.querySelectorAll("thead tr:last-child th")];
    heads.forEach((th, col) => th.addEventListener("click", () => {
      const order = th.dataset.order === "desc" ? "asc" : "desc";
      heads.forEach(h => delete h.dataset.order);
      th.dataset.order = order;
      table.querySelectorAll("tbody").forEach(body => {
        const rows = [...body.rows];
        rows.sort((a, b) => {
          const x = value(a.cells[col]), y = value(b.cells[col]);
          if (x === null || y === null) return (x === null) - (y === null);  // empty cells last either way
          return (x < y ? -1 : x > y ? 1 : 0) * (order === "asc" ? 1 : -1);
        });
        rows.forEach(row => body.appendChild(row));
      });
    }));
  });
  // Gallery filters: theme, model (hides the other models' videos), failure (of the shown models).
  const cards = [...document.querySelectorAll("article.sample")];
  const theme = document.getElementById("f-theme"), model = document.getElementById("f-model"),
    failure = document.getElementById("f-failure");
  const count = document.getElementById("f-count");
  const apply = () => {
    let shown = 0;
    cards.forEach(card => {
      let hit = failure.value === "";
      card.querySelectorAll("figure.edit").forEach(cell => {
        cell.hidden = model.value !== "" && cell.dataset.model !== model.value;
        if (!cell.hidden && failure.value !== "" && cell.dataset.state.split(" ").includes(failure.value)) hit = true;
      });
      card.hidden = !(hit && (theme.value === "" || card.dataset.theme === theme.value));
      shown += card.hidden ? 0 : 1;
    });
    count.textContent = `${shown} of ${cards.length} samples`;
  };
  [theme, model, failure].forEach(select => select && select.addEventListener("change", apply));
  if (theme) apply();
  // Lazy videos: nothing is fetched until a video comes near the screen, then its first frame.
  const wake = video => { if (video.preload === "none") { video.preload = "metadata"; video.load(); } };
  if ("IntersectionObserver" in window) {
    const seen = new IntersectionObserver(
      entries => entries.forEach(e => { if (e.isIntersecting) { seen.unobserve(e.target); wake(e.target); } }),
      { rootMargin: "400px" });
    document.querySelectorAll("video").forEach(v => seen.observe(v));
  }
  // Play a sample's videos together from the start, to compare them side by side.
  document.querySelectorAll("button.play").forEach(button => button.addEventListener("click", () => {
    const videos = [...button.closest("article").querySelectorAll("figure:not([hidden]) video")];
    const start = button.dataset.playing !== "1";
    videos.forEach(v => { if (start) { wake(v); v.currentTime = 0; v.play().catch(() => {}); } else { v.pause(); } });
    button.dataset.playing = start ? "1" : "0";
    button.textContent = start ? "pause" : "play together";
  }));
})();
"""
