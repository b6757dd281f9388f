-- pgssl 0.1.0 -> 0.2.0. Run by ALTER EXTENSION pgssl UPDATE.
--
-- The result must equal a fresh CREATE EXTENSION pgssl of 0.2.0 (the SQL in
-- the workspace's sql/ folder and the functions pgrx generates): the upgrade
-- test compares the two catalogs, column order and constraint names
-- included. Append further 0.2.0 changes below, each in its own section,
-- and mirror every change in the fresh-install SQL.

\echo Use "ALTER EXTENSION pgssl UPDATE TO '0.2.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Server certificates are recorded in the registry.
--
-- issue_server_cert() now records what it issues, so the registry says which
-- CA issued each row: 'client' (the pgssl CA; its CRL lists these) or
-- 'server' (the server CA). Every row of 0.1.0 came from the pgssl CA.
-- ADD COLUMN appends the column and names its check issued_certs_kind_check,
-- as the fresh install's CREATE TABLE does.
ALTER TABLE pgssl.issued_certs
    ADD COLUMN kind text NOT NULL DEFAULT 'client'
        CHECK (kind IN ('client', 'server'));

COMMENT ON TABLE pgssl.issued_certs IS
  'every certificate pgssl issued: serial (lowercase hex), subject CN, validity, SHA-256 fingerprint, who asked, revocation, kind';
COMMENT ON COLUMN pgssl.issued_certs.kind IS
  'client: issued by the pgssl CA (enroll, sign_csr), listed in its CRL when revoked; server: issued by the server CA (issue_server_cert)';

COMMENT ON FUNCTION pgssl.ca_cert() IS
  'the pgssl client CA certificate, PEM: for the server''s ssl_ca_file, to verify client certificates; clients verify the server with pgssl.server_ca_cert() as sslrootcert, not with this';

-- No function changed its SQL signature, volatility, strictness or
-- privileges in 0.2.0: their C symbols are the same in the new library.

-- ---------------------------------------------------------------------------
-- Revocation that holds: the worker's CRL store, revocable rolled-back
-- certificates.
--
-- pgssl.crls keeps every CRL the CA signs, so a standby installs the same
-- CRL from the replicated row without the CA key. pgssl.unregistered_revocations
-- records serials pgssl.revoke() is given that the registry does not know
-- (a certificate whose issuing transaction rolled back); the CRL lists them.
-- Both start empty: nothing of 0.1.0 is changed, every certificate and
-- revocation in pgssl.issued_certs stays as it was.
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

CREATE INDEX issued_certs_revoked_idx ON pgssl.issued_certs (serial)
    WHERE revoked_at IS NOT NULL;

SELECT pg_catalog.pg_extension_config_dump('pgssl.unregistered_revocations', '');
SELECT pg_catalog.pg_extension_config_dump('pgssl.crls', '');

COMMENT ON FUNCTION pgssl.revoke(text, text) IS
  'mark the certificate with this hex serial revoked, with an RFC 5280 reason name; false when it already was; a serial not in the registry is recorded with a WARNING';
COMMENT ON FUNCTION pgssl.install_crl(integer) IS
  'superuser: sign a fresh CRL, store it in pgssl.crls, put it atomically into the file ssl_crl_file names (other issuers'' CRLs kept) and reload the configuration; returns the path';
