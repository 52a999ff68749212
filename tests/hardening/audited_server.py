"""Runs the language server under a Python audit hook that records every network attempt.

Usage: python tests/hardening/audited_server.py AUDIT_LOG [server arguments...]
Each network event (and each subprocess started, for the record) is one JSON line in AUDIT_LOG.
Nothing is written to stdout: that is the protocol.
"""

from __future__ import annotations

import json
import socket
import sys
from typing import Any, TextIO

# Audit events that reach for the network (CPython's audit events table). Creating a socket is
# allowed only for AF_UNIX: asyncio's event loop wakes itself through a local socket pair.
NETWORK_EVENTS = frozenset({
    "socket.bind", "socket.connect", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
    "socket.gethostbyname", "socket.gethostbyaddr", "socket.getnameinfo", "socket.sethostname",
    "http.client.connect", "http.client.send", "urllib.Request", "ftplib.connect", "smtplib.connect",
    "imaplib.open", "poplib.connect", "nntplib.connect", "telnetlib.Telnet.open", "webbrowser.open",
})
RECORDED_EVENTS = frozenset({"subprocess.Popen", "os.posix_spawn"})


def install_network_audit(path: str) -> None:
    """Record network attempts (and subprocesses) of this process to `path`, one JSON line each."""
    log: TextIO = open(path, "a", buffering=1, encoding="utf-8")
    log.write(json.dumps({"kind": "installed", "event": "", "args": ""}) + "\n")  # proof the hook was live

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "socket.__new__":
            family = args[1] if len(args) > 1 else None
            if family in (socket.AF_UNIX, -1):  # -1: a socket object around an existing descriptor
                return
        elif event not in NETWORK_EVENTS and event not in RECORDED_EVENTS:
            return
        kind = "process" if event in RECORDED_EVENTS else "network"
        log.write(json.dumps({"kind": kind, "event": event, "args": repr(args)[:500]}) + "\n")

    sys.addaudithook(hook)


if __name__ == "__main__":
    install_network_audit(sys.argv[1])
    from codeassist_lsp.cli import serve_main

    sys.exit(serve_main(sys.argv[2:]))
