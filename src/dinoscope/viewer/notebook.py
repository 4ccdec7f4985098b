"""`dinoscope.show(run_dir)`: a run's viewer inline in a Jupyter notebook.

The viewer app (viewer.app.create_viewer_app) is served by uvicorn in a daemon thread of the kernel, bound to
127.0.0.1 only, and shown in an iframe. The browser showing the notebook must therefore run on the kernel's machine
(or forward the port, e.g. `ssh -L PORT:127.0.0.1:PORT`). One server per run: calling show() again for the same run
reuses it. The servers stop with the kernel, or with `stop()`.
"""

from __future__ import annotations

import html
import http.client
import socket
import threading
import time
from pathlib import Path

from ..console import say
from ..errors import DinoscopeError

HOST = "127.0.0.1"  # the only address ever bound or contacted
START_TIMEOUT = 30.0  # seconds to wait for a new server to answer


class ViewerFrame:
    """The viewer of a run in an iframe: a notebook shows it through `_repr_html_`; `url` is the page."""

    def __init__(self, url: str, height: int = 600):
        self.url = url
        self.height = int(height)

    def _repr_html_(self) -> str:
        return (f'<iframe src="{html.escape(self.url)}" width="100%" height="{self.height}" '
                'style="border: 1px solid #ddd;" title="dinoscope viewer" allowfullscreen></iframe>')

    def __repr__(self) -> str:
        return f"dinoscope viewer at {self.url}"


class _Server:
    """One uvicorn server of one run's viewer app, in a daemon thread, listening on an already bound socket."""

    def __init__(self, app, sock: socket.socket):
        import uvicorn

        self.sock = sock
        self.port = sock.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}/"
        config = uvicorn.Config(app, host=HOST, port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"dinoscope-viewer-{self.port}", daemon=True)

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        except BaseException as exc:  # reported to the waiting caller
            self.error = exc

    def start(self, timeout: float = START_TIMEOUT) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.thread.is_alive():
                raise DinoscopeError(f"the viewer server on {self.url} stopped at start: {self.error!r}")
            if self.server.started and self.answers():
                return
            time.sleep(0.05)
        self.stop()
        raise DinoscopeError(f"the viewer server on {self.url} did not answer within {timeout:.0f} s")

    def answers(self) -> bool:
        """Whether the page answers 200 (straight to 127.0.0.1, never through a proxy)."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
        try:
            conn.request("GET", "/")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def alive(self) -> bool:
        return self.thread.is_alive() and not self.server.should_exit

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout)
        try:
            self.sock.close()
        except OSError:
            pass


_SERVERS: dict[Path, _Server] = {}
_LOCK = threading.Lock()


def _bind(port: int | None) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 (a free port when `port` is None)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port or 0))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise DinoscopeError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}; choose another port "
                             "(or port=None for a free one)") from exc
    sock.set_inheritable(False)
    return sock


def _in_notebook() -> bool:
    """Whether this runs in an IPython kernel that renders HTML (not a plain interpreter or terminal IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ != "TerminalInteractiveShell"


def server_for(run_dir: str | Path, *, port: int | None = None, thumb_size: int = 32) -> str:
    """The URL of the viewer server of `run_dir` on 127.0.0.1, started (and waited for) unless already running."""
    key = Path(run_dir).expanduser().resolve()
    with _LOCK:
        running = _SERVERS.get(key)
        if running is not None and running.alive() and port in (None, running.port):
            return running.url
        if running is not None:  # a stopped server, or another port asked for: replace it
            running.stop()
            del _SERVERS[key]
        from .app import create_viewer_app

        app = create_viewer_app(key, thumb_size=thumb_size)
        server = _Server(app, _bind(port))
        server.start()
        _SERVERS[key] = server
        return server.url


def show(run_dir: str | Path, *, height: int = 600, port: int | None = None, thumb_size: int = 32):
    """Show the viewer of a run inline in a Jupyter notebook (an iframe of a local server on 127.0.0.1).

    The server runs in a daemon thread of this process, on a free port unless `port` is given, and is reused
    when show() is called again for the same run. Outside a notebook, returns the page's URL instead.
    """
    url = server_for(run_dir, port=port, thumb_size=thumb_size)
    if _in_notebook():
        return ViewerFrame(url, height=height)
    say("view", f"not in a notebook: the viewer of {run_dir} is at {url} (open it in a browser on this machine)")
    return url


def stop(run_dir: str | Path | None = None) -> None:
    """Stop the viewer server of `run_dir` (every one started by show() when None)."""
    with _LOCK:
        keys = list(_SERVERS) if run_dir is None else [Path(run_dir).expanduser().resolve()]
        for key in keys:
            server = _SERVERS.pop(key, None)
            if server is not None:
                server.stop()


__all__ = ["ViewerFrame", "server_for", "show", "stop"]
