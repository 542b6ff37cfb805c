"""The planning page's HTTP server: the standard library's, on 127.0.0.1 by default.

One user plans at a time on a local page, and each request's time is the simulation's
(benchmarks/bench_serve.py: the server's own overhead is about a millisecond), so
:class:`http.server.ThreadingHTTPServer` is enough and adds no dependency; a lock makes the
planner's edits one at a time. Every asset comes from the installed package: the page, its
script and style from ``nsm_sim/serve/static``, BokehJS from the ``bokeh`` package.

Endpoints (JSON in and out; an error is ``{"error": MESSAGE, "problems": [...]}`` with
status 400, nothing changed):

- ``GET /`` the page; ``GET /static/NAME`` its files; ``GET /bokeh/NAME`` BokehJS;
- ``GET /api/state?scenario=I`` everything shown (:meth:`Planner.state`);
- ``POST /api/edit`` ``{"scenario": I, "initiative": NAME, "field": F, "value": V}`` (or
  ``{"scenario": I, "field": "capacity", "value": V}``): the new table and results;
- ``POST /api/save`` ``{"scenario": I}``: writes the scenario file back;
- ``GET /api/compare``: the first two scenarios side by side.
"""

from __future__ import annotations

import json
import threading
import webbrowser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, urlsplit

from nsm_sim.errors import InputError
from nsm_sim.serve import charts
from nsm_sim.serve.planner import Planner

#: Largest request body read (an edit is a few hundred bytes).
MAX_BODY = 64 * 1024

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


def static_file(name: str) -> bytes | None:
    """Return a file of the page (``nsm_sim/serve/static``), or None when there is none.

    Parameters
    ----------
    name : str

    Returns
    -------
    bytes or None
    """
    folder = files("nsm_sim.serve") / "static"
    if "/" in name or "\\" in name or name.startswith("."):
        return None
    item = folder / name
    return item.read_bytes() if item.is_file() else None


def _handler(planner: Planner, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    bokehjs = charts.bokehjs_files()

    class Handler(BaseHTTPRequestHandler):
        server_version = "nsm-sim"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
            return None

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, payload: Any, status: int = HTTPStatus.OK) -> None:
            body = json.dumps(payload, allow_nan=False).encode()
            self._send(status, body, "application/json")

        def _refuse(self, exc: InputError) -> None:
            self._json(
                {"error": exc.message, "source": exc.source, "problems": exc.problems},
                HTTPStatus.BAD_REQUEST,
            )

        def _not_found(self) -> None:
            self._json({"error": f"no such page: {self.path}"}, HTTPStatus.NOT_FOUND)

        def do_GET(self) -> None:  # noqa: N802 - the base's name
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            path = url.path
            try:
                if path in ("/", "/index.html"):
                    self._send(HTTPStatus.OK, static_file("index.html"), _TYPES[".html"])
                elif path == "/favicon.ico":
                    self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
                elif path.startswith("/static/"):
                    name = path.removeprefix("/static/")
                    body = static_file(name)
                    suffix = name[name.rfind(".") :]
                    if body is None or suffix not in _TYPES:
                        return self._not_found()
                    self._send(HTTPStatus.OK, body, _TYPES[suffix])
                elif path.startswith("/bokeh/"):
                    item = bokehjs.get(path.removeprefix("/bokeh/"))
                    if item is None:
                        return self._not_found()
                    self._send(HTTPStatus.OK, item.read_bytes(), _TYPES[".js"])
                elif path == "/api/state":
                    index = int(query.get("scenario", ["0"])[0])
                    with lock:
                        self._json(planner.state(index))
                elif path == "/api/compare":
                    with lock:
                        self._json({"comparison": planner.comparison()})
                else:
                    self._not_found()
            except InputError as exc:
                self._refuse(exc)
            except ValueError as exc:
                self._json({"error": str(exc)}, HTTPStatus.BAD_REQUEST)

        def do_POST(self) -> None:  # noqa: N802 - the base's name
            path = urlsplit(self.path).path
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._json({"error": "request too large"}, HTTPStatus.BAD_REQUEST)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("expected a JSON object")
                index = int(body.get("scenario", 0))
                with lock:
                    if path == "/api/edit":
                        self._json(planner.edit(index, body))
                    elif path == "/api/save":
                        saved = planner.save(index)
                        self._json({"saved": str(saved)})
                    else:
                        self._not_found()
            except InputError as exc:
                self._refuse(exc)
            except (ValueError, TypeError) as exc:
                self._json({"error": f"bad request: {exc}"}, HTTPStatus.BAD_REQUEST)

    return Handler


def make_server(planner: Planner, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Build the page's server (not yet serving).

    Parameters
    ----------
    planner : Planner
    host : str, default "127.0.0.1"
    port : int, default 0
        0 picks a free port (see ``server.server_address``).

    Returns
    -------
    http.server.ThreadingHTTPServer
    """
    server = ThreadingHTTPServer((host, port), _handler(planner, threading.Lock()))
    server.daemon_threads = True
    return server


def serve(
    planner: Planner,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    open_browser: bool = True,
    on_ready: Any = None,
) -> None:
    """Serve the page until interrupted.

    Parameters
    ----------
    planner : Planner
    host : str, default "127.0.0.1"
    port : int, default 8765
    open_browser : bool, default True
        Open the page in the default browser once serving.
    on_ready : callable, optional
        ``on_ready(url)`` once the server listens.
    """
    server = make_server(planner, host, port)
    name, bound = server.server_address[:2]
    url = f"http://{name}:{bound}/"
    if on_ready is not None:
        on_ready(url)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, (url,)).start()
    try:
        server.serve_forever()
    finally:
        server.server_close()


__all__ = ["MAX_BODY", "make_server", "serve", "static_file"]
