"""A TLS connection read by one thread and written by another (explorer.core.wire.tls), over loopback.

OpenSSL forbids a read and a write on one connection at once; unguarded, such a pair ended some
connections in ten with "bad record mac" or an EOF. Every byte here is numbered and checked."""
import hashlib
import socket
import ssl
import threading
import time

import numpy as np
import pytest

from explorer.core.wire.frame import encode_frame, read_frame
from explorer.core.wire.tls import DuplexTLS, duplex

CHUNK = 3000  # a few TLS records' worth, as a snapshot's frame is several


def _pair(certificate):
    """(server side, client side), both DuplexTLS, handshake done."""
    cert, key = certificate
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(cert))
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = {}

    def accept():
        sock, _ = listener.accept()
        accepted["tls"] = server_context.wrap_socket(sock, server_side=True)

    thread = threading.Thread(target=accept)
    thread.start()
    client = client_context.wrap_socket(socket.create_connection(listener.getsockname()), server_hostname="127.0.0.1")
    thread.join(10)
    listener.close()
    return duplex(accepted["tls"]), duplex(client)


def _chunk(i: int, size: int) -> bytes:
    return (hashlib.sha256(str(i).encode()).digest() * (size // 32 + 1))[:size]


def _reader(sock, count, size, out):
    buf = bytearray()
    try:
        while len(buf) < count * size:
            data = sock.recv(65536)
            if not data:
                break
            buf += data
    except OSError as exc:
        out.append(repr(exc))
    out.append(bytes(buf))


def _writer(sock, count, size):
    for i in range(count):
        sock.sendall(_chunk(i, size))


def test_both_ends_read_and_write_at_once_and_every_byte_arrives(certificate):
    """Twenty connections, each streaming 3000-byte chunks down while small ones go up, both at once,
    each side's reader on its own thread: all arrive, in order, intact (unguarded: some broke)."""
    for _ in range(20):
        server, client = _pair(certificate)
        assert isinstance(server, DuplexTLS) and isinstance(client, DuplexTLS)
        down, up = [], []
        readers = [threading.Thread(target=_reader, args=(client, 300, CHUNK, down)),
                   threading.Thread(target=_reader, args=(server, 300, 100, up))]
        for t in readers:
            t.start()
        writers = [threading.Thread(target=_writer, args=(server, 300, CHUNK)),
                   threading.Thread(target=_writer, args=(client, 300, 100))]
        for t in writers:
            t.start()
        for t in writers + readers:
            t.join(30)
        assert down == [b"".join(_chunk(i, CHUNK) for i in range(300))]
        assert up == [b"".join(_chunk(i, 100) for i in range(300))]
        server.close()
        client.close()


def test_a_frame_reads_whole_over_tls_and_a_quiet_peer_times_out_without_loss(certificate):
    server, client = _pair(certificate)
    try:
        client.settimeout(0.2)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            read_frame(client)
        assert 0.15 < time.monotonic() - started < 5
        with pytest.raises(ssl.SSLWantReadError):  # non-blocking: at once
            client.setblocking(False)
            client.recv(10)
        client.settimeout(5)
        big = np.arange(1 << 18, dtype=np.float32)  # 1 MiB: many records, a full socket buffer on the way
        server.sendall(encode_frame("snapshot", {"step": 7}, {"w": big}))
        frame = read_frame(client, timeout=5)
        assert frame.kind == "snapshot" and frame.fields["step"] == 7
        np.testing.assert_array_equal(frame.arrays["w"], big)
        assert client.pending() == 0 and client.gettimeout() == 5
    finally:
        server.close()
        client.close()


def test_a_shutdown_wakes_a_reader_waiting_on_another_thread(certificate):
    """How a connection is let go here: the socket is shut down under its waiting reader."""
    server, client = _pair(certificate)
    try:
        out = []
        reader = threading.Thread(target=_reader, args=(client, 1, 10, out))
        reader.start()
        time.sleep(0.2)
        assert reader.is_alive()
        client.shutdown(socket.SHUT_RDWR)
        reader.join(5)
        assert not reader.is_alive() and out[-1] == b""
        with pytest.raises(OSError):
            client.sendall(b"after the end")
    finally:
        server.close()
        client.close()


def test_a_plain_socket_is_left_as_it_is():
    a, b = socket.socketpair()
    try:
        assert duplex(a) is a
    finally:
        a.close()
        b.close()


def test_a_send_that_times_out_partway_ends_sending_on_that_connection(certificate):
    """OpenSSL keeps the part of a record a stopped send left unwritten, and would finish it from the next
    send's bytes: after a timed-out send no further send is taken (each caller drops the connection)."""
    server, client = _pair(certificate)
    try:
        client.settimeout(0.3)
        with pytest.raises(TimeoutError):
            client.sendall(b"x" * (64 << 20))  # nobody reads: the socket buffers fill, the send stops
        with pytest.raises(OSError, match="a send stopped partway"):
            client.sendall(b"a frame")
        client.settimeout(0.2)
        with pytest.raises(TimeoutError):
            client.recv(10)  # reading is still allowed: nothing came, nothing is lost
    finally:
        server.close()
        client.close()
