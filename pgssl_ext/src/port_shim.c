/*
 * Accessors for the TLS fields of the backend's Port.
 *
 * pgrx's binding of `Port` keeps these fields private (or leaves them out), so
 * they are read here, compiled against the very server headers the extension
 * is built for.  Every accessor tolerates a backend without a client
 * connection (MyProcPort == NULL, e.g. a background worker).
 */
#include "postgres.h"

#include "libpq/libpq-be.h"
#include "miscadmin.h"

bool
pgssl_port_ssl_in_use(void)
{
	return MyProcPort != NULL && MyProcPort->ssl_in_use;
}

/* The session's OpenSSL SSL*, or NULL. */
void *
pgssl_port_ssl(void)
{
#ifdef USE_OPENSSL
	if (MyProcPort != NULL && MyProcPort->ssl_in_use)
		return MyProcPort->ssl;
#endif
	return NULL;
}

/* The client certificate (an OpenSSL X509*) the server received, or NULL. */
void *
pgssl_port_peer(void)
{
#ifdef USE_OPENSSL
	if (MyProcPort != NULL && MyProcPort->ssl_in_use)
		return MyProcPort->peer;
#endif
	return NULL;
}

/* The client certificate's CN exactly as the server extracted it for `cert` authentication. */
const char *
pgssl_port_peer_cn(void)
{
	if (MyProcPort != NULL && MyProcPort->ssl_in_use)
		return MyProcPort->peer_cn;
	return NULL;
}

/* The client certificate's DN as the server formatted it (RFC 2253, PostgreSQL 14+). */
const char *
pgssl_port_peer_dn(void)
{
#if PG_VERSION_NUM >= 140000
	if (MyProcPort != NULL && MyProcPort->ssl_in_use)
		return MyProcPort->peer_dn;
#endif
	return NULL;
}

bool
pgssl_port_peer_cert_valid(void)
{
	return MyProcPort != NULL && MyProcPort->ssl_in_use && MyProcPort->peer_cert_valid;
}

/* The identity the server authenticated (e.g. the certificate CN for `cert`), or NULL. */
const char *
pgssl_authn_id(void)
{
#if PG_VERSION_NUM >= 160000
	return MyClientConnectionInfo.authn_id;
#elif PG_VERSION_NUM >= 140000
	return MyProcPort != NULL ? MyProcPort->authn_id : NULL;
#else
	return NULL;
#endif
}

/*
 * Whether the session was authenticated by its client certificate: the
 * pg_hba.conf line that let it in had the method `cert`.
 *
 * The line itself (port->hba) is freed with the postmaster's memory once the
 * session starts, so what is read is what authentication recorded:
 * PostgreSQL 16 and later keep the method (MyClientConnectionInfo.auth_method);
 * 14 and 15 keep only the authenticated identity, which `cert` sets to the
 * certificate's subject DN as the server formatted it (port->peer_dn); the
 * password methods and RADIUS set it to the role name, ident and peer to
 * the OS user, GSSAPI and SSPI to the principal, LDAP to the LDAP DN it
 * bound as.  (Only an LDAP simple bind with ldapprefix "CN=" and no suffix
 * records "CN=<role>"; such a session that also presented the role's own
 * verified certificate counts, as the handshake proved its key.)  Before 14
 * nothing is recorded: false.
 */
bool
pgssl_authenticated_by_certificate(void)
{
	if (MyProcPort == NULL || !MyProcPort->ssl_in_use || !MyProcPort->peer_cert_valid)
		return false;
#if PG_VERSION_NUM >= 160000
	return MyClientConnectionInfo.auth_method == uaCert;
#elif PG_VERSION_NUM >= 140000
	return MyProcPort->authn_id != NULL && MyProcPort->peer_dn != NULL &&
		strcmp(MyProcPort->authn_id, MyProcPort->peer_dn) == 0;
#else
	return false;
#endif
}

#ifdef USE_OPENSSL
/* Index of the RDN (SET) a name entry belongs to; openssl-sys does not bind it. */
int
pgssl_name_entry_set(const X509_NAME_ENTRY *entry)
{
	return X509_NAME_ENTRY_set(entry);
}
#endif

/*
 * The key-exchange group the TLS session negotiated (e.g. X25519), or NULL
 * when there is none (TLS 1.2 with RSA key exchange) or no TLS.
 */
const char *
pgssl_ssl_group_name(void *ssl_ptr)
{
#ifdef USE_OPENSSL
	SSL		   *ssl = (SSL *) ssl_ptr;
	int			nid;

	if (ssl == NULL)
		return NULL;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	nid = SSL_get_negotiated_group(ssl);
	if (nid <= 0)
		return NULL;
	return SSL_group_to_name(ssl, nid);
#else
	nid = SSL_get_shared_group(ssl, 0);
	if (nid <= 0)
		return NULL;
	return OBJ_nid2sn(nid);
#endif
#else
	return NULL;
#endif
}

/*
 * The ClientAuthentication_hook: chains to the hook installed before ours,
 * then, once authentication succeeded on a TLS connection, lets pgssl record
 * the session's TLS facts in shared memory (pgssl_record_session, in Rust).
 */
#include "libpq/auth.h"
#include "storage/lwlock.h"

extern void pgssl_record_session(void);

static ClientAuthentication_hook_type pgssl_prev_client_auth_hook = NULL;

static void
pgssl_client_auth(Port *port, int status)
{
	if (pgssl_prev_client_auth_hook)
		pgssl_prev_client_auth_hook(port, status);
	if (status == STATUS_OK && port != NULL && port->ssl_in_use)
		pgssl_record_session();
}

/* Installs the hook above; only while shared_preload_libraries is processed. */
void
pgssl_install_client_auth_hook(void)
{
	pgssl_prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = pgssl_client_auth;
}

/* AddinShmemInitLock is a macro over MainLWLockArray that pgrx does not bind. */
void *
pgssl_addin_shmem_init_lock(void)
{
	return AddinShmemInitLock;
}
