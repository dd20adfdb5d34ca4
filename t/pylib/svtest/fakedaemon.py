"""A stand-in for splitvaultd that completes the mutual-TLS handshake with
the daemon's certificate from the test PKI and then fails the exchange:
"close" (reads the frame's header, then closes), "hang" (reads the frame
and never answers) or "garbage" (answers with twelve bytes that are not a
frame header). It counts the frames it was sent."""
import socket
import ssl
import threading

MODES = ("close", "hang", "garbage")


class FakeTlsDaemon:

    def __init__(self, pki, mode):
        assert mode in MODES, mode
        self.mode = mode
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
        self.handshakes = 0
        self.frames = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, raw):
        try:
            raw.settimeout(60)
            c = self.ctx.wrap_socket(raw, server_side=True)
            with self.lock:
                self.handshakes += 1
            got = b""
            while len(got) < 12:
                more = c.recv(65536)
                if not more:
                    return
                got += more
            with self.lock:
                self.frames += 1
            if self.mode == "close":
                c.close()
            elif self.mode == "garbage":
                c.sendall(b"HTTP/1.0 200")
            else:
                self.stop.wait()
        except (OSError, ssl.SSLError):
            pass

    def close(self):
        self.stop.set()
        self.ls.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
