"""Starting the demo page: gradio imported (or one line naming the extra), bound, address printed.

Bound to 127.0.0.1 unless a host is given, so the page (which runs models on files of this
machine) is not reachable from other machines by accident.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from restore.demo.session import DemoSession
from restore.errors import ConfigError

#: How to install the demo's packages (named in the error when they are missing).
INSTALL = 'pip install -e ".[demo]"'


def import_gradio() -> ModuleType:
    """``gradio``, or a one-line :class:`ConfigError` naming the ``[demo]`` extra."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a local page
    try:
        import gradio
    except ImportError:
        raise ConfigError(f"restore demo needs the 'gradio' package, which is not installed: {INSTALL}") from None
    return gradio


def free_port(host: str) -> int:
    """A TCP port nobody listens on now (``--port 0``)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


def serve(*, option_file: str | None, weights: str | None, device: str, tile: int, host: str, port: int,
          quickstart_dir: Path, block: bool = True) -> str:
    """Build and start the page; print its address (stdout) and, with ``block``, serve until Ctrl-C.

    Returns the address. Results are written to a temporary folder removed on exit.
    """
    import_gradio()
    from restore.demo.app import build_app

    if port == 0:
        port = free_port(host)
    with tempfile.TemporaryDirectory(prefix="restore-demo-") as folder:
        session = DemoSession(device, Path(folder))
        app = build_app(session, option_file, weights, tile=tile, quickstart_dir=quickstart_dir)
        app.queue(default_concurrency_limit=1)  # one restore at a time: the CPU is shared anyway
        try:
            app.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True, share=False,
                       inbrowser=False, allowed_paths=[folder], ssr_mode=False, show_error=True)
        except OSError:  # gradio's own text advises its environment variables; ours names the flags
            raise ConfigError(f"cannot listen on {host} port {port} (in use, or not an address of this machine): "
                              "give another --port (0: any free one) or --host") from None
        address = url(host, port)
        exposed = "" if host in ("127.0.0.1", "localhost", "::1") else " (reachable from other machines)"
        print(f"restore demo: serving on {address}{exposed}; Ctrl-C stops", flush=True)
        if not block:
            app.close()
            return address
        try:
            app.block_thread()
        finally:
            app.close()
            sys.stdout.flush()
    return address
