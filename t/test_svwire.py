"""The Python wire codec (t/pylib/svwire.py) against the C one (lib/sv_wire.c).

- every seed of fuzz/corpus/wire/ (frames made by the C encoder, plus
  malformed ones named by the class the C decoders give them) gets the same
  class from Python, and every valid one re-encodes to the same bytes;
- the committed corpus is what the C generator writes today;
- thousands of mutated frames get the same class from both decoders
  (C through `fuzz/wire_corpus classify`);
- frames the Python encoder builds are accepted by the C decoders, and the
  Python encoder refuses what the C encoder refuses.
No server is started.
"""
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "pylib"))
import svwire as w  # noqa: E402

SRC = Path(__file__).resolve().parents[1]
CORPUS = SRC / "fuzz" / "corpus" / "wire"
BUILD = Path(os.environ.get("SV_BUILDDIR", str(SRC / "build")))
WIRE_CORPUS = BUILD / "fuzz" / "wire_corpus"

SEEDS = sorted(CORPUS.iterdir())
CLASSES = {"valid", w.TRUNCATED, w.TOO_LARGE, w.BAD_VERSION, w.BAD_TYPE, w.MALFORMED,
           w.TRAILING, w.UNSUPPORTED}

U = bytes(range(16))
K = [bytes([i] * 32) for i in range(8)]


def seed_class(path):
    return path.name.split("-")[1]


def c_classify(paths):
    """The C decoders' class for each file."""
    if not WIRE_CORPUS.exists():
        pytest.skip("%s not built (set SV_BUILDDIR to a build directory)" % WIRE_CORPUS)
    out = subprocess.run([str(WIRE_CORPUS), "classify"] + [str(p) for p in paths],
                         check=True, capture_output=True, text=True).stdout
    got = {}
    for line in out.splitlines():
        cls, path = line.split(" ", 1)
        got[path] = cls
    return [got[str(p)] for p in paths]


def test_corpus_is_there():
    assert len(SEEDS) >= 50
    assert {seed_class(p) for p in SEEDS} == CLASSES


@pytest.mark.parametrize("path", SEEDS, ids=[p.name for p in SEEDS])
def test_seed_class(path):
    data = path.read_bytes()
    assert w.classify(data) == seed_class(path)
    if seed_class(path) == "valid":
        h, m = w.decode_frame(data)
        assert type(m).TYPE == h.type
        # byte for byte, extensions included
        assert w.encode(m, h.reqid) == data


def test_corpus_matches_c_generator(tmp_path):
    if not WIRE_CORPUS.exists():
        pytest.skip("%s not built" % WIRE_CORPUS)
    subprocess.run([str(WIRE_CORPUS), "gen", str(tmp_path)], check=True, capture_output=True)
    made = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    kept = {p.name: p.read_bytes() for p in SEEDS}
    assert sorted(made) == sorted(kept), "regenerate: fuzz/wire_corpus gen fuzz/corpus/wire"
    for name in made:
        assert made[name] == kept[name], name


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        if op == 0 and data:      # flip a bit
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        elif op == 1 and data:    # set a byte to an edge value
            data[rng.randrange(len(data))] = rng.choice([0, 1, 2, 0x20, 0x7f, 0x80, 0xff])
        elif op == 2 and data:    # truncate
            del data[rng.randrange(len(data)):]
        elif op == 3:             # insert bytes
            i = rng.randrange(len(data) + 1)
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        elif op == 4 and len(data) > 12:  # keep the header's length honest
            n = len(data) - 12
            data[8:12] = n.to_bytes(4, "big")
        elif op == 5 and data:    # delete a byte
            del data[rng.randrange(len(data))]
    return bytes(data)


def test_mutations_same_class_in_c_and_python(tmp_path):
    rng = random.Random(20260101)
    paths = []
    seeds = [p.read_bytes() for p in SEEDS]
    for i in range(3000):
        data = mutate(rng, rng.choice(seeds))
        p = tmp_path / ("m%04d" % i)
        p.write_bytes(data)
        paths.append(p)
    c = c_classify(paths)
    mismatches = [(p.name, cc, w.classify(p.read_bytes())) for p, cc in zip(paths, c)
                  if cc != w.classify(p.read_bytes())]
    assert not mismatches, mismatches[:10]
    # the mutations reach every class, not just one
    assert set(c) == CLASSES


def python_messages():
    """Valid messages of every type, built in Python."""
    big = bytes(range(256)) * 4
    return [
        w.Store(U, [w.StoreField("a", K[0], K[1]), w.StoreField("B-2_c", K[2], K[3])]),
        w.Store(U, [w.StoreField("f%02d" % i, K[i % 8], K[(i + 1) % 8]) for i in range(32)]),
        w.StoreOk([1, 2, w.MAX_ID]),
        w.Decrypt(U, "dr.who@example.org", 1500, [
            w.DecryptField(7, "ssn", K[0], K[1], big[:27], True, K[2], K[3]),
            w.DecryptField(8, "note", K[4], K[5], big[:16]),
            w.DecryptField(9, "x" * 64, K[6], K[7], big, False)]),
        w.DecryptOk([w.DecryptOut(b"078-05-1120", 11), w.DecryptOut(b"", 0),
                     w.DecryptOut(big, 0)]),
        w.Release(U, [w.ReleaseItem("a", 1, 2), w.ReleaseItem("b", 3, 0),
                      w.ReleaseItem("c", 0, 4)]),
        w.ReleaseOk(0),
        w.Status(),
        w.StatusOk(1, 2, 3, 4, 5, 6, 7, 8, 9, 2 ** 64 - 1),
        w.ReconList(3600, 0, 1000),
        w.ReconListOk(1, [w.ReconEntry(i + 1, U, "n%d" % i, 1 + i % 2, 1700000000 + i)
                          for i in range(1000)]),
        w.ReconListOk(0, []),
        w.ReconDelete(60, [w.ReconRef(i * 2 + 1, U, "n") for i in range(1000)]),
        w.ReconDeleteOk(1000),
        w.Error(w.ErrCode.RATE_LIMITED, 250, "rate limited"),
        w.Error(w.ErrCode.REFUSED),
        w.Error(w.ErrCode.NO_SPACE, 60000, "no space"),
        w.Error(w.ErrCode.EXISTS),
        w.Confirm(U, "uma", [w.ConfirmItem(5, "ssn", K[0]), w.ConfirmItem(6, "name", K[1])]),
        w.Confirm(U, "x" * 64, [w.ConfirmItem(i + 1, "f%02d" % i, K[i % 8])
                                for i in range(32)]),
        w.ConfirmOk([1, 0, 1]),
        # a later optional field: a non-critical extension is skipped by v1
        w.Decrypt(U, "alice", 0, [w.DecryptField(1, "a", K[0], K[1], big[:16])],
                  ext=[(0x0001, b"\x00" * 64)]),
    ]


def test_python_encoder_accepted_by_c(tmp_path):
    paths = []
    for i, m in enumerate(python_messages()):
        data = w.encode(m, reqid=i)
        h, back = w.decode_frame(data)
        assert back == m
        assert h.reqid == i
        p = tmp_path / ("p%02d" % i)
        p.write_bytes(data)
        paths.append(p)
    assert c_classify(paths) == ["valid"] * len(paths)


def test_python_builds_malformed_frames_c_refuses(tmp_path):
    def field(i, name="a", rotate=False):
        return w.DecryptField(i, name, K[0], K[1], b"\x00" * 16, rotate, K[2], K[3])

    cases = [
        (w.encode(w.Store(U, [w.StoreField("a", K[0], K[1])] * 2), 1, check=False), w.MALFORMED),
        (w.encode(w.Store(U, []), 1, check=False), w.MALFORMED),
        (w.encode(w.Decrypt(U, "bad actor", 0, [field(1)]), 1, check=False), w.MALFORMED),
        (w.encode(w.Decrypt(U, "a", 0, [field(1), field(1, "b")]), 1, check=False),
         w.MALFORMED),
        (w.encode(w.Store(U, [w.StoreField("a", K[0], K[1])], ext=[(0x8001, b"")]), 1),
         w.UNSUPPORTED),
        (w.encode(w.Status(ext=[(0x10 + i, b"") for i in range(17)]), 1, check=False),
         w.MALFORMED),
        (w.frame(w.MsgType.STATUS, 1, b"\x00\x00", version=2), w.BAD_VERSION),
        (w.frame(w.MsgType.STATUS, 1, b"\x00\x00", magic=b"VS"), w.BAD_VERSION),
        (w.frame(0x42, 1, b"\x00\x00"), w.BAD_TYPE),
        (w.frame(w.MsgType.STATUS, 1, b"", body_len=w.MAX_BODY + 1), w.TOO_LARGE),
        (w.frame(w.MsgType.STATUS, 1, b"\x00\x00\x00"), w.TRAILING),
        (w.frame(w.MsgType.STATUS, 1, b"\x00\x00", body_len=3), w.TRUNCATED),
        (w.frame(w.MsgType.STATUS, 1, b"\x00\x00") + b"x", w.TRAILING),
        # share ids are 1..2^63-1 (SQL bigints in the store)
        (w.encode(w.StoreOk([1 << 63]), 1, check=False), w.MALFORMED),
        (w.encode(w.Release(U, [w.ReleaseItem("a", 1, 2 ** 64 - 1)]), 1, check=False),
         w.MALFORMED),
        (w.encode(w.ReconList(0, 1 << 63, 10), 1, check=False), w.MALFORMED),
        (w.encode(w.DecryptOk([w.DecryptOut(b"", 1 << 63)]), 1, check=False), w.MALFORMED),
        (w.frame(w.MsgType.DECRYPT, 1, w.Writer().raw(U).str8("a").u32(0).u8(1).u64(1)
                 .str8("f").raw(K[0]).raw(K[1]).blob32(b"\x00" * 16).u8(2).ext([]).bytes()),
         w.MALFORMED),
    ]
    paths = []
    for i, (data, cls) in enumerate(cases):
        assert w.classify(data) == cls, i
        p = tmp_path / ("x%02d" % i)
        p.write_bytes(data)
        paths.append(p)
    assert c_classify(paths) == [cls for _, cls in cases]


@pytest.mark.parametrize("m", [
    w.Store(U, []),
    w.Store(U, [w.StoreField("a b", K[0], K[1])]),
    w.Store(U, [w.StoreField("a", K[0], K[1])] * 2),
    w.Store(U, [w.StoreField("a", K[0], b"short")]),
    w.StoreOk([0]),
    w.StoreOk([5, 5]),
    w.StoreOk([1 << 63]),
    w.Decrypt(U, "", 0, [w.DecryptField(1, "a", K[0], K[1], b"\x00" * 16)]),
    w.Decrypt(U, "a", 0, [w.DecryptField(1, "a", K[0], K[1], b"\x00" * 15)]),
    w.Decrypt(U, "a", 0, [w.DecryptField(1, "a", K[0], K[1], b"\x00" * 16, True)]),
    w.Decrypt(U, "a", 0, [w.DecryptField(0, "a", K[0], K[1], b"\x00" * 16)]),
    w.DecryptOk([w.DecryptOut(b"\x00" * (w.DATUM_MAX + 1))]),
    w.DecryptOk([w.DecryptOut(b"", 3), w.DecryptOut(b"", 3)]),
    w.Release(U, [w.ReleaseItem("a")]),
    w.Release(U, [w.ReleaseItem("a", 1, 1)]),
    w.Release(U, [w.ReleaseItem("a", 1 << 63, 0)]),
    w.ReleaseOk(33),
    w.StatusOk(locked=2),
    w.ReconList(0, 0, 0),
    w.ReconList(0, 0, 1001),
    w.ReconList(0, 1 << 63, 1),
    w.ReconListOk(1, []),
    w.ReconListOk(0, [w.ReconEntry(2, U, "a", 1, 0), w.ReconEntry(1, U, "a", 1, 0)]),
    w.ReconListOk(0, [w.ReconEntry(1, U, "a", 3, 0)]),
    w.ReconDelete(0, []),
    w.ReconDeleteOk(1001),
    w.Error(0),
    w.Error(13),
    w.Confirm(U, "uma", []),
    w.Confirm(U, "", [w.ConfirmItem(1, "a", K[0])]),
    w.Confirm(U, "uma", [w.ConfirmItem(1, "a", K[0]), w.ConfirmItem(1, "b", K[0])]),
    w.Confirm(U, "uma", [w.ConfirmItem(1, "a", K[0]), w.ConfirmItem(2, "a", K[0])]),
    w.Confirm(U, "uma", [w.ConfirmItem(0, "a", K[0])]),
    w.Confirm(U, "uma", [w.ConfirmItem(1, "a", b"short")]),
    w.ConfirmOk([]),
    w.ConfirmOk([2]),
    w.Error(w.ErrCode.BUSY, 0, "tab\there"),
    w.Error(w.ErrCode.BUSY, 0, "x" * 201),
    w.Status(ext=[(1, b""), (0x8001, b"")]),
    w.Decrypt(U, "a", 0, [w.DecryptField(i + 1, "f%d" % i, K[0], K[1],
                                         b"\x00" * (w.DATUM_MAX + 16)) for i in range(16)]),
])
def test_python_encoder_refuses(m):
    with pytest.raises(ValueError):
        w.encode(m, 1)


class _FakeSock:
    """A socket that returns its bytes in dribbles."""

    def __init__(self, data):
        self.data = data
        self.sent = b""

    def recv(self, n):
        n = min(n, 3)
        out, self.data = self.data[:n], self.data[n:]
        return out

    def sendall(self, data):
        self.sent += data


def test_exchange_pairs_answers():
    answer = w.encode(w.StoreOk([10, 11]), 77)
    s = _FakeSock(answer)
    got = w.exchange(s, w.Store(U, [w.StoreField("a", K[0], K[1]),
                                    w.StoreField("b", K[2], K[3])]), 77)
    assert got == w.StoreOk([10, 11])
    assert w.decode_frame(s.sent)[0].type == w.MsgType.STORE
    # an ERROR answers anything
    s = _FakeSock(w.encode(w.Error(w.ErrCode.LOCKED_DOWN, 0, "locked down"), 5))
    assert w.exchange(s, w.Status(), 5).code == w.ErrCode.LOCKED_DOWN
    # wrong request id, wrong answer type
    with pytest.raises(w.WireError):
        w.exchange(_FakeSock(w.encode(w.StatusOk(), 6)), w.Status(), 5)
    with pytest.raises(w.WireError):
        w.exchange(_FakeSock(w.encode(w.ReleaseOk(1), 5)), w.Status(), 5)
    # a header announcing too much is refused before the body is read
    s = _FakeSock(w.frame(w.MsgType.STATUS_OK, 5, b"body", body_len=w.MAX_BODY + 1))
    with pytest.raises(w.WireError) as e:
        w.read_frame(s)
    assert e.value.kind == w.TOO_LARGE
    assert s.data == b"body"
    with pytest.raises(ConnectionError):
        w.read_frame(_FakeSock(answer[:20]))
