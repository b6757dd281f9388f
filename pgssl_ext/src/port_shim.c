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

#ifdef USE_OPENSSL
/* Index of the RDN (SET) a name entry belongs to; openssl-sys does not bind it. */
int
pgssl_name_entry_set(const X509_NAME_ENTRY *entry)
{
	return X509_NAME_ENTRY_set(entry);
}
#endif
