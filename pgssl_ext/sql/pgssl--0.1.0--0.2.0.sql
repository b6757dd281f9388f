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

-- No function changed its SQL signature, volatility, strictness or
-- privileges in 0.2.0: their C symbols are the same in the new library.
