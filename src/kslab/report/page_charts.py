"""The report page's chart code (JavaScript, as data): SVG helpers, the axes' round ticks (1-2-5
steps), linear and log(1 + v) scales, the time chart (lines or stacked areas, markers, hover readout)
and the bar chart.  It opens the page script's closure; ``report.page_app`` continues and closes it."""

CHARTS_JS = r"""
"use strict";
(function () {
var NS = "http://www.w3.org/2000/svg";
var D = JSON.parse(document.getElementById("kslab-data").textContent);
var HASH = new URLSearchParams(location.hash.replace(/^#/, ""));
var PALETTE = ["#2f6fdb", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0c8599", "#e67700", "#5c940d",
               "#a61e4d", "#1864ab", "#862e9c", "#087f5b", "#d9480f", "#364fc7"];
var OTHER = "#adb5bd";
var W = 1000;
var charts = 0;

function svg(tag, attrs, parent) {
  var e = document.createElementNS(NS, tag);
  for (var k in attrs) { if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, attrs[k]); }
  if (parent) parent.appendChild(e);
  return e;
}
function el(tag, cls, parent, text) {
  var e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (parent) parent.appendChild(e);
  return e;
}
function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }
function group(n) {
  var s = String(Math.round(Math.abs(n))), out = "";
  while (s.length > 3) { out = "," + s.slice(-3) + out; s = s.slice(0, -3); }
  return (n < 0 ? "-" : "") + s + out;
}
function fmtNum(v) {
  if (typeof v !== "number") return String(v);
  if (Math.round(v) === v) return group(v);
  return v.toFixed(2);
}
function short(v) {
  var a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(a >= 1e10 ? 0 : 1) + "G";
  if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
  if (a >= 1e4) return (v / 1e3).toFixed(0) + "k";
  if (a >= 1e3) return (v / 1e3).toFixed(1) + "k";
  return String(Math.round(v * 100) / 100);
}
/* Round steps (1, 2 or 5 times a power of ten) from 0 to at least max, about `want` of them:
   {max: the top tick, ticks: [values]} */
function niceStep(raw) {
  var p = Math.pow(10, Math.floor(Math.log10(raw))), steps = [1, 2, 5, 10];
  for (var i = 0; i < steps.length; i++) { if (steps[i] * p >= raw * (1 - 1e-9)) return steps[i] * p; }
  return 10 * p;
}
function linearScale(max, want) {
  if (!(max > 0)) max = 1;
  var step = niceStep(max / (want || 5)), top = Math.ceil(max / step - 1e-9) * step, ticks = [];
  for (var k = 0; k * step <= top * (1 + 1e-9); k++) ticks.push(+(k * step).toPrecision(12));
  return {max: top, ticks: ticks, frac: function (v) { return v / top; }};
}
/* log(1 + v): zero stays on the base line; ticks 0, 1, 2, 5, 10, 20, 50... (only powers of ten
   when there are many decades) */
function logScale(max) {
  if (!(max > 0)) max = 1;
  var seq = [0], p = 1, top = 1;
  outer: for (;;) {
    for (var i = 0; i < 3; i++) { top = [1, 2, 5][i] * p; seq.push(top); if (top >= max) break outer; }
    p *= 10;
  }
  var ticks = seq.length > 10 ? seq.filter(function (v, j) { return v === 0 || j === seq.length - 1 ||
    String(v).charAt(0) === "1"; }) : seq;
  var lt = Math.log10(1 + top);
  return {max: top, ticks: ticks, frac: function (v) { return Math.log10(1 + Math.max(0, v)) / lt; }};
}
/* Round ticks between lo and hi (the x axis) */
function rangeTicks(lo, hi, want) {
  var step = niceStep(Math.max(hi - lo, 1) / want), out = [];
  for (var v = Math.ceil(lo / step) * step; v <= hi; v += step) out.push(v);
  return out;
}

var tip = document.getElementById("tooltip");
function showTip(evt, title, rows) {
  clear(tip);
  el("div", "", tip, title).style.fontWeight = "600";
  rows.forEach(function (r) {
    var d = el("div", "", tip);
    if (r.color) { var i = el("i", "", d); i.style.background = r.color; }
    d.appendChild(document.createTextNode(r.name + ": " + r.value));
  });
  tip.hidden = false;
  var x = evt.clientX + 14, y = evt.clientY + 14;
  var w = tip.offsetWidth, h = tip.offsetHeight;
  if (x + w > window.innerWidth - 4) x = evt.clientX - w - 14;
  if (y + h > window.innerHeight - 4) y = Math.max(4, evt.clientY - h - 14);
  tip.style.left = x + "px";
  tip.style.top = y + "px";
}
function hideTip() { tip.hidden = true; }

/* A time chart: lines, or stacked areas.  spec: {x, series: [{name, color, values}], stacked, unit, fmt} */
function timeChart(box, spec) {
  hideTip();
  clear(box);
  var hidden = box._hidden || (box._hidden = {});
  var H = 300, ml = 64, mr = 14, mt = 12, mb = 34;
  var x = spec.x, n = x.length;
  var root = svg("svg", {viewBox: "0 0 " + W + " " + H, role: "img"}, box);
  svg("title", {}, root).textContent = spec.title || "";
  var series = spec.series.filter(function (s) { return !hidden[s.name]; });
  var x0 = n ? x[0] : 0, x1 = n ? x[n - 1] : 1;
  if (x1 === x0) x1 = x0 + 1;
  var sx = function (v) { return ml + (v - x0) / (x1 - x0) * (W - ml - mr); };
  var tops = [], ymax = 0, i, j, log = !!spec.log, stacked = spec.stacked && !log;
  if (stacked) {
    var acc = new Array(n).fill(0);
    series.forEach(function (s) {
      var lo = acc.slice();
      for (i = 0; i < n; i++) acc[i] += s.values[i] || 0;
      tops.push({lo: lo, hi: acc.slice()});
    });
    for (i = 0; i < n; i++) ymax = Math.max(ymax, acc[i]);
  } else {
    series.forEach(function (s) { for (i = 0; i < n; i++) ymax = Math.max(ymax, s.values[i] || 0); });
  }
  var ys = log ? logScale(ymax) : linearScale(spec.ymax || ymax);
  var sy = function (v) { return H - mb - ys.frac(v) * (H - mt - mb); };
  var axis = svg("g", {"class": "axis"}, root);
  ys.ticks.forEach(function (yv) {
    var yy = sy(yv);
    svg("line", {"class": "grid", x1: ml, x2: W - mr, y1: yy, y2: yy}, axis);
    svg("text", {x: ml - 6, y: yy + 4, "text-anchor": "end"}, axis).textContent = short(yv) + (spec.unit || "");
  });
  if (log) svg("text", {x: ml, y: mt - 2}, axis).textContent = "log scale";
  rangeTicks(x0, x1, 7).forEach(function (xv) {
    var xx = sx(xv);
    svg("line", {"class": "grid", x1: xx, x2: xx, y1: mt, y2: H - mb}, axis);
    svg("text", {x: xx, y: H - mb + 16, "text-anchor": "middle"}, axis).textContent = short(xv);
  });
  svg("text", {x: W - mr, y: H - 4, "text-anchor": "end"}, axis).textContent = "events replayed";
  var plot = svg("g", {}, root);
  series.forEach(function (s, k) {
    var d = "";
    if (stacked) {
      var t = tops[k];
      for (i = 0; i < n; i++) d += (i ? "L" : "M") + sx(x[i]).toFixed(1) + " " + sy(t.hi[i]).toFixed(1);
      for (i = n - 1; i >= 0; i--) d += "L" + sx(x[i]).toFixed(1) + " " + sy(t.lo[i]).toFixed(1);
      d += "Z";
      var p = svg("path", {d: d, fill: s.color, "fill-opacity": "0.85", stroke: s.color, "stroke-width": "0.5"}, plot);
      svg("title", {}, p).textContent = s.name;
    } else {
      for (i = 0; i < n; i++) d += (i ? "L" : "M") + sx(x[i]).toFixed(1) + " " + sy(s.values[i] || 0).toFixed(1);
      var q = svg("path", {d: d, fill: "none", stroke: s.color, "stroke-width": "1.6"}, plot);
      svg("title", {}, q).textContent = s.name;
    }
  });
  (D.markers || []).forEach(function (m) {
    if (m.x < x0 || m.x > x1) return;
    var mx = sx(m.x);
    var ml2 = svg("line", {"class": "marker", x1: mx, x2: mx, y1: mt, y2: H - mb}, plot);
    svg("title", {}, ml2).textContent = "marker at line " + m.line + ": " + m.text;
  });
  var cursor = svg("line", {"class": "cursor", x1: 0, x2: 0, y1: mt, y2: H - mb, visibility: "hidden"}, root);
  var hit = svg("rect", {x: ml, y: mt, width: W - ml - mr, height: H - mt - mb, fill: "transparent"}, root);
  hit.addEventListener("mousemove", function (evt) {
    var r = root.getBoundingClientRect();
    var vx = (evt.clientX - r.left) / r.width * W;
    var target = x0 + (vx - ml) / (W - ml - mr) * (x1 - x0);
    var lo = 0, hi = n - 1;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (x[mid] < target) lo = mid + 1; else hi = mid; }
    if (lo > 0 && Math.abs(x[lo - 1] - target) < Math.abs(x[lo] - target)) lo--;
    var cx = sx(x[lo]);
    cursor.setAttribute("x1", cx); cursor.setAttribute("x2", cx); cursor.setAttribute("visibility", "visible");
    var rows = series.map(function (s) {
      return {name: s.name, color: s.color, value: (spec.fmt || fmtNum)(s.values[lo] || 0)};
    }).reverse();
    if (stacked) {
      var tot = 0; series.forEach(function (s) { tot += s.values[lo] || 0; });
      rows.unshift({name: "total", value: (spec.fmt || fmtNum)(tot)});
    }
    showTip(evt, "event " + group(x[lo]) + ", line " + group(D.line[lo]) + ", t=" + D.ts[lo] + " s", rows);
  });
  hit.addEventListener("mouseleave", function () { cursor.setAttribute("visibility", "hidden"); hideTip(); });
  var legend = el("div", "legend", box);
  spec.series.slice().reverse().forEach(function (s) {
    var item = el("span", hidden[s.name] ? "off" : "", legend);
    var sw = el("i", "", item); sw.style.background = s.color;
    item.appendChild(document.createTextNode(s.name));
    item.addEventListener("click", function () { hidden[s.name] = !hidden[s.name]; timeChart(box, spec); });
  });
  charts++;
}

/* Vertical bars: spec {labels, values, color, title, xlabel} */
function barChart(box, spec) {
  clear(box);
  var H = 280, ml = 64, mr = 14, mt = 12, mb = 44;
  var root = svg("svg", {viewBox: "0 0 " + W + " " + H, role: "img"}, box);
  svg("title", {}, root).textContent = spec.title || "";
  var n = spec.labels.length, vmax = Math.max.apply(null, spec.values.concat([0]));
  var ys = spec.log ? logScale(vmax) : linearScale(vmax);
  var sy = function (v) { return H - mb - ys.frac(v) * (H - mt - mb); };
  var bw = (W - ml - mr) / Math.max(n, 1);
  var axis = svg("g", {"class": "axis"}, root);
  ys.ticks.forEach(function (yv) {
    var yy = sy(yv);
    svg("line", {"class": "grid", x1: ml, x2: W - mr, y1: yy, y2: yy}, axis);
    svg("text", {x: ml - 6, y: yy + 4, "text-anchor": "end"}, axis).textContent = short(yv);
  });
  if (spec.log) svg("text", {x: ml, y: mt - 2}, axis).textContent = "log scale";
  var every = Math.max(1, Math.ceil(n / 24));
  spec.labels.forEach(function (lab, i) {
    var v = spec.values[i], bx = ml + i * bw;
    var r = svg("rect", {x: (bx + bw * 0.1).toFixed(1), y: sy(v).toFixed(1), width: Math.max(1, bw * 0.8).toFixed(1),
                         height: Math.max(0, H - mb - sy(v)).toFixed(1), fill: spec.color || PALETTE[0]}, root);
    svg("title", {}, r).textContent = lab + ": " + group(v) + " slabs";
    if (i % every === 0) {
      svg("text", {x: bx + bw / 2, y: H - mb + 16, "text-anchor": "middle"}, axis).textContent = lab;
    }
  });
  svg("text", {x: W - mr, y: H - 6, "text-anchor": "end"}, axis).textContent = spec.xlabel || "";
  charts++;
}
"""
