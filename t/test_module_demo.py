"""The demo (scripts/demo.sh -> fixtures_httpd.run_demo) walks the whole
story: it prints the key1 file and passphrase to load at the key location,
an admin loads it there, and privileged demo staff decrypt a submission;
then the same under dual control, with the two admins' shares it prints."""
import re
import shutil

from svtest.core import make_workdir
from svtest.fixtures_httpd import DEMO_BOB, STAFF, Stack, WebClient, run_demo


def test_demo_walks_the_whole_story(capsys):
    d = make_workdir("sv-demo-test")
    stack = run_demo(directory=d, wait=False)
    try:
        out = capsys.readouterr().out
        pem = re.search(r"key1 file to upload at the key location: (\S+)", out).group(1)
        passphrase = re.search(r"key1 passphrase: (.+)", out).group(1).strip()
        assert "unlock" in out and "reconcile" in out
        # the demo's daemon gives the web server and the reconcile tool a
        # certificate each, under their own roles, and says so
        recon = re.search(r"reconcile --daemon \S+ --ca \S+ --cert (\S+) --key (\S+)", out)
        assert recon and "reconcile" in recon.group(1), out
        conf = stack.daemon.config["clients"]
        assert len(conf["frontend"]) == 1 and len(conf["reconcile"]) == 1
        assert conf["frontend"] != conf["reconcile"]
        assert "allow_combined_roles" not in conf
        # the demo's httpd has only the web role's grants, as an installation's
        assert "httpd connects as role splitvault_web" in out
        assert "user=splitvault_web" in stack.httpd.dbd_params()
        assert "user=splitvault_owner" in stack.db.dsn
        values = {"name": "Demo Person", "ssn": "123-45-6789", "notes": "Zoë was here"}
        ref = Stack.ref_of(stack.submit(values))
        assert ref
        pat = stack.login("pat", STAFF["pat"][0])
        r = stack.decrypt(pat, ref)
        assert r.status == 503 and "Key not loaded" in r.text
        with open(pem, "rb") as f:
            r = stack.upload_key1(pem=f.read(), passphrase=passphrase)
        assert r.status == 303, r.text
        r = stack.decrypt(pat, ref)
        assert r.status == 200, r.text
        assert Stack.decrypted_values(r) == values
        # dual control: forget key1, then ada and bob each give the share
        # the demo printed for them; one share loads nothing, two do
        assert stack.forget_key1().status == 303
        shares = dict((int(i), (who, path, pw)) for i, who, path, pw in re.findall(
            r"share (\d) for (\w+) *: (\S+)  passphrase: (.+)", out))
        assert sorted(shares) == [1, 2], out
        ada = stack.login("ada")
        r = stack.give_share(ada, open(shares[1][1], "rb").read(), shares[1][2].strip())
        assert r.status == 303, r.text
        assert "1 of 2 shares, from ada" in ada.get(stack.keys_path()).text
        assert stack.decrypt(pat, ref).status == 503
        bob = stack.login("bob", DEMO_BOB[0])
        r = stack.give_share(bob, open(shares[2][1], "rb").read(), shares[2][2].strip())
        assert r.status == 303, r.text
        r = stack.decrypt(pat, ref)
        assert r.status == 200, r.text
        assert Stack.decrypted_values(r) == values
        # the staff console answers on its own port, as the console role,
        # and the public pages link to it for password changes
        url = re.search(r"staff console: (https://localhost:(\d+)(\S+))", out)
        assert url and int(url.group(2)) == stack.console_port, out
        assert "connecting as role splitvault_console" in out
        assert "in production the console is an httpd" in out
        assert 'href="https://localhost:%s' % url.group(2) in \
            stack.login("ada").get(stack.path("/staff/")).text
        con = WebClient(stack.console_port, cafile=stack.pki.ca_cert, host="localhost")
        page = con.get(stack.path("/staff/login"))
        assert page.status == 200
        r = con.post(stack.path("/staff/login"), {"csrf": page.csrf(), "name": "ada",
                                                  "password": STAFF["ada"][0]})
        assert r.status == 303, r.text
        r = con.get(url.group(3))
        assert r.status == 200 and 'id="staff-list"' in r.text and ">bob<" in r.text, r.text
        # the printed reconcile command works with its certificate (a dry run)
        p = stack.reconcile("--grace", "3600", cert=recon.group(1), key=recon.group(2))
        assert p.returncode == 0 and "dry run" in p.stdout, p.stdout + p.stderr
    finally:
        try:
            stack.teardown()
        finally:
            stack.pg_cluster.stop()
            shutil.rmtree(d, ignore_errors=True)
