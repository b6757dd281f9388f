#!/usr/bin/env python3
"""Writes the fuzz targets' seed inputs into corpus/<target>/: real CSRs, certificates and
CRLs minted here (python3-cryptography), the connection strings and pg_hba lines the
project's tests use, and a few hostile shapes of each. Run from fuzz/: python3 seeds.py.
The fuzzers start from these and grow their own corpus elsewhere (see scripts/fuzz.sh)."""

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER
NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def hash_for(key):
    return None if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)) else hashes.SHA256()


def name(*attrs):
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attrs])


KEYS = {
    "rsa2048": rsa.generate_private_key(65537, 2048),
    "rsa1024": rsa.generate_private_key(65537, 1024),
    "p256": ec.generate_private_key(ec.SECP256R1()),
    "p384": ec.generate_private_key(ec.SECP384R1()),
    "p521": ec.generate_private_key(ec.SECP521R1()),
    "ed25519": ed25519.Ed25519PrivateKey.generate(),
    "ed448": ed448.Ed448PrivateKey.generate(),
    "dsa": dsa.generate_private_key(2048),
}


def csr(key, subject, extensions=()):
    b = x509.CertificateSigningRequestBuilder().subject_name(subject)
    for ext in extensions:
        b = b.add_extension(ext, critical=False)
    return b.sign(key, hash_for(key))


# --- csr: mode byte 0 = PEM text, 1 = DER ---
alice = name((NameOID.COMMON_NAME, "alice"))
for label, key in KEYS.items():
    if label == "dsa":
        continue
    req = csr(key, alice)
    write("csr", f"pem-{label}", b"\x00" + req.public_bytes(PEM))
    write("csr", f"der-{label}", b"\x01" + req.public_bytes(DER))
p256 = KEYS["p256"]
shapes = {
    "two-cn": name((NameOID.COMMON_NAME, "alice"), (NameOID.COMMON_NAME, "bob")),
    "no-cn": name((NameOID.ORGANIZATION_NAME, "acme")),
    "utf8-cn": name((NameOID.COMMON_NAME, "Zo\u00eb"), (NameOID.COUNTRY_NAME, "FR")),
    "long-cn": name((NameOID.COMMON_NAME, "x" * 64)),
    "control-cn": name((NameOID.COMMON_NAME, "ali\nce")),
    "multi-rdn": x509.Name([x509.RelativeDistinguishedName([
        x509.NameAttribute(NameOID.COMMON_NAME, "alice"),
        x509.NameAttribute(NameOID.USER_ID, "a")])]),
}
for label, subject in shapes.items():
    req = csr(p256, subject)
    write("csr", f"pem-{label}", b"\x00" + req.public_bytes(PEM))
    write("csr", f"der-{label}", b"\x01" + req.public_bytes(DER))
with_san = csr(p256, alice, [x509.SubjectAlternativeName([x509.DNSName("postgres")])])
write("csr", "pem-with-extension", b"\x00" + with_san.public_bytes(PEM))
pem = csr(p256, alice).public_bytes(PEM).decode()
write("csr", "pem-text-around", "\x00Certificate Request:\n    Data: ...\n" + pem + "trailing\n")
write("csr", "pem-new-label", "\x00" + pem.replace("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"))
write("csr", "pem-two-blocks", "\x00" + pem + pem)
write("csr", "pem-encrypted-headers", "\x00" + pem.replace(
    "-----\n", "-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\n", 1))
write("csr", "pem-no-end", "\x00" + pem.split("-----END")[0])


# --- certificates: a CA and leaves with every SAN kind and common extensions ---
def certificate(subject, key, issuer, issuer_key, ca=False, sans=None, serial=1, days=30):
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(key.public_key()).serial_number(serial)
         .not_valid_before(NOW - datetime.timedelta(days=1))
         .not_valid_after(NOW + datetime.timedelta(days=days)))
    b = b.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    if ca:
        b = b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    else:
        b = b.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    return b.sign(issuer_key, hash_for(issuer_key))


ca_key = KEYS["p384"]
ca_name = name((NameOID.COUNTRY_NAME, "FR"), (NameOID.ORGANIZATION_NAME, "Acme, Inc."),
               (NameOID.COMMON_NAME, "pgssl client CA"))
ca = certificate(ca_name, ca_key, ca_name, ca_key, ca=True, days=3650)
server = certificate(
    name((NameOID.COMMON_NAME, "db.example.com")), KEYS["rsa2048"], ca_name, ca_key,
    sans=[x509.DNSName("db.example.com"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
          x509.IPAddress(ipaddress.ip_address("::1")), x509.RFC822Name("dba@example.com"),
          x509.UniformResourceIdentifier("https://example.com/")], serial=0x1234)
ed = certificate(name((NameOID.COMMON_NAME, " #lead+trail; "), (NameOID.DOMAIN_COMPONENT, "example")),
                 KEYS["ed25519"], ca_name, ca_key, serial=2**159 - 1)
short = certificate(name((NameOID.COMMON_NAME, "weak")), KEYS["rsa1024"], ca_name, ca_key, days=3)
write("audit_cert", "chain.pem", server.public_bytes(PEM) + ca.public_bytes(PEM))
write("audit_cert", "text-around.pem", b"Certificate:\n    Data: ...\n" + ed.public_bytes(PEM) + b"junk\n")
write("audit_cert", "server.der", server.public_bytes(DER))
write("audit_cert", "weak.der", short.public_bytes(DER))
write("audit_cert", "dsa.der", certificate(name((NameOID.COMMON_NAME, "dsa")), KEYS["dsa"], ca_name, ca_key).public_bytes(DER))

# --- dn: field name, NUL, DER name ---
for label, (field, n) in {
    "cn": ("CN", ca_name),
    "long-name": ("commonName", server.subject),
    "oid": ("2.5.4.3", ed.subject),
    "dc": ("dc", ed.subject),
    "multi-rdn": ("UID", shapes["multi-rdn"]),
    "utf8": ("c", shapes["utf8-cn"]),
    "unknown": ("1.2.3.4.5", name((x509.ObjectIdentifier("1.2.3.4.5"), "x"))),
}.items():
    write("dn", label, field.encode() + b"\x00" + n.public_bytes())
write("dn", "entries", b"emailAddress\x00\x80\x04\x03abc\x01text+,\x02#x \x03\x00\x01\x7f")


# --- audit_crl: CRLs of two issuers, with revoked serials ---
def crl(issuer, key, serials):
    b = (x509.CertificateRevocationListBuilder().issuer_name(issuer).last_update(NOW)
         .next_update(NOW + datetime.timedelta(days=7)))
    for serial in serials:
        b = b.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOW).build())
    return b.sign(key, hash_for(key))


other_name = name((NameOID.COMMON_NAME, "other CA"))
ours = crl(ca_name, ca_key, [0x1234, 2**159 - 1])
theirs = crl(other_name, KEYS["rsa2048"], [1])
write("audit_crl", "two-issuers.pem", theirs.public_bytes(PEM) + b"\n" + ours.public_bytes(PEM))
write("audit_crl", "empty.pem", crl(ca_name, ca_key, []).public_bytes(PEM))
write("audit_crl", "ours.der", ours.public_bytes(DER))
write("audit_crl", "text-and-bad-block.pem",
      b"# comment\n" + theirs.public_bytes(PEM) + b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")

# --- conninfo: connection string, NUL, environment lines ---
conninfos = [
    "host=db.example.com port=5432 dbname=postgres user=alice sslmode=verify-full sslrootcert=ca.crt sslcert=client.crt sslkey=client.key",
    "password='it\\'s here' application_name='' options='-c search_path=x'",
    "host=a,b,/tmp port=1,2,3 hostaddr=127.0.0.1,,::1 target_session_attrs=read-write",
    "sslmode=require channel_binding=require require_auth=!password,scram-sha-256 ssl_min_protocol_version=TLSv1.2 ssl_max_protocol_version=TLSv1.3",
    "sslrootcert=system sslnegotiation=direct sslcertmode=require sslcrl=crl.pem sslcrldir=crls passfile=/p connect_timeout=10 keepalives=1",
    "postgresql://alice:s%40cret@db1:5433,db2/shop?sslmode=verify-full&application_name=x%20y",
    "postgres://[::1]:5433/db?ssl=true&sslsni=0",
    "postgresql://%2Fvar%2Frun%2Fpostgresql/db",
    "postgresql:///db?host=/tmp&port=5433",
    "postgresql://user@",
    "postgresql://h/d%2",
    "dbname=x",
]
for i, c in enumerate(conninfos):
    write("conninfo", f"conninfo-{i:02}", c)
write("conninfo", "with-env", "host=h\0PGSSLMODE=verify-ca\nPGUSER=bob\nPGPORT=6543\nPGSSLROOTCERT=system\nPGREQUIREAUTH=cert\nPGCHANNELBINDING=disable")

# --- audit_hba: flags byte, pg_hba.conf-style lines, settings ---
hba = """local all postgres peer
hostssl all +scram_users 127.0.0.1/32 scram-sha-256
hostssl all all 127.0.0.1/32 cert
hostnossl all all 127.0.0.1/32 scram-sha-256
host all all 0.0.0.0 0.0.0.0 trust
hostssl all all ::1 ffff:: md5 clientcert=verify-full
hostnossl all all all reject
hostssl replication rep samehost cert clientcert=verify-ca map=m
error invalid authentication method "bogus"
set version 180001
set groups X25519:prime192v1
set tls13_ciphers TLS_AES_128_GCM_SHA256
set ciphers HIGH:MEDIUM:+3DES:!aNULL
set min_protocol TLSv1
set max_protocol TLSv1.3
set crl_file root.crl
"""
write("audit_hba", "full", "\x07" + hba)
write("audit_hba", "plain", "\x00host all all 10.0.0.0/8 password\nset version 150004\nset groups secp224r1\n")
