"""devtools.embedded_wms.free_port: ports below the kernel's ephemeral range, which no
outgoing connection can take between the pick and the server's bind."""

from __future__ import annotations

import socket

from devtools.embedded_wms import _ephemeral_range, free_port


def test_ports_are_free_and_below_the_ephemeral_range():
    low, high = _ephemeral_range()
    assert 1024 < low <= high
    for _ in range(20):
        port = free_port()
        assert 10000 <= port < low
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))  # free indeed



def test_a_port_is_never_given_twice_by_one_process():
    """A cluster picks its ports first and binds them later: no two picks may be equal."""
    picks = [free_port() for _ in range(500)]
    assert len(set(picks)) == len(picks)
