/* test_pki_parse.c: subject DNs (RFC 4514), SAN lists, EKU lists,
 * revocation lists, the digest rule, fingerprints and RFC 3339 times, each
 * with the inputs that must be refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "kh_pki.h"
#include "pki/pki.h"

/* RFC 2253 text of what pki_dn_parse built. */
static void dn_text(const char *in, char *out, size_t n)
{
	X509_NAME *name = NULL;
	struct kh_errbuf e = { 0 };

	assert_int_equal(pki_dn_parse(in, &name, &e), KH_OK);
	pki_name_text(name, out, n);
	X509_NAME_free(name);
}

static void dn_bad(const char *in, const char *needle)
{
	X509_NAME *name = NULL;
	struct kh_errbuf e = { 0 };

	assert_int_equal(pki_dn_parse(in, &name, &e), KH_E_INVALID_ARGUMENT);
	assert_null(name);
	assert_int_equal(e.code, KH_E_INVALID_ARGUMENT);
	if (needle != NULL && strstr(e.msg, needle) == NULL)
		fail_msg("'%s': message '%s' lacks '%s'", in, e.msg, needle);
}

static void test_dn_order(void **state)
{
	char out[512];
	X509_NAME *name = NULL;
	struct kh_errbuf e = { 0 };
	const X509_NAME_ENTRY *first;

	(void)state;
	/* RFC 4514 text keeps its order; the ASN.1 sequence is reversed. */
	dn_text("CN=web.example.com,O=Example,C=US", out, sizeof(out));
	assert_string_equal(out, "CN=web.example.com,O=Example,C=US");
	assert_int_equal(pki_dn_parse("CN=web.example.com,O=Example,C=US", &name, &e), KH_OK);
	first = X509_NAME_get_entry(name, 0);
	assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(first)), NID_countryName);
	X509_NAME_free(name);
}

static void test_dn_forms(void **state)
{
	char out[512];

	(void)state;
	/* Blanks around types and values, any case of known types. */
	dn_text("  cn = a.example.com ,  o=Org , ou = Unit ", out, sizeof(out));
	assert_string_equal(out, "CN=a.example.com,O=Org,OU=Unit");
	/* Escapes: comma, plus, hex pair, escaped trailing space. */
	dn_text("CN=Smith\\, John,O=A\\+B,L=x\\41y,ST=z\\ ", out, sizeof(out));
	assert_string_equal(out, "CN=Smith\\, John,O=A\\+B,L=xAy,ST=z\\ ");
	/* Multi-valued RDN: one RDN (DER sorts the SET OF its members). */
	dn_text("CN=a+UID=b,O=c", out, sizeof(out));
	assert_true(strcmp(out, "CN=a+UID=b,O=c") == 0 || strcmp(out, "UID=b+CN=a,O=c") == 0);
	/* Aliases, long names, dotted OIDs. */
	dn_text("E=x@example.com,S=Bavaria,commonName=n", out, sizeof(out));
	assert_string_equal(out, "emailAddress=x@example.com,ST=Bavaria,CN=n");
	dn_text("2.5.4.3=oid,OID.2.5.4.10=org", out, sizeof(out));
	assert_string_equal(out, "CN=oid,O=org");
	/* UTF-8 values survive. */
	dn_text("CN=M\xc3\xbcnchen", out, sizeof(out));
	assert_string_equal(out, "CN=M\xc3\xbcnchen");
}

static void test_dn_bad(void **state)
{
	char big[KH_DN_MAX + 16];

	(void)state;
	dn_bad("", "empty");
	dn_bad("   ", "empty");
	dn_bad("CN", "TYPE=value");
	dn_bad("CN=a,", "ends with");
	dn_bad("CN=a,,O=b", "TYPE=value");
	dn_bad("=a", "no type");
	dn_bad("XX=a", "unknown attribute type");
	dn_bad("CN=", "empty value");
	dn_bad("CN=#0403616263", "hex-encoded");
	dn_bad("CN=a\\q", "bad escape");
	dn_bad("CN=a\\", "bad escape");
	dn_bad("C=USA", "two-letter");
	dn_bad("C=U", "two-letter");
	dn_bad("CN=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "not allowed"); /* 65 > ub 64 */
	dn_bad("CN=a\\00b", "NUL");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "CN=", 3);
	dn_bad(big, "longer");
}

static int san_parse(const char *in, const char *fqdn, GENERAL_NAMES **g, struct kh_errbuf *e)
{
	*g = NULL;
	return pki_san_parse(in, fqdn, g, e);
}

static void test_san_ok(void **state)
{
	GENERAL_NAMES *g = NULL;
	struct kh_errbuf e = { 0 };
	GENERAL_NAME *n;
	const ASN1_OCTET_STRING *ip;

	(void)state;
	assert_int_equal(san_parse("DNS:a.example.com,IP:192.0.2.1,email:x@example.com,URI:spiffe://x", NULL, &g, &e),
			 KH_OK);
	assert_int_equal(sk_GENERAL_NAME_num(g), 4);
	assert_int_equal(sk_GENERAL_NAME_value(g, 0)->type, GEN_DNS);
	n = sk_GENERAL_NAME_value(g, 1);
	assert_int_equal(n->type, GEN_IPADD);
	ip = n->d.iPAddress;
	assert_int_equal(ASN1_STRING_length(ip), 4);
	assert_memory_equal(ASN1_STRING_get0_data(ip), "\xc0\x00\x02\x01", 4);
	assert_int_equal(sk_GENERAL_NAME_value(g, 2)->type, GEN_EMAIL);
	assert_int_equal(sk_GENERAL_NAME_value(g, 3)->type, GEN_URI);
	GENERAL_NAMES_free(g);

	/* otherName SANs (issue 16): xmppAddr (RFC 6120) and any OID with a
	 * UTF8String; "none" as the FQDN adds nothing. */
	assert_int_equal(san_parse("xmppAddr:svc@example.com,otherName:1.2.3.4;UTF8:v\xc3\xa9", "none", &g, &e), KH_OK);
	assert_int_equal(sk_GENERAL_NAME_num(g), 2);
	{
		int i;

		for (i = 0; i < 2; i++) {
			ASN1_OBJECT *oid = NULL;
			ASN1_TYPE *v = NULL;
			char txt[32];

			n = sk_GENERAL_NAME_value(g, i);
			assert_int_equal(n->type, GEN_OTHERNAME);
			assert_int_equal(GENERAL_NAME_get0_otherName(n, &oid, &v), 1);
			assert_int_equal(v->type, V_ASN1_UTF8STRING);
			OBJ_obj2txt(txt, sizeof(txt), oid, 1);
			assert_string_equal(txt, i == 0 ? "1.3.6.1.5.5.7.8.5" : "1.2.3.4");
			assert_memory_equal(ASN1_STRING_get0_data(v->value.utf8string), i == 0 ? "svc@example.com" : "v\xc3\xa9",
					    i == 0 ? 15 : 3);
		}
	}
	GENERAL_NAMES_free(g);

	/* IPv6, wildcard, case-insensitive types, duplicates dropped, FQDN added. */
	assert_int_equal(san_parse(" dns:*.example.com , ip:2001:db8::1,DNS:*.example.com", "host.example.com", &g, &e),
			 KH_OK);
	assert_int_equal(sk_GENERAL_NAME_num(g), 3);
	assert_int_equal(sk_GENERAL_NAME_value(g, 0)->type, GEN_DNS); /* the FQDN first */
	assert_string_equal((const char *)ASN1_STRING_get0_data(sk_GENERAL_NAME_value(g, 0)->d.dNSName), "host.example.com");
	assert_int_equal(ASN1_STRING_length(sk_GENERAL_NAME_value(g, 2)->d.iPAddress), 16);
	GENERAL_NAMES_free(g);

	/* An escaped comma inside a URI. */
	assert_int_equal(san_parse("URI:https://x.example/a\\,b", NULL, &g, &e), KH_OK);
	assert_int_equal(sk_GENERAL_NAME_num(g), 1);
	assert_string_equal((const char *)ASN1_STRING_get0_data(sk_GENERAL_NAME_value(g, 0)->d.uniformResourceIdentifier),
			    "https://x.example/a,b");
	GENERAL_NAMES_free(g);

	/* Empty: no extension at all. */
	assert_int_equal(san_parse("", NULL, &g, &e), KH_OK);
	assert_null(g);
	assert_int_equal(san_parse(NULL, "", &g, &e), KH_OK);
	assert_null(g);
}

static void san_bad(const char *in, const char *fqdn, const char *needle)
{
	GENERAL_NAMES *g = NULL;
	struct kh_errbuf e = { 0 };

	assert_int_equal(san_parse(in, fqdn, &g, &e), KH_E_INVALID_ARGUMENT);
	assert_null(g);
	if (needle != NULL && strstr(e.msg, needle) == NULL)
		fail_msg("'%s': message '%s' lacks '%s'", in, e.msg, needle);
}

static void test_san_bad(void **state)
{
	(void)state;
	san_bad("a.example.com", NULL, "TYPE:value");
	san_bad("DNS:", NULL, "TYPE:value");
	san_bad(":x", NULL, "TYPE:value");
	san_bad("FOO:x", NULL, "unknown");
	san_bad("xmppAddr:", NULL, "TYPE:value");
	san_bad("xmppAddr:a\x01b", NULL, "control character");
	san_bad("xmppAddr:a\xc3", NULL, "not valid UTF-8");
	san_bad("otherName:1.2.3.4", NULL, "otherName:OID;UTF8:value");
	san_bad("otherName:1.2.3.4;IA5:x", NULL, "otherName:OID;UTF8:value");
	san_bad("otherName:1.2.x;UTF8:v", NULL, "not a dotted OID");
	san_bad("otherName:1.2.3.4;UTF8:", NULL, "empty value");
	san_bad("DNS:a..b", NULL, "host name");
	san_bad("DNS:-a.example.com", NULL, "host name");
	san_bad("DNS:a-.example.com", NULL, "host name");
	san_bad("DNS:a b", NULL, "host name");
	san_bad("DNS:a.*.example.com", NULL, "host name");
	san_bad("DNS:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com", NULL, "host name"); /* 64 */
	san_bad("IP:192.0.2", NULL, "IPv4 or IPv6");
	san_bad("IP:192.0.2.256", NULL, "IPv4 or IPv6");
	san_bad("IP:example.com", NULL, "IPv4 or IPv6");
	san_bad("email:nobody", NULL, "e-mail");
	san_bad("email:@example.com", NULL, "e-mail");
	san_bad("email:a@b@example.com", NULL, "e-mail");
	san_bad("email:a b@example.com", NULL, "e-mail");
	san_bad("URI:no-scheme", NULL, "URI");
	san_bad("URI:https://a b", NULL, "URI");
	san_bad("URI:1http://x", NULL, "URI");
	san_bad("DNS:a.example.com,,DNS:b.example.com", NULL, "empty entry");
	san_bad("DNS:a\\", NULL, "bad escape");
	san_bad("", "bad host", "FQDN");
}

static void test_san_limit(void **state)
{
	char buf[KH_SAN_MAX + 1];
	GENERAL_NAMES *g = NULL;
	struct kh_errbuf e = { 0 };
	size_t off = 0;
	int i;

	(void)state;
	for (i = 0; i < 101; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%sDNS:h%d.x", i ? "," : "", i);
	assert_int_equal(san_parse(buf, NULL, &g, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "more than"));
}

static void test_eku(void **state)
{
	EXTENDED_KEY_USAGE *eku = NULL;
	struct kh_errbuf e = { 0 };

	(void)state;
	/* Empty means the default serverAuth,clientAuth (mutual TLS). */
	assert_int_equal(pki_eku_parse("", &eku, &e), KH_OK);
	assert_int_equal(sk_ASN1_OBJECT_num(eku), 2);
	assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), NID_server_auth);
	assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 1)), NID_client_auth);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	eku = NULL;
	assert_int_equal(pki_eku_parse(NULL, &eku, &e), KH_OK);
	assert_int_equal(sk_ASN1_OBJECT_num(eku), 2);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	eku = NULL;
	/* Names in any case, dotted OIDs, duplicates dropped. */
	assert_int_equal(pki_eku_parse("clientauth, codeSigning,1.3.6.1.5.5.7.3.2,1.2.3.4", &eku, &e), KH_OK);
	assert_int_equal(sk_ASN1_OBJECT_num(eku), 3);
	assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), NID_client_auth);
	assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 1)), NID_code_sign);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	eku = NULL;

	assert_int_equal(pki_eku_parse("serverAuth,bogus", &eku, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "unknown EKU 'bogus'"));
	assert_null(eku);
	kh_err_clear(&e);
	assert_int_equal(pki_eku_parse("serverAuth,,clientAuth", &eku, &e), KH_E_INVALID_ARGUMENT);
	kh_err_clear(&e);
	assert_int_equal(pki_eku_parse("1..2", &eku, &e), KH_E_INVALID_ARGUMENT);
	kh_err_clear(&e);
	assert_int_equal(pki_eku_parse("12345", &eku, &e), KH_E_INVALID_ARGUMENT);
	assert_null(eku);
}

static void test_revocation(void **state)
{
	char out[KH_REVOCATION_MAX + 1];
	struct kh_errbuf e = { 0 };

	(void)state;
	assert_int_equal(pki_revocation_parse("", out, sizeof(out), &e), KH_OK);
	assert_string_equal(out, "none");
	/* The order is the administrator's; repeats are dropped. */
	assert_int_equal(pki_revocation_parse("OCSP, crl,ocsp", out, sizeof(out), &e), KH_OK);
	assert_string_equal(out, "ocsp,crl");
	assert_int_equal(pki_revocation_parse("crl,ocsp", out, sizeof(out), &e), KH_OK);
	assert_string_equal(out, "crl,ocsp");
	/* A trailing none is soft-fail (Cisco's revocation-check crl ocsp none). */
	assert_int_equal(pki_revocation_parse("crl,ocsp,NONE", out, sizeof(out), &e), KH_OK);
	assert_string_equal(out, "crl,ocsp,none");
	assert_int_equal(pki_revocation_parse("ocsp,none", out, sizeof(out), &e), KH_OK);
	assert_string_equal(out, "ocsp,none");
	assert_int_equal(pki_revocation_parse("none", out, sizeof(out), &e), KH_OK);
	assert_string_equal(out, "none");
	assert_int_equal(pki_revocation_parse("none,crl", out, sizeof(out), &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "must come last"));
	kh_err_clear(&e);
	assert_int_equal(pki_revocation_parse("crl,none,ocsp", out, sizeof(out), &e), KH_E_INVALID_ARGUMENT);
	kh_err_clear(&e);
	assert_int_equal(pki_revocation_parse("crl,,ocsp", out, sizeof(out), &e), KH_E_INVALID_ARGUMENT);
	kh_err_clear(&e);
	assert_int_equal(pki_revocation_parse("crl,x", out, sizeof(out), &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "'x'"));
	/* Cisco's spacing: blanks separate entries as commas do. */
	kh_err_clear(&e);
	assert_int_equal(pki_revocation_parse("crl ocsp none", out, sizeof(out), &e), KH_OK);
	assert_string_equal(out, "crl,ocsp,none");
	assert_int_equal(pki_revocation_parse("  ocsp \t crl  ", out, sizeof(out), &e), KH_OK);
	assert_string_equal(out, "ocsp,crl");
	assert_int_equal(pki_revocation_parse("crl , ocsp,none", out, sizeof(out), &e), KH_OK);
	assert_string_equal(out, "crl,ocsp,none");
	assert_int_equal(pki_revocation_parse("none crl", out, sizeof(out), &e), KH_E_INVALID_ARGUMENT);
	kh_err_clear(&e);
	assert_int_equal(pki_revocation_parse("crl ,", out, sizeof(out), &e), KH_E_INVALID_ARGUMENT);
	kh_err_clear(&e);
	assert_int_equal(pki_revocation_parse(",crl", out, sizeof(out), &e), KH_E_INVALID_ARGUMENT);
	kh_err_clear(&e);
	assert_int_equal(pki_revocation_parse("crl ocps", out, sizeof(out), &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "'ocps'"));
}

static void test_digest_rule(void **state)
{
	enum kh_digest d = KH_DIGEST_DEFAULT;
	struct kh_errbuf e = { 0 };

	(void)state;
	assert_int_equal(pki_sig_digest(KH_KEY_P256, KH_DIGEST_DEFAULT, &d, &e), KH_OK);
	assert_int_equal(d, KH_DIGEST_SHA256);
	assert_int_equal(pki_sig_digest(KH_KEY_RSA2048, KH_DIGEST_SHA384, &d, &e), KH_OK);
	assert_int_equal(d, KH_DIGEST_SHA384);
	assert_int_equal(pki_sig_digest(KH_KEY_RSA2048, KH_DIGEST_SHA512, &d, &e), KH_OK);
	assert_int_equal(d, KH_DIGEST_SHA512);
	assert_int_equal(pki_sig_digest(KH_KEY_ED25519, KH_DIGEST_DEFAULT, &d, &e), KH_OK);
	assert_int_equal(d, KH_DIGEST_DEFAULT);
	/* The refusals name the rule. */
	assert_int_equal(pki_sig_digest(KH_KEY_RSA2048, KH_DIGEST_SHA1, &d, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "SHA-1 and MD5"));
	kh_err_clear(&e);
	assert_int_equal(pki_sig_digest(KH_KEY_P256, KH_DIGEST_MD5, &d, &e), KH_E_INVALID_ARGUMENT);
	kh_err_clear(&e);
	assert_int_equal(pki_sig_digest(KH_KEY_P256, KH_DIGEST_SHA224, &d, &e), KH_E_INVALID_ARGUMENT);
	kh_err_clear(&e);
	assert_int_equal(pki_sig_digest(KH_KEY_ED25519, KH_DIGEST_SHA256, &d, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "Ed25519"));
}

static void test_fingerprint(void **state)
{
	char out[KH_FP_HEX + 1];
	const char *hex = "ab01cd23ef45ab01cd23ef45ab01cd23ef45ab01cd23ef45ab01cd23ef45ab01";

	(void)state;
	assert_true(kh_fingerprint_normalize(hex, out));
	assert_string_equal(out, hex);
	assert_true(kh_fingerprint_normalize("AB:01:CD:23:EF:45:AB:01:CD:23:EF:45:AB:01:CD:23:EF:45:AB:01:CD:23:EF:45:AB:01:"
					     "CD:23:EF:45:AB:01",
					     out));
	assert_string_equal(out, hex);
	assert_false(kh_fingerprint_normalize("ab01", out));
	assert_false(kh_fingerprint_normalize("zz01cd23ef45ab01cd23ef45ab01cd23ef45ab01cd23ef45ab01cd23ef45ab01", out));
	assert_false(kh_fingerprint_normalize("ab01cd23ef45ab01cd23ef45ab01cd23ef45ab01cd23ef45ab01cd23ef45ab0100", out));
	assert_false(kh_fingerprint_normalize("", out));
}

static void test_rfc3339(void **state)
{
	int64_t t = 0;
	char buf[40];

	(void)state;
	assert_int_equal(kh_time_parse_rfc3339("1970-01-01T00:00:00Z", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(kh_time_parse_rfc3339("2030-01-02T03:04:05Z", &t), 0);
	assert_int_equal(t, 1893553445);
	assert_int_equal(kh_time_parse_rfc3339("2030-01-02T05:04:05.123+02:00", &t), 0);
	assert_int_equal(t, 1893553445);
	assert_int_equal(kh_time_parse_rfc3339("2024-02-29t00:00:00z", &t), 0);
	kh_time_format_rfc3339(1893553445, buf, sizeof(buf));
	assert_string_equal(buf, "2030-01-02T03:04:05Z");
	assert_int_not_equal(kh_time_parse_rfc3339("2030-01-02T03:04:05", &t), 0);  /* no offset */
	assert_int_not_equal(kh_time_parse_rfc3339("2030-13-02T03:04:05Z", &t), 0);
	assert_int_not_equal(kh_time_parse_rfc3339("2023-02-29T03:04:05Z", &t), 0);
	assert_int_not_equal(kh_time_parse_rfc3339("2030-01-02T24:00:00Z", &t), 0);
	assert_int_not_equal(kh_time_parse_rfc3339("2030-01-02", &t), 0);
	assert_int_not_equal(kh_time_parse_rfc3339("2030-01-02T03:04:05Zjunk", &t), 0);
	assert_int_not_equal(kh_time_parse_rfc3339("", &t), 0);
}

/* Every prefix of a valid subject either parses or is refused cleanly. */
static void test_dn_truncations(void **state)
{
	const char *full = "CN=Smith\\, J\\41,O=A\\+B+OU=u,C=US";
	char buf[64];
	size_t i;

	(void)state;
	for (i = 0; i <= strlen(full); i++) {
		X509_NAME *name = NULL;
		struct kh_errbuf e = { 0 };
		int r;

		memcpy(buf, full, i);
		buf[i] = '\0';
		r = pki_dn_parse(buf, &name, &e);
		assert_true(r == KH_OK || r == KH_E_INVALID_ARGUMENT);
		assert_true((r == KH_OK) == (name != NULL));
		X509_NAME_free(name);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dn_order),      cmocka_unit_test(test_dn_forms),   cmocka_unit_test(test_dn_bad),
		cmocka_unit_test(test_dn_truncations), cmocka_unit_test(test_san_ok),     cmocka_unit_test(test_san_bad),
		cmocka_unit_test(test_san_limit),     cmocka_unit_test(test_eku),        cmocka_unit_test(test_revocation),
		cmocka_unit_test(test_digest_rule),   cmocka_unit_test(test_fingerprint), cmocka_unit_test(test_rfc3339),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
