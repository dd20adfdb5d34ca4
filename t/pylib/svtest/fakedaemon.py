"""Stand-ins for splitvaultd on a loopback port, for the module's failure
paths. FakeDaemon(mode, pki) accepts connections and then, by mode:

- "stall":   says nothing (no TLS handshake ever completes)
- "dribble": sends the start of a 16 KiB TLS handshake record, then one
             byte every 400 ms, never finishing it
- "answer":  completes the mutual-TLS handshake with the daemon's
             certificate from the test PKI, reads the request and answers
             with a frame that announces 4 KiB of body and sends it a byte
             at a time, never finished
- "close":   completes the handshake, reads the frame's header, closes
- "hang":    completes the handshake, reads the frame, never answers
- "garbage": completes the handshake, reads the frame, answers twelve
             bytes that are not a frame header

It counts the connections accepted, the handshakes completed and the
frames it was sent. close() stops it and closes every connection."""
import socket
import ssl
import threading

TLS_MODES = ("answer", "close", "hang", "garbage")
MODES = ("stall", "dribble") + TLS_MODES


class FakeDaemon:

    def __init__(self, mode, pki=None):
        assert mode in MODES, mode
        self.mode = mode
        if mode in TLS_MODES:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            self.ctx.load_cert_chain(str(pki.server_cert), str(pki.server_key))
            self.ctx.load_verify_locations(str(pki.ca_cert))
            self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.conns = []
        self.accepted = 0
        self.handshakes = 0
        self.frames = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def requests(self):
        return self.frames

    def _accept(self):
        serve = None if self.mode == "stall" else \
            self._dribble if self.mode == "dribble" else self._serve
        while not self.stop.is_set():
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.conns.append(c)
            if serve:
                threading.Thread(target=serve, args=(c,), daemon=True).start()

    def _trickle(self, c):
        while not self.stop.wait(0.4):  # a byte every 400 ms until closed
            c.sendall(b"\x00")

    def _dribble(self, c):
        try:
            c.sendall(b"\x16\x03\x03\x40\x00")  # a handshake record of 16 KiB...
            self._trickle(c)                       # ...that arrives a byte at a time
        except OSError:
            pass

    def _serve(self, raw):
        try:
            raw.settimeout(60)
            c = self.ctx.wrap_socket(raw, server_side=True)
            with self.lock:
                self.handshakes += 1
            req = b""
            while len(req) < 12:
                more = c.recv(65536)
                if not more:
                    return
                req += more
            with self.lock:
                self.frames += 1
            if self.mode == "close":
                c.close()
            elif self.mode == "garbage":
                c.sendall(b"HTTP/1.0 200")
            elif self.mode == "answer":
                # an answer to it that announces 4 KiB of body...
                c.sendall(b"SV\x01" + bytes([req[3] | 0x80]) + req[4:8]
                          + (4096).to_bytes(4, "big"))
                self._trickle(c)  # ...that arrives a byte at a time
            else:
                self.stop.wait()
        except (OSError, ssl.SSLError):
            pass

    def close(self):
        self.stop.set()
        self.ls.close()
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.close()
            except OSError:
                pass
