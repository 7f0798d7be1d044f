"""A forked engine core closes the server's TCP sockets it inherited (the listener, client connections)
and keeps the rest: a keep-alive connection the server closes must really close."""

from __future__ import annotations

import json
import os
import socket

from vllama.engine import launch


def test_a_forked_child_closes_inherited_tcp_sockets_and_keeps_others():
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    served, _ = listener.accept()
    unix_a, unix_b = socket.socketpair()
    read_end, write_end = os.pipe()
    fds = {"listener": listener.fileno(), "served": served.fileno(), "unix": unix_a.fileno(), "pipe": write_end}
    with launch._sockets_closed_in_child(True):
        pid = os.fork()
        if pid == 0:  # the child: report which of the inherited descriptors are still open
            status = {}
            for name, fd in fds.items():
                try:
                    os.fstat(fd)
                    status[name] = True
                except OSError:
                    status[name] = False
            os.write(write_end, json.dumps(status).encode())
            os._exit(0)
    os.close(write_end)
    report = json.loads(os.read(read_end, 4096))
    os.waitpid(pid, 0)
    assert report == {"listener": False, "served": False, "unix": True, "pipe": True}
    # the server's own copy closed, the client sees the connection end (nothing else holds it)
    served.close()
    client.settimeout(10)
    assert client.recv(1) == b""
    for s in (listener, client, unix_a, unix_b):
        s.close()
    os.close(read_end)


def test_other_forks_keep_their_sockets():
    listener = socket.create_server(("127.0.0.1", 0))
    read_end, write_end = os.pipe()
    with launch._sockets_closed_in_child(False):
        pid = os.fork()
        if pid == 0:
            try:
                os.fstat(listener.fileno())
                os.write(write_end, b"open")
            except OSError:
                os.write(write_end, b"closed")
            os._exit(0)
    os.close(write_end)
    assert os.read(read_end, 16) == b"open"
    os.waitpid(pid, 0)
    listener.close()
    os.close(read_end)
