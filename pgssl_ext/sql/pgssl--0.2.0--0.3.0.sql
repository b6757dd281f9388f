-- pgssl 0.2.0 -> 0.3.0. Run by ALTER EXTENSION pgssl UPDATE.
--
-- The result must equal a fresh CREATE EXTENSION pgssl of 0.3.0 (the SQL in
-- the workspace's sql/ folder and the functions pgrx generates): the upgrade
-- test compares the two catalogs. Append further 0.3.0 changes below, each
-- in its own section, and mirror every change in the fresh-install SQL.

\echo Use "ALTER EXTENSION pgssl UPDATE TO '0.3.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Renewal over the certificate itself.
--
-- pgssl.renew() signs a CSR for the session user when the session logged in
-- with a current certificate from the pgssl CA (pg_hba.conf method cert).
-- The function checks that credential itself, so PUBLIC may execute it.
-- The settings pgssl.renew_revokes_previous and pgssl.renew_validity come
-- with the new library and need no SQL.
CREATE FUNCTION "renew"(
	"csr" TEXT, /* Option < & str > */
	"valid_days" INT DEFAULT NULL /* Option < i32 > */
) RETURNS TEXT /* Result < String, ErrorReport > */
VOLATILE SECURITY DEFINER PARALLEL UNSAFE
SET search_path TO pg_catalog, pg_temp
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'renew_wrapper';

GRANT EXECUTE ON FUNCTION pgssl.renew(text, integer) TO PUBLIC;
COMMENT ON FUNCTION pgssl.renew(text, integer) IS
  'renew the session''s certificate: for a session authenticated by a current client certificate from the pgssl CA (pg_hba.conf method cert), sign a PEM CSR for a new key whose CN is session_user, for valid_days (NULL: pgssl.renew_validity, else pgssl.default_validity_days); returns the certificate PEM; with pgssl.renew_revokes_previous the session''s certificate is revoked as superseded';

-- No other function changed its SQL signature, volatility, strictness or
-- privileges in 0.3.0: their C symbols are the same in the new library.
