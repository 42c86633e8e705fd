"""Serving the explorer: bind the address first (so a taken port is a clear error and --port 0
picks a free one), say where it is, serve until Ctrl-C, then stop within a second or two
(open sample streams are closed, not waited for)."""

import contextlib
import ipaddress
import socket
import webbrowser

from rnnkit.errors import UsageError

LOCAL_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]  # the Host headers a local page sends


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port} ({error.strerror}): pick another --port "
            "(--port 0 takes any free one)"
        ) from None
    sock.listen(128)
    return sock


def serve(app, host: str, port: int, open_browser: bool, log) -> None:
    """Serve ``app`` until Ctrl-C (or SIGTERM)."""
    import uvicorn

    if not is_loopback(host):
        log(
            f"warning: serving on {host}, not only this machine: anyone who can reach it can "
            "read your runs' models and texts through the explorer"
        )
    sock = bind(host, port)
    shown_host = f"[{host}]" if ":" in host else host
    address = f"http://{shown_host}:{sock.getsockname()[1]}/"

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if self.started:  # serving, and Ctrl-C is handled: say where
                print(f"rnnkit explore: open {address}  (Ctrl-C stops it)", flush=True)
                if open_browser:
                    webbrowser.open(address)

    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C once it has
        Server(config).run(sockets=[sock])  # shut down: the usual way to stop, not an error
    log("rnnkit explore: stopped")
