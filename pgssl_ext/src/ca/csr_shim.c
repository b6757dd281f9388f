/*
 * The CSR and the certificate's public key without OpenSSL 3's key decoders
 * and encoders on every call.
 *
 * d2i_X509_REQ decodes the request's public key at once, and
 * X509_set_pubkey encodes a key to DER and decodes it again; in OpenSSL 3
 * each of those builds a decoder or encoder context by enumerating every
 * provider's decoders, which costs several times the signature itself.
 * Here the request is parsed with the same ASN.1 structure as X509_REQ but
 * with its SubjectPublicKeyInfo kept as bytes; the key is decoded by a
 * decoder context built once per key type and process; the signature is
 * checked over the request's own encoding with ASN1_item_verify_ex, as
 * X509_REQ_verify does; the certificate gets the request's
 * SubjectPublicKeyInfo as it is.
 *
 * Only what OpenSSL's own structures, decoders and verification accept
 * passes; the Rust caller falls back to the plain OpenSSL path for anything
 * these functions refuse, so refusals read exactly as before.
 */
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/decoder.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* SubjectPublicKeyInfo, as X509_PUBKEY's encoding, without decoding the key. */
typedef struct
{
	X509_ALGOR *algor;
	ASN1_BIT_STRING *public_key;
} PGSSL_SPKI;

ASN1_SEQUENCE(PGSSL_SPKI) = {
	ASN1_SIMPLE(PGSSL_SPKI, algor, X509_ALGOR),
	ASN1_SIMPLE(PGSSL_SPKI, public_key, ASN1_BIT_STRING)
} ASN1_SEQUENCE_END(PGSSL_SPKI)

IMPLEMENT_ASN1_FUNCTIONS(PGSSL_SPKI)

/* CertificationRequestInfo (RFC 2986), as X509_REQ_INFO, keeping its encoding. */
typedef struct
{
	ASN1_ENCODING enc;
	ASN1_INTEGER *version;
	X509_NAME  *subject;
	PGSSL_SPKI *pubkey;
	STACK_OF(X509_ATTRIBUTE) *attributes;
} PGSSL_REQ_INFO;

ASN1_SEQUENCE_enc(PGSSL_REQ_INFO, enc, 0) = {
	ASN1_SIMPLE(PGSSL_REQ_INFO, version, ASN1_INTEGER),
	ASN1_SIMPLE(PGSSL_REQ_INFO, subject, X509_NAME),
	ASN1_SIMPLE(PGSSL_REQ_INFO, pubkey, PGSSL_SPKI),
	ASN1_IMP_SET_OF(PGSSL_REQ_INFO, attributes, X509_ATTRIBUTE, 0)
} ASN1_SEQUENCE_END_enc(PGSSL_REQ_INFO, PGSSL_REQ_INFO)

typedef struct
{
	PGSSL_REQ_INFO *info;
	X509_ALGOR *sig_alg;
	ASN1_BIT_STRING *signature;
} PGSSL_REQ;

ASN1_SEQUENCE(PGSSL_REQ) = {
	ASN1_SIMPLE(PGSSL_REQ, info, PGSSL_REQ_INFO),
	ASN1_SIMPLE(PGSSL_REQ, sig_alg, X509_ALGOR),
	ASN1_SIMPLE(PGSSL_REQ, signature, ASN1_BIT_STRING)
} ASN1_SEQUENCE_END(PGSSL_REQ)

IMPLEMENT_ASN1_FUNCTIONS(PGSSL_REQ)

/* The request in `der`, which it must fill exactly; NULL when it does not parse. */
void *
pgssl_csr_d2i(const unsigned char *der, long len)
{
	const unsigned char *p = der;
	PGSSL_REQ  *req = d2i_PGSSL_REQ(NULL, &p, len);

	/* Trailing bytes, or a version other than v1 (0): left to the plain path. */
	if (req != NULL && (p != der + len || ASN1_INTEGER_get(req->info->version) != 0))
	{
		PGSSL_REQ_free(req);
		return NULL;
	}
	return req;
}

void
pgssl_csr_free(void *req)
{
	PGSSL_REQ_free((PGSSL_REQ *) req);
}

/* The subject, borrowed from the request. */
X509_NAME *
pgssl_csr_subject(void *req)
{
	return ((PGSSL_REQ *) req)->info->subject;
}

/* The DER of the SubjectPublicKeyInfo into `buf` (at most `cap` bytes); its length, or -1. */
int
pgssl_csr_spki(void *req, unsigned char *buf, int cap)
{
	PGSSL_SPKI *spki = ((PGSSL_REQ *) req)->info->pubkey;
	int			len = i2d_PGSSL_SPKI(spki, NULL);

	if (len <= 0 || len > cap)
		return -1;
	return i2d_PGSSL_SPKI(spki, &buf);
}

/*
 * The key type the decoder is asked for, from the algorithm, with the curve
 * of an EC key (NID_undef otherwise); NULL for a type left to the plain path.
 */
static const char *
spki_key_type(const PGSSL_SPKI *spki, int *curve)
{
	const ASN1_OBJECT *obj;
	const void *pval;
	int			ptype;

	*curve = NID_undef;
	X509_ALGOR_get0(&obj, &ptype, &pval, spki->algor);
	switch (OBJ_obj2nid(obj))
	{
		case NID_rsaEncryption:
			return "RSA";
		case NID_ED25519:
			return "ED25519";
		case NID_X9_62_id_ecPublicKey:
			if (ptype != V_ASN1_OBJECT)
				return NULL;
			*curve = OBJ_obj2nid(pval);
			return "EC";
		default:
			return NULL;
	}
}

/* One decoder context per key type, built at first use and kept by the process. */
#define KEY_TYPES 3
static const char *const key_types[KEY_TYPES] = {"RSA", "ED25519", "EC"};
static OSSL_DECODER_CTX *decoders[KEY_TYPES];
static EVP_PKEY *decoded[KEY_TYPES];

/*
 * The public key of the request, decoded from its SubjectPublicKeyInfo, and
 * the curve of an EC key in *curve; NULL for a key type left to the plain
 * path or a key the decoder refuses. The caller owns the key.
 */
EVP_PKEY *
pgssl_csr_public_key(void *req, int *curve)
{
	PGSSL_SPKI *spki = ((PGSSL_REQ *) req)->info->pubkey;
	const char *type = spki_key_type(spki, curve);
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t		left;
	int			len,
				i;
	EVP_PKEY   *key;

	if (type == NULL)
		return NULL;
	for (i = 0; i < KEY_TYPES && strcmp(key_types[i], type) != 0; i++)
		;
	if (i == KEY_TYPES)
		return NULL;
	if (decoders[i] == NULL)
	{
		decoders[i] = OSSL_DECODER_CTX_new_for_pkey(&decoded[i], "DER",
													"SubjectPublicKeyInfo",
													type, EVP_PKEY_PUBLIC_KEY,
													NULL, NULL);
		if (decoders[i] == NULL)
			return NULL;
	}
	len = i2d_PGSSL_SPKI(spki, &der);
	if (len <= 0)
		return NULL;
	p = der;
	left = (size_t) len;
	decoded[i] = NULL;
	if (!OSSL_DECODER_from_data(decoders[i], &p, &left) || left != 0)
	{
		EVP_PKEY_free(decoded[i]);
		decoded[i] = NULL;
	}
	OPENSSL_free(der);
	key = decoded[i];
	decoded[i] = NULL;
	return key;
}

/* 1 when the request's signature verifies with `key` over its own encoding. */
int
pgssl_csr_verify(void *req, EVP_PKEY *key)
{
	PGSSL_REQ  *r = (PGSSL_REQ *) req;

	return ASN1_item_verify_ex(ASN1_ITEM_rptr(PGSSL_REQ_INFO), r->sig_alg,
							   r->signature, r->info, NULL, key, NULL, NULL) == 1;
}

/*
 * Gives the certificate the SubjectPublicKeyInfo in `der` as it is (the
 * algorithm with its parameters, and the key's bits). 1 on success.
 */
int
pgssl_x509_set_spki(X509 *cert, const unsigned char *der, long len)
{
	const unsigned char *p = der;
	PGSSL_SPKI *spki = d2i_PGSSL_SPKI(NULL, &p, len);
	X509_PUBKEY *dst = X509_get_X509_PUBKEY(cert);
	const ASN1_OBJECT *obj;
	const void *pval;
	int			ptype,
				ok = 0;
	ASN1_OBJECT *obj_copy = NULL;
	void	   *pval_copy = NULL;
	unsigned char *bits = NULL;
	int			nbits;

	if (spki == NULL || p != der + len || dst == NULL)
		goto done;
	X509_ALGOR_get0(&obj, &ptype, &pval, spki->algor);
	obj_copy = OBJ_dup(obj);
	if (obj_copy == NULL)
		goto done;
	switch (ptype)
	{
		case V_ASN1_UNDEF:
		case V_ASN1_NULL:
			break;
		case V_ASN1_OBJECT:
			if ((pval_copy = OBJ_dup(pval)) == NULL)
				goto done;
			break;
		default:
			goto done;
	}
	nbits = ASN1_STRING_length(spki->public_key);
	if (nbits <= 0 || (bits = OPENSSL_malloc(nbits)) == NULL)
		goto done;
	memcpy(bits, ASN1_STRING_get0_data(spki->public_key), nbits);
	if (!X509_PUBKEY_set0_param(dst, obj_copy, ptype, pval_copy, bits, nbits))
		goto done;
	obj_copy = NULL;
	pval_copy = NULL;
	bits = NULL;
	ok = 1;
done:
	ASN1_OBJECT_free(obj_copy);
	if (pval_copy != NULL)
		ASN1_OBJECT_free(pval_copy);
	OPENSSL_free(bits);
	PGSSL_SPKI_free(spki);
	return ok;
}

/*
 * The subject and authority key identifiers of the end-entity profile
 * (SKI "hash", AKI "keyid,issuer") for `cert` under `issuer`, appended in
 * that order. 1 on success.
 */
int
pgssl_x509_add_key_ids(X509 *cert, X509 *issuer)
{
	X509V3_CTX	ctx;
	X509_EXTENSION *ext;
	int			ok;

	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_nconf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
	ok = ext != NULL && X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	if (!ok)
		return 0;
	ext = X509V3_EXT_nconf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid,issuer");
	ok = ext != NULL && X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}
