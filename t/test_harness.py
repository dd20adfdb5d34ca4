"""The harness itself: PKI, PostgreSQL, and process handling work as the
other tests assume."""
import ssl
import subprocess

from svtest import core


def test_pki_chain(pki):
    for cert in (pki.server_cert, pki.client_cert):
        p = core.run(["openssl", "verify", "-CAfile", pki.ca_cert, cert])
        assert ": OK" in p.stdout
    p = core.run(["openssl", "verify", "-CAfile", pki.ca_cert, pki.other_client_cert], check=False)
    assert p.returncode != 0
    fp = pki.fingerprint(pki.client_cert)
    assert len(fp) == 64 and fp == fp.lower()


def test_pki_loads_in_tls(pki):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    ctx.load_verify_locations(pki.ca_cert)


def test_postgres_cluster(pg):
    db = pg.create_db("harness_check")
    conn = pg.connect(db)
    with conn.cursor() as cur:
        cur.execute("SHOW fsync")
        assert cur.fetchone()[0] == "on"
        cur.execute("SELECT 1")
        assert cur.fetchone()[0] == 1
    conn.close()
    pg.drop_db(db)


def test_proc_start_stop(workdir):
    port = core.free_port()
    p = core.Proc("listener", ["/usr/bin/python3", "-c",
                               "import socket,time;s=socket.socket();"
                               "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
                               "s.bind(('127.0.0.1',%d));s.listen();print('up',flush=True);"
                               "time.sleep(60)" % port], workdir / "listener.log").start()
    p.wait_port(port, timeout=10)
    assert p.alive()
    p.stop()
    assert not p.alive()
    assert "up" in (workdir / "listener.log").read_text()
