"""A lean SMTP sink in its own process, for the sending benchmarks.

aiosmtpd costs more per message than the clients being compared, which hides their differences
(issue 13). This sink does the least a submission server must: EHLO (PIPELINING, 8BITMIME,
SMTPUTF8, SIZE, STARTTLS, AUTH PLAIN LOGIN), STARTTLS, AUTH (any password is accepted), MAIL,
RCPT, DATA (read up to the final "." and counted, never stored), RSET, NOOP, QUIT. One thread
per connection, blocking sockets, in a child process: it never shares the client's GIL.

``start_sink(certs)`` returns a :class:`Sink`; ``sink.delivered()`` returns and resets the
number of messages completed since the last call; ``sink.stop()`` ends the process.
"""

from __future__ import annotations

import multiprocessing
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any

_EHLO = (
    b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-SIZE 52428800\r\n"
    b"%s250 AUTH PLAIN LOGIN\r\n"
)


def _session(conn: socket.socket, context: ssl.SSLContext | None, count: list[int]) -> None:
    stream: Any = conn
    reader = stream.makefile("rb")
    stream.sendall(b"220 sink ready\r\n")
    tls = False
    try:
        while True:
            line = reader.readline(4096)
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                starttls = b"250-STARTTLS\r\n" if context is not None and not tls else b""
                stream.sendall(_EHLO % starttls)
            elif verb == b"STAR" and context is not None:
                stream.sendall(b"220 go ahead\r\n")
                stream = context.wrap_socket(conn, server_side=True)
                reader = stream.makefile("rb")
                tls = True
            elif verb == b"AUTH":
                parts = line.split()
                if len(parts) == 2 and parts[1].upper() == b"PLAIN":
                    stream.sendall(b"334 \r\n")
                    reader.readline(4096)
                elif len(parts) >= 2 and parts[1].upper() == b"LOGIN":
                    if len(parts) == 2:
                        stream.sendall(b"334 VXNlcm5hbWU6\r\n")
                        reader.readline(4096)
                    stream.sendall(b"334 UGFzc3dvcmQ6\r\n")
                    reader.readline(4096)
                stream.sendall(b"235 2.7.0 ok\r\n")
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                stream.sendall(b"250 ok\r\n")
            elif verb == b"DATA":
                stream.sendall(b"354 go\r\n")
                while True:
                    data = reader.readline()
                    if not data or data == b".\r\n":
                        break
                count[0] += 1  # one client at a time in these benchmarks: no lock needed
                stream.sendall(b"250 ok queued\r\n")
            elif verb == b"QUIT":
                stream.sendall(b"221 bye\r\n")
                return
            else:
                stream.sendall(b"502 no\r\n")
    except OSError:
        return
    finally:
        stream.close()


def _serve(cert_file: str | None, key_file: str | None, ready: Any, control: Any) -> None:
    context = None
    if cert_file and key_file:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
    listener = socket.create_server(("127.0.0.1", 0))
    count = [0]

    def accept() -> None:
        while True:
            conn, _ = listener.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=_session, args=(conn, context, count), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    ready.send(listener.getsockname()[1])
    while True:
        if control.recv() == "count":
            control.send(count[0])
            count[0] = 0


@dataclass
class Sink:
    port: int
    process: multiprocessing.Process
    control: Any
    user: str = "bench@example.com"
    password: str = "bench-password"

    def delivered(self) -> int:
        """Messages completed since the last call."""
        self.control.send("count")
        return int(self.control.recv())

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(5)


def start_sink(cert_file: str | None = None, key_file: str | None = None) -> Sink:
    """Start the sink (with STARTTLS when a certificate is given); returns once it listens."""
    ready, ready_child = multiprocessing.Pipe()
    control, control_child = multiprocessing.Pipe()
    process = multiprocessing.Process(
        target=_serve, args=(cert_file, key_file, ready_child, control_child), daemon=True
    )
    process.start()
    if not ready.poll(15):
        process.terminate()
        raise RuntimeError("the SMTP sink did not start")
    return Sink(int(ready.recv()), process, control)
