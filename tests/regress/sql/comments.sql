-- Which CA certificate is for what: the client CA verifies client certificates (the
-- server's ssl_ca_file), the server CA is what clients verify the server with.
\pset format unaligned
SELECT obj_description('pgssl.ca_cert()'::regprocedure, 'pg_proc') AS ca_cert;
SELECT obj_description('pgssl.server_ca_cert()'::regprocedure, 'pg_proc') AS server_ca_cert;
