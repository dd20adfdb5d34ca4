"""The free-space watermark (store.min_free): below it STORE is refused
with NO_SPACE, so that a flood of submissions cannot fill the disk of the
audit log (which would make the daemon refuse decrypts and unlock, fail
closed); what is left stays for audit entries, decrypts, lock-down and
unlock. A configured watermark above the machine's free space stands in
for a full file system."""
import pytest

from svtest.fixtures_daemon import WERR, DaemonError, Record

EXA = "1000000GiB"  # more than any test machine has free


@pytest.mark.log_allows(
    r"LOCK-DOWN \(operator, from control-uid-\d+\): decrypts refused until",
    r"STORE record=\S+ refused: \d+ bytes free, below store\.min_free \(\d+\);",
    r"\d+ more refusals \(no-space\) from [\d.]+ in the last \d+ s",
    r"unlocked by control-uid-\d+: decrypts allowed again",
)
def test_store_refused_below_the_watermark_the_rest_works(daemon_factory, store_driver):
    d = daemon_factory(driver=store_driver, start=False)
    d.start()
    kept = Record({"name": "before", "ssn": "123"})
    with d.client() as c:
        kept.stored(c.store(kept.uuid, kept.store_fields()))
    d.stop()
    d.config["store"]["min_free"] = EXA
    d.write_config()
    d.start()
    before = d.shares()
    r = Record({"name": "flood"})
    with d.client() as c:
        for _ in range(5):
            with pytest.raises(DaemonError) as e:
                c.store(r.uuid, r.store_fields())
            assert e.value.code == WERR["NO_SPACE"] and e.value.retry_ms == 60000
            assert "free-space watermark" in e.value.msg
        # decrypts go on, rotation included (its pending shares are stored)
        out = c.decrypt(kept.uuid, "pat", kept.decrypt_fields(rotate=True))
        assert [pt for pt, _ in out] == [b"before", b"123"]
        assert c.release(kept.uuid, kept.commit_rotation([n for _, n in out])) == 2
    assert set(before) <= set(d.shares()) and len(d.shares()) == len(before) + 2
    # lock-down and unlock work
    assert d.ctl("lockdown").returncode == 0
    assert d.ctl("unlock").returncode == 0
    text = d.wait_audit("why=no-space")
    assert "event=refusal why=no-space peer=127.0.0.1 free=" in text
    assert "below store.min_free" in d.log_text()
    # room again (watermark off): STORE works
    d.stop()
    d.config["store"]["min_free"] = "0"
    d.write_config()
    d.start()
    with d.client() as c:
        assert c.store(r.uuid, r.store_fields())


@pytest.mark.log_allows(
    r"STORE record=\S+ refused: \d+ bytes free, below store\.min_free \(\d+\);",
)
def test_intake_says_not_stored_when_the_daemon_has_no_room(sv_factory):
    sv = sv_factory(daemon_options={"min_free": EXA})
    sv.allowed_errors.append(r"SV01714: splitvaultd refused STORE: no space")
    r = sv.submit({"name": "Jane", "ssn": "078-05-1120", "notes": ""})
    assert r.status == 503 and "not stored" in r.text.lower(), r.text
    assert sv.db.count("records") == 0
    assert "SV01714: splitvaultd refused STORE: no space" in sv.httpd.log_text()
