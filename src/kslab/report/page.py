"""The page of ``kslab report``: its HTML template and style sheet, as data (the script is in
``report.page_charts`` and ``report.page_app``).  ``report.html.render_html`` fills the ``@...@``
placeholders."""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="@CSP@">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="kslab report">
<title>@TITLE@</title>
<style>@CSS@</style>
<script>
window.addEventListener("error", function (e) {
  var box = document.getElementById("errors");
  if (box) { box.hidden = false; box.textContent += "error: " + e.message + "\\n"; }
  document.documentElement.setAttribute("data-error", "1");
});
</script>
</head>
<body>
<header>
<h1>kslab report</h1>
<p id="subtitle"></p>
<pre id="errors" hidden></pre>
</header>
<main>
<section id="sec-kernel" hidden><h2>Prediction against the real kernel</h2>
<p class="note">The model's /proc/slabinfo against the kernel's at the same point of the trace: the cells
active_objs, num_objs, active_slabs and num_slabs of every cache the kernel lists.</p>
<div id="kernel-result"></div></section>
<section id="sec-whatif" hidden><h2>SLAB and SLUB side by side</h2>
<p class="note">The same trace through Linux 5.10's SLAB and Linux 6.12's SLUB, at its end: slabs and the memory
in them, active objects (/proc/slabinfo), the allocations and frees served without a slab list (SLAB's per-CPU
array hits, SLUB's lockless fast paths) and the frees on another CPU than the allocation's. The charts below
are SLAB's replay.</p>
<div id="whatif-result"></div></section>
<section id="summary"><h2>Summary</h2><dl id="summary-list"></dl></section>
<section id="sec-mem"><h2>Memory per cache</h2>
<p class="note">Top caches by peak memory, the rest as &ldquo;other&rdquo;; x axis: events replayed.
Hover for values, click a legend entry to hide it.</p>
<div class="controls"><label>Show <select id="mem-mode"><option value="mem">memory (KiB)</option>
<option value="objs">active objects</option></select></label></div>
<div class="chart" id="chart-mem"></div></section>
<section id="sec-lists"><h2>Slabs per list</h2>
<p class="note">All caches, or one (click a cache in the /proc/slabinfo table). The log scale
(log of 1 + slabs) shows the few partial and free slabs beside the many full ones.</p>
<div class="controls"><label>Cache <select id="lists-cache"></select></label>
<label>Scale <select id="lists-scale"><option value="log">lines, log scale</option>
<option value="stacked">stacked, linear</option></select></label></div>
<div class="chart" id="chart-lists"></div>
<div id="cache-view" hidden><h3 id="cache-view-title"></h3>
<div class="chart" id="chart-cache-objs"></div>
<p class="note">Its slabs grown and destroyed: the net change of its slab count in each interval
(a grow and a destroy within one interval cancel; the exact totals are below).</p>
<div class="chart" id="chart-cache-grow"></div>
<div id="cache-state"></div></div></section>
<section id="sec-arrays"><h2>Per-CPU and shared arrays</h2>
<p class="note">Objects held in the per-CPU arrays (per CPU) and in the shared arrays (per node), all caches.</p>
<div class="controls"><label>Show <select id="arrays-mode"><option value="objs">objects held</option>
<option value="pct">fill (% of the limits)</option></select></label></div>
<div class="chart" id="chart-arrays"></div></section>
<section id="sec-paths"><h2>Paths taken</h2>
<p class="note">How many times each path of mm/slab.c ran in each interval, all caches.</p>
<div class="controls"><label>Paths <select id="paths-mode"><option value="alloc">allocation</option>
<option value="free">free</option><option value="slab">slabs (grow, destroy, reap)</option></select></label>
<label>Scale <select id="paths-scale"><option value="count">count</option>
<option value="pct">share (%)</option></select></label></div>
<div class="chart" id="chart-paths"></div></section>
<section id="sec-occupancy"><h2>Slab occupancy at the end</h2>
<p class="note">Slabs by objects in use (active/num); all caches by fill, or one cache by active count.</p>
<div class="controls"><label>Cache <select id="occ-cache"></select></label>
<label>Scale <select id="occ-scale"><option value="log">log</option>
<option value="linear">linear</option></select></label></div>
<div class="chart" id="chart-occupancy"></div></section>
<section id="sec-slabinfo"><h2>/proc/slabinfo at the end</h2><div id="table-slabinfo"></div></section>
<section id="sec-cache-paths"><h2>Per-cache paths during the replay</h2><div id="table-paths"></div></section>
<section id="sec-callers"><h2>Call sites (from the trace)</h2><div id="table-callers"></div></section>
</main>
<div id="tooltip" hidden></div>
<script type="application/json" id="kslab-data">@DATA@</script>
<script>@JS@</script>
</body>
</html>
"""


CSS = """
:root { --fg: #1d2330; --muted: #5c6475; --line: #d9dde5; --bg: #ffffff; --panel: #f6f7f9; --accent: #2f6fdb; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  background: var(--bg); }
header { padding: 16px 24px 8px; border-bottom: 1px solid var(--line); }
h1 { margin: 0; font-size: 22px; }
h2 { font-size: 17px; margin: 0 0 6px; }
#subtitle { margin: 4px 0 0; color: var(--muted); word-break: break-all; }
#errors { color: #b00020; background: #fff0f0; padding: 8px; white-space: pre-wrap; }
main { padding: 8px 24px 40px; max-width: 1280px; }
section { margin: 18px 0 26px; }
.note { margin: 0 0 6px; color: var(--muted); }
.controls { margin: 4px 0 6px; display: flex; gap: 16px; flex-wrap: wrap; }
select, input { font: inherit; padding: 2px 4px; }
.chart { position: relative; background: var(--panel); border: 1px solid var(--line); border-radius: 6px;
  padding: 6px; }
.chart svg { display: block; width: 100%; height: auto; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; padding: 4px 6px 2px; font-size: 12px; }
.legend span { cursor: pointer; user-select: none; white-space: nowrap; }
.legend span.off { opacity: 0.35; text-decoration: line-through; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px;
  vertical-align: -1px; }
.axis text, .tick { font-size: 11px; fill: var(--muted); }
.grid { stroke: var(--line); stroke-width: 1; }
.marker { stroke: #9a6700; stroke-dasharray: 3 3; stroke-width: 1; }
.cursor { stroke: #333; stroke-width: 1; }
#tooltip { position: fixed; pointer-events: none; background: rgba(255,255,255,0.97); border: 1px solid #aab;
  border-radius: 4px; padding: 6px 8px; font-size: 12px; max-width: 460px; box-shadow: 0 2px 6px rgba(0,0,0,.15);
  z-index: 10; }
#tooltip div { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
#tooltip i { display: inline-block; width: 8px; height: 8px; margin-right: 4px; }
dl#summary-list { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl#summary-list dt { color: var(--muted); }
dl#summary-list dd { margin: 0; word-break: break-all; }
.tablebox .bar { display: flex; gap: 12px; align-items: center; margin: 4px 0; }
.tablebox .scroll { max-height: 520px; overflow: auto; border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 8px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { position: sticky; top: 0; z-index: 1; background: #eef1f6; cursor: pointer; user-select: none; }
td:first-child { position: sticky; left: 0; background: var(--bg); }
th:first-child { left: 0; z-index: 2; }
tr.pick td:first-child { cursor: pointer; color: var(--accent); }
tr:hover td:first-child { background: #f3f6fc; }
.verdict { font-size: 16px; margin: 4px 0 8px; }
.verdict b.ok { color: #2b8a3e; }
.verdict b.off { color: #b35c00; }
h3 { font-size: 15px; margin: 14px 0 4px; }
.state { display: flex; gap: 24px; flex-wrap: wrap; }
.state table, #kernel-result table { width: auto; min-width: 40%; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
tr:hover td { background: #f3f6fc; }
"""
