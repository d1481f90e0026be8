"""Load a page in headless Chromium (Debian's ``chromium``) over the DevTools protocol and read back
what it shows: every image's natural size, every table's cell texts, the section headings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
         "--remote-allow-origins=*", "--remote-debugging-port=0"]

READ_PAGE = """JSON.stringify({
  images: [...document.images].map(i => ({id: i.id, complete: i.complete, width: i.naturalWidth,
                                          height: i.naturalHeight, inline: i.src.startsWith('data:image/png;base64,')})),
  tables: Object.fromEntries([...document.querySelectorAll('table')].map(
    t => [t.id, [...t.rows].map(r => [...r.cells].map(c => c.innerText.trim()))])),
  headings: [...document.querySelectorAll('h2')].map(h => h.innerText.trim()),
  missing: [...document.querySelectorAll('.missing')].map(p => p.innerText.trim()),
  notes: [...document.querySelectorAll('.note')].map(p => p.innerText.trim()),
  external: [...document.querySelectorAll('[src], link[href]')].map(e => e.getAttribute('src') || e.getAttribute('href'))
            .filter(u => !u.startsWith('data:')),
})"""


def read_page(html: Path, profile: Path, timeout: float = 90.0) -> dict:
    """Open ``html`` in a fresh headless Chromium, wait for its load event, return what READ_PAGE reads."""
    import websocket

    profile.mkdir(parents=True, exist_ok=True)
    # Chromium's scratch folders (and its sockets: a short path, under the 108 bytes of a socket name),
    # else left behind in /tmp by every run
    scratch = Path(tempfile.mkdtemp(prefix="stagerl-chromium-"))
    proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "TMPDIR": str(scratch)})
    try:
        port_file, deadline = profile / "DevToolsActivePort", time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not open its DevTools port (exit code {proc.poll()})")
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30))
        target = next(t for t in targets if t["type"] == "page")
        ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=timeout)
        try:
            ids = iter(range(1, 1 << 30))

            def call(method: str, **params) -> dict:
                i = next(ids)
                ws.send(json.dumps({"id": i, "method": method, "params": params}))
                while True:
                    msg = json.loads(ws.recv())
                    if msg.get("id") == i:
                        if "error" in msg:
                            raise RuntimeError(f"{method}: {msg['error']}")
                        return msg["result"]
                    if msg.get("method") == "Page.loadEventFired":
                        loaded.append(msg)

            loaded: list = []
            call("Page.enable")
            call("Page.navigate", url=html.resolve().as_uri())
            while not loaded:
                msg = json.loads(ws.recv())
                if msg.get("method") == "Page.loadEventFired":
                    loaded.append(msg)
            value = call("Runtime.evaluate", expression=READ_PAGE, returnByValue=True)["result"]["value"]
            return json.loads(value)
        finally:
            ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="session")
def browser():
    """``browser(html_path, profile_dir) -> dict`` (see ``read_page``); skips, saying why, when
    Chromium is not installed (``make setup`` installs it where it runs as root with apt)."""
    if CHROMIUM is None:
        pytest.skip("headless Chromium is not installed and could not be installed here: "
                    "run `make setup` as root on Debian/Ubuntu, or apt-get install chromium")
    return read_page
