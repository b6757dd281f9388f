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

-- ---------------------------------------------------------------------------
-- Every session's certificate facts, and one expiry inventory.
--
-- With pgssl preloaded, each backend records its TLS facts at authentication
-- in shared memory; pgssl.session_slots() reads them and pgssl.connections
-- shows them (whole DNs, not_after, fingerprint, key-exchange group), keeping
-- its 0.1.0 columns in place and appending the new ones. pgssl.expiring()
-- lists what expires: server certificate and chain, trusted CAs, the pgssl
-- CAs, CRLs and the registry's certificates.
CREATE FUNCTION "session_slots"() RETURNS TABLE (
	"pid" INT,  /* i32 */
	"version" TEXT,  /* Option < String > */
	"cipher" TEXT,  /* Option < String > */
	"key_exchange_group" TEXT,  /* Option < String > */
	"client_dn" TEXT,  /* Option < String > */
	"issuer_dn" TEXT,  /* Option < String > */
	"dn_truncated" bool,  /* bool */
	"client_serial" NUMERIC,  /* Option < AnyNumeric > */
	"not_after" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"fingerprint" TEXT  /* Option < String > */
)
STRICT VOLATILE PARALLEL RESTRICTED
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'session_slots_wrapper';
CREATE FUNCTION "session_slot_usage"() RETURNS TABLE (
	"preloaded" bool,  /* bool */
	"slots" INT,  /* i32 */
	"in_use" INT,  /* i32 */
	"slot_bytes" INT,  /* i32 */
	"dn_bytes" INT  /* i32 */
)
STRICT VOLATILE PARALLEL RESTRICTED
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'session_slot_usage_wrapper';
CREATE FUNCTION "expiring"(
	"within" interval DEFAULT '30 days' /* Interval */
) RETURNS TABLE (
	"kind" TEXT,  /* String */
	"subject" TEXT,  /* String */
	"serial" TEXT,  /* Option < String > */
	"not_after" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"days_left" INT,  /* i32 */
	"source" TEXT,  /* String */
	"action" TEXT  /* String */
)
STRICT VOLATILE PARALLEL RESTRICTED
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'expiring_wrapper';

COMMENT ON FUNCTION pgssl.session_slots() IS
  'TLS facts each session recorded at authentication with pgssl preloaded (DNs whole up to 1024 bytes, else dn_truncated); only the sessions pg_stat_ssl shows the caller; no rows without preloading';
COMMENT ON FUNCTION pgssl.session_slot_usage() IS
  'pgssl''s shared-memory session slots: preloaded, slots (MaxBackends), in_use, slot_bytes, dn_bytes';
REVOKE EXECUTE ON FUNCTION pgssl.session_slot_usage() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgssl.session_slot_usage() TO pg_read_all_stats;

-- One row per client backend and walsender. With pgssl preloaded, every TLS
-- session's facts come from the slot its backend filled at authentication
-- (pgssl.session_slots(): whole DNs, not_after, fingerprint, key-exchange
-- group); otherwise from pg_stat_ssl, whose DN columns the server cuts at 63
-- bytes. source says which. Both show other sessions' TLS details only to
-- superusers and members of pg_read_all_stats.
CREATE OR REPLACE VIEW pgssl.connections AS
SELECT a.pid,
       a.usename,
       a.datname,
       a.client_addr,
       a.application_name,
       a.backend_start,
       coalesce(s.ssl, false) AS ssl,
       s.version,
       s.cipher,
       s.bits,
       coalesce(m.client_dn, s.client_dn) AS client_dn,
       coalesce(m.client_serial, s.client_serial) AS client_serial,
       coalesce(m.issuer_dn, s.issuer_dn) AS issuer_dn,
       a.backend_type,
       m.key_exchange_group,
       m.not_after,
       m.fingerprint,
       m.dn_truncated,
       CASE WHEN m.pid IS NOT NULL THEN 'pgssl' ELSE 'pg_stat_ssl' END AS source
  FROM pg_catalog.pg_stat_activity AS a
  LEFT JOIN pg_catalog.pg_stat_ssl AS s USING (pid)
  LEFT JOIN pgssl.session_slots() AS m USING (pid)
 WHERE a.backend_type IN ('client backend', 'walsender');

COMMENT ON VIEW pgssl.connections IS
  'client backends and walsenders with their TLS state: whole DNs, not_after, fingerprint and key-exchange group from pgssl''s shared memory when preloaded (source pgssl), else pg_stat_ssl''s DNs cut at 63 bytes (source pg_stat_ssl)';
GRANT SELECT ON pgssl.connections TO PUBLIC;

COMMENT ON FUNCTION pgssl.expiring(interval) IS
  'what expires within the interval (or already has), sorted by not_after: the server certificate and its chain, the CAs in ssl_ca_file, the pgssl client and server CAs, each CRL the server loads (its next update) and the unrevoked certificates of pgssl.issued_certs; days_left in whole days, action says what to run';
-- Reads the registry and the server's files: superusers only, unless a
-- superuser grants it.
REVOKE EXECUTE ON FUNCTION pgssl.expiring(interval) FROM PUBLIC;
