-- Auditing the server's TLS set-up.

COMMENT ON FUNCTION pgssl.server_cert() IS
  'the certificate in ssl_cert_file and the chain after it: subject, issuer, SANs, serial, validity, days left, key, version, signature algorithm, SHA-256 fingerprint; never reads the key file';
-- The server's certificate is no secret, but its file name and details are
-- settings: the same audience as pg_read_all_settings.
REVOKE EXECUTE ON FUNCTION pgssl.server_cert() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgssl.server_cert() TO pg_read_all_settings;

COMMENT ON FUNCTION pgssl.check_config() IS
  'audit of the TLS set-up (settings, server certificate and key, pg_hba.conf, CRL, pgssl CA): one row per check with status ok, warn or fail and what to change';
-- Reads pg_hba_file_rules and compares the server key with its certificate:
-- superusers only, unless a superuser grants it.
REVOKE EXECUTE ON FUNCTION pgssl.check_config() FROM PUBLIC;

COMMENT ON FUNCTION pgssl.expiring(interval) IS
  'what expires within the interval (or already has), sorted by not_after: the server certificate and its chain, the CAs in ssl_ca_file, the pgssl client and server CAs, each CRL the server loads (its next update) and the unrevoked certificates of pgssl.issued_certs; days_left in whole days, action says what to run';
-- Reads the registry and the server's files: superusers only, unless a
-- superuser grants it.
REVOKE EXECUTE ON FUNCTION pgssl.expiring(interval) FROM PUBLIC;
