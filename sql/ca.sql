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

-- pg_dump keeps the registry and the CRL number with the extension.
SELECT pg_catalog.pg_extension_config_dump('pgssl.issued_certs', '');
SELECT pg_catalog.pg_extension_config_dump('pgssl.crl_number', '');

-- Who may call what. ca_cert() is public; a DBA grants enroll (self-service)
-- and, to administrators, sign_csr, revoke and crl. init_ca and
-- install_crl also check for a superuser themselves.
REVOKE EXECUTE ON FUNCTION pgssl.init_ca(text, integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgssl.ca_cert() TO PUBLIC;
REVOKE EXECUTE ON FUNCTION pgssl.enroll(text, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pgssl.sign_csr(text, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pgssl.revoke(text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pgssl.crl(integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pgssl.install_crl(integer) FROM PUBLIC;

COMMENT ON FUNCTION pgssl.init_ca(text, integer, text) IS
  'superuser: make a CA key (ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096, ed25519) and self-signed CA certificate at pgssl.ca_key_file (mode 0600) and pgssl.ca_cert_file; never overwrites; returns the certificate PEM';
COMMENT ON FUNCTION pgssl.ca_cert() IS
  'the pgssl CA certificate, PEM (for ssl_ca_file and clients'' sslrootcert)';
COMMENT ON FUNCTION pgssl.enroll(text, integer) IS
  'self-service: sign a PEM CSR whose CN is session_user for valid_days (NULL: pgssl.default_validity_days); returns the client certificate PEM';
COMMENT ON FUNCTION pgssl.sign_csr(text, integer) IS
  'administrators: sign a PEM CSR for any CN for valid_days (NULL: pgssl.default_validity_days); returns the client certificate PEM';
COMMENT ON FUNCTION pgssl.revoke(text, text) IS
  'mark the certificate with this hex serial revoked, with an RFC 5280 reason name; false when it already was';
COMMENT ON FUNCTION pgssl.crl(integer) IS
  'a v2 CRL, PEM, of every revoked certificate, signed by the CA, valid for next_update_days, with the next CRL number';
COMMENT ON FUNCTION pgssl.install_crl(integer) IS
  'superuser: write a fresh CRL atomically to the file ssl_crl_file names and reload the configuration; returns the path';
