-- Session TLS functions: documentation and the connections view.

-- Every role may ask about its own session; functions that must not be public
-- revoke EXECUTE themselves.
GRANT USAGE ON SCHEMA pgssl TO PUBLIC;

COMMENT ON FUNCTION pgssl.ssl_is_used() IS
  'true when the current connection uses TLS';
COMMENT ON FUNCTION pgssl.ssl_version() IS
  'TLS protocol version of the current connection (e.g. TLSv1.3); NULL without TLS';
COMMENT ON FUNCTION pgssl.ssl_cipher() IS
  'negotiated cipher suite of the current connection; NULL without TLS';
COMMENT ON FUNCTION pgssl.ssl_cipher_bits() IS
  'secret key length of the cipher in bits; NULL without TLS';
COMMENT ON FUNCTION pgssl.client_cert_present() IS
  'true when the client presented a certificate';
COMMENT ON FUNCTION pgssl.client_cn() IS
  'full common name of the client certificate, as the server matched it for cert authentication; NULL without one';
COMMENT ON FUNCTION pgssl.client_dn() IS
  'subject of the client certificate in RFC 2253 form, never truncated; NULL without one';
COMMENT ON FUNCTION pgssl.issuer_dn() IS
  'issuer of the client certificate in RFC 2253 form, never truncated; NULL without one';
COMMENT ON FUNCTION pgssl.client_dn_field(text) IS
  'one field of the client certificate subject (CN, commonName, O, emailAddress, a dotted OID, ...); NULL when absent';
COMMENT ON FUNCTION pgssl.issuer_field(text) IS
  'one field of the client certificate issuer (CN, commonName, O, emailAddress, a dotted OID, ...); NULL when absent';
COMMENT ON FUNCTION pgssl.client_serial() IS
  'serial number of the client certificate';
COMMENT ON FUNCTION pgssl.client_serial_hex() IS
  'serial number of the client certificate, lowercase hex';
COMMENT ON FUNCTION pgssl.client_cert_not_before() IS
  'start of the client certificate validity';
COMMENT ON FUNCTION pgssl.client_cert_not_after() IS
  'end of the client certificate validity';
COMMENT ON FUNCTION pgssl.client_cert_fingerprint() IS
  'SHA-256 fingerprint of the client certificate, lowercase hex';
COMMENT ON FUNCTION pgssl.client_cert_pem() IS
  'the client certificate in PEM';
COMMENT ON FUNCTION pgssl.client_cert_extensions() IS
  'X.509v3 extensions of the client certificate: name, value as openssl prints it, critical';
COMMENT ON FUNCTION pgssl.session_info() IS
  'the TLS state of the current session in one jsonb object, with SANs and the authenticated identity';

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
CREATE VIEW pgssl.connections AS
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
