-- The in-database CA: the registry, the CRL number, privileges and comments.

-- Every certificate pgssl issued: client certificates from the pgssl CA and
-- server certificates from the server CA (kind). Written only by pgssl's
-- functions; PUBLIC can neither read nor write it.
CREATE TABLE pgssl.issued_certs (
    serial             text        PRIMARY KEY
                                   CHECK (serial ~ '^([0-9a-f]{2})+$'),
    common_name        text        NOT NULL,
    not_before         timestamptz NOT NULL,
    not_after          timestamptz NOT NULL,
    fingerprint_sha256 text        NOT NULL UNIQUE,
    issued_by          name        NOT NULL,
    issued_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    revoked_at         timestamptz,
    revocation_reason  text,
    certificate        text        NOT NULL,
    -- Last, as ALTER TABLE ... ADD COLUMN put it in the 0.1.0 -> 0.2.0 upgrade.
    kind               text        NOT NULL DEFAULT 'client'
                                   CHECK (kind IN ('client', 'server')),
    CHECK ((revoked_at IS NULL) = (revocation_reason IS NULL))
);
CREATE INDEX issued_certs_common_name_idx ON pgssl.issued_certs (common_name);
REVOKE ALL ON pgssl.issued_certs FROM PUBLIC;

COMMENT ON TABLE pgssl.issued_certs IS
  'every certificate pgssl issued: serial (lowercase hex), subject CN, validity, SHA-256 fingerprint, who asked, revocation, kind';
COMMENT ON COLUMN pgssl.issued_certs.kind IS
  'client: issued by the pgssl CA (enroll, sign_csr), listed in its CRL when revoked; server: issued by the server CA (issue_server_cert)';

-- CRL numbers only ever grow (RFC 5280 5.2.3); a sequence never goes back,
-- not even when the transaction that drew a number rolls back.
CREATE SEQUENCE pgssl.crl_number AS bigint MINVALUE 1;
REVOKE ALL ON SEQUENCE pgssl.crl_number FROM PUBLIC;

-- Revocations of serials the registry does not know: certificates whose
-- issuing transaction rolled back (their serials are in the server log).
-- The CRL lists them with the registry's revoked rows.
CREATE TABLE pgssl.unregistered_revocations (
    serial            text        PRIMARY KEY
                                  CHECK (serial ~ '^([0-9a-f]{2})+$'),
    revoked_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    revocation_reason text        NOT NULL,
    revoked_by        name        NOT NULL DEFAULT pg_catalog.session_user()
);
REVOKE ALL ON pgssl.unregistered_revocations FROM PUBLIC;
COMMENT ON TABLE pgssl.unregistered_revocations IS
  'serials revoked with pgssl.revoke() that are not in pgssl.issued_certs (certificates from a rolled-back transaction); listed in the CRL';

-- The CRLs the CA signed, newest last. A replicated table: every standby
-- installs the newest from here, without the CA key.
CREATE TABLE pgssl.crls (
    crl_number  bigint      PRIMARY KEY,
    this_update timestamptz NOT NULL,
    next_update timestamptz NOT NULL,
    revocations bigint      NOT NULL CHECK (revocations >= 0),
    crl         text        NOT NULL,
    CHECK (next_update > this_update)
);
REVOKE ALL ON pgssl.crls FROM PUBLIC;
COMMENT ON TABLE pgssl.crls IS
  'signed CRLs (PEM), newest by crl_number; the pgssl worker installs the newest into ssl_crl_file on every node';

-- The worker counts revocations every second.
CREATE INDEX issued_certs_revoked_idx ON pgssl.issued_certs (serial)
    WHERE revoked_at IS NOT NULL;

-- pg_dump keeps the registry, the revocations, the CRLs and the CRL number
-- with the extension.
SELECT pg_catalog.pg_extension_config_dump('pgssl.issued_certs', '');
SELECT pg_catalog.pg_extension_config_dump('pgssl.unregistered_revocations', '');
SELECT pg_catalog.pg_extension_config_dump('pgssl.crls', '');
SELECT pg_catalog.pg_extension_config_dump('pgssl.crl_number', '');

-- Who may call what. ca_cert() and renew() are public; a DBA grants enroll (self-service)
-- and, to administrators, sign_csr, revoke and crl. init_ca and
-- install_crl also check for a superuser themselves.
REVOKE EXECUTE ON FUNCTION pgssl.init_ca(text, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgssl.ca_cert() TO PUBLIC;
REVOKE EXECUTE ON FUNCTION pgssl.enroll(text, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pgssl.sign_csr(text, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pgssl.revoke(text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pgssl.crl(integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pgssl.install_crl(integer) FROM PUBLIC;
-- renew() is for everyone: the credential is the session's certificate, which it
-- checks itself (authenticated by cert, from the pgssl CA, registered, current,
-- for session_user). REVOKE it from PUBLIC to make renewal opt-in per role.
GRANT EXECUTE ON FUNCTION pgssl.renew(text, integer) TO PUBLIC;

COMMENT ON FUNCTION pgssl.init_ca(text, integer, text) IS
  'superuser: make a CA key (ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096, ed25519) and self-signed CA certificate at pgssl.ca_key_file (mode 0600) and pgssl.ca_cert_file; never overwrites; returns the certificate PEM';
COMMENT ON FUNCTION pgssl.ca_cert() IS
  'the pgssl client CA certificate, PEM: for the server''s ssl_ca_file, to verify client certificates; clients verify the server with pgssl.server_ca_cert() as sslrootcert, not with this';
COMMENT ON FUNCTION pgssl.enroll(text, integer) IS
  'self-service: sign a PEM CSR whose CN is session_user for valid_days (NULL: pgssl.default_validity_days); returns the client certificate PEM';
COMMENT ON FUNCTION pgssl.renew(text, integer) IS
  'renew the session''s certificate: for a session authenticated by a current client certificate from the pgssl CA (pg_hba.conf method cert), sign a PEM CSR for a new key whose CN is session_user, for valid_days (NULL: pgssl.renew_validity, else pgssl.default_validity_days); returns the certificate PEM; with pgssl.renew_revokes_previous the session''s certificate is revoked as superseded';
COMMENT ON FUNCTION pgssl.sign_csr(text, integer) IS
  'administrators: sign a PEM CSR for any CN for valid_days (NULL: pgssl.default_validity_days); returns the client certificate PEM';
COMMENT ON FUNCTION pgssl.revoke(text, text) IS
  'mark the certificate with this hex serial revoked, with an RFC 5280 reason name; false when it already was; a serial not in the registry is recorded with a WARNING';
COMMENT ON FUNCTION pgssl.crl(integer) IS
  'a v2 CRL, PEM, of every revoked certificate, signed by the CA, valid for next_update_days, with the next CRL number';
COMMENT ON FUNCTION pgssl.install_crl(integer) IS
  'superuser: sign a fresh CRL, store it in pgssl.crls, put it atomically into the file ssl_crl_file names (other issuers'' CRLs kept) and reload the configuration; returns the path';
