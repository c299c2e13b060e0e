"""The report page's application code (JavaScript, as data): the prediction against the kernel,
the summary, each chart's controls, the sortable and filterable tables, a cache's own view; it
continues the closure that ``report.page_charts`` opens, and closes it."""

APP_JS = r"""function seriesFrom(names, get, otherName, other) {
  var out = names.map(function (name, i) {
    return {name: name, color: PALETTE[i % PALETTE.length], values: get(name)};
  });
  if (other) out.push({name: otherName, color: OTHER, values: other});
  return out;
}

function drawMem() {
  var mode = document.getElementById("mem-mode").value;
  var box = document.getElementById("chart-mem");
  if (mode === "mem") {
    var peak = 0, i;
    for (i = 0; i < D.x.length; i++) {
      var t = D.mem_other[i];
      D.top.forEach(function (n) { t += D.mem[n][i]; });
      peak = Math.max(peak, t * 4);
    }
    var div = peak >= 2097152 ? 1048576 : peak >= 2048 ? 1024 : 1;
    var unit = div === 1 ? " KiB" : div === 1024 ? " MiB" : " GiB";
    var scale = function (pages) { return pages.map(function (p) { return p * 4 / div; }); };
    timeChart(box, {x: D.x, stacked: true, title: "memory per cache", unit: unit,
      fmt: function (v) { return group(v * div) + " KiB"; },
      series: seriesFrom(D.top, function (n) { return scale(D.mem[n]); }, "other", scale(D.mem_other))});
  } else {
    timeChart(box, {x: D.x, stacked: true, title: "active objects per cache",
      series: seriesFrom(D.top, function (n) { return D.objs[n]; }, "other", D.objs_other)});
  }
}

/* One cache's sampled series: [pages, active objects, partial, full, free] (a constant one is stored as
   its single value) */
function cacheSeries(name, i) {
  var v = D.cache_series[name][i];
  return v.length === 1 && D.x.length > 1 ? new Array(D.x.length).fill(v[0]) : v;
}
function drawLists() {
  var name = document.getElementById("lists-cache").value;
  var log = document.getElementById("lists-scale").value === "log";
  var L = name === "*" ? D.lists_all : {partial: cacheSeries(name, 2), full: cacheSeries(name, 3),
                                        free: cacheSeries(name, 4)};
  timeChart(document.getElementById("chart-lists"), {x: D.x, stacked: true, log: log,
    title: "slabs per list" + (name === "*" ? "" : ": " + name),
    series: [{name: "full", color: "#c2255c", values: L.full}, {name: "partial", color: "#e67700", values: L.partial},
             {name: "free", color: "#2b8a3e", values: L.free}]});
  drawCacheView(name);
}

/* The selected cache over time (active objects, memory) and what SLAB holds for it at the end */
function drawCacheView(name) {
  var view = document.getElementById("cache-view");
  view.hidden = name === "*";
  if (name === "*") return;
  document.getElementById("cache-view-title").textContent = name + " over time";
  timeChart(document.getElementById("chart-cache-objs"), {x: D.x, title: name + ": objects and memory",
    series: [{name: "active objects", color: PALETTE[0], values: cacheSeries(name, 1)},
             {name: "pages", color: PALETTE[1], values: cacheSeries(name, 0)}]});
  var slabs = cacheSeries(name, 2).map(function (v, i) {
    return v + cacheSeries(name, 3)[i] + cacheSeries(name, 4)[i]; });
  var up = slabs.map(function (v, i) { return i ? Math.max(0, v - slabs[i - 1]) : 0; });
  var down = slabs.map(function (v, i) { return i ? Math.max(0, slabs[i - 1] - v) : 0; });
  timeChart(document.getElementById("chart-cache-grow"), {x: D.x, title: name + ": slabs grown and destroyed",
    series: [{name: "slabs added (net, per interval)", color: PALETTE[2], values: up},
             {name: "slabs destroyed (net, per interval)", color: PALETTE[3], values: down}]});
  var box = document.getElementById("cache-state");
  clear(box);
  var st = D.cache_state[name];
  if (!st) return;
  el("p", "note", box, "At the end of the replay" + (st.paths ? "; during it: " + st.paths : ""));
  var wrap = el("div", "state", box);
  function small(cols, rows) {
    var t = el("table", "", wrap), tr = el("tr", "", el("thead", "", t)), tb = el("tbody", "", t);
    cols.forEach(function (c) { el("th", "", tr, c); });
    rows.forEach(function (r) {
      var row = el("tr", "", tb);
      r.forEach(function (v) { el("td", "", row, fmtNum(v)); });
    });
  }
  small(["array", "avail", "limit", "batchcount", "touched"], st.arrays);
  small(["node", "partial", "full", "free", "free_objects", "free_limit", "next_reap"], st.nodes);
}

function drawArrays() {
  var mode = document.getElementById("arrays-mode").value, series = [], i;
  var A = D.arrays;
  function pct(v, l) { return v.map(function (x, j) { return l[j] ? 100 * x / l[j] : 0; }); }
  for (i = 0; i < A.cpu.length; i++) {
    series.push({name: "CPU " + i, color: PALETTE[i % PALETTE.length],
                 values: mode === "pct" ? pct(A.cpu[i], A.cpu_limit[i]) : A.cpu[i]});
  }
  for (i = 0; i < A.shared.length; i++) {
    series.push({name: "shared, node " + i, color: PALETTE[(A.cpu.length + i + 3) % PALETTE.length],
                 values: mode === "pct" ? pct(A.shared[i], A.shared_limit[i]) : A.shared[i]});
  }
  timeChart(document.getElementById("chart-arrays"), {x: D.x, stacked: false, title: "array fill",
    unit: mode === "pct" ? "%" : "", ymax: mode === "pct" ? 100 : 0,
    fmt: mode === "pct" ? function (v) { return v.toFixed(1) + "%"; } : fmtNum, series: series});
}

function deltas(v) {
  var out = new Array(v.length).fill(0);
  for (var i = 1; i < v.length; i++) out[i] = Math.max(0, v[i] - v[i - 1]);
  return out;
}
var PATHSETS = {
  alloc: [["hit (per-CPU array)", function (P) { return deltas(P.alloc_hit); }],
          ["refill from shared", function (P) { return deltas(P.refill_shared); }],
          ["refill from slabs", function (P) { return deltas(P.refill_slab); }],
          ["refill after grow", function (P) {
            var m = deltas(P.alloc_miss), a = deltas(P.refill_shared), b = deltas(P.refill_slab);
            return m.map(function (v, i) { return Math.max(0, v - a[i] - b[i]); }); }]],
  free: [["FREEHIT (per-CPU array)", function (P) { return deltas(P.free_hit); }],
         ["flush to shared", function (P) { return deltas(P.flush_shared); }],
         ["flush to free_block", function (P) { return deltas(P.flush_free_block); }],
         ["alien (remote node)", function (P) { return deltas(P.alien_free); }]],
  slab: [["grow (pages from buddy)", function (P) { return deltas(P.grow); }],
         ["slabs destroyed", function (P) { return deltas(P.slabs_destroyed); }],
         ["reaped slabs", function (P) { return deltas(P.reap_slabs); }]]
};
function drawPaths() {
  var mode = document.getElementById("paths-mode").value, scale = document.getElementById("paths-scale").value;
  var series = PATHSETS[mode].map(function (p, i) {
    return {name: p[0], color: PALETTE[i % PALETTE.length], values: p[1](D.paths)};
  });
  if (scale === "pct") {
    var n = D.x.length;
    var tot = new Array(n).fill(0);
    series.forEach(function (s) { s.values.forEach(function (v, i) { tot[i] += v; }); });
    series.forEach(function (s) {
      s.values = s.values.map(function (v, i) { return tot[i] ? 100 * v / tot[i] : 0; });
    });
  }
  timeChart(document.getElementById("chart-paths"), {x: D.x, stacked: true, title: "paths per interval",
    unit: scale === "pct" ? "%" : "", ymax: scale === "pct" ? 100 : 0,
    fmt: scale === "pct" ? function (v) { return v.toFixed(1) + "%"; } : fmtNum, series: series});
}

function drawOccupancy() {
  var name = document.getElementById("occ-cache").value, O = D.occupancy;
  var box = document.getElementById("chart-occupancy");
  var log = document.getElementById("occ-scale").value === "log";
  if (name === "*") {
    barChart(box, {labels: O.labels, values: O.all, title: "slabs by fill, all caches", log: log,
                   xlabel: "objects in use / objects per slab"});
  } else {
    var c = O.caches[name], labels = [];
    for (var i = 0; i <= c.num; i++) labels.push(String(i));
    barChart(box, {labels: labels, values: c.counts, color: PALETTE[1], log: log,
                   title: "slabs of " + name + " by active objects",
                   xlabel: "active objects per slab (of " + c.num + ")"});
  }
}

function fillSelect(sel, first, names) {
  var o = el("option", "", sel, first[1]); o.value = first[0];
  names.forEach(function (n) { var p = el("option", "", sel, n); p.value = n; });
}

/* A sortable, filterable table.  spec: {columns: [keys], labels: {key: label}, rows, text: {key: true},
   sortParam, filterParam, defaultSort, note} */
function table(box, spec) {
  var wrap = el("div", "tablebox", box);
  var bar = el("div", "bar", wrap);
  var input = el("input", "", bar);
  input.type = "search"; input.placeholder = "filter " + spec.columns[0] + "\u2026";
  input.setAttribute("aria-label", "filter");
  var count = el("span", "note", bar);
  if (spec.note) el("span", "note", bar, spec.note);
  var scroll = el("div", "scroll", wrap);
  var t = el("table", "", scroll), thead = el("thead", "", t), tbody = el("tbody", "", t);
  var tr = el("tr", "", thead), ths = [];
  var isText = function (k) { return !!(spec.text && spec.text[k]); };
  var rows = spec.rows.map(function (r, i) { return {r: r, i: i}; });
  var state = {key: null, desc: false, filter: ""};
  spec.columns.forEach(function (k, ci) {
    var th = el("th", "", tr, (spec.labels && spec.labels[k]) || k);
    th.dataset.key = k; th.tabIndex = 0; th.scope = "col";
    var go = function () {
      if (state.key === k) state.desc = !state.desc; else { state.key = k; state.desc = !isText(k); }
      render(); remember();
    };
    th.addEventListener("click", go);
    th.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); }
    });
    ths.push(th);
  });
  function remember() {
    try {
      HASH.set(spec.sortParam, (state.desc ? "-" : "") + state.key);
      if (state.filter) HASH.set(spec.filterParam, state.filter); else HASH.delete(spec.filterParam);
      history.replaceState(null, "", "#" + HASH.toString());
    } catch (e) { /* file:// without history: fine */ }
  }
  function render() {
    var ci = spec.columns.indexOf(state.key);
    var list = rows;
    if (state.filter) {
      var f = state.filter.toLowerCase();
      list = list.filter(function (o) { return String(o.r[0]).toLowerCase().indexOf(f) >= 0; });
    }
    if (ci >= 0) {
      var sign = state.desc ? -1 : 1;
      list = list.slice().sort(function (a, b) {
        var x = a.r[ci], y = b.r[ci];
        if (x < y) return -sign;
        if (x > y) return sign;
        return a.i - b.i;
      });
    }
    ths.forEach(function (th, i) {
      if (i === ci) th.setAttribute("aria-sort", state.desc ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    });
    clear(tbody);
    var frag = document.createDocumentFragment();
    list.forEach(function (o) {
      var row = el("tr", spec.onPick ? "pick" : "", frag);
      if (spec.onPick) row.addEventListener("click", function () { spec.onPick(o.r); });
      o.r.forEach(function (v, i) { el("td", "", row, isText(spec.columns[i]) ? v : fmtNum(v)); });
    });
    tbody.appendChild(frag);
    count.textContent = group(list.length) + " of " + group(rows.length) + " rows";
  }
  var want = HASH.get(spec.sortParam) || spec.defaultSort || "";
  if (want) {
    var desc = want.charAt(0) === "-", key = want.replace(/^[-+]/, "");
    if (spec.columns.indexOf(key) >= 0) { state.key = key; state.desc = desc; }
  }
  state.filter = HASH.get(spec.filterParam) || "";
  input.value = state.filter;
  input.addEventListener("input", function () { state.filter = input.value; render(); remember(); });
  render();
  return t;
}

function summary() {
  var dl = document.getElementById("summary-list");
  function item(k, v) { el("dt", "", dl, k); el("dd", "", dl, v); }
  var m = D.machine, r = D.replay, s = D.stats;
  document.getElementById("subtitle").textContent = D.trace;
  item("trace", D.trace);
  item("machine", m.cpus + " CPU" + (m.cpus > 1 ? "s" : "") + ", " + m.nodes + " node" + (m.nodes > 1 ? "s" : "") +
       " (" + m.topology + "), " + group(m.mem_mib) + " MiB" + (m.debug ? ", CONFIG_DEBUG_SLAB" : ""));
  item("replay", group(r.lines) + " lines, " + group(r.events) + " events; applied " + group(r.applied_total) +
       ", skipped " + group(r.skipped_total));
  if (r.sync && Object.keys(r.sync).length) {
    item("sync", "with a real /proc/slabinfo: " + group(r.sync.caches || 0) + " caches, " +
         group(r.sync.placeholders || 0) + " placeholder objects, " + group(r.sync.slabs_grown || 0) +
         " slabs grown, " + group(r.sync.slabs_released || 0) + " released");
  }
  item("allocations", group(s.allocations) + " (" + group(s.bytes_allocated) + " bytes allocated for " +
       group(s.bytes_requested) + " requested: " + s.fragmentation_percent.toFixed(3) + "% internal fragmentation)");
  item("frees", group(s.frees) + " (" + group(s.cross_cpu_frees) + " on another CPU than the allocation; " +
       group(s.frees_of_objects_allocated_before_the_trace) + " of objects allocated before the trace)");
  if (D.model) item("buddy allocator (model)", group(D.model.pages_allocated) + " pages allocated, " +
                    group(D.model.pages_freed) + " freed, from trace line " + group(D.model.start_line));
  var nx = D.x.length;
  item("samples", group(nx) + " (every " + (nx > 1 ? group(D.x[nx - 1] - D.x[nx - 2]) : "-") +
       " events); " + group(D.markers.length) + " markers");
}

function guard(name, fn) {
  try { fn(); } catch (e) {
    var box = document.getElementById("errors");
    box.hidden = false; box.textContent += name + ": " + (e && e.message) + "\n";
    document.documentElement.setAttribute("data-error", "1");
    console.error("kslab report: " + name + ": " + (e && e.stack));
  }
}

/* The model against the kernel's /proc/slabinfo, one block per snapshot */
function kernelResult() {
  var K = D.kernel;
  if (!K || !K.length) return;
  document.getElementById("sec-kernel").hidden = false;
  var box = document.getElementById("kernel-result");
  if (K.length > 1) {
    var eq = 0, tot = 0, off = 0;
    K.forEach(function (c) { eq += c.equal; tot += c.total; off += c.diffs.length ? 1 : 0; });
    var all = el("p", "verdict", box, "Over " + K.length + " snapshots: ");
    el("b", eq === tot ? "ok" : "off", all, group(eq) + "/" + group(tot) + " cells equal (" +
       (tot ? (100 * eq / tot).toFixed(2) : "0.00") + "%)");
    all.appendChild(document.createTextNode(off ? "; " + off + " with differing cells, below" :
                                            "; every snapshot exact"));
  }
  K.forEach(function (c, i) {
    var p = el("p", "verdict", box);
    p.appendChild(document.createTextNode((c.label === "end" ? "At the end of the trace" :
      "At snapshot " + c.label) + " (" + c.kernel_file + "): "));
    el("b", c.equal === c.total ? "ok" : "off", p, group(c.equal) + "/" + group(c.total) + " cells equal (" +
       (c.total ? (100 * c.equal / c.total).toFixed(2) : "0.00") + "%)");
    p.appendChild(document.createTextNode(", " + group(c.caches) + " caches; num_objs " +
      (c.num_objs_errors.length ? "off in " + c.num_objs_errors.length : "exact in every cache") +
      (c.model_only.length ? "; " + c.model_only.length + " caches only in the model" : "")));
    if (c.diffs.length) {
      el("h3", "", box, "Differing cells");
      var t = table(box, {columns: ["cache", "column", "model", "kernel"], text: {cache: true, column: true},
        rows: c.diffs.map(function (d) { return [d[0], d[1], d[2] === null ? "(none)" : d[2], d[3]]; }),
        sortParam: "ksort" + i, filterParam: "kfilter" + i, defaultSort: "cache"});
      t.className = "kernel-diffs";
    }
    if (c.num_objs_errors.length) {
      el("h3", "", box, "num_objs error per cache");
      var e = table(box, {columns: ["cache", "model", "kernel", "error"], text: {cache: true},
        rows: c.num_objs_errors.map(function (d) {
          return [d[0], d[1] === null ? "(none)" : d[1], d[2], d[1] === null ? -d[2] : d[1] - d[2]]; }),
        sortParam: "esort" + i, filterParam: "efilter" + i, defaultSort: "-error"});
      e.className = "kernel-errors";
    }
  });
}
/* SLAB against SLUB on the same trace (kslab report --allocator slub) */
function whatifResult() {
  var W = D.whatif;
  if (!W) return;
  document.getElementById("sec-whatif").hidden = false;
  var t = table(document.getElementById("whatif-result"), {columns: W.columns, rows: W.rows, text: {figure: true},
    sortParam: "wsort", filterParam: "wfilter", defaultSort: ""});
  t.id = "whatif";
}
function pickCache(name) {
  var sel = document.getElementById("lists-cache");
  sel.value = name;
  drawLists();
  document.getElementById("sec-lists").scrollIntoView();
}

guard("kernel", kernelResult);
guard("whatif", whatifResult);
guard("summary", summary);
guard("memory", function () {
  document.getElementById("mem-mode").addEventListener("change", drawMem);
  drawMem();
});
guard("lists", function () {
  var sel = document.getElementById("lists-cache");
  fillSelect(sel, ["*", "all caches"], Object.keys(D.cache_series).sort());
  sel.addEventListener("change", drawLists);
  document.getElementById("lists-scale").addEventListener("change", drawLists);
  drawLists();
});
guard("arrays", function () {
  document.getElementById("arrays-mode").addEventListener("change", drawArrays);
  drawArrays();
});
guard("paths", function () {
  document.getElementById("paths-mode").addEventListener("change", drawPaths);
  document.getElementById("paths-scale").addEventListener("change", drawPaths);
  drawPaths();
});
guard("occupancy", function () {
  var sel = document.getElementById("occ-cache");
  fillSelect(sel, ["*", "all caches"], Object.keys(D.occupancy.caches));
  sel.addEventListener("change", drawOccupancy);
  document.getElementById("occ-scale").addEventListener("change", drawOccupancy);
  drawOccupancy();
});
guard("slabinfo table", function () {
  var t = table(document.getElementById("table-slabinfo"), {columns: D.slabinfo.columns, rows: D.slabinfo.rows,
    text: {name: true}, sortParam: "sort", filterParam: "filter", defaultSort: "-num_objs",
    labels: {use: "use %", cache_kib: "cache KiB"}, onPick: function (r) { pickCache(r[0]); },
    note: "click a cache to see it over time"});
  t.id = "slabinfo";
});
guard("paths table", function () {
  var t = table(document.getElementById("table-paths"), {columns: D.cache_paths.columns, rows: D.cache_paths.rows,
    text: {name: true}, sortParam: "psort", filterParam: "pfilter", defaultSort: "-allocs",
    note: D.model ? "counted from trace line " + D.model.start_line : ""});
  t.id = "cache-paths";
});
guard("callers table", function () {
  var c = D.callers;
  var t = table(document.getElementById("table-callers"), {columns: c.columns, rows: c.rows, text: {call_site: true},
    sortParam: "csort", filterParam: "cfilter", defaultSort: "-hit",
    labels: {frag_percent: "frag %"},
    note: c.total > c.rows.length ? "(the " + c.rows.length + " most frequent of " + group(c.total) + ")" : ""});
  t.id = "callers";
});
document.documentElement.setAttribute("data-charts", String(charts));
document.documentElement.setAttribute("data-ready", "1");
})();
"""
