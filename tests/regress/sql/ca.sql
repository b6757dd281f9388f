-- The CA's SQL surface: signatures, markings, privileges, settings, and the
-- refusals that need no CSR (the e2e tests in tests/tests/ca.rs cover the rest).
SELECT p.proname,
       pg_get_function_arguments(p.oid) AS args,
       pg_get_function_result(p.oid) AS result,
       p.provolatile AS volatile,
       p.proisstrict AS strict,
       p.proparallel AS parallel,
       p.prosecdef AS security_definer,
       p.proconfig AS config,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute,
       obj_description(p.oid, 'pg_proc') IS NOT NULL AS commented
  FROM pg_proc AS p
 WHERE p.pronamespace = 'pgssl'::regnamespace
   AND p.proname IN ('init_ca', 'ca_cert', 'enroll', 'sign_csr', 'revoke', 'crl', 'install_crl')
 ORDER BY 1;

\d pgssl.issued_certs
SELECT has_table_privilege('public', 'pgssl.issued_certs', 'SELECT') AS public_select,
       has_table_privilege('public', 'pgssl.issued_certs', 'INSERT') AS public_insert,
       has_sequence_privilege('public', 'pgssl.crl_number', 'USAGE') AS public_crl_number;

-- The settings exist once the library is loaded; only superusers set them.
LOAD 'pgssl';
SELECT name, setting, context, vartype, min_val, max_val
  FROM pg_settings WHERE name LIKE 'pgssl.%' ORDER BY name;

-- The CA key's passphrase command comes from the configuration files only.
SET pgssl.ca_key_passphrase_command = 'echo x';

-- NULL in, NULL out; no CA needed for that.
SELECT pgssl.sign_csr(NULL) IS NULL AS sign_null, pgssl.enroll(NULL, 5) IS NULL AS enroll_null,
       pgssl.revoke(NULL) IS NULL AS revoke_null;

-- renew() first asks for the credential, the certificate this session logged in with:
-- over the Unix socket there is none (42501), whatever the argument.
SELECT pgssl.renew(NULL);

-- Bad input: 22023.
SELECT pgssl.sign_csr('');
SELECT pgssl.sign_csr('not a CSR');
SELECT pgssl.sign_csr(E'-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n');
SELECT pgssl.sign_csr(repeat('x', 70000));
SELECT pgssl.revoke('not hex');
SELECT pgssl.revoke('0a:3f', 'because');
SELECT pgssl.crl(0);
SELECT pgssl.init_ca('pgssl client CA', 3650, 'dsa-1024');
SELECT pgssl.init_ca('pgssl client CA', 0);
SELECT pgssl.init_ca(E'two\nlines');

-- No CA yet, or not where the settings say: 55000.
SET pgssl.ca_cert_file = '/nonexistent/pgssl_ca.crt';
SELECT pgssl.ca_cert();
RESET pgssl.ca_cert_file;
SELECT pgssl.install_crl();

-- A serial not in the registry (a certificate from a rolled-back transaction):
-- recorded with a WARNING, listed in the CRL.
SELECT pgssl.revoke('0A:3F', 'keyCompromise');

-- Writes refused in a read-only transaction: 25006.
BEGIN READ ONLY;
SELECT pgssl.sign_csr('');
ROLLBACK;

-- A new CA, never over an existing one.
SELECT pgssl.init_ca() LIKE E'-----BEGIN CERTIFICATE-----\n%' AS made;
SELECT pgssl.ca_cert() = pgssl.ca_cert() AS stable;
DO $$
BEGIN
  PERFORM pgssl.init_ca();
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE '% %', SQLSTATE, replace(SQLERRM, current_setting('data_directory'), '$PGDATA');
END $$;

-- Without grants: 42501.
CREATE ROLE nobody;
SET ROLE nobody;
SELECT pgssl.ca_cert() LIKE '-----BEGIN CERTIFICATE-----%' AS anyone_reads_the_ca;
SELECT pgssl.sign_csr('');
SELECT pgssl.enroll('');
SELECT pgssl.revoke('00');
SELECT pgssl.crl();
SELECT pgssl.install_crl();
SELECT pgssl.init_ca();
SELECT count(*) FROM pgssl.issued_certs;
SET pgssl.max_validity_days = 10000;
RESET ROLE;
GRANT EXECUTE ON FUNCTION pgssl.install_crl(integer) TO nobody;
SET ROLE nobody;
SELECT pgssl.install_crl();
RESET ROLE;
