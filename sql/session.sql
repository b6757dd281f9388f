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

-- One row per client backend. Other sessions' TLS details come from
-- pg_stat_ssl, whose DN columns the server cuts at 63 bytes; for the current
-- session pgssl.client_dn() has the whole DN.
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
       s.client_dn,
       s.client_serial,
       s.issuer_dn
  FROM pg_catalog.pg_stat_activity AS a
  LEFT JOIN pg_catalog.pg_stat_ssl AS s USING (pid)
 WHERE a.backend_type = 'client backend';

COMMENT ON VIEW pgssl.connections IS
  'client backends with their TLS state (from pg_stat_ssl: DNs cut at 63 bytes)';
GRANT SELECT ON pgssl.connections TO PUBLIC;
