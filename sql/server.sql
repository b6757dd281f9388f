-- The server's own certificate.

COMMENT ON FUNCTION pgssl.issue_server_cert(text[], integer) IS
  'superuser: sign a server certificate (SANs: every name and IP given, serverAuth, CA:FALSE) with the server CA (made on first use), write key (0600) and certificate into the data directory under new names, and return them with the ALTER SYSTEM commands that switch the server over';
REVOKE EXECUTE ON FUNCTION pgssl.issue_server_cert(text[], integer) FROM PUBLIC;

COMMENT ON FUNCTION pgssl.server_ca_cert() IS
  'the pgssl server CA certificate, PEM: the sslrootcert clients verify the server with';
GRANT EXECUTE ON FUNCTION pgssl.server_ca_cert() TO PUBLIC;
