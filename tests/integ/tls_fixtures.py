"""tls_fixtures - certificates, keys and a users file for the TLS and AUTH
tests (test_tls_auth.py), made once per test session.

The `openssl` command makes them (Python's stdlib cannot make certificates
and the tests must not need a third-party package): a test CA, a server
certificate for mail.test.example (also localhost and 127.0.0.1, so a
client connecting to 127.0.0.1 can check the name) and one for
other.test.example (chosen by SNI), both signed by the CA, with P-256
keys; and one more for mail.test.example with an RSA key, for the cipher
tests (RSA key exchange needs an RSA certificate).  `tern passwd` makes
the users file's hashes, the way an administrator would.

Everything lives in a 0755 directory in /tmp with 0644 files: when the
tests run as root, tern drops to its own user, and whatever it reads after
that must be readable by that user.
"""

import shutil
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tern_harness import TERN_BIN

CA_NAME = "tern test CA"
MAIL_NAME = "mail.test.example"
OTHER_NAME = "other.test.example"

# the users file: name -> password
USERS = {
    "paulv": "pw-paulv",
    "pea@dma.example": "pw-pea",
}

SERVER_EXTENSIONS = """\
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
subjectAltName = {san}
"""


@dataclass
class Pair:
    """One certificate and its key (PEM files)."""
    name: str
    cert: Path
    key: Path

    def der(self):
        """The certificate in DER form, as ssl's getpeercert(True) gives
        it: what a test compares the server's certificate with."""
        return ssl.PEM_cert_to_DER_cert(self.cert.read_text())

    def tls_line(self, cert=None, key=None):
        """The configuration line for this pair (or for copies of it)."""
        return f"tls cert={cert or self.cert} key={key or self.key}"


@dataclass
class TLSFiles:
    """What the session fixture made."""
    dir: Path
    ca: Path          # the CA certificate, for the clients
    mail: Pair        # mail.test.example, localhost, 127.0.0.1
    other: Pair       # other.test.example
    rsa: Pair         # mail.test.example again, with an RSA key
    users: Path       # name:hash lines for USERS

    def client_context(self, check_hostname=True):
        """An SSLContext that trusts the test CA (and nothing else), with
        the hostname check on unless told otherwise."""
        ctx = ssl.create_default_context(cafile=str(self.ca))
        if not check_hostname:
            ctx.check_hostname = False
        return ctx


def openssl(*args, cwd):
    """Run an openssl command; fail the session with its output."""
    run = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True,
                         text=True, timeout=60, stdin=subprocess.DEVNULL)
    if run.returncode != 0:
        pytest.fail(f"openssl {' '.join(args)} failed:\n{run.stderr}")
    return run


def make_ca(d):
    openssl("req", "-x509", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "7",
            "-subj", f"/CN={CA_NAME}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    return d / "ca.pem"


def make_server_cert(d, name, sans, rsa=False):
    """A key (P-256, or RSA 2048) and a certificate for name, signed by
    the CA in d; the files are named after name (and -rsa)."""
    stem = f"{name}-rsa" if rsa else name
    ext = d / f"{stem}.ext"
    ext.write_text(SERVER_EXTENSIONS.format(san=",".join(sans)))
    key = (["-newkey", "rsa:2048"] if rsa else
           ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
    openssl("req", *key, "-nodes",
            "-keyout", f"{stem}.key", "-out", f"{stem}.csr",
            "-subj", f"/CN={name}", cwd=d)
    openssl("x509", "-req", "-in", f"{stem}.csr", "-CA", "ca.pem",
            "-CAkey", "ca.key", "-CAcreateserial", "-days", "7",
            "-extfile", ext.name, "-out", f"{stem}.pem", cwd=d)
    return Pair(name, d / f"{stem}.pem", d / f"{stem}.key")


def hash_password(password):
    """`tern passwd` with the password on stdin: the hash it prints."""
    run = subprocess.run([TERN_BIN, "passwd"],
                         input=password + "\n", capture_output=True,
                         text=True, timeout=30)
    assert run.returncode == 0, f"tern passwd failed: {run.stderr}"
    hashed = run.stdout.strip()
    assert hashed.startswith("$") and "\n" not in hashed, (
        f"tern passwd printed {run.stdout!r}")
    return hashed


def make_users(d):
    path = d / "users"
    lines = ["# made by tests/integ/tls_fixtures.py"]
    lines += [f"{name}:{hash_password(pw)}" for name, pw in USERS.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def tls_files():
    """The CA, the two server pairs and the users file (see TLSFiles)."""
    d = Path(tempfile.mkdtemp(prefix="tern-tls-", dir="/tmp"))
    d.chmod(0o755)
    ca = make_ca(d)
    mail_sans = [f"DNS:{MAIL_NAME}", "DNS:localhost", "IP:127.0.0.1"]
    mail = make_server_cert(d, MAIL_NAME, mail_sans)
    other = make_server_cert(d, OTHER_NAME, [f"DNS:{OTHER_NAME}"])
    rsa = make_server_cert(d, MAIL_NAME, mail_sans, rsa=True)
    users = make_users(d)
    for f in d.iterdir():
        f.chmod(0o644)
    yield TLSFiles(d, ca, mail, other, rsa, users)
    shutil.rmtree(d, ignore_errors=True)
