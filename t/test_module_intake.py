"""Anonymous intake through the real form: stored format, bad input, failures."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "pylib"))
import hpke_ref  # noqa: E402


def open_field(sv, ref, field):
    """Open one stored field from the raw rows, key1's PEM and the daemon's key2b."""
    rows = sv.db.query(
        "SELECT r.uuid::text, f.share_id, f.key2_pub, f.enc, f.ct, f.wrap_enc, f.wrap_ct, "
        "f.key1_fp FROM records r JOIN fields f ON f.record_id = r.id "
        "WHERE r.ref = %s AND f.name = %s", (ref, field))
    assert len(rows) == 1
    uuid, share, pub, enc, ct, wenc, wct, fp = rows[0]
    assert fp == sv.key1.fingerprint
    sk1 = sv.key1.private_raw()
    key2a = hpke_ref.unwrap_key2a(sk1, uuid, field, share, bytes(wenc), bytes(wct))
    key2b = sv.daemon.key2b(share)
    sk2 = hpke_ref.combine(key2a, key2b)
    assert hpke_ref.public_key(sk2) == bytes(pub)
    return hpke_ref.open_datum(sk2, uuid, field, bytes(enc), bytes(ct))


def test_submit_and_open_with_independent_hpke(sv):
    values = {"name": "Jane Q. Example", "ssn": "078-05-1120", "notes": "Zoë 🌍\r\nline two"}
    r = sv.submit(values)
    assert r.status == 200, r.text
    ref = sv.ref_of(r)
    assert ref
    for field, value in values.items():
        assert open_field(sv, ref, field) == value.encode("utf-8")
