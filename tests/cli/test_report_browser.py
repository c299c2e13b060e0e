"""kslab report in a real headless browser (Chromium): the charts render, the page logs no error,
fetches nothing, and its tables sort and filter.

Two ways in, both with only the standard library:

* ``chromium --headless --dump-dom URL`` prints the DOM after the page's script ran; with
  ``--enable-logging=stderr --v=0`` every console message (errors, CSP violations) goes to stderr.
  The URL hash (``#sort=name``) makes the page sort a table on load.  ``--screenshot`` saves a PNG
  under tests/artifacts/ (gitignored) for a human to look at.
* the Chrome DevTools Protocol over a websocket (``--remote-debugging-port``): every network request
  the page makes is seen (only the file itself may be loaded), headers are clicked, the filter box
  is typed into, and the chart's hover readout is checked.

The browser is /usr/bin/chromium or ``chromium`` on PATH (CI installs Debian's ``chromium``); the
tests skip, saying so, only when there is none.
"""

# ruff: noqa: E501  (trace lines are long)

from __future__ import annotations

import base64
import itertools
import json
import math
import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from kslab.cli import main
from kslab.cli.replay import DATA

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def find_chromium() -> str | None:
    for cand in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (/usr/bin/chromium or chromium on "
                                "PATH): install it with 'apt-get install -y chromium' to run the browser tests")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
         "--disable-extensions", "--disable-dev-shm-usage", "--mute-audio"]

HOSTILE = """\
# tracer: nop
#
 evil-1 [000] .... 1.000001: tracing_mark_write: phase </script><img src=x onerror=alert(1)> & <!-- done
 evil-1 [000] .... 1.000002: kmalloc: call_site=</script><img src=x onerror=alert(3)>+0x1/0x2 ptr=ffff888100001000 bytes_req=100 bytes_alloc=128 gfp_flags=GFP_KERNEL
 evil-1 [001] .... 1.000003: kfree: call_site=free+0x1/0x2 ptr=ffff888100001000
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "report.html"
    assert main(["report", "-o", str(out), "-q"]) == 0  # the bundled real excerpt
    return out


def run_chromium(tmp: Path, *args: str) -> tuple[str, list[str]]:
    """Run headless Chromium; returns (stdout, console messages from its log)."""
    assert CHROMIUM is not None
    proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp / 'profile'}", "--enable-logging=stderr",
                           "--v=0", *args], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console


class DomScan(HTMLParser):
    """The facts the tests need from a dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.root_attrs: dict[str, str | None] = {}
        self.svgs: list[dict[str, int]] = []
        self.in_svg = 0
        self.path_ds: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.table: str | None = None
        self.in_tbody = False
        self.cell: list[str] | None = None
        self.row: list[str] | None = None
        self.sorted_th: dict[str, tuple[str, str]] = {}
        self.th_key: str | None = None
        self.th_sort: str | None = None
        self.tags: list[str] = []
        self.errors_text = ""
        self.in_errors = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "html":
            self.root_attrs = a
        elif tag == "svg":
            self.in_svg += 1
            self.svgs.append({"path": 0, "rect": 0, "line": 0})
        elif self.in_svg and tag in ("path", "rect", "line"):
            self.svgs[-1][tag] += 1
            if tag == "path":
                self.path_ds.append(a.get("d") or "")
        elif tag == "table":
            self.table = a.get("id") or f"table{len(self.tables)}"
            self.tables[self.table] = []
        elif tag == "tbody":
            self.in_tbody = True
        elif tag == "tr" and self.in_tbody:
            self.row = []
        elif tag == "td" and self.row is not None:
            self.cell = []
        elif tag == "th" and self.table:
            if a.get("aria-sort"):
                self.sorted_th[self.table] = (a.get("data-key") or "", a["aria-sort"] or "")
        elif tag == "pre" and a.get("id") == "errors":
            self.in_errors = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self.in_svg -= 1
        elif tag == "tbody":
            self.in_tbody = False
        elif tag == "td" and self.cell is not None and self.row is not None:
            self.row.append("".join(self.cell))
            self.cell = None
        elif tag == "tr" and self.row is not None and self.table:
            self.tables[self.table].append(self.row)
            self.row = None
        elif tag == "table":
            self.table = None
        elif tag == "pre":
            self.in_errors = False

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)
        if self.in_errors:
            self.errors_text += data


def scan(dom: str) -> DomScan:
    s = DomScan()
    s.feed(dom)
    return s


def test_dump_dom_charts_tables_and_hash_sort(report, tmp_path):
    dom, console = run_chromium(tmp_path, "--dump-dom", report.as_uri() + "#sort=name&csort=-bytes_alloc")
    assert console == [], "console messages:\n" + "\n".join(console)
    s = scan(dom)
    assert s.root_attrs.get("data-ready") == "1", "the page's script did not finish"
    assert "data-error" not in s.root_attrs, s.errors_text
    assert s.errors_text == ""
    # five charts, each drawn by the page's script: axes, areas/lines or bars
    assert s.root_attrs.get("data-charts") == "5"
    assert len(s.svgs) == 5
    for svg in s.svgs:
        assert svg["line"] >= 5, svg  # grid lines
        assert svg["path"] + svg["rect"] >= 2, svg
    assert sum(svg["path"] for svg in s.svgs) >= 20
    assert all(re.fullmatch(r"M[\d. LZ-]+", d) for d in s.path_ds), s.path_ds[:3]
    # the tables: the hash sorted the slabinfo table by name and the call sites by bytes allocated
    names = [row[0] for row in s.tables["slabinfo"]]
    assert len(names) == 121 and names == sorted(names)
    assert s.sorted_th["slabinfo"] == ("name", "ascending")
    alloc = [int(row[2].replace(",", "")) for row in s.tables["callers"]]
    assert alloc == sorted(alloc, reverse=True) and len(alloc) == 52
    assert s.sorted_th["callers"] == ("bytes_alloc", "descending")
    assert s.tables["cache-paths"], "per-cache paths table is empty"
    assert "img" not in s.tags and "iframe" not in s.tags


def test_hostile_trace_renders_as_text(tmp_path):
    trace = tmp_path / "evil.txt"
    trace.write_text(HOSTILE)
    out = tmp_path / "evil.html"
    assert main(["report", str(trace), "--cpus", "2", "-o", str(out), "-q"]) == 0
    dom, console = run_chromium(tmp_path, "--dump-dom", out.as_uri() + "#cfilter=script")
    assert console == [], "console messages:\n" + "\n".join(console)
    s = scan(dom)
    assert s.root_attrs.get("data-ready") == "1" and "data-error" not in s.root_attrs
    assert "img" not in s.tags  # the strings from the trace stayed text
    assert s.tables["callers"] == [["</script><img src=x onerror=alert(3)>+0x1/0x2", "1", "128", "100", "21.88", "1",
                                    "1"]]


def test_screenshot(report, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    png = ARTIFACTS / "report.png"
    png.unlink(missing_ok=True)
    _, console = run_chromium(tmp_path, "--window-size=1280,5200", "--hide-scrollbars", f"--screenshot={png}",
                              report.as_uri())
    assert console == [], "console messages:\n" + "\n".join(console)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 5200)
    assert len(data) > 100_000  # charts and tables, not a blank page


# ---- the DevTools protocol ---------------------------------------------------------------------------


class DevTools:
    """A minimal Chrome DevTools Protocol client: one websocket to one page target."""

    def __init__(self, ws_url: str) -> None:
        m = re.fullmatch(r"ws://([^/:]+):(\d+)(/.*)", ws_url)
        assert m, ws_url
        host, port, path = m.group(1), int(m.group(2)), m.group(3)
        self.sock = socket.create_connection((host, port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(4096)
            assert chunk, "websocket handshake: connection closed"
            buf += chunk
        head, _, self.buf = buf.partition(b"\r\n\r\n")
        assert b" 101 " in head.split(b"\r\n", 1)[0], head
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def close(self) -> None:
        self.sock.close()

    def _send(self, text: str) -> None:
        data = text.encode()
        mask = os.urandom(4)
        head = bytearray([0x81])
        if len(data) < 126:
            head.append(0x80 | len(data))
        elif len(data) < 1 << 16:
            head.append(0x80 | 126)
            head += struct.pack(">H", len(data))
        else:
            head.append(0x80 | 127)
            head += struct.pack(">Q", len(data))
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(data))
        self.sock.sendall(bytes(head) + mask + masked)

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("devtools connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _message(self) -> dict[str, Any]:
        parts = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
            op = b0 & 0x0F
            if op == 8:
                raise EOFError("devtools connection closed")
            if op in (9, 10):  # ping, pong
                continue
            parts += payload
            if b0 & 0x80:
                return json.loads(parts)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        me = self.next_id
        self._send(json.dumps({"id": me, "method": method, "params": params}))
        while True:
            msg = self._message()
            if msg.get("id") == me:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 30) -> dict[str, Any]:
        end = time.monotonic() + timeout
        for ev in self.events:
            if ev["method"] == method:
                return ev
        while time.monotonic() < end:
            msg = self._message()
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == method:
                    return msg
        raise AssertionError(f"no {method} within {timeout} s")

    def js(self, expr: str) -> Any:
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in r, r["exceptionDetails"]
        return r["result"].get("value")


@pytest.fixture
def devtools(tmp_path):
    assert CHROMIUM is not None
    proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--remote-debugging-port=0",
                             "--window-size=1280,900", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    found: list[str] = []
    ready = threading.Event()

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            m = re.search(r"DevTools listening on (ws://\S+)", line)
            if m:
                found.append(m.group(1))
                ready.set()
        ready.set()

    threading.Thread(target=read_stderr, daemon=True).start()
    try:
        assert ready.wait(60) and found, "chromium did not open its DevTools port"
        port = re.match(r"ws://[^:]+:(\d+)/", found[0]).group(1)  # type: ignore[union-attr]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as resp:
            targets = json.load(resp)
        page = next(t for t in targets if t.get("type") == "page")
        dt = DevTools(page["webSocketDebuggerUrl"])
        try:
            yield dt
        finally:
            dt.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_devtools_no_network_sort_filter_hover(report, devtools):
    dt = devtools
    for domain in ("Page", "Network", "Runtime", "Log"):
        dt.call(f"{domain}.enable")
    url = report.as_uri()
    dt.call("Page.navigate", url=url)
    dt.wait_for("Page.loadEventFired")
    assert dt.js("document.documentElement.getAttribute('data-ready')") == "1"
    # the page loaded itself and nothing else
    requests = [e["params"]["request"]["url"] for e in dt.events if e["method"] == "Network.requestWillBeSent"]
    assert requests == [url]
    noise = [e for e in dt.events if e["method"] in ("Runtime.consoleAPICalled", "Runtime.exceptionThrown",
                                                       "Log.entryAdded", "Network.loadingFailed")]
    assert noise == []
    # clicking a header sorts, clicking again reverses; the hash remembers it
    names = "Array.from(document.querySelectorAll('#slabinfo tbody tr td:first-child')).map(td => td.textContent)"
    dt.js("document.querySelector('#slabinfo th[data-key=name]').click()")
    first = dt.js(names)
    assert len(first) == 121 and first == sorted(first)
    dt.js("document.querySelector('#slabinfo th[data-key=name]').click()")
    assert dt.js(names) == sorted(first, reverse=True)
    assert dt.js("location.hash") == "#sort=-name"
    objs = dt.js("document.querySelector('#slabinfo th[data-key=num_objs]').click();"
                 "Array.from(document.querySelectorAll('#slabinfo tbody tr td:nth-child(3)'))"
                 ".map(td => Number(td.textContent.replace(/,/g, '')))")
    assert objs == sorted(objs, reverse=True) and objs[0] > 60000
    # the filter box
    rows = dt.js("const i = document.querySelector('#table-slabinfo input'); i.value = 'kmalloc-1';"
                 "i.dispatchEvent(new Event('input')); " + names)
    assert rows and all("kmalloc-1" in r for r in rows) and len(rows) < 121
    assert "filter=kmalloc-1" in dt.js("location.hash")
    # the memory chart's hover readout
    box = dt.js("(() => { const r = document.querySelector('#chart-mem svg rect').getBoundingClientRect();"
                "window.scrollTo(0, window.scrollY + r.top - 100);"
                "const q = document.querySelector('#chart-mem svg rect').getBoundingClientRect();"
                "return [q.left, q.top, q.width, q.height]; })()")
    x, y = box[0] + box[2] * 0.5, box[1] + box[3] * 0.5
    dt.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
    tip = dt.js("(() => { const t = document.getElementById('tooltip'); return [t.hidden, t.textContent]; })()")
    assert tip[0] is False and tip[1].startswith("event ") and "kmalloc-64: " in tip[1] and "KiB" in tip[1]
    # the legend hides a series
    before = dt.js("document.querySelectorAll('#chart-mem svg path').length")
    dt.js("document.querySelector('#chart-mem .legend span').click()")
    assert dt.js("document.querySelectorAll('#chart-mem svg path').length") == before - 1
    # switching the chart's mode redraws it
    dt.js("const s = document.getElementById('paths-mode'); s.value = 'free'; s.dispatchEvent(new Event('change'))")
    assert "FREEHIT" in dt.js("document.querySelector('#chart-paths .legend').textContent")
    shot = dt.call("Page.captureScreenshot", format="png")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report-devtools.png").write_bytes(base64.b64decode(shot["data"]))
    assert [e for e in dt.events if e["method"] in ("Runtime.exceptionThrown", "Log.entryAdded")] == []


def test_devtools_prediction_cache_view_scales_sticky(tmp_path, devtools):
    """The report opens with the prediction against the kernel (a differing cell shows in its table), a
    click on a cache shows it over time with its arrays, the list and occupancy charts have a log scale,
    the axes tick on round values, and a wide table keeps its header and first column in view."""
    lines = (DATA / "oracle-R1-slabinfo.1-files").read_text().splitlines(keepends=True)
    lines = [(" ".join([ln.split()[0], str(int(ln.split()[1]) - 1), *ln.split()[2:]]) + "\n")
             if ln.startswith("pid ") else ln for ln in lines]
    kernel = tmp_path / "slabinfo.end"
    kernel.write_text("".join(lines))
    out = tmp_path / "r.html"
    assert main(["report", "-o", str(out), "-q", "--kernel-slabinfo", str(kernel)]) == 0
    dt = devtools
    for domain in ("Page", "Runtime", "Log"):
        dt.call(f"{domain}.enable")
    dt.call("Page.navigate", url=out.as_uri())
    dt.wait_for("Page.loadEventFired")
    assert dt.js("document.documentElement.getAttribute('data-ready')") == "1"
    assert dt.js("document.documentElement.hasAttribute('data-error')") is False
    # the first section is the prediction
    assert dt.js("document.querySelector('main section:not([hidden]) h2').textContent") == \
        "Prediction against the real kernel"
    verdict = dt.js("document.querySelector('#kernel-result .verdict').textContent")
    assert "483/484 cells equal (99.79%)" in verdict and "num_objs exact in every cache" in verdict
    cells = dt.js("Array.from(document.querySelectorAll('table.kernel-diffs tbody tr'))"
                  ".map(tr => Array.from(tr.cells).map(td => td.textContent))")
    assert cells == [["pid", "active_objs", "4,896", "4,895"]]
    # a click on a cache in the slabinfo table: its lists and objects over time, its arrays at the end
    assert dt.js("document.getElementById('cache-view').hidden") is True
    dt.js("Array.from(document.querySelectorAll('#slabinfo tbody tr')).find(tr => tr.cells[0].textContent === "
          "'dentry').cells[0].click()")
    assert dt.js("document.getElementById('lists-cache').value") == "dentry"
    assert dt.js("document.getElementById('cache-view').hidden") is False
    assert dt.js("document.getElementById('cache-view-title').textContent") == "dentry over time"
    assert dt.js("document.querySelectorAll('#chart-cache-objs svg path').length") >= 2
    assert "slabs added (net, per interval)" in dt.js("document.querySelector('#chart-cache-grow .legend').textContent")
    arrays = dt.js("Array.from(document.querySelectorAll('#cache-state table')[0].tBodies[0].rows)"
                   ".map(tr => tr.cells[0].textContent)")
    assert arrays == ["CPU 0"]  # one CPU: no shared array (the kernel makes one only with more CPUs)
    # log scales: lines for the lists, ticks 0, 1, 2, 5, 10...
    assert dt.js("document.getElementById('lists-scale').value") == "log"
    ticks = dt.js("Array.from(document.querySelectorAll('#chart-lists svg .axis text')).map(t => t.textContent)")
    assert "log scale" in ticks and ticks[:3] == ["0", "1", "2"]
    dt.js("const o = document.getElementById('occ-scale'); o.value = 'linear'; o.dispatchEvent(new Event('change'))")
    # round ticks (1-2-5 steps) on the y axis of every linear chart
    axes = dt.js("Array.from(document.querySelectorAll('.chart svg')).filter(g => !g.textContent.includes('log scale'))"
                 ".map(g => Array.from(g.querySelectorAll('.axis text[text-anchor=end]')).map(t => t.textContent))")
    unit = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9}
    checked = 0
    for labels in axes:
        vals = [float(m.group(1)) * unit[m.group(2)] for m in (re.match(r"^([\d.]+)([kMG]?)", t) for t in labels) if m]
        if len(vals) < 3:
            continue
        steps = {round(b - a, 6) for a, b in itertools.pairwise(vals)}
        assert len(steps) == 1, labels
        step = steps.pop()
        mantissa = step / 10 ** math.floor(math.log10(step))
        assert round(mantissa, 6) in (1, 2, 5), labels
        checked += 1
    assert checked >= 5
    # sticky header and first column
    sticky = dt.js("[getComputedStyle(document.querySelector('#slabinfo th')).position,"
                   " getComputedStyle(document.querySelector('#slabinfo td')).position]")
    assert sticky == ["sticky", "sticky"]
    dt.js("document.getElementById('sec-lists').scrollIntoView()")
    shot = dt.call("Page.captureScreenshot", format="png")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report-cache-view.png").write_bytes(base64.b64decode(shot["data"]))
    dt.js("window.scrollTo(0, 0)")
    shot = dt.call("Page.captureScreenshot", format="png")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report-prediction.png").write_bytes(base64.b64decode(shot["data"]))
    assert [e for e in dt.events if e["method"] in ("Runtime.exceptionThrown", "Log.entryAdded")] == []


def test_dump_dom_prediction_over_snapshots(tmp_path):
    """Several snapshots: one line over all of them, then one per snapshot."""
    from tests.cli.test_report import snapshot_report  # noqa: PLC0415  (the same report the data test reads)
    out = snapshot_report(tmp_path)
    dom, console = run_chromium(tmp_path, "--dump-dom", out.as_uri())
    assert console == [], "console messages:\n" + "\n".join(console)
    text = re.sub(r"<[^>]+>", "", dom)
    assert "Over 3 snapshots: 1,452/1,452 cells equal (100.00%); every snapshot exact" in text
    assert text.count("At snapshot 1-files (") == 2 and "At the end of the trace (" in text
