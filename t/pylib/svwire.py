"""SplitVault wire protocol, version 1, in Python (docs/protocol.md).

A second, independent implementation of the protocol that lib/sv_wire.c
implements in C, for the integration tests: build any request (including
deliberately malformed frames) and parse any answer, and talk to a real
splitvaultd over a TLS socket from Python's ssl module.

The decoders are exactly as strict as the C ones and refuse the same inputs
with the same class of error, checked in the same order (t/test_svwire.py
holds the two implementations to that). The encoders validate like the C
encoders unless called with ``check=False``, which lets a test send a
message the daemon must refuse; ``frame()`` and ``Writer`` build anything
at all.

    import svwire as w
    frame = w.encode(w.Store(uuid, [w.StoreField("email", pub, key2b)]), reqid=7)
    sock.sendall(frame)
    hdr, answer = w.read_frame(sock)   # w.StoreOk(...) or w.Error(...)
"""

import dataclasses
import enum
import struct
from typing import List, Optional, Tuple

MAGIC = b"SV"
VERSION = 1
HDR_LEN = 12
MAX_BODY = 1 << 20
MAX_FIELDS = 32
MAX_ACTOR = 64
MAX_MSG = 200
MAX_LIST = 1000
MAX_EXT = 16
MAX_ID = (1 << 63) - 1   # share ids are SQL bigints: 1..2^63-1 (0: none)
CRITICAL = 0x8000
EXT_ID_MASK = 0x7FFF
FIELD_MAX = 64
DATUM_MAX = 65536
TAG_LEN = 16
KEY_LEN = 32
UUID_LEN = 16


class MsgType(enum.IntEnum):
    STORE = 0x01
    DECRYPT = 0x02
    RELEASE = 0x03
    STATUS = 0x04
    RECON_LIST = 0x05
    RECON_DELETE = 0x06
    CONFIRM = 0x07
    RECON_SCAN = 0x08
    STORE_OK = 0x81
    DECRYPT_OK = 0x82
    RELEASE_OK = 0x83
    STATUS_OK = 0x84
    RECON_LIST_OK = 0x85
    RECON_DELETE_OK = 0x86
    CONFIRM_OK = 0x87
    RECON_SCAN_OK = 0x88
    ERROR = 0x7F


class ErrCode(enum.IntEnum):
    BAD_REQUEST = 1
    UNSUPPORTED = 2
    REFUSED = 3
    RATE_LIMITED = 4
    LOCKED_DOWN = 5
    BUSY = 6
    STORE = 7
    AUDIT = 8
    INTERNAL = 9
    NOT_ALLOWED = 10
    NO_SPACE = 11
    EXISTS = 12


SHARE_ACTIVE = 1
SHARE_PENDING = 2

# The answer type that pairs with each request type (ERROR answers any).
ANSWER = {
    MsgType.STORE: MsgType.STORE_OK,
    MsgType.DECRYPT: MsgType.DECRYPT_OK,
    MsgType.RELEASE: MsgType.RELEASE_OK,
    MsgType.STATUS: MsgType.STATUS_OK,
    MsgType.RECON_LIST: MsgType.RECON_LIST_OK,
    MsgType.RECON_DELETE: MsgType.RECON_DELETE_OK,
    MsgType.CONFIRM: MsgType.CONFIRM_OK,
    MsgType.RECON_SCAN: MsgType.RECON_SCAN_OK,
}

# Error classes, named as in the seed corpus (fuzz/corpus/wire/<msg>-<class>).
TRUNCATED = "truncated"      # SV_ERR_WIRE_TRUNCATED
TOO_LARGE = "toolarge"       # SV_ERR_WIRE_TOO_LARGE
BAD_VERSION = "version"      # SV_ERR_WIRE_VERSION (bad magic or version)
BAD_TYPE = "type"            # SV_ERR_WIRE_TYPE
MALFORMED = "malformed"      # SV_ERR_WIRE_MALFORMED
TRAILING = "trailing"        # SV_ERR_WIRE_TRAILING
UNSUPPORTED = "unsupported"  # SV_ERR_WIRE_UNSUPPORTED


class WireError(Exception):
    """A frame or message the decoder refuses; ``kind`` is one of the classes
    above (the C decoder's sv_status for the same input)."""

    def __init__(self, kind, what=""):
        super().__init__("%s%s" % (kind, ": " + what if what else ""))
        self.kind = kind


# ---- names ----------------------------------------------------------------

_FIELD_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ACTOR_CHARS = _FIELD_CHARS | frozenset(b".@")


def _as_bytes(s):
    return s.encode("latin-1") if isinstance(s, str) else bytes(s)


def field_name_valid(name) -> bool:
    b = _as_bytes(name)
    return 1 <= len(b) <= FIELD_MAX and all(c in _FIELD_CHARS for c in b)


def actor_valid(name) -> bool:
    b = _as_bytes(name)
    return 1 <= len(b) <= MAX_ACTOR and all(c in _ACTOR_CHARS for c in b)


def msg_text_valid(text) -> bool:
    b = _as_bytes(text)
    return len(b) <= MAX_MSG and all(0x20 <= c <= 0x7E for c in b)


# ---- messages ---------------------------------------------------------------
# ``ext`` holds (tag, value) pairs: what a decoder skipped, or what an
# encoder should send after the message's own fields.

@dataclasses.dataclass
class Header:
    version: int
    type: int
    reqid: int
    body_len: int


@dataclasses.dataclass
class StoreField:
    name: str
    pub: bytes
    key2b: bytes


@dataclasses.dataclass
class Store:
    uuid: bytes
    fields: List[StoreField]
    ext: list = dataclasses.field(default_factory=list)
    TYPE = MsgType.STORE


@dataclasses.dataclass
class StoreOk:
    share_ids: List[int]
    ext: list = dataclasses.field(default_factory=list)
    TYPE = MsgType.STORE_OK


@dataclasses.dataclass
class DecryptField:
    share_id: int
    name: str
    key2a: bytes
    enc: bytes
    ct: bytes
    rotate: bool = False
    new_pub: Optional[bytes] = None
    new_key2b: Optional[bytes] = None


@dataclasses.dataclass
class Decrypt:
    uuid: bytes
    actor: str
    wait_ms: int
    fields: List[DecryptField]
    ext: list = dataclasses.field(default_factory=list)
    TYPE = MsgType.DECRYPT


@dataclasses.dataclass
class DecryptOut:
    pt: bytes
    new_share_id: int = 0


@dataclasses.dataclass
class DecryptOk:
    outs: List[DecryptOut]
    ext: list = dataclasses.field(default_factory=list)
    TYPE = MsgType.DECRYPT_OK


@dataclasses.dataclass
class ReleaseItem:
    name: str
    drop_id: int = 0
    keep_id: int = 0


@dataclasses.dataclass
class Release:
    uuid: bytes
    items: List[ReleaseItem]
    ext: list = dataclasses.field(default_factory=list)
    TYPE = MsgType.RELEASE


@dataclasses.dataclass
class ReleaseOk:
    n: int
    ext: list = dataclasses.field(default_factory=list)
    TYPE = MsgType.RELEASE_OK


@dataclasses.dataclass
class Status:
    ext: list = dataclasses.field(default_factory=list)
    TYPE = MsgType.STATUS


@dataclasses.dataclass
class StatusOk:
    locked: int = 0
    queue_len: int = 0
    queue_max: int = 0
    locked_since: int = 0
    shares_active: int = 0
    shares_pending: int = 0
    stores: int = 0
    decrypts: int = 0
    refusals: int = 0
    uptime: int = 0
    ext: list = dataclasses.field(default_factory=list)
    TYPE = MsgType.STATUS_OK


@dataclasses.dataclass
class ReconList:
    grace_s: int
    after_id: int
    limit: int
    ext: list = dataclasses.field(default_factory=list)
    TYPE = MsgType.RECON_LIST


@dataclasses.dataclass
class ReconEntry:
    id: int
    uuid: bytes
    name: str
    state: int
    created: int


@dataclasses.dataclass
class ReconListOk:
    more: int
    entries: List[ReconEntry]
    ext: list = dataclasses.field(default_factory=list)
    TYPE = MsgType.RECON_LIST_OK


@dataclasses.dataclass
class ReconRef:
    id: int
    uuid: bytes
    name: str


@dataclasses.dataclass
class ReconDelete:
    grace_s: int
    refs: List[ReconRef]
    ext: list = dataclasses.field(default_factory=list)
    TYPE = MsgType.RECON_DELETE


@dataclasses.dataclass
class ReconDeleteOk:
    n: int
    ext: list = dataclasses.field(default_factory=list)
    TYPE = MsgType.RECON_DELETE_OK


@dataclasses.dataclass
class ReconScan:
    after_id: int
    limit: int
    ext: list = dataclasses.field(default_factory=list)
    TYPE = MsgType.RECON_SCAN


@dataclasses.dataclass
class ScanEntry(ReconEntry):
    """A RECON_LIST entry and when the share was retired (0: in use)."""
    retired: int


@dataclasses.dataclass
class ReconScanOk:
    more: int
    min_grace_s: int
    total: int
    entries: List[ScanEntry]
    ext: list = dataclasses.field(default_factory=list)
    TYPE = MsgType.RECON_SCAN_OK


@dataclasses.dataclass
class ConfirmItem:
    share_id: int
    name: str
    pub: bytes


@dataclasses.dataclass
class Confirm:
    uuid: bytes
    actor: str
    items: List[ConfirmItem]
    ext: list = dataclasses.field(default_factory=list)
    TYPE = MsgType.CONFIRM


@dataclasses.dataclass
class ConfirmOk:
    ok: List[int]
    ext: list = dataclasses.field(default_factory=list)
    TYPE = MsgType.CONFIRM_OK


@dataclasses.dataclass
class Error:
    code: int
    retry_ms: int = 0
    msg: str = ""
    ext: list = dataclasses.field(default_factory=list)
    TYPE = MsgType.ERROR


# ---- writing ----------------------------------------------------------------

class Writer:
    """Big-endian body builder; writes whatever it is told (no checks)."""

    def __init__(self):
        self.b = bytearray()

    def u8(self, v):
        self.b += struct.pack(">B", v)
        return self

    def u16(self, v):
        self.b += struct.pack(">H", v)
        return self

    def u32(self, v):
        self.b += struct.pack(">I", v)
        return self

    def u64(self, v):
        self.b += struct.pack(">Q", v)
        return self

    def raw(self, data):
        self.b += bytes(data)
        return self

    def str8(self, s):
        data = _as_bytes(s)
        return self.u8(len(data)).raw(data)

    def blob32(self, data):
        return self.u32(len(data)).raw(data)

    def ext(self, exts):
        """The extension block: u16 count, then {u16 tag, u16 len, bytes}."""
        self.u16(len(exts))
        for tag, value in exts:
            self.u16(tag).u16(len(value)).raw(value)
        return self

    def bytes(self):
        return bytes(self.b)


def frame(type_, reqid, body, *, magic=MAGIC, version=VERSION, body_len=None):
    """A frame with any header: body_len defaults to len(body)."""
    if body_len is None:
        body_len = len(body)
    return bytes(magic) + struct.pack(">BBII", version, type_, reqid, body_len) + bytes(body)


def _need(cond, what):
    if not cond:
        raise ValueError(what)


def _check_ext(exts):
    _need(len(exts) <= MAX_EXT, "too many extensions")
    ids = [t & EXT_ID_MASK for t, _ in exts]
    _need(len(set(ids)) == len(ids), "extension identity twice")
    for tag, value in exts:
        _need(0 <= tag <= 0xFFFF and len(value) <= 0xFFFF, "extension out of range")


def _check(m):
    """Raise ValueError for what the C encoder refuses (SV_ERR_INVAL)."""
    t = m.TYPE
    if t == MsgType.STORE:
        _need(len(m.uuid) == UUID_LEN, "uuid")
        _need(1 <= len(m.fields) <= MAX_FIELDS, "field count")
        names = [f.name for f in m.fields]
        _need(len(set(names)) == len(names), "field name twice")
        for f in m.fields:
            _need(field_name_valid(f.name), "field name")
            _need(len(f.pub) == KEY_LEN and len(f.key2b) == KEY_LEN, "key length")
    elif t == MsgType.STORE_OK:
        _need(1 <= len(m.share_ids) <= MAX_FIELDS, "count")
        _need(all(0 < i <= MAX_ID for i in m.share_ids), "share id")
        _need(len(set(m.share_ids)) == len(m.share_ids), "share id twice")
    elif t == MsgType.DECRYPT:
        _need(len(m.uuid) == UUID_LEN, "uuid")
        _need(actor_valid(m.actor), "actor")
        _need(0 <= m.wait_ms < 1 << 32, "wait_ms")
        _need(1 <= len(m.fields) <= MAX_FIELDS, "field count")
        names = [f.name for f in m.fields]
        ids = [f.share_id for f in m.fields]
        _need(len(set(names)) == len(names), "field name twice")
        _need(len(set(ids)) == len(ids), "share id twice")
        for f in m.fields:
            _need(0 < f.share_id <= MAX_ID, "share id")
            _need(field_name_valid(f.name), "field name")
            _need(len(f.key2a) == KEY_LEN and len(f.enc) == KEY_LEN, "key length")
            _need(TAG_LEN <= len(f.ct) <= DATUM_MAX + TAG_LEN, "ct length")
            _need(f.rotate in (0, 1, False, True), "rotate")
            if f.rotate:
                _need(f.new_pub is not None and len(f.new_pub) == KEY_LEN, "new_pub")
                _need(f.new_key2b is not None and len(f.new_key2b) == KEY_LEN, "new_key2b")
    elif t == MsgType.DECRYPT_OK:
        _need(1 <= len(m.outs) <= MAX_FIELDS, "count")
        ids = [o.new_share_id for o in m.outs if o.new_share_id]
        _need(len(set(ids)) == len(ids), "new share id twice")
        for o in m.outs:
            _need(len(o.pt) <= DATUM_MAX, "pt length")
            _need(0 <= o.new_share_id <= MAX_ID, "new share id")
    elif t == MsgType.RELEASE:
        _need(len(m.uuid) == UUID_LEN, "uuid")
        _need(1 <= len(m.items) <= MAX_FIELDS, "count")
        names = [i.name for i in m.items]
        _need(len(set(names)) == len(names), "field name twice")
        ids = []
        for i in m.items:
            _need(field_name_valid(i.name), "field name")
            _need(i.drop_id or i.keep_id, "both ids 0")
            _need(0 <= i.drop_id <= MAX_ID and 0 <= i.keep_id <= MAX_ID, "share id")
            ids += [x for x in (i.drop_id, i.keep_id) if x]
        _need(len(set(ids)) == len(ids), "id twice")
    elif t == MsgType.RELEASE_OK:
        _need(0 <= m.n <= MAX_FIELDS, "count")
    elif t == MsgType.STATUS_OK:
        _need(m.locked in (0, 1), "locked")
    elif t in (MsgType.RECON_LIST, MsgType.RECON_SCAN):
        _need(1 <= m.limit <= MAX_LIST, "limit")
        _need(0 <= m.after_id <= MAX_ID, "after_id")
    elif t in (MsgType.RECON_LIST_OK, MsgType.RECON_SCAN_OK):
        _need(m.more in (0, 1), "more")
        _need(len(m.entries) <= MAX_LIST, "count")
        _need(m.entries or not m.more, "more with nothing listed")
        prev = 0
        for e in m.entries:
            _need(e.id > prev, "ids not increasing")
            _need(e.id <= MAX_ID, "share id")
            prev = e.id
            _need(len(e.uuid) == UUID_LEN, "uuid")
            _need(field_name_valid(e.name), "field name")
            _need(e.state in (SHARE_ACTIVE, SHARE_PENDING), "state")
    elif t == MsgType.RECON_DELETE:
        _need(1 <= len(m.refs) <= MAX_LIST, "count")
        prev = 0
        for r in m.refs:
            _need(r.id > prev, "ids not increasing")
            _need(r.id <= MAX_ID, "share id")
            prev = r.id
            _need(len(r.uuid) == UUID_LEN, "uuid")
            _need(field_name_valid(r.name), "field name")
    elif t == MsgType.RECON_DELETE_OK:
        _need(0 <= m.n <= MAX_LIST, "count")
    elif t == MsgType.CONFIRM:
        _need(len(m.uuid) == UUID_LEN, "uuid")
        _need(actor_valid(m.actor), "actor")
        _need(1 <= len(m.items) <= MAX_FIELDS, "count")
        names = [i.name for i in m.items]
        ids = [i.share_id for i in m.items]
        _need(len(set(names)) == len(names), "field name twice")
        _need(len(set(ids)) == len(ids), "share id twice")
        for i in m.items:
            _need(0 < i.share_id <= MAX_ID, "share id")
            _need(field_name_valid(i.name), "field name")
            _need(len(i.pub) == KEY_LEN, "key length")
    elif t == MsgType.CONFIRM_OK:
        _need(1 <= len(m.ok) <= MAX_FIELDS, "count")
        _need(all(x in (0, 1) for x in m.ok), "flag")
    elif t == MsgType.ERROR:
        _need(m.code in set(ErrCode), "error code")
        _need(msg_text_valid(m.msg), "message text")
    _check_ext(m.ext)


def _enc_share_entry(w, e):
    """The part of a share-listing entry RECON_LIST_OK and RECON_SCAN_OK
    share; returns w for what follows."""
    return w.u64(e.id).raw(e.uuid).str8(e.name).u8(e.state).u64(e.created)


def encode_body(m, *, check=True):
    """The body of message m (its fields, then its extension block)."""
    if check:
        _check(m)
    w = Writer()
    t = m.TYPE
    if t == MsgType.STORE:
        w.raw(m.uuid).u8(len(m.fields))
        for f in m.fields:
            w.str8(f.name).raw(f.pub).raw(f.key2b)
    elif t == MsgType.STORE_OK:
        w.u8(len(m.share_ids))
        for i in m.share_ids:
            w.u64(i)
    elif t == MsgType.DECRYPT:
        w.raw(m.uuid).str8(m.actor).u32(m.wait_ms).u8(len(m.fields))
        for f in m.fields:
            w.u64(f.share_id).str8(f.name).raw(f.key2a).raw(f.enc).blob32(f.ct)
            w.u8(int(f.rotate))
            if f.rotate == 1:
                w.raw(f.new_pub).raw(f.new_key2b)
    elif t == MsgType.DECRYPT_OK:
        w.u8(len(m.outs))
        for o in m.outs:
            w.blob32(o.pt).u64(o.new_share_id)
    elif t == MsgType.RELEASE:
        w.raw(m.uuid).u8(len(m.items))
        for i in m.items:
            w.str8(i.name).u64(i.drop_id).u64(i.keep_id)
    elif t in (MsgType.RELEASE_OK,):
        w.u8(m.n)
    elif t == MsgType.STATUS:
        pass
    elif t == MsgType.STATUS_OK:
        w.u8(m.locked).u32(m.queue_len).u32(m.queue_max)
        for v in (m.locked_since, m.shares_active, m.shares_pending, m.stores,
                  m.decrypts, m.refusals, m.uptime):
            w.u64(v)
    elif t == MsgType.RECON_LIST:
        w.u32(m.grace_s).u64(m.after_id).u16(m.limit)
    elif t == MsgType.RECON_LIST_OK:
        w.u8(m.more).u16(len(m.entries))
        for e in m.entries:
            _enc_share_entry(w, e)
    elif t == MsgType.RECON_SCAN:
        w.u64(m.after_id).u16(m.limit)
    elif t == MsgType.RECON_SCAN_OK:
        w.u8(m.more).u32(m.min_grace_s).u64(m.total).u16(len(m.entries))
        for e in m.entries:
            _enc_share_entry(w, e).u64(e.retired)
    elif t == MsgType.RECON_DELETE:
        w.u32(m.grace_s).u16(len(m.refs))
        for r in m.refs:
            w.u64(r.id).raw(r.uuid).str8(r.name)
    elif t == MsgType.RECON_DELETE_OK:
        w.u16(m.n)
    elif t == MsgType.CONFIRM:
        w.raw(m.uuid).str8(m.actor).u8(len(m.items))
        for i in m.items:
            w.u64(i.share_id).str8(i.name).raw(i.pub)
    elif t == MsgType.CONFIRM_OK:
        w.u8(len(m.ok))
        for x in m.ok:
            w.u8(int(x))
    elif t == MsgType.ERROR:
        w.u16(m.code).u32(m.retry_ms).str8(m.msg)
    else:
        raise ValueError("unknown message type %r" % (t,))
    w.ext(m.ext)
    body = w.bytes()
    if check and len(body) > MAX_BODY:
        raise ValueError("body longer than %d bytes" % MAX_BODY)
    return body


def encode(m, reqid, *, check=True):
    """One complete frame carrying message m with request id reqid."""
    return frame(m.TYPE, reqid, encode_body(m, check=check))


# ---- reading ------------------------------------------------------------------

class _Reader:
    def __init__(self, body):
        self.b = memoryview(body)
        self.off = 0

    def left(self):
        return len(self.b) - self.off

    def bytes(self, n):
        if self.left() < n:
            raise WireError(TRUNCATED)
        v = bytes(self.b[self.off:self.off + n])
        self.off += n
        return v

    def u8(self):
        return self.bytes(1)[0]

    def u16(self):
        return struct.unpack(">H", self.bytes(2))[0]

    def u32(self):
        return struct.unpack(">I", self.bytes(4))[0]

    def u64(self):
        return struct.unpack(">Q", self.bytes(8))[0]

    def flag(self):
        v = self.u8()
        if v > 1:
            raise WireError(MALFORMED, "flag %d" % v)
        return v

    def count8(self, lo, hi):
        v = self.u8()
        if not lo <= v <= hi:
            raise WireError(MALFORMED, "count %d" % v)
        return v

    def count16(self, lo, hi):
        v = self.u16()
        if not lo <= v <= hi:
            raise WireError(MALFORMED, "count %d" % v)
        return v

    def id0(self):
        """A share id, or 0 (none) where the message allows it."""
        v = self.u64()
        if v > MAX_ID:
            raise WireError(MALFORMED, "id %d over 2^63-1" % v)
        return v

    def id(self):
        v = self.id0()
        if v == 0:
            raise WireError(MALFORMED, "id 0")
        return v

    def _name(self, maxlen, valid):
        n = self.u8()
        if n == 0 or n > maxlen:
            raise WireError(MALFORMED, "name length %d" % n)
        s = self.bytes(n)
        if not valid(s):
            raise WireError(MALFORMED, "name %r" % s)
        return s.decode("ascii")

    def field_name(self):
        return self._name(FIELD_MAX, field_name_valid)

    def actor(self):
        return self._name(MAX_ACTOR, actor_valid)

    def ext_end(self):
        """The extension block and the end of the body. v1 knows no
        extension: non-critical ones are returned (skipped), a critical one
        is UNSUPPORTED once the rest of the body is known to be well-formed."""
        count = self.u16()
        if count > MAX_EXT:
            raise WireError(MALFORMED, "%d extensions" % count)
        exts, seen, unsupported = [], [], False
        for _ in range(count):
            tag = self.u16()
            n = self.u16()
            value = self.bytes(n)
            if tag & EXT_ID_MASK in seen:
                raise WireError(MALFORMED, "extension 0x%04x twice" % tag)
            seen.append(tag & EXT_ID_MASK)
            if tag & CRITICAL:
                unsupported = True
            exts.append((tag, value))
        if self.left():
            raise WireError(TRAILING, "%d bytes" % self.left())
        if unsupported:
            raise WireError(UNSUPPORTED, "critical extension")
        return exts


def _dec_store(r):
    uuid = r.bytes(UUID_LEN)
    fields = []
    for _ in range(r.count8(1, MAX_FIELDS)):
        name = r.field_name()
        if any(f.name == name for f in fields):
            raise WireError(MALFORMED, "field %s twice" % name)
        fields.append(StoreField(name, r.bytes(KEY_LEN), r.bytes(KEY_LEN)))
    return Store(uuid, fields, r.ext_end())


def _dec_store_ok(r):
    ids = []
    for _ in range(r.count8(1, MAX_FIELDS)):
        i = r.id()
        if i in ids:
            raise WireError(MALFORMED, "share id twice")
        ids.append(i)
    return StoreOk(ids, r.ext_end())


def _dec_decrypt(r):
    uuid = r.bytes(UUID_LEN)
    actor = r.actor()
    wait_ms = r.u32()
    fields = []
    for _ in range(r.count8(1, MAX_FIELDS)):
        sid = r.id()
        if any(f.share_id == sid for f in fields):
            raise WireError(MALFORMED, "share id twice")
        name = r.field_name()
        if any(f.name == name for f in fields):
            raise WireError(MALFORMED, "field %s twice" % name)
        key2a = r.bytes(KEY_LEN)
        enc = r.bytes(KEY_LEN)
        ct_len = r.u32()
        if not TAG_LEN <= ct_len <= DATUM_MAX + TAG_LEN:
            raise WireError(MALFORMED, "ct length %d" % ct_len)
        ct = r.bytes(ct_len)
        rotate = r.flag()
        f = DecryptField(sid, name, key2a, enc, ct, bool(rotate))
        if rotate:
            f.new_pub = r.bytes(KEY_LEN)
            f.new_key2b = r.bytes(KEY_LEN)
        fields.append(f)
    return Decrypt(uuid, actor, wait_ms, fields, r.ext_end())


def _dec_decrypt_ok(r):
    outs = []
    for _ in range(r.count8(1, MAX_FIELDS)):
        n = r.u32()
        if n > DATUM_MAX:
            raise WireError(MALFORMED, "pt length %d" % n)
        pt = r.bytes(n)
        nid = r.id0()
        if nid and any(o.new_share_id == nid for o in outs):
            raise WireError(MALFORMED, "new share id twice")
        outs.append(DecryptOut(pt, nid))
    return DecryptOk(outs, r.ext_end())


def _dec_release(r):
    uuid = r.bytes(UUID_LEN)
    items, ids = [], []
    for _ in range(r.count8(1, MAX_FIELDS)):
        name = r.field_name()
        if any(i.name == name for i in items):
            raise WireError(MALFORMED, "field %s twice" % name)
        drop = r.id0()
        keep = r.id0()
        if not drop and not keep:
            raise WireError(MALFORMED, "both ids 0")
        for x in (drop, keep):
            if x:
                if x in ids:
                    raise WireError(MALFORMED, "id twice")
                ids.append(x)
        items.append(ReleaseItem(name, drop, keep))
    return Release(uuid, items, r.ext_end())


def _dec_status_ok(r):
    locked = r.flag()
    ql, qm = r.u32(), r.u32()
    rest = [r.u64() for _ in range(7)]
    return StatusOk(locked, ql, qm, *rest, ext=r.ext_end())


# u64 id, uuid[16], str8 field (1 byte at least), u8 state, u64 created:
# the part of a share-listing entry RECON_LIST_OK and RECON_SCAN_OK share.
_SHARE_ENTRY_MIN = 8 + UUID_LEN + 1 + 1 + 1 + 8


def _dec_listing(r, more, entry_min, entry):
    """The u16 count and entries of a share listing. entry(r, id, uuid,
    name, state, created) reads what follows the shared part and returns
    the entry."""
    n = r.count16(0, MAX_LIST)
    if n == 0 and more:
        raise WireError(MALFORMED, "more with nothing listed")
    if r.left() // entry_min < n:
        raise WireError(TRUNCATED, "%d entries cannot fit" % n)
    entries, prev = [], 0
    for _ in range(n):
        i = r.id()
        if i <= prev:
            raise WireError(MALFORMED, "ids not increasing")
        prev = i
        uuid = r.bytes(UUID_LEN)
        name = r.field_name()
        state = r.u8()
        if state not in (SHARE_ACTIVE, SHARE_PENDING):
            raise WireError(MALFORMED, "state %d" % state)
        entries.append(entry(r, i, uuid, name, state, r.u64()))
    return entries


def _dec_recon_list_ok(r):
    more = r.flag()
    entries = _dec_listing(r, more, _SHARE_ENTRY_MIN,
                           lambda r, *shared: ReconEntry(*shared))
    return ReconListOk(more, entries, r.ext_end())


def _dec_recon_scan_ok(r):
    more = r.flag()
    grace, total = r.u32(), r.u64()
    entries = _dec_listing(r, more, _SHARE_ENTRY_MIN + 8,
                           lambda r, *shared: ScanEntry(*shared, r.u64()))
    return ReconScanOk(more, grace, total, entries, r.ext_end())


def _dec_recon_delete(r):
    grace = r.u32()
    n = r.count16(1, MAX_LIST)
    if r.left() // (8 + UUID_LEN + 1 + 1) < n:
        raise WireError(TRUNCATED, "%d refs cannot fit" % n)
    refs, prev = [], 0
    for _ in range(n):
        i = r.id()
        if i <= prev:
            raise WireError(MALFORMED, "ids not increasing")
        prev = i
        refs.append(ReconRef(i, r.bytes(UUID_LEN), r.field_name()))
    return ReconDelete(grace, refs, r.ext_end())


def _dec_confirm(r):
    uuid = r.bytes(UUID_LEN)
    actor = r.actor()
    items = []
    for _ in range(r.count8(1, MAX_FIELDS)):
        sid = r.id()
        if any(i.share_id == sid for i in items):
            raise WireError(MALFORMED, "share id twice")
        name = r.field_name()
        if any(i.name == name for i in items):
            raise WireError(MALFORMED, "field %s twice" % name)
        items.append(ConfirmItem(sid, name, r.bytes(KEY_LEN)))
    return Confirm(uuid, actor, items, r.ext_end())


def _dec_confirm_ok(r):
    n = r.count8(1, MAX_FIELDS)
    return ConfirmOk([r.flag() for _ in range(n)], r.ext_end())


def _dec_error(r):
    code = r.u16()
    if code not in set(ErrCode):
        raise WireError(MALFORMED, "error code %d" % code)
    retry = r.u32()
    n = r.u8()
    if n > MAX_MSG:
        raise WireError(MALFORMED, "message length %d" % n)
    text = r.bytes(n)
    if not msg_text_valid(text):
        raise WireError(MALFORMED, "message text")
    return Error(code, retry, text.decode("ascii"), r.ext_end())


_DECODERS = {
    MsgType.STORE: _dec_store,
    MsgType.STORE_OK: _dec_store_ok,
    MsgType.DECRYPT: _dec_decrypt,
    MsgType.DECRYPT_OK: _dec_decrypt_ok,
    MsgType.RELEASE: _dec_release,
    MsgType.RELEASE_OK: lambda r: ReleaseOk(r.count8(0, MAX_FIELDS), r.ext_end()),
    MsgType.STATUS: lambda r: Status(r.ext_end()),
    MsgType.STATUS_OK: _dec_status_ok,
    MsgType.RECON_LIST: lambda r: ReconList(r.u32(), r.id0(), r.count16(1, MAX_LIST),
                                            r.ext_end()),
    MsgType.RECON_LIST_OK: _dec_recon_list_ok,
    MsgType.RECON_DELETE: _dec_recon_delete,
    MsgType.RECON_DELETE_OK: lambda r: ReconDeleteOk(r.count16(0, MAX_LIST), r.ext_end()),
    MsgType.CONFIRM: _dec_confirm,
    MsgType.CONFIRM_OK: _dec_confirm_ok,
    MsgType.RECON_SCAN: lambda r: ReconScan(r.id0(), r.count16(1, MAX_LIST), r.ext_end()),
    MsgType.RECON_SCAN_OK: _dec_recon_scan_ok,
    MsgType.ERROR: _dec_error,
}


def decode_body(type_, body):
    """Decode a body of the given type, as the C sv_*_decode() would."""
    if type_ not in _DECODERS:
        raise WireError(BAD_TYPE, "type 0x%02x" % type_)
    if len(body) > MAX_BODY:
        raise WireError(TOO_LARGE, "body of %d bytes" % len(body))
    return _DECODERS[type_](_Reader(body))


def decode_header(hdr) -> Header:
    """Check the 12 header bytes (before anything is read for the body)."""
    if len(hdr) < HDR_LEN:
        raise WireError(TRUNCATED, "header")
    version, type_, reqid, body_len = struct.unpack(">BBII", bytes(hdr[2:HDR_LEN]))
    h = Header(version, type_, reqid, body_len)
    if bytes(hdr[:2]) != MAGIC or version != VERSION:
        raise WireError(BAD_VERSION, "magic %r version %d" % (bytes(hdr[:2]), version))
    if type_ not in _DECODERS:
        raise WireError(BAD_TYPE, "type 0x%02x" % type_)
    if body_len > MAX_BODY:
        raise WireError(TOO_LARGE, "body length %d" % body_len)
    return h


def decode_frame(data) -> Tuple[Header, object]:
    """Decode exactly one frame: header, body of exactly body_len, nothing after."""
    if len(data) < HDR_LEN:
        raise WireError(TRUNCATED, "header")
    h = decode_header(data[:HDR_LEN])
    if len(data) - HDR_LEN < h.body_len:
        raise WireError(TRUNCATED, "body")
    if len(data) - HDR_LEN > h.body_len:
        raise WireError(TRAILING, "after the frame")
    return h, decode_body(h.type, data[HDR_LEN:])


def classify(data) -> str:
    """The class of a frame: "valid" or the WireError kind (as in the corpus)."""
    try:
        decode_frame(data)
        return "valid"
    except WireError as e:
        return e.kind


# ---- sockets ---------------------------------------------------------------------

def recv_exact(sock, n):
    """Read exactly n bytes from a (TLS) socket; ConnectionError at EOF."""
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("peer closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return bytes(buf)


def read_frame(sock) -> Tuple[Header, object]:
    """Read one frame: the header is checked before the body is read."""
    h = decode_header(recv_exact(sock, HDR_LEN))
    return h, decode_body(h.type, recv_exact(sock, h.body_len))


def exchange(sock, m, reqid):
    """Send request m and return its answer (the paired *_OK message or an
    Error), checking that the answer echoes reqid and has a matching type."""
    sock.sendall(encode(m, reqid))
    h, answer = read_frame(sock)
    if h.reqid != reqid:
        raise WireError(MALFORMED, "answer for request %d, sent %d" % (h.reqid, reqid))
    if h.type not in (ANSWER[m.TYPE], MsgType.ERROR):
        raise WireError(BAD_TYPE, "answer type 0x%02x to 0x%02x" % (h.type, m.TYPE))
    return answer
