/* validate.c: the checks every request passes at the edge, before a
 * handler sees it (STYLE "Untrusted input"). One entry per request message
 * (and per nested message that has rules); the rules name fields of
 * keyhold.proto and are walked through the generated descriptors, so no
 * field is copied. A handler may rely on what its entry checks. */
#include <stdlib.h>
#include <string.h>

#include "keyhold.pb-c.h"
#include "kh_pki.h"
#include "kh_rev.h"
#include "kh_util.h"
#include "proto.h"

enum proto_rule_kind {
	PR_NAME,     /* kh_name_valid; with .opt, "" too */
	PR_TEXT,     /* at most .max bytes, no control character */
	PR_BYTES,    /* .min to .max bytes ("is empty" below 1) */
	PR_ENUM,     /* .min to .max; .msg formats the value (%d) */
	PR_COUNT,    /* at most .max elements; .msg formats the count (%zu) */
	PR_MATCH,    /* .match(value) holds; else .msg, as it is */
	PR_CHECK,    /* .check: what the others cannot say (oneofs, cross-field) */
};

struct proto_rule {
	const char *field;   /* the field's name in keyhold.proto (PR_CHECK: none) */
	enum proto_rule_kind kind;
	bool opt;            /* PR_NAME: may be empty */
	size_t min, max;
	const char *what;    /* the noun in the message: "key", "subject" */
	const char *msg;     /* PR_ENUM, PR_COUNT: the whole message, one value */
	enum kh_err (*check)(const ProtobufCMessage *m, struct kh_errbuf *e);
	bool (*match)(const char *s);  /* PR_MATCH: a string's syntax */
};

struct proto_entry {
	const ProtobufCMessageDescriptor *desc;
	const struct proto_rule *rules;
	size_t n;
};

#define NAME(f, w) { .field = (f), .kind = PR_NAME, .what = (w) }
#define NAME_OPT(f, w) { .field = (f), .kind = PR_NAME, .opt = true, .what = (w) }
#define TEXT(f, n, w) { .field = (f), .kind = PR_TEXT, .max = (n), .what = (w) }
#define BYTES(f, lo, hi, w) { .field = (f), .kind = PR_BYTES, .min = (lo), .max = (hi), .what = (w) }
#define ENUM(f, lo, hi, m) { .field = (f), .kind = PR_ENUM, .min = (lo), .max = (hi), .msg = (m) }
#define COUNT(f, hi, m) { .field = (f), .kind = PR_COUNT, .max = (hi), .msg = (m) }
/* A constant in a message of the table. */
#define PV_STR_(x) #x
#define PV_STR(x) PV_STR_(x)
#define MATCH(f, fn, m) { .field = (f), .kind = PR_MATCH, .match = (fn), .msg = (m) }
#define CHECK(fn) { .kind = PR_CHECK, .check = (fn) }
#define ENTRY(type, ...)                                                                             \
	{ &keyhold__v1__##type##__descriptor, (const struct proto_rule[]){ __VA_ARGS__ },                  \
	  sizeof((const struct proto_rule[]){ __VA_ARGS__ }) / sizeof(struct proto_rule) }

/* ---- cross-field checks ---- */

static enum kh_err check_tp_key_source(const ProtobufCMessage *m, struct kh_errbuf *e)
{
	const Keyhold__V1__CreateTrustpointRequest *p = (const void *)m;

	switch (p->key_source_case) {
	case KEYHOLD__V1__CREATE_TRUSTPOINT_REQUEST__KEY_SOURCE_KEY:
		if (!kh_name_valid(p->key))
			return kh_err_set(e, KH_E_INVALID_ARGUMENT, "key name must match [A-Za-z0-9._-]{1,64}");
		return KH_OK;
	case KEYHOLD__V1__CREATE_TRUSTPOINT_REQUEST__KEY_SOURCE_GENERATE:
		if ((int)p->generate < 1 || (int)p->generate > KH_KEY_TYPE_MAX)
			return kh_err_set(e, KH_E_INVALID_ARGUMENT,
					  "key type %d is unknown; use rsa2048, rsa3072, rsa4096, p256, p384, p521 or ed25519",
					  (int)p->generate);
		return KH_OK;
	default:
		return kh_err_set(e, KH_E_INVALID_ARGUMENT,
				  "a trustpoint needs a key: name one (--key) or generate one (--generate)");
	}
}

static enum kh_err check_tp_lifetime(const ProtobufCMessage *m, struct kh_errbuf *e)
{
	const Keyhold__V1__CreateTrustpointRequest *p = (const void *)m;

	if (p->validity_days > 36500)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "validity of %u days is too long (at most 36500)",
				  p->validity_days);
	if (p->renew_at > 99)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT,
				  "renew-at is a percent of the lifetime from 1 to 99 (0: off), not %u", p->renew_at);
	return KH_OK;
}

static enum kh_err check_tp_ocsp_url(const ProtobufCMessage *m, struct kh_errbuf *e)
{
	const Keyhold__V1__CreateTrustpointRequest *p = (const void *)m;

	if (!kh_url_valid(p->ocsp_url != NULL ? p->ocsp_url : ""))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT,
				  "the OCSP URL must be an http:// URL (https, ldap and file are not fetched)");
	return KH_OK;
}

/* enrollment url needs an http:// SCEP URL and an RSA key (SCEP
 * decrypts its answer with the key); the URL and challenge belong to it
 * alone. */
static enum kh_err check_tp_scep(const ProtobufCMessage *m, struct kh_errbuf *e)
{
	const Keyhold__V1__CreateTrustpointRequest *p = (const void *)m;
	const char *url = p->url != NULL ? p->url : "";
	const char *ch = p->challenge_password != NULL ? p->challenge_password : "";

	if ((int)p->enrollment != KH_ENROLL_URL) {
		if (url[0] != '\0' || ch[0] != '\0')
			return kh_err_set(e, KH_E_INVALID_ARGUMENT,
					  "--url and --challenge-password-file belong to --enrollment url");
		return KH_OK;
	}
	if (url[0] == '\0' || !kh_url_valid(url))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT,
				  "enrollment url needs --url http://HOST[:PORT]/PATH (the SCEP server; https is not used)");
	if (p->key_source_case == KEYHOLD__V1__CREATE_TRUSTPOINT_REQUEST__KEY_SOURCE_GENERATE &&
	    (int)p->generate != KH_KEY_RSA2048 && (int)p->generate != KH_KEY_RSA3072 &&
	    (int)p->generate != KH_KEY_RSA4096)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT,
				  "enrollment url (SCEP) needs an RSA key: --generate rsa2048, rsa3072 or rsa4096");
	if (p->key_source_case != KEYHOLD__V1__CREATE_TRUSTPOINT_REQUEST__KEY_SOURCE_GENERATE)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT,
				  "enrollment url (SCEP) needs a key generated for it (--generate rsa2048|rsa3072|rsa4096): "
				  "only such keys may decrypt the CA's answer");
	return KH_OK;
}

/* AcmeAccount: the binding goes with SET_EAB, whole, and with nothing else. */
static enum kh_err check_acme_account(const ProtobufCMessage *m, struct kh_errbuf *e)
{
	const Keyhold__V1__AcmeAccountRequest *p = (const void *)m;
	bool kid = p->eab_kid != NULL && p->eab_kid[0] != '\0', key = p->eab_hmac_key.len > 0;

	if (p->action == KEYHOLD__V1__ACME_ACCOUNT_ACTION__ACME_ACCOUNT_SET_EAB && !(kid && key))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "external account binding needs both --eab-kid and --eab-hmac-file");
	if (p->action != KEYHOLD__V1__ACME_ACCOUNT_ACTION__ACME_ACCOUNT_SET_EAB && (kid || key))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "the external account binding goes with acme-eab only");
	return KH_OK;
}

/* enrollment acme needs an https:// directory; the ACME fields belong to
 * it alone. */
static enum kh_err check_tp_acme(const ProtobufCMessage *m, struct kh_errbuf *e)
{
	const Keyhold__V1__CreateTrustpointRequest *p = (const void *)m;
	const char *dir = p->acme_directory != NULL ? p->acme_directory : "";
	const char *contact = p->acme_contact != NULL ? p->acme_contact : "";
	size_t i;

	/* A value inside the range that names no enrollment is unknown. */
	if (p->enrollment != 0 && kh_enrollment_name((enum kh_enrollment)p->enrollment) == NULL)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "enrollment %d is unknown; use self, terminal, url or acme",
				  (int)p->enrollment);
	if ((int)p->enrollment != KH_ENROLL_ACME) {
		if (dir[0] != '\0' || contact[0] != '\0' || p->acme_ca_pem.len > 0 ||
		    (p->eab_kid != NULL && p->eab_kid[0] != '\0') || p->eab_hmac_key.len > 0 ||
		    (p->acme_webroot != NULL && p->acme_webroot[0] != '\0'))
			return kh_err_set(e, KH_E_INVALID_ARGUMENT, "the ACME options need --enrollment acme");
		return KH_OK;
	}
	if (strncmp(dir, "https://", 8) != 0 || dir[8] == '\0')
		return kh_err_set(e, KH_E_INVALID_ARGUMENT,
				  "enrollment acme needs the directory as an https:// URL (--acme-directory)");
	for (i = 0; dir[i] != '\0'; i++)
		if ((unsigned char)dir[i] <= 0x20 || (unsigned char)dir[i] >= 0x7f)
			return kh_err_set(e, KH_E_INVALID_ARGUMENT, "the ACME directory URL holds a blank or non-ASCII byte");
	if (p->acme_webroot != NULL && p->acme_webroot[0] != '\0' && p->acme_webroot[0] != '/')
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "--acme-webroot must be an absolute path");
	if ((p->eab_kid != NULL && p->eab_kid[0] != '\0') != (p->eab_hmac_key.len > 0))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "external account binding needs both --eab-kid and --eab-hmac-file");
	if (contact[0] != '\0' && strncmp(contact, "mailto:", 7) != 0)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "the ACME contact must be a mailto: URL");
	for (i = 0; contact[i] != '\0'; i++)
		if ((unsigned char)contact[i] <= 0x20 || (unsigned char)contact[i] >= 0x7f || contact[i] == '"' ||
		    contact[i] == '\\')
			return kh_err_set(e, KH_E_INVALID_ARGUMENT, "the ACME contact holds a blank, quote or non-ASCII byte");
	return KH_OK;
}

static enum kh_err check_sign_input(const ProtobufCMessage *m, struct kh_errbuf *e)
{
	const Keyhold__V1__SignRequest *p = (const void *)m;

	switch (p->input_case) {
	case KEYHOLD__V1__SIGN_REQUEST__INPUT_MESSAGE:
		return KH_OK;
	case KEYHOLD__V1__SIGN_REQUEST__INPUT_PREHASHED:
		/* MD5 (16 bytes) is the shortest digest, SHA-512 (64) the longest. */
		if (p->prehashed.len < 16 || p->prehashed.len > 64)
			return kh_err_set(e, KH_E_INVALID_ARGUMENT, "a prehashed digest is 16 to 64 bytes, not %zu",
					  p->prehashed.len);
		return KH_OK;
	default:
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "sign needs a message or a prehashed digest");
	}
}

/* TruststoreAdd: at least one file (COUNT bounds only from above). */
static enum kh_err check_ts_add_files(const ProtobufCMessage *m, struct kh_errbuf *e)
{
	const Keyhold__V1__TruststoreAddRequest *p = (const void *)m;

	if (p->n_files == 0)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "no certificate files given");
	return KH_OK;
}

static enum kh_err check_ts_verify(const ProtobufCMessage *m, struct kh_errbuf *e)
{
	const Keyhold__V1__TruststoreVerifyRequest *p = (const void *)m;

	if (p->host != NULL && p->host[0] != '\0' && p->ip != NULL && p->ip[0] != '\0')
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "give a host name or an IP address, not both");
	return KH_OK;
}

static enum kh_err check_ts_verify_at(const ProtobufCMessage *m, struct kh_errbuf *e)
{
	const Keyhold__V1__TruststoreVerifyRequest *p = (const void *)m;

	if (p->at < 0)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "verification time before 1970");
	return KH_OK;
}

/* Any message with an "ocsp_url" field (its TEXT rule ran first). */
static enum kh_err check_ocsp_url(const ProtobufCMessage *m, struct kh_errbuf *e)
{
	const char *u = proto_field_str(m, "ocsp_url");

	if (!kh_url_valid(u != NULL ? u : ""))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT,
				  "the OCSP URL must be an http:// URL (keyhold fetches no https, ldap or file URLs)");
	return KH_OK;
}

/* A trust store's CRL URL: http:// or empty (none). */
static enum kh_err check_crl_url(const ProtobufCMessage *m, struct kh_errbuf *e)
{
	const char *u = proto_field_str(m, "crl_url");

	if (!kh_url_valid(u != NULL ? u : ""))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT,
				  "the CRL URL must be an http:// URL (keyhold fetches no https, ldap or file URLs)");
	return KH_OK;
}

static enum kh_err check_tp_policy_some(const ProtobufCMessage *m, struct kh_errbuf *e)
{
	const Keyhold__V1__SetTrustpointPolicyRequest *p = (const void *)m;

	if (!p->set_revocation && !p->set_ocsp_url && !p->set_renew && !p->set_subject && !p->set_san && !p->set_eku &&
	    !p->set_digest && !p->set_enrollment && !p->set_days && !p->set_fqdn && !p->ip_san)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT,
				  "nothing to set: give a revocation list, an OCSP URL, renew-at or an enrollment setting");
	if (p->validity_days > 36500)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "validity of %u days is too long (at most 36500)",
				  p->validity_days);
	return KH_OK;
}

static enum kh_err check_ts_policy_some(const ProtobufCMessage *m, struct kh_errbuf *e)
{
	const Keyhold__V1__SetTruststorePolicyRequest *p = (const void *)m;

	if (!p->set_revocation && !p->set_ocsp_url && !p->set_policies && !p->set_require_explicit_policy &&
	    !p->set_inhibit_policy_mapping && !p->set_inhibit_any_policy && !p->set_min_rsa_bits && !p->set_min_ec_bits &&
	    !p->set_allow_sha1 && !p->set_crl_url && !p->set_ocsp_responder)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT,
				  "nothing to set: give a revocation list, an OCSP URL, a CRL URL, an OCSP responder, policies, "
				  "policy inhibits or a key strength floor");
	if (p->set_min_rsa_bits && (p->min_rsa_bits < KH_FLOOR_RSA_MIN || p->min_rsa_bits > KH_FLOOR_RSA_MAX))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "the RSA/DSA key floor is %d to %d bits, not %u",
				  KH_FLOOR_RSA_MIN, KH_FLOOR_RSA_MAX, p->min_rsa_bits);
	if (p->set_min_ec_bits && (p->min_ec_bits < KH_FLOOR_EC_MIN || p->min_ec_bits > KH_FLOOR_EC_MAX))
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "the EC key floor is %d to %d bits, not %u", KH_FLOOR_EC_MIN,
				  KH_FLOOR_EC_MAX, p->min_ec_bits);
	return KH_OK;
}

static enum kh_err check_crl_named(const ProtobufCMessage *m, struct kh_errbuf *e)
{
	const Keyhold__V1__RemoveCrlRequest *p = (const void *)m;

	if (p->crl == NULL || p->crl[0] == '\0')
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "name the CRL: its issuer as listed or its SHA-256 fingerprint");
	return KH_OK;
}

#define POLICY_MSG "a policy is a dotted OID (such as 2.16.840.1.101.3.2.1.48.1) or anyPolicy, at most 63 characters"
#define POLICIES_MSG "at most 16 policies, not %zu"
_Static_assert(KH_OID_MAX == 63 && KH_POLICIES_MAX == 16, "POLICY_MSG and POLICIES_MSG name the limits");
static enum kh_err check_grant_present(const ProtobufCMessage *m, struct kh_errbuf *e)
{
	const Keyhold__V1__GrantKeyRequest *p = (const void *)m;

	if (p->grant == NULL)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "the grant is missing");
	return KH_OK;
}

/* kh_principal_valid's syntax, as the grants' principals are written. */
#define PRINCIPAL_MSG                                                                                    \
	"principal must be uid:N, gid:N, user:NAME, group:NAME or cert:NAME (printable, no blanks or commas, " \
	"at most 255 characters)"
_Static_assert(KH_PRINCIPAL_MAX == 255, "PRINCIPAL_MSG names the limit");
/* A grant lists at most this many digests or paddings. */
#define GRANT_ENUM_LIST_MAX 16

/* ---- the table: one entry per message with rules ---- */

static const struct proto_entry proto_entries[] = {
	/* keys */
	ENTRY(generate_key_request, NAME("name", "key"),
	      ENUM("type", 1, KH_KEY_TYPE_MAX,
		   "key type %d is unknown; use rsa2048, rsa3072, rsa4096, p256, p384, p521 or ed25519")),
	ENTRY(get_public_key_request, NAME("name", "key")),
	ENTRY(delete_key_request, NAME("name", "key")),
	ENTRY(sign_request, NAME("key", "key"),
	      ENUM("digest", 0, KH_DIGEST_MAX, "digest %d is unknown; use sha256, sha384 or sha512"),
	      ENUM("padding", 0, KH_PAD_MAX, "padding %d is unknown; use pkcs1 or pss"), CHECK(check_sign_input)),
	/* CSRs and trustpoints */
	ENTRY(create_csr_request, NAME("key", "key"), TEXT("subject", KH_DN_MAX, "subject"),
	      TEXT("san", KH_SAN_MAX, "SAN list"), TEXT("eku", KH_EKU_MAX, "EKU list"),
	      ENUM("digest", 0, KH_DIGEST_MAX, "digest %d is unknown; use sha256, sha384 or sha512"),
	      TEXT("challenge_password", KH_CHALLENGE_MAX, "challenge password")),
	ENTRY(create_trustpoint_request, NAME("name", "trustpoint"), CHECK(check_tp_key_source),
	      TEXT("subject", KH_DN_MAX, "subject"), TEXT("fqdn", KH_FQDN_MAX, "FQDN"), TEXT("san", KH_SAN_MAX, "SAN list"),
	      TEXT("eku", KH_EKU_MAX, "EKU list"),
	      ENUM("enrollment", 0, KH_ENROLL_MAX, "enrollment %d is unknown; use self, terminal, url or acme"),
	      CHECK(check_tp_acme), TEXT("acme_directory", KH_PKI_URL_MAX, "ACME directory URL"),
	      TEXT("acme_contact", KH_PKI_URL_MAX, "ACME contact"),
	      BYTES("acme_ca_pem", 0, KH_PKI_BLOB_MAX, "the ACME CA bundle"),
	      TEXT("eab_kid", 256, "the external account binding key identifier"),
	      TEXT("acme_webroot", 1024, "the ACME webroot"),
	      BYTES("eab_hmac_key", 0, 256, "the external account binding MAC key"),
	      TEXT("revocation", KH_REVOCATION_MAX, "revocation list"),
	      ENUM("digest", 0, KH_DIGEST_MAX, "digest %d is unknown; use sha256, sha384 or sha512"),
	      CHECK(check_tp_lifetime), TEXT("ocsp_url", KH_PKI_URL_MAX, "OCSP URL"), CHECK(check_tp_ocsp_url),
	      TEXT("url", KH_PKI_URL_MAX, "SCEP URL"), TEXT("challenge_password", KH_CHALLENGE_MAX, "challenge password"),
	      CHECK(check_tp_scep)),
	ENTRY(get_trustpoint_request, NAME("name", "trustpoint")),
	ENTRY(delete_trustpoint_request, NAME("name", "trustpoint")),
	ENTRY(authenticate_trustpoint_request, NAME("name", "trustpoint"), TEXT("fingerprint", KH_FP_IN_MAX, "fingerprint"),
	      BYTES("ca", 0, KH_PKI_BLOB_MAX, "the CA certificate")),
	ENTRY(enroll_trustpoint_request, NAME("name", "trustpoint")),
	ENTRY(import_certificate_request, NAME("name", "trustpoint"), BYTES("data", 1, KH_PKI_BLOB_MAX, "the certificate")),
	ENTRY(export_trustpoint_request, NAME("name", "trustpoint"),
	      ENUM("format", 0, KH_FMT_MAX, "format %d is unknown; use pem, der or pkcs7")),
	ENTRY(regenerate_trustpoint_request, NAME("name", "trustpoint"),
	      ENUM("type", 0, KH_KEY_TYPE_MAX,
		   "key type %d is unknown; use rsa2048, rsa3072, rsa4096, p256, p384, p521 or ed25519")),
	/* trust stores */
	ENTRY(truststore_add_request, NAME("store", "trust store"), CHECK(check_ts_add_files),
	      COUNT("files", KH_TS_FILES_MAX, "at most " PV_STR(KH_TS_FILES_MAX) " files at once"),
	      BYTES("files", 1, KH_PKI_BLOB_MAX, "a certificate file")),
	ENTRY(truststore_list_request, NAME_OPT("store", "trust store")),
	ENTRY(discard_csr_request, NAME("name", "trustpoint")),
	ENTRY(acme_account_request, NAME("name", "trustpoint"),
	      ENUM("action", 1, 3, "ACME account action %d is unknown; use key rollover (1), deactivate (2) or set eab (3)"),
	      CHECK(check_acme_account), TEXT("eab_kid", 256, "the external account binding key identifier"),
	      BYTES("eab_hmac_key", 0, 256, "the external account binding MAC key")),
	ENTRY(truststore_create_request, NAME("store", "trust store")),
	ENTRY(truststore_delete_request, NAME("store", "trust store")),
	ENTRY(truststore_export_request, NAME("store", "trust store"),
	      ENUM("format", 0, KH_FMT_MAX, "format %d is unknown; use pem, der or pkcs7"),
	      TEXT("fingerprint", KH_FP_IN_MAX, "fingerprint")),
	ENTRY(truststore_show_request, NAME("store", "trust store"), TEXT("fingerprint", KH_FP_IN_MAX, "fingerprint")),
	ENTRY(truststore_remove_request, NAME("store", "trust store"), TEXT("fingerprint", KH_FP_IN_MAX, "fingerprint")),
	ENTRY(truststore_verify_request, NAME("store", "trust store"), TEXT("host", KH_HOST_MAX, "host name"),
	      TEXT("ip", KH_IP_MAX, "IP address"), CHECK(check_ts_verify),
	      ENUM("purpose", 0, KH_PURPOSE_MAX, "purpose %d is unknown; use serverAuth or clientAuth"),
	      CHECK(check_ts_verify_at), COUNT("crls", KH_PKI_FILES_MAX, "at most " PV_STR(KH_PKI_FILES_MAX) " CRL files"),
	      BYTES("cert", 1, KH_PKI_BLOB_MAX, "the certificate"),
	      BYTES("untrusted", 0, KH_PKI_BLOB_MAX, "the untrusted certificates"),
	      BYTES("crls", 1, KH_PKI_BLOB_MAX, "a CRL file"), COUNT("policies", KH_POLICIES_MAX, POLICIES_MSG),
	      MATCH("policies", kh_oid_valid, POLICY_MSG)),
	ENTRY(import_crl_request, NAME("store", "trust store"), BYTES("crl", 1, KH_PKI_BLOB_MAX, "the CRL")),
	ENTRY(list_crls_request, NAME_OPT("store", "trust store")),
	ENTRY(remove_crl_request, NAME("store", "trust store"), TEXT("crl", KH_DN_MAX, "the CRL's issuer or fingerprint"),
	      CHECK(check_crl_named)),
	/* revocation, expiry */
	ENTRY(check_certificate_request, NAME("store", "trust store"), BYTES("cert", 1, KH_PKI_BLOB_MAX, "the certificate"),
	      BYTES("untrusted", 0, KH_PKI_BLOB_MAX, "the untrusted certificates")),
	ENTRY(set_trustpoint_policy_request, NAME("name", "trustpoint"),
	      TEXT("revocation", KH_REVOCATION_MAX, "the revocation list"), TEXT("ocsp_url", KH_URL_MAX, "the OCSP URL"),
	      CHECK(check_ocsp_url),
	      ENUM("renew_at", 0, 99, "renew-at is a percent of the lifetime from 1 to 99 (0: off), not %u"),
	      TEXT("subject", KH_DN_MAX, "subject"), TEXT("fqdn", KH_FQDN_MAX, "FQDN"), TEXT("san", KH_SAN_MAX, "SAN list"),
	      TEXT("eku", KH_EKU_MAX, "EKU list"),
	      ENUM("enrollment", 0, KH_ENROLL_MAX, "enrollment %d is unknown; use self or terminal"),
	      ENUM("digest", 0, KH_DIGEST_MAX, "digest %d is unknown; use sha256, sha384 or sha512"),
	      CHECK(check_tp_policy_some)),
	ENTRY(set_truststore_policy_request, NAME("store", "trust store"),
	      TEXT("revocation", KH_REVOCATION_MAX, "the revocation list"), TEXT("ocsp_url", KH_URL_MAX, "the OCSP URL"),
	      CHECK(check_ocsp_url), TEXT("crl_url", KH_URL_MAX, "the CRL URL"), CHECK(check_crl_url),
	      BYTES("ocsp_responder", 0, KH_PKI_BLOB_MAX, "the OCSP responder certificate"),
	      COUNT("policies", KH_POLICIES_MAX, POLICIES_MSG),
	      MATCH("policies", kh_oid_valid, POLICY_MSG), CHECK(check_ts_policy_some)),
	ENTRY(list_expiring_request, ENUM("within_days", 0, 36500, "--within takes 0 to 36500 days, not %u")),
	/* grants (AuditShow, AuditVerify and the status RPCs have no rules:
	 * audit_show bounds the page itself) */
	ENTRY(grant_key_request, CHECK(check_grant_present)),
	ENTRY(key_grant, NAME("key", "key"), MATCH("principal", kh_principal_valid, PRINCIPAL_MSG),
	      COUNT("digests", GRANT_ENUM_LIST_MAX, "a grant lists at most 16 digests and paddings"),
	      COUNT("paddings", GRANT_ENUM_LIST_MAX, "a grant lists at most 16 digests and paddings"),
	      ENUM("digests", 1, KH_DIGEST_MAX, "digest %d in a grant is unknown; name sha256, sha384 or sha512"),
	      ENUM("paddings", 1, KH_PAD_MAX, "padding %d in a grant is unknown; name pkcs1 or pss")),
	ENTRY(revoke_key_grant_request, NAME("key", "key"), MATCH("principal", kh_principal_valid, PRINCIPAL_MSG)),
	ENTRY(list_key_grants_request, NAME_OPT("key", "key")),
};

static const struct proto_entry *proto_entry_of(const ProtobufCMessageDescriptor *d)
{
	size_t i;

	for (i = 0; i < sizeof(proto_entries) / sizeof(proto_entries[0]); i++)
		if (proto_entries[i].desc == d)
			return &proto_entries[i];
	return NULL;
}

/* ---- the walk ---- */

static const void *proto_field_ptr(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	return (const char *)m + f->offset;
}

static size_t proto_field_count(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return *(const size_t *)(const void *)((const char *)m + f->quantifier_offset);
	/* A oneof member that is not the chosen one reads as absent. */
	if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0 &&
	    *(const uint32_t *)(const void *)((const char *)m + f->quantifier_offset) != f->id)
		return 0;
	return 1;
}

static enum kh_err proto_check_text_value(const char *s, const struct proto_rule *r, struct kh_errbuf *e)
{
	size_t i, n = strlen(s);

	if (n > r->max)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s is longer than %zu characters", r->what, r->max);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s contains a control character", r->what);
	}
	return KH_OK;
}

static int64_t proto_int_value(const void *p, ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_ENUM:
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32: return *(const int32_t *)p;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32: return (int64_t)*(const uint32_t *)p;
	case PROTOBUF_C_TYPE_BOOL: return *(const protobuf_c_boolean *)p ? 1 : 0;
	default: return *(const int64_t *)p;
	}
}

static size_t proto_elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE: return 8;
	default: return 4;
	}
}

/* Element i of field f (a repeated field's array, or the field itself). */
static const void *proto_elem(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, size_t i)
{
	const void *p = proto_field_ptr(m, f);

	if (f->label != PROTOBUF_C_LABEL_REPEATED)
		return p;
	return *(const char *const *)p + i * proto_elem_size(f->type);
}

/* .msg comes from the table above, never from input: each formats exactly
 * one value of the type its kind says. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static enum kh_err proto_rule_msg_count(const struct proto_rule *r, size_t n, struct kh_errbuf *e)
{
	return kh_err_set(e, KH_E_INVALID_ARGUMENT, r->msg, n);
}

static enum kh_err proto_rule_msg_value(const struct proto_rule *r, int v, struct kh_errbuf *e)
{
	return kh_err_set(e, KH_E_INVALID_ARGUMENT, r->msg, v);
}

static enum kh_err proto_rule_msg(const struct proto_rule *r, struct kh_errbuf *e)
{
	return kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s", r->msg);
}
#pragma GCC diagnostic pop

static enum kh_err proto_rule_apply(const ProtobufCMessage *m, const struct proto_rule *r, struct kh_errbuf *e)
{
	const ProtobufCFieldDescriptor *f;
	size_t i, n;
	int ret = KH_OK;

	if (r->kind == PR_CHECK)
		return r->check(m, e);
	f = protobuf_c_message_descriptor_get_field_by_name(m->descriptor, r->field);
	if (f == NULL)
		return kh_err_set(e, KH_E_INTERNAL, "validation names no field '%s' in %s", r->field,
				  m->descriptor->name);
	n = proto_field_count(m, f);
	if (r->kind == PR_COUNT) {
		if (n > r->max)
			return proto_rule_msg_count(r, n, e);
		return KH_OK;
	}
	/* A string or name that is not there is "" (proto3). */
	if (n == 0 && f->label != PROTOBUF_C_LABEL_REPEATED) {
		if (r->kind == PR_NAME && !r->opt)
			return kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s name must match [A-Za-z0-9._-]{1,64}", r->what);
		if (r->kind == PR_BYTES && r->min > 0)
			return kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s is empty", r->what);
		if (r->kind == PR_MATCH && !r->match(""))
			return proto_rule_msg(r, e);
		return KH_OK;
	}
	for (i = 0; i < n && ret == KH_OK; i++) {
		const void *v = proto_elem(m, f, i);

		switch (r->kind) {
		case PR_NAME: {
			const char *s = *(const char *const *)v;

			if (s == NULL)
				s = "";
			if (!(r->opt && s[0] == '\0') && !kh_name_valid(s))
				ret = kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s name must match [A-Za-z0-9._-]{1,64}",
						 r->what);
			break;
		}
		case PR_TEXT: {
			const char *s = *(const char *const *)v;

			ret = proto_check_text_value(s != NULL ? s : "", r, e);
			break;
		}
		case PR_BYTES: {
			const ProtobufCBinaryData *b = v;

			if (b->len < r->min)
				ret = r->min <= 1 ? kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s is empty", r->what)
						  : kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s is shorter than %zu bytes",
							       r->what, r->min);
			else if (b->len > r->max)
				ret = kh_err_set(e, KH_E_INVALID_ARGUMENT, "%s is larger than %zu bytes", r->what, r->max);
			break;
		}
		case PR_MATCH: {
			const char *s = *(const char *const *)v;

			if (!r->match(s != NULL ? s : ""))
				ret = proto_rule_msg(r, e);
			break;
		}
		case PR_ENUM: {
			int64_t x = proto_int_value(v, f->type);

			if (x < (int64_t)r->min || x > (int64_t)r->max)
				ret = proto_rule_msg_value(r, (int)x, e);
			break;
		}
		default:
			ret = kh_err_set(e, KH_E_INTERNAL, "validation rule %d is unknown", (int)r->kind);
			break;
		}
	}
	return ret;
}

/* Nested messages are checked when their type has an entry; depth is
 * bounded by protobuf-c's unpacker (and by the schema: no recursion). */
enum kh_err proto_validate(const ProtobufCMessage *m, struct kh_errbuf *e)
{
	const struct proto_entry *en;
	unsigned i;
	size_t j, n;
	int r = KH_OK;

	if (m == NULL)
		return KH_OK;
	en = proto_entry_of(m->descriptor);
	for (j = 0; en != NULL && j < en->n && r == KH_OK; j++)
		r = proto_rule_apply(m, &en->rules[j], e);
	for (i = 0; i < m->descriptor->n_fields && r == KH_OK; i++) {
		const ProtobufCFieldDescriptor *f = &m->descriptor->fields[i];

		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		n = proto_field_count(m, f);
		for (j = 0; j < n && r == KH_OK; j++)
			r = proto_validate(*(ProtobufCMessage *const *)proto_elem(m, f, j), e);
	}
	return r;
}

const char *proto_field_str(const ProtobufCMessage *m, const char *path)
{
	const ProtobufCFieldDescriptor *f;
	const char *dot;
	char head[64];

	while (m != NULL && path != NULL) {
		dot = strchr(path, '.');
		if (dot == NULL) {
			f = protobuf_c_message_descriptor_get_field_by_name(m->descriptor, path);
			if (f == NULL || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED ||
			    proto_field_count(m, f) == 0)
				return NULL;
			return *(const char *const *)proto_field_ptr(m, f);
		}
		if ((size_t)(dot - path) >= sizeof(head))
			return NULL;
		memcpy(head, path, (size_t)(dot - path));
		head[dot - path] = '\0';
		f = protobuf_c_message_descriptor_get_field_by_name(m->descriptor, head);
		if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED ||
		    proto_field_count(m, f) == 0)
			return NULL;
		m = *(const ProtobufCMessage *const *)proto_field_ptr(m, f);
		path = dot + 1;
	}
	return NULL;
}
