-- The session functions' SQL surface: signatures, markings, comments.
SELECT p.proname,
       pg_get_function_identity_arguments(p.oid) AS args,
       pg_get_function_result(p.oid) AS result,
       p.provolatile AS volatile,
       p.proisstrict AS strict,
       p.proparallel AS parallel,
       p.prosecdef AS security_definer,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute,
       obj_description(p.oid, 'pg_proc') IS NOT NULL AS commented
  FROM pg_proc AS p
 WHERE p.pronamespace = 'pgssl'::regnamespace
 ORDER BY 1, 2;

\d pgssl.connections
SELECT obj_description('pgssl.connections'::regclass, 'pg_class');
SELECT has_table_privilege('public', 'pgssl.connections', 'SELECT') AS public_select;

-- This session has no TLS: NULLs, and false for the two questions.
SELECT pgssl.ssl_is_used(), pgssl.client_cert_present(), pgssl.ssl_version(),
       pgssl.ssl_cipher(), pgssl.ssl_cipher_bits(), pgssl.client_cn(), pgssl.client_dn(),
       pgssl.issuer_dn(), pgssl.client_serial(), pgssl.client_serial_hex(),
       pgssl.client_cert_not_before(), pgssl.client_cert_not_after(),
       pgssl.client_cert_fingerprint(), pgssl.client_cert_pem();
SELECT * FROM pgssl.client_cert_extensions();
SELECT jsonb_pretty(pgssl.session_info() - 'authn_id');

-- Field names: short, long, any case, OIDs; NULL in, NULL out.
SELECT pgssl.client_dn_field('CN'), pgssl.client_dn_field('commonName'),
       pgssl.client_dn_field('emailaddress'), pgssl.client_dn_field('2.5.4.10'),
       pgssl.issuer_field('O'), pgssl.client_dn_field(NULL), pgssl.issuer_field(NULL);

-- Unknown field names are errors that name the field.
SELECT pgssl.client_dn_field('nosuchfield');
SELECT pgssl.issuer_field('');
SELECT pgssl.client_dn_field('CN=alice');
SELECT pgssl.issuer_field('1.2.3.');
