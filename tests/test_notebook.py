"""`dinoscope.show(run_dir)`: the viewer served on 127.0.0.1 from a daemon thread, shown in an iframe; in-process
and in a real headless Jupyter kernel (the venv's python, from a kernelspec in a temp dir)."""

from __future__ import annotations

import json
import re
import sys

import httpx
import pytest

from dinoscope.errors import DinoscopeError
from dinoscope.viewer import notebook as nb

IFRAME = re.compile(r'<iframe src="http://127\.0\.0\.1:(\d+)/"')


def _get(url: str) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=10) as client:  # never through a proxy
        return client.get(url)


@pytest.fixture
def in_notebook(monkeypatch):
    monkeypatch.setattr(nb, "_in_notebook", lambda: True)


def test_show_returns_an_iframe_of_a_live_local_server(digits_run, in_notebook):
    view = nb.show(digits_run, height=450)
    try:
        match = IFRAME.search(view._repr_html_())
        assert match and 'height="450"' in view._repr_html_()
        url = f"http://127.0.0.1:{match.group(1)}/"
        assert view.url == url
        page = _get(url)
        assert page.status_code == 200 and "assets/viewer.js" in page.text
        index = _get(url + "data/index.json")
        assert index.status_code == 200 and index.json()["n"] == 300
        again = nb.show(digits_run)  # the same run: the same server
        assert again.url == url
        server = nb._SERVERS[digits_run.resolve()]
        assert server.thread.daemon and server.sock.getsockname()[0] == "127.0.0.1"
    finally:
        nb.stop(digits_run)
    assert digits_run.resolve() not in nb._SERVERS


def test_show_outside_a_notebook_returns_the_url_and_honours_the_port(digits_run, capsys):
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    try:
        url = nb.show(digits_run, port=port)
        assert url == f"http://127.0.0.1:{port}/"
        assert "not in a notebook" in capsys.readouterr().err
        assert _get(url).status_code == 200
        with pytest.raises(DinoscopeError, match="cannot listen"):  # the port is taken now
            nb._bind(port)
    finally:
        nb.stop()


def _kernelspec(root) -> str:
    """A kernelspec for this interpreter (the venv's python), in root/kernels; its name."""
    name = "dinoscope-test-python"
    spec = root / "kernels" / name
    spec.mkdir(parents=True)
    spec.joinpath("kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "dinoscope test python", "language": "python",
    }))
    return name


@pytest.mark.slow
def test_show_in_a_real_notebook_kernel(digits_run, tmp_path, monkeypatch):
    import ipykernel  # noqa: F401  (the kernel the notebook runs on; in the test extras)
    import nbclient
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    for var, sub in (("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython"), ("JUPYTER_CONFIG_DIR", "cfg")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    name = _kernelspec(tmp_path / "jupyter")
    km = KernelManager(kernel_name=name, ip="127.0.0.1", transport="tcp",
                       kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(tmp_path / "jupyter" / "kernels")]))
    book = nbformat.v4.new_notebook()
    book.cells.append(nbformat.v4.new_code_cell(
        f"import dinoscope.viewer.notebook as nb; v = nb.show({str(digits_run)!r}); v"))
    client = nbclient.NotebookClient(book, km=km, timeout=60, kernel_name=name,
                                     resources={"metadata": {"path": str(tmp_path)}})
    with client.setup_kernel():
        assert km.kernel_spec.argv[0] == sys.executable
        client.execute_cell(book.cells[0], 0)
        outputs = book.cells[0].outputs
        shown = [o for o in outputs if o.get("output_type") == "execute_result"]
        assert shown, outputs
        match = IFRAME.search(shown[0]["data"].get("text/html", ""))
        assert match, shown[0]["data"]
        url = f"http://127.0.0.1:{match.group(1)}/"
        assert _get(url).status_code == 200  # served by the kernel, while it is alive
        assert _get(url + "data/index.json").status_code == 200
