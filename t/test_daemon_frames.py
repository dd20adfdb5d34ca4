"""Every malformed-frame class of the wire fuzz corpus (fuzz/corpus/wire)
sent to a live daemon over mutual TLS: refused with an error (or, for a
frame cut short, closed at the I/O timeout), the connection closed, nothing
stored, and the daemon keeps serving other clients."""
import pytest

import svwire as w
from svtest.core import SRC
from svtest.fixtures_daemon import HDR_LEN, MSG, WERR, DaemonError, Record

CORPUS = SRC / "fuzz" / "corpus" / "wire"
REQUESTS = {"store", "decrypt", "release", "status", "recon_list", "recon_delete", "confirm",
            "recon_scan"}
RECONCILE = {"recon_list", "recon_delete", "recon_scan"}

# The module's shared daemon is refused something in nearly every test, and
# summarises repeated refusals once per period (audit.refusal_period): the
# summary lands in whichever test runs when the period ends.
pytestmark = pytest.mark.log_allows(r"\d+ more refusals \([a-z-]+\) from [\d.]+ in the last \d+ s")


def corpus():
    if not CORPUS.is_dir():
        return []
    return sorted(p.name for p in CORPUS.iterdir() if p.is_file())


def is_valid_request(name):
    kind, _, rest = name.partition("-")
    return kind in REQUESTS and rest.startswith("valid")


def client_for(d, name):
    """A client whose role may send this kind of request (reconcile's
    requests from the reconcile certificate, the rest from the module's):
    the frame is decoded, not refused for the role before it is read."""
    return d.reconciler() if name.partition("-")[0] in RECONCILE else d.client()


@pytest.fixture(scope="module")
def shared_daemon(pki):
    import shutil
    from svtest.core import make_workdir
    from svtest.fixtures_daemon import Daemon
    top = make_workdir("sv-frames")
    d = Daemon(top / "daemon", pki,
               timeouts={"io_timeout": "500ms", "idle_timeout": "5s"}).start()
    yield d
    d.teardown()
    shutil.rmtree(top, ignore_errors=True)


def test_corpus_present():
    names = corpus()
    assert len(names) > 40, "fuzz/corpus/wire is missing"
    assert any(not is_valid_request(n) for n in names)


@pytest.mark.log_allows(
    r"CONFIRM refused: malformed message field",
    r"CONFIRM refused: message truncated",
    r"DECRYPT refused: malformed message field",
    r"DECRYPT refused: message truncated",
    r"DECRYPT refused: trailing bytes after the message",
    r"DECRYPT refused: unknown critical extension",
    r"RECON_DELETE refused: malformed message field",
    r"RECON_DELETE refused: message truncated",
    r"RECON_LIST refused: malformed message field",
    r"RECON_SCAN refused: malformed message field",
    r"RELEASE refused: malformed message field",
    r"STATUS refused: trailing bytes after the message",
    r"STATUS refused: unknown critical extension",
    r"STORE body not received in time \(connections\.io_timeout\) or cut short;",
    r"STORE refused: malformed message field",
    r"STORE refused: message truncated",
    r"STORE refused: trailing bytes after the message",
    r"STORE refused: unknown critical extension",
    r"\d+ more refusals \(bad-frame\) from [\d.]+ in the last \d+ s",
    r"\d+ more refusals \(malformed-decrypt\) from [\d.]+ in the last \d+ s",
    r"bad frame header: unknown protocol version or bad magic; closing",
    r"message type \S+7f is not a request; closing",
    r"message type \S+8\d+ is not a request; closing",
    r"truncated frame header; closing",
)
@pytest.mark.parametrize("name", [n for n in corpus() if not is_valid_request(n)])
def test_malformed_frame_refused_and_closed(shared_daemon, name):
    d = shared_daemon
    data = (CORPUS / name).read_bytes()
    before = len(d.shares())
    c = client_for(d, name)
    try:
        c.send_raw(data)
        c.sock.settimeout(5)
        try:
            h, answer = c.recv_frame()
            t = h.type
        except (ConnectionError, OSError):
            t = None  # closed without an answer: only for frames cut short
        if name == "frame-trailing":
            # on a stream, bytes after a whole frame are the next frame: the
            # valid frame is answered (its record may be stored already: STORE
            # makes new records only), the rest is a frame cut short
            assert t == MSG["STORE_OK"] or (t == MSG["ERROR"] and
                                            answer.code == WERR["EXISTS"]), (name, answer)
            before = len(d.shares())
        elif t is None:
            assert "truncated" in name or len(data) < HDR_LEN, name
        else:
            assert t == MSG["ERROR"], (name, hex(t))
            assert answer.code in (WERR["BAD_REQUEST"], WERR["UNSUPPORTED"]), (name, answer)
        assert c.closed_by_peer(timeout=5), name
    finally:
        c.close()
    # nothing stored, and the daemon still serves another client
    assert len(d.shares()) == before
    with d.client() as other:
        assert other.status()["locked"] == 0


@pytest.mark.log_allows(
    r"CONFIRM record=\S+ actor=\S+: share\(s\) \d+,\d+ not confirmed \(unknown,",
    r"DECRYPT record=\S+ actor=\S+ refused: field \d+ \(a, share \d+\):",
    r"DECRYPT record=\S+ actor=\S+ refused: field \d+ \(email, share \d+\):",
    r"DECRYPT record=\S+ actor=\S+ refused: field \d+ \(national_id, share \d+\):",
    r"RELEASE record=\S+ refused: a frontend client may not mix activations and",
    r"STORE record=\S+ fields=national_id,card-number,Notes_2 refused: the record",
)
@pytest.mark.parametrize("name", [n for n in corpus() if is_valid_request(n)])
def test_valid_frames_answered_connection_kept(shared_daemon, name):
    d = shared_daemon
    data = (CORPUS / name).read_bytes()
    with client_for(d, name) as c:
        c.send_raw(data)
        c.sock.settimeout(10)
        h, answer = c.recv_frame()
        t = h.type
        if name.startswith("decrypt"):
            # random key material: refused, generically; the connection stays
            assert t == MSG["ERROR"] and answer.code == WERR["REFUSED"]
        elif name.startswith("release"):
            # the sample mixes a front end's items (rotation done, undone)
            # with reconcile's (an activation): no role may send that
            assert t == MSG["ERROR"] and answer.code == WERR["NOT_ALLOWED"], answer
            assert c.closed_by_peer()
            return
        elif name.startswith("store") and t == MSG["ERROR"]:
            # the samples share a record uuid: new records only
            assert answer.code == WERR["EXISTS"], answer
        else:
            assert t in (MSG["STORE_OK"], MSG["STATUS_OK"], MSG["RECON_LIST_OK"],
                         MSG["RECON_DELETE_OK"], MSG["CONFIRM_OK"], MSG["RECON_SCAN_OK"]), \
                (name, hex(t))
        assert c.status()["locked"] == 0


@pytest.mark.log_allows(
    r"bad frame header: unknown protocol version or bad magic; closing",
    r"truncated frame header; closing",
)
def test_garbage_and_slowloris(shared_daemon):
    d = shared_daemon
    with d.client() as c:
        c.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        h, answer = c.recv_frame()
        assert h.type == MSG["ERROR"] and answer.code == WERR["UNSUPPORTED"]
        assert c.closed_by_peer()
    # half a header, then silence: closed at the I/O timeout
    with d.client() as c:
        c.send_raw(b"SV\x01")
        assert c.closed_by_peer(timeout=5)
    r = Record({"after": "garbage"})
    with d.client() as c:
        assert c.store(r.uuid, r.store_fields())


@pytest.mark.log_allows(
    r"RECON_LIST refused: malformed message field",
    r"RELEASE refused: malformed message field",
    r"\d+ more refusals \(bad-frame\) from [\d.]+ in the last \d+ s",
    r"\d+ more refusals \(store-exists\) from [\d.]+ in the last \d+ s",
)
@pytest.mark.parametrize("driver", ["sqlite3", "pgsql"])
def test_share_id_over_bigint_is_malformed(daemon_factory, driver):
    """A share id above 2^63-1 (no SQL bigint holds it) is refused by the
    decoder as malformed, before the store sees it: no store error, no
    reconnect, the connection closed, the daemon serving on."""
    d = daemon_factory(driver=driver)
    r = Record({"ssn": "x"})
    with d.client() as c:
        r.stored(c.store(r.uuid, r.store_fields()))
    frames = [
        w.encode(w.Release(bytes.fromhex(r.uuid.replace("-", "")),
                           [w.ReleaseItem("ssn", (1 << 63) + i, 0)]), 7, check=False)
        for i in range(3)
    ] + [w.encode(w.ReconList(0, 1 << 63, 10), 8, check=False)]
    for i, data in enumerate(frames):
        with (d.reconciler() if i == 3 else d.client()) as c:
            c.send_raw(data)
            h, answer = c.recv_frame()
            assert h.type == MSG["ERROR"] and answer.code == WERR["BAD_REQUEST"], answer
            assert c.closed_by_peer()
    with d.client() as c:
        assert c.decrypt(r.uuid, "pat", r.decrypt_fields())[0][0] == b"x"
    log = d.log_text()
    assert "reconnect" not in log and "store: statement" not in log


@pytest.mark.log_allows(
    r"STORE record=\S+ failed in the store; nothing stored",
    r"\d+ more refusals \(bad-frame\) from [\d.]+ in the last \d+ s",
    r"\d+ more refusals \(store-exists\) from [\d.]+ in the last \d+ s",
    r"store: statement \d+ failed: ERROR:  new row for relation \"shares\" violates",
)
def test_sql_error_keeps_the_connection_and_logs_no_detail(daemon_factory):
    """A statement that fails on a healthy pgsql connection (here a CHECK
    constraint added behind the daemon's back) fails alone: STORE error,
    no reconnect, and the log holds the error's first line only, never
    its DETAIL (which echoes the row, key2b included)."""
    d = daemon_factory(driver="pgsql")
    d.sql("ALTER TABLE shares ADD CONSTRAINT no_boom CHECK (field <> 'boom')")
    bad = Record({"boom": "x"})
    good = Record({"fine": "y"})
    with d.client() as c:
        for _ in range(3):
            with pytest.raises(DaemonError) as e:
                c.store(bad.uuid, bad.store_fields())
            assert e.value.code == WERR["STORE"]
        good.stored(c.store(good.uuid, good.store_fields()))
        assert c.decrypt(good.uuid, "pat", good.decrypt_fields())[0][0] == b"y"
    log = d.log_text()
    assert "no_boom" in log  # the error itself is logged
    assert "reconnect" not in log
    assert "DETAIL" not in log and "Failing row" not in log
    assert bad.fields[0].key2b.hex() not in log
