/* pki_parse.c: what administrators type into X.509 structures: subject DNs
 * (RFC 4514 strings), SAN lists (RFC 5280 §4.2.1.6 GeneralNames), EKU lists
 * (§4.2.1.12), revocation lists, and the digest rule for signatures. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include "kh_log.h"
#include "kh_util.h"
#include "pki/pki.h"
#include "kh_text.h"

const char *pki_ossl_reason(char *buf, size_t bufsz)
{
	unsigned long err, last = 0;

	while ((err = ERR_get_error()) != 0) {
		char tmp[256];

		ERR_error_string_n(err, tmp, sizeof(tmp));
		log_dbg("openssl: %s", tmp);
		last = err;
	}
	buf[0] = '\0';
	if (last != 0) {
		const char *rs = ERR_reason_error_string(last);

		kh_strlcpy(buf, rs != NULL ? rs : "unknown OpenSSL error", bufsz);
	}
	return buf;
}

/* ---- a tokenizer with RFC 4514 escapes ---- */

/* Copies one unescaped token of s starting at *pos into out, stopping at
 * any character of stops that is not escaped. Drops unescaped blanks at
 * both ends. On KH_OK *stop_out is the stop character ('\0' at the end) and
 * *pos and *out_len advance; KH_E_INVALID_ARGUMENT on a bad escape or
 * overflow (the callers say which). */
static enum kh_err pki_token(const char *s, size_t *pos, const char *stops, bool allow_escapes, char *out,
			     size_t outsz, size_t *out_len, int *stop_out)
{
	size_t i = *pos, n = 0, keep = 0; /* keep: length up to the last non-blank or escaped char */
	int stop = 0;

	while (s[i] == ' ')
		i++;
	for (; s[i] != '\0'; i++) {
		char c = s[i];

		if (strchr(stops, c) != NULL) {
			stop = (unsigned char)c;
			break;
		}
		if (c == '\\' && allow_escapes) {
			int h1 = kh_hexval(s[i + 1]), h2 = h1 >= 0 ? kh_hexval(s[i + 2]) : -1;

			if (h1 >= 0 && h2 >= 0) {
				c = (char)(h1 << 4 | h2);
				i += 2;
			} else if (s[i + 1] != '\0' && strchr(",+\"\\<>;=# ", s[i + 1]) != NULL) {
				c = s[++i];
			} else {
				return KH_E_INVALID_ARGUMENT;
			}
			if (n >= outsz - 1)
				return KH_E_INVALID_ARGUMENT;
			out[n++] = c;
			keep = n;
			continue;
		}
		if (n >= outsz - 1)
			return KH_E_INVALID_ARGUMENT;
		out[n++] = c;
		if (c != ' ')
			keep = n;
	}
	out[keep] = '\0';
	*out_len = keep;
	*pos = s[i] == '\0' ? i : i + 1;
	*stop_out = stop;
	return KH_OK;
}

/* ---- DN ---- */

struct pki_attr_alias {
	const char *name;
	int nid;
};

static const struct pki_attr_alias pki_attrs[] = {
	{ "CN", NID_commonName },
	{ "O", NID_organizationName },
	{ "OU", NID_organizationalUnitName },
	{ "C", NID_countryName },
	{ "ST", NID_stateOrProvinceName },
	{ "S", NID_stateOrProvinceName },
	{ "L", NID_localityName },
	{ "emailAddress", NID_pkcs9_emailAddress },
	{ "E", NID_pkcs9_emailAddress },
	{ "EMAIL", NID_pkcs9_emailAddress },
	{ "serialNumber", NID_serialNumber },
	{ "DC", NID_domainComponent },
	{ "UID", NID_userId },
	{ "street", NID_streetAddress },
	{ "title", NID_title },
	{ "GN", NID_givenName },
	{ "givenName", NID_givenName },
	{ "SN", NID_surname },
	{ "surname", NID_surname },
	{ "postalCode", NID_postalCode },
	{ "unstructuredName", NID_pkcs9_unstructuredName },
};

#define PKI_ATTR_HINT "use CN, O, OU, C, ST, L, emailAddress, serialNumber, DC, UID, street, title, GN, SN, postalCode or a dotted OID"

/* A dotted OID as X.660 writes it: first arc 0-2, then at least one more
 * arc, no empty arcs. */
static bool pki_oid_ok(const char *s)
{
	size_t arcs = 0;

	if (s[0] < '0' || s[0] > '2' || s[1] != '.')
		return false;
	for (;;) {
		if (*s < '0' || *s > '9')
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
		arcs++;
		if (*s == '\0')
			return arcs >= 2;
		if (*s++ != '.')
			return false;
	}
}

static ASN1_OBJECT *pki_attr_obj(const char *type)
{
	size_t i;
	const char *p;

	for (i = 0; i < sizeof(pki_attrs) / sizeof(pki_attrs[0]); i++)
		if (strcasecmp(type, pki_attrs[i].name) == 0)
			return OBJ_nid2obj(pki_attrs[i].nid);
	if (strncasecmp(type, "OID.", 4) == 0)
		type += 4;
	/* A dotted OID, or OpenSSL's long name of an attribute type. */
	for (p = type; *p != '\0' && (isdigit((unsigned char)*p) || *p == '.'); p++)
		;
	if (*p == '\0' && type[0] != '\0')
		return pki_oid_ok(type) ? OBJ_txt2obj(type, 1) : NULL;
	i = (size_t)OBJ_ln2nid(type);
	return i != NID_undef ? OBJ_nid2obj((int)i) : NULL;
}

static enum kh_err pki_dn_add(X509_NAME *name, const char *type, const char *value, size_t vlen, bool new_rdn,
			      struct kh_errbuf *e)
{
	ASN1_OBJECT *obj = NULL;
	X509_NAME_ENTRY *ne = NULL;
	char why[128];
	int r = KH_OK;

	KH_ENSURE(type[0] != '\0', kh_err_set(e, KH_E_INVALID_ARGUMENT, "subject: an attribute has no type (write TYPE=value)"));
	obj = pki_attr_obj(type);
	KH_ENSURE(obj != NULL, kh_err_set(e, KH_E_INVALID_ARGUMENT, "subject: unknown attribute type '%.*s'; " PKI_ATTR_HINT,
					  KH_UTF8_PREC(type, 64)));
	KH_ENSURE(vlen > 0, kh_err_set(e, KH_E_INVALID_ARGUMENT, "subject: %.*s has an empty value", KH_UTF8_PREC(type, 64)));
	KH_ENSURE(value[0] != '#', kh_err_set(e, KH_E_INVALID_ARGUMENT,
					      "subject: hex-encoded values ('#...') are not supported; write %.*s as text", KH_UTF8_PREC(type, 64)));
	KH_ENSURE(memchr(value, '\0', vlen) == NULL,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "subject: %.*s contains a NUL character", KH_UTF8_PREC(type, 64)));
	/* MBSTRING_UTF8: OpenSSL's string table picks the ASN.1 type and
	 * enforces the RFC 5280 upper bounds (CN <= 64, C exactly 2, ...). */
	ne = X509_NAME_ENTRY_create_by_OBJ(NULL, obj, MBSTRING_UTF8, (const unsigned char *)value, (int)vlen);
	if (ne == NULL) {
		pki_ossl_reason(why, sizeof(why));
		if (OBJ_obj2nid(obj) == NID_countryName)
			r = kh_err_set(e, KH_E_INVALID_ARGUMENT, "subject: C must be a two-letter country code (ISO 3166), not '%.*s'",
				       KH_UTF8_PREC(value, 64));
		else
			r = kh_err_set(e, KH_E_INVALID_ARGUMENT, "subject: the value of %.*s is not allowed (%s)", KH_UTF8_PREC(type, 64),
				       why[0] ? why : "invalid string");
		goto out;
	}
	KH_ENSURE(X509_NAME_add_entry(name, ne, -1, new_rdn ? 0 : -1) == 1,
		  kh_err_set(e, KH_E_INTERNAL, "cannot add %.*s to the subject", KH_UTF8_PREC(type, 64)));
out:
	X509_NAME_ENTRY_free(ne);
	ASN1_OBJECT_free(obj);
	return r;
}

struct pki_ava {
	char type[64];
	char value[KH_DN_MAX + 1];
	size_t vlen;
	bool new_rdn;   /* first AVA of its RDN */
};

enum kh_err pki_dn_parse(const char *s, X509_NAME **out, struct kh_errbuf *e)
{
	struct pki_ava *avas = NULL;
	size_t n = 0, pos = 0, i, tl, rdns = 0;
	X509_NAME *name = NULL;
	bool new_rdn = true;
	int r = KH_OK, stop = 0;
	enum kh_err tr;

	KH_ENSURE(s != NULL && strlen(s) <= KH_DN_MAX,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "subject is longer than %d characters", KH_DN_MAX));
	while (*s == ' ')
		s++;
	KH_ENSURE(*s != '\0', kh_err_set(e, KH_E_INVALID_ARGUMENT, "subject is empty; write it as CN=name,O=org,C=US"));
	avas = calloc(PKI_RDN_MAX * 2, sizeof(*avas));
	KH_ENSURE(avas != NULL, KH_E_RESOURCE_EXHAUSTED);
	while (s[pos] != '\0') {
		struct pki_ava *a;

		KH_ENSURE(n < PKI_RDN_MAX * 2,
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "subject has more than %d attributes", PKI_RDN_MAX * 2));
		a = &avas[n];
		tr = pki_token(s, &pos, "=,+", false, a->type, sizeof(a->type), &tl, &stop);
		KH_ENSURE(tr == KH_OK && stop == '=', kh_err_set(e, KH_E_INVALID_ARGUMENT,
						  "subject: '%.*s' is not TYPE=value (write it as CN=name,O=org,C=US)",
						  KH_UTF8_PREC(tr != KH_OK ? "(too long)" : a->type, 64)));
		tr = pki_token(s, &pos, ",+", true, a->value, sizeof(a->value), &a->vlen, &stop);
		KH_ENSURE(tr == KH_OK, kh_err_set(e, KH_E_INVALID_ARGUMENT,
						"subject: bad escape in the value of %.*s (escape , + \" \\ < > ; = # with \\)", KH_UTF8_PREC(a->type, 64)));
		a->new_rdn = new_rdn;
		rdns += new_rdn;
		n++;
		new_rdn = stop != '+';
		KH_ENSURE(stop == 0 || s[pos] != '\0',
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "subject ends with '%c'; remove it or add an attribute", stop));
	}
	KH_ENSURE(rdns <= PKI_RDN_MAX, kh_err_set(e, KH_E_INVALID_ARGUMENT, "subject has more than %d RDNs", PKI_RDN_MAX));
	name = X509_NAME_new();
	KH_ENSURE(name != NULL, KH_E_RESOURCE_EXHAUSTED);
	/* RFC 4514 §2.1: the string starts with the last RDN of the sequence.
	 * Walk RDNs backwards, AVAs within an RDN forwards. */
	i = n;
	while (i > 0) {
		size_t start = i - 1, k;

		while (!avas[start].new_rdn)
			start--;
		for (k = start; k < i; k++)
			KH_TRY(pki_dn_add(name, avas[k].type, avas[k].value, avas[k].vlen, k == start, e));
		i = start;
	}
	*out = name;
	name = NULL;
out:
	X509_NAME_free(name);
	free(avas);
	return r;
}

/* ---- SAN ---- */

/* RFC 1035 §2.3.1 host name (LDH labels), optionally "*." first (RFC 6125
 * §6.4.3). */
static bool pki_dns_ok(const char *s, bool wildcard)
{
	size_t len = strlen(s), lab = 0, i;

	if (len == 0 || len > KH_FQDN_MAX)
		return false;
	if (wildcard && strncmp(s, "*.", 2) == 0)
		s += 2;
	if (*s == '\0')
		return false;
	for (i = 0;; i++) {
		char c = s[i];

		if (c == '.' || c == '\0') {
			if (lab == 0 || lab > 63 || s[i - 1] == '-')
				return false;
			if (c == '\0')
				return true;
			lab = 0;
			continue;
		}
		if (!(isalnum((unsigned char)c) || (c == '-' && lab > 0) || c == '_'))
			return false;
		lab++;
	}
}

static bool pki_email_ok(const char *s)
{
	const char *at = strrchr(s, '@');
	const char *p;

	if (at == NULL || at == s || strchr(s, '@') != at)
		return false;
	for (p = s; p < at; p++)
		if (*p <= ' ' || *p >= 0x7f || strchr("()<>,;:\\\"[]", *p) != NULL)
			return false;
	return pki_dns_ok(at + 1, false);
}

/* RFC 3986: scheme ":" and a non-empty rest of visible ASCII. */
static bool pki_uri_ok(const char *s)
{
	const char *p = s;

	if (!isalpha((unsigned char)*p))
		return false;
	while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
		p++;
	if (*p != ':' || p[1] == '\0')
		return false;
	for (p++; *p != '\0'; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '<' || *p == '>' || *p == '\\' || *p == '^' ||
		    *p == '`' || *p == '{' || *p == '|' || *p == '}')
			return false;
	return true;
}

static bool pki_gen_dup(GENERAL_NAMES *g, GENERAL_NAME *n)
{
	int i;

	for (i = 0; i < sk_GENERAL_NAME_num(g); i++)
		if (GENERAL_NAME_cmp(sk_GENERAL_NAME_value(g, i), n) == 0)
			return true;
	return false;
}

/* An otherName SAN (RFC 5280 §4.2.1.6) whose value is a UTF8String:
 * "xmppAddr:user@example.com" (id-on-xmppAddr, RFC 6120 §13.7.1.4) or
 * "otherName:1.2.3.4;UTF8:value" (OpenSSL's spelling). *out: a new name. */
static enum kh_err pki_san_othername(const char *type, const char *v, GENERAL_NAME **out, struct kh_errbuf *e)
{
	GENERAL_NAME *n = NULL;
	ASN1_OBJECT *oid = NULL;
	ASN1_TYPE *val = NULL;
	ASN1_UTF8STRING *u = NULL;
	char oidtxt[KH_OID_MAX + 1];
	const char *semi, *value = v;
	size_t i, cl;
	int r = KH_OK;

	if (strcasecmp(type, "xmppAddr") == 0) {
		oid = OBJ_nid2obj(NID_XmppAddr);
	} else {
		semi = strchr(v, ';');
		KH_ENSURE(semi != NULL && (size_t)(semi - v) <= KH_OID_MAX && strncasecmp(semi + 1, "UTF8:", 5) == 0,
			  kh_err_set(e, KH_E_INVALID_ARGUMENT,
				     "SAN otherName:%.*s must be otherName:OID;UTF8:value (e.g. otherName:1.3.6.1.4.1.311.20.2.3;UTF8:"
				     "user@example.com)",
				     KH_UTF8_PREC(v, 80)));
		memcpy(oidtxt, v, (size_t)(semi - v));
		oidtxt[semi - v] = '\0';
		KH_ENSURE(kh_oid_valid(oidtxt), kh_err_set(e, KH_E_INVALID_ARGUMENT,
							  "SAN otherName: '%.*s' is not a dotted OID", KH_UTF8_PREC(oidtxt, 80)));
		oid = OBJ_txt2obj(oidtxt, 1);
		value = semi + 6;
	}
	KH_ENSURE(oid != NULL, kh_err_set(e, KH_E_INVALID_ARGUMENT, "SAN %.*s: bad type identifier", KH_UTF8_PREC(type, 32)));
	KH_ENSURE(value[0] != '\0', kh_err_set(e, KH_E_INVALID_ARGUMENT, "SAN %.*s has an empty value", KH_UTF8_PREC(type, 32)));
	for (i = 0; value[i] != '\0'; i += cl) {
		KH_ENSURE((unsigned char)value[i] >= 0x20 && value[i] != 0x7f,
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "SAN %.*s contains a control character", KH_UTF8_PREC(type, 32)));
		cl = kh_utf8_char((const unsigned char *)value + i, strlen(value + i));
		KH_ENSURE(cl > 0, kh_err_set(e, KH_E_INVALID_ARGUMENT, "SAN %.*s is not valid UTF-8", KH_UTF8_PREC(type, 32)));
	}
	u = ASN1_UTF8STRING_new();
	val = ASN1_TYPE_new();
	n = GENERAL_NAME_new();
	KH_ENSURE(u != NULL && val != NULL && n != NULL && ASN1_STRING_set(u, value, (int)strlen(value)) == 1,
		  KH_E_RESOURCE_EXHAUSTED);
	ASN1_TYPE_set(val, V_ASN1_UTF8STRING, u);
	u = NULL;
	KH_ENSURE(GENERAL_NAME_set0_othername(n, oid, val) == 1, KH_E_RESOURCE_EXHAUSTED);
	oid = NULL;
	val = NULL;
	*out = n;
	n = NULL;
out:
	ASN1_OBJECT_free(oid);
	ASN1_TYPE_free(val);
	ASN1_UTF8STRING_free(u);
	GENERAL_NAME_free(n);
	return r;
}

static enum kh_err pki_san_add(GENERAL_NAMES *g, const char *type, const char *v, struct kh_errbuf *e)
{
	GENERAL_NAME *n = NULL;
	ASN1_IA5STRING *ia5 = NULL;
	ASN1_OCTET_STRING *ip = NULL;
	unsigned char addr[16];
	int kind, r = KH_OK;
	size_t alen = 0;

	if (strcasecmp(type, "xmppAddr") == 0 || strcasecmp(type, "otherName") == 0) {
		KH_TRY(pki_san_othername(type, v, &n, e));
		kind = GEN_OTHERNAME;
	} else if (strcasecmp(type, "DNS") == 0) {
		KH_ENSURE(pki_dns_ok(v, true),
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "SAN DNS:%.*s is not a valid host name (letters, digits, '-', labels up to 63)", KH_UTF8_PREC(v, 80)));
		kind = GEN_DNS;
	} else if (strcasecmp(type, "IP") == 0) {
		if (inet_pton(AF_INET, v, addr) == 1)
			alen = 4;
		else if (inet_pton(AF_INET6, v, addr) == 1)
			alen = 16;
		KH_ENSURE(alen > 0, kh_err_set(e, KH_E_INVALID_ARGUMENT, "SAN IP:%.*s is not an IPv4 or IPv6 address", KH_UTF8_PREC(v, 80)));
		kind = GEN_IPADD;
	} else if (strcasecmp(type, "email") == 0) {
		KH_ENSURE(pki_email_ok(v), kh_err_set(e, KH_E_INVALID_ARGUMENT, "SAN email:%.*s is not an e-mail address", KH_UTF8_PREC(v, 80)));
		kind = GEN_EMAIL;
	} else if (strcasecmp(type, "URI") == 0) {
		KH_ENSURE(pki_uri_ok(v), kh_err_set(e, KH_E_INVALID_ARGUMENT,
						    "SAN URI:%.*s is not an absolute URI (scheme:rest, no spaces)", KH_UTF8_PREC(v, 80)));
		kind = GEN_URI;
	} else {
		r = kh_err_set(e, KH_E_INVALID_ARGUMENT,
			       "SAN type '%.*s' is unknown; use DNS:, IP:, email:, URI:, xmppAddr: or otherName:OID;UTF8:",
			       KH_UTF8_PREC(type, 32));
		goto out;
	}
	if (n == NULL)
		n = GENERAL_NAME_new();
	KH_ENSURE(n != NULL, KH_E_RESOURCE_EXHAUSTED);
	if (kind == GEN_OTHERNAME) {
		/* built above */
	} else if (kind == GEN_IPADD) {
		ip = ASN1_OCTET_STRING_new();
		KH_ENSURE(ip != NULL && ASN1_OCTET_STRING_set(ip, addr, (int)alen) == 1, KH_E_RESOURCE_EXHAUSTED);
		GENERAL_NAME_set0_value(n, GEN_IPADD, ip);
		ip = NULL;
	} else {
		ia5 = ASN1_IA5STRING_new();
		KH_ENSURE(ia5 != NULL && ASN1_STRING_set(ia5, v, (int)strlen(v)) == 1, KH_E_RESOURCE_EXHAUSTED);
		GENERAL_NAME_set0_value(n, kind, ia5);
		ia5 = NULL;
	}
	if (pki_gen_dup(g, n))
		goto out;
	KH_ENSURE(sk_GENERAL_NAME_num(g) < PKI_SAN_ENTRIES_MAX,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "more than %d SAN entries", PKI_SAN_ENTRIES_MAX));
	KH_ENSURE(sk_GENERAL_NAME_push(g, n) > 0, KH_E_RESOURCE_EXHAUSTED);
	n = NULL;
out:
	GENERAL_NAME_free(n);
	ASN1_IA5STRING_free(ia5);
	ASN1_OCTET_STRING_free(ip);
	return r;
}

enum kh_err pki_san_parse(const char *s, const char *fqdn, GENERAL_NAMES **out, struct kh_errbuf *e)
{
	GENERAL_NAMES *g = NULL;
	char item[KH_SAN_MAX + 1];
	size_t pos = 0, len;
	int r = KH_OK, stop;

	if (s == NULL)
		s = "";
	KH_ENSURE(strlen(s) <= KH_SAN_MAX,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "SAN list is longer than %d characters", KH_SAN_MAX));
	g = GENERAL_NAMES_new();
	KH_ENSURE(g != NULL, KH_E_RESOURCE_EXHAUSTED);
	/* The FQDN first: it names the host (as ASA's "fqdn" does); "none"
	 * (ASA's `fqdn none`): no FQDN SAN. */
	if (fqdn != NULL && fqdn[0] != '\0' && strcasecmp(fqdn, "none") != 0) {
		KH_ENSURE(pki_dns_ok(fqdn, false),
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "FQDN '%.*s' is not a valid host name", KH_UTF8_PREC(fqdn, 80)));
		KH_TRY(pki_san_add(g, "DNS", fqdn, e));
	}
	while (s[pos] != '\0') {
		char *colon;

		KH_ENSURE(pki_token(s, &pos, ",", true, item, sizeof(item), &len, &stop) == KH_OK,
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "SAN list: bad escape (write \\, for a comma)"));
		if (len == 0) {
			KH_ENSURE(stop == 0 && s[pos] == '\0',
				  kh_err_set(e, KH_E_INVALID_ARGUMENT, "SAN list has an empty entry"));
			break;
		}
		KH_ENSURE(strlen(item) == len, kh_err_set(e, KH_E_INVALID_ARGUMENT, "SAN list contains a NUL character"));
		colon = strchr(item, ':');
		KH_ENSURE(colon != NULL && colon != item && colon[1] != '\0',
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "SAN entry '%.*s' must be TYPE:value (DNS:, IP:, email:, URI:, xmppAddr:, otherName:)", KH_UTF8_PREC(item, 80)));
		*colon = '\0';
		KH_TRY(pki_san_add(g, item, colon + 1, e));
	}
	if (sk_GENERAL_NAME_num(g) == 0) {
		GENERAL_NAMES_free(g);
		g = NULL;
	}
	*out = g;
	g = NULL;
out:
	GENERAL_NAMES_free(g);
	return r;
}

/* ---- EKU ---- */

static const struct pki_attr_alias pki_ekus[] = {
	{ "serverAuth", NID_server_auth },
	{ "clientAuth", NID_client_auth },
	{ "codeSigning", NID_code_sign },
	{ "emailProtection", NID_email_protect },
	{ "timeStamping", NID_time_stamp },
	{ "OCSPSigning", NID_OCSP_sign },
	{ "ipsecIKE", NID_ipsec_IKE },
};

enum kh_err pki_eku_parse(const char *s, EXTENDED_KEY_USAGE **out, struct kh_errbuf *e)
{
	EXTENDED_KEY_USAGE *eku = NULL;
	ASN1_OBJECT *obj = NULL;
	char item[KH_EKU_MAX + 1];
	size_t pos = 0, len, i;
	int r = KH_OK, stop;

	if (s == NULL || s[strspn(s, " ")] == '\0')
		s = "serverAuth,clientAuth";
	KH_ENSURE(strlen(s) <= KH_EKU_MAX,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "EKU list is longer than %d characters", KH_EKU_MAX));
	eku = sk_ASN1_OBJECT_new_null();
	KH_ENSURE(eku != NULL, KH_E_RESOURCE_EXHAUSTED);
	while (s[pos] != '\0') {
		bool dup = false;
		int k;

		KH_ENSURE(pki_token(s, &pos, ",", false, item, sizeof(item), &len, &stop) == KH_OK && len > 0,
			  kh_err_set(e, KH_E_INVALID_ARGUMENT, "EKU list has an empty entry"));
		for (i = 0; i < sizeof(pki_ekus) / sizeof(pki_ekus[0]); i++)
			if (strcasecmp(item, pki_ekus[i].name) == 0)
				break;
		if (i < sizeof(pki_ekus) / sizeof(pki_ekus[0])) {
			obj = OBJ_nid2obj(pki_ekus[i].nid);
		} else {
			KH_ENSURE(pki_oid_ok(item),
				  kh_err_set(e, KH_E_INVALID_ARGUMENT,
					     "unknown EKU '%.*s'; use serverAuth, clientAuth, codeSigning, emailProtection, "
					     "timeStamping, OCSPSigning, ipsecIKE or a dotted OID", KH_UTF8_PREC(item, 64)));
			obj = OBJ_txt2obj(item, 1);
			KH_ENSURE(obj != NULL, kh_err_set(e, KH_E_INVALID_ARGUMENT, "EKU '%.*s' is not a valid OID", KH_UTF8_PREC(item, 64)));
		}
		for (k = 0; k < sk_ASN1_OBJECT_num(eku); k++)
			dup = dup || OBJ_cmp(sk_ASN1_OBJECT_value(eku, k), obj) == 0;
		if (!dup) {
			KH_ENSURE(sk_ASN1_OBJECT_num(eku) < PKI_EKU_MAX,
				  kh_err_set(e, KH_E_INVALID_ARGUMENT, "more than %d EKUs", PKI_EKU_MAX));
			KH_ENSURE(sk_ASN1_OBJECT_push(eku, obj) > 0, KH_E_RESOURCE_EXHAUSTED);
			obj = NULL;
		}
		ASN1_OBJECT_free(obj);
		obj = NULL;
	}
	*out = eku;
	eku = NULL;
out:
	ASN1_OBJECT_free(obj);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	return r;
}

/* ---- revocation ---- */

enum kh_err pki_revocation_parse(const char *s, char *out, size_t outsz, struct kh_errbuf *e)
{
	/* Cisco's `revocation-check crl ocsp none`: the methods are tried in
	 * the order given; "none" alone turns checking off, and "none" after
	 * methods accepts a certificate none of them could answer for
	 * (soft-fail). Repeats are dropped. */
	static const char *const known[] = { "crl", "ocsp", "none" };
	bool seen[3] = { false, false, false };
	size_t order[3], n = 0;
	char item[KH_REVOCATION_MAX + 1];
	size_t pos = 0, len, i;
	bool need = false; /* a comma was read: an entry must follow */

	if (s == NULL || s[strspn(s, " \t")] == '\0')
		s = "none";
	if (strlen(s) > KH_REVOCATION_MAX)
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "revocation list is too long");
	/* Entries are separated by commas, blanks or both: "crl,ocsp",
	 * "crl, ocsp" and Cisco's "crl ocsp none" are one list; an empty
	 * entry ("crl,,ocsp", a trailing comma) is an error. */
	for (;;) {
		pos += strspn(s + pos, " \t");
		if (s[pos] == '\0') {
			if (need)
				return kh_err_set(e, KH_E_INVALID_ARGUMENT, "revocation list has an empty entry");
			break;
		}
		len = strcspn(s + pos, ", \t");
		if (len == 0)
			return kh_err_set(e, KH_E_INVALID_ARGUMENT, "revocation list has an empty entry");
		memcpy(item, s + pos, len);
		item[len] = '\0';
		pos += len;
		pos += strspn(s + pos, " \t");
		need = s[pos] == ',';
		if (need)
			pos++;
		for (i = 0; i < 3; i++)
			if (strcasecmp(item, known[i]) == 0)
				break;
		if (i == 3)
			return kh_err_set(e, KH_E_INVALID_ARGUMENT, "revocation method '%.*s' is unknown; use crl, ocsp or none",
					  KH_UTF8_PREC(item, 32));
		if (seen[2])
			return kh_err_set(e, KH_E_INVALID_ARGUMENT,
					  "revocation 'none' must come last: after crl and ocsp it accepts a certificate "
					  "nothing answers for (crl,ocsp,none)");
		if (!seen[i])
			order[n++] = i;
		seen[i] = true;
	}
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		if (out[0] != '\0' && !kh_strlcpy(out + strlen(out), ",", outsz - strlen(out)))
			return kh_err_set(e, KH_E_INTERNAL, "revocation list buffer");
		if (!kh_strlcpy(out + strlen(out), known[order[i]], outsz - strlen(out)))
			return kh_err_set(e, KH_E_INTERNAL, "revocation list buffer");
	}
	return KH_OK;
}

/* ---- digests ---- */

enum kh_err pki_sig_digest(enum kh_key_type t, enum kh_digest req, enum kh_digest *out, struct kh_errbuf *e)
{
	switch (req) {
	case KH_DIGEST_SHA1:
	case KH_DIGEST_MD5:
		return kh_err_set(e, KH_E_INVALID_ARGUMENT,
				  "digest %s is refused for signatures: SHA-1 and MD5 are not collision resistant "
				  "(RFC 9155, NIST SP 800-131A); use sha256, sha384 or sha512",
				  kh_digest_name(req));
	case KH_DIGEST_SHA224:
		return kh_err_set(e, KH_E_INVALID_ARGUMENT, "digest sha224 is not offered for certificates; use sha256, sha384 or sha512");
	default:
		break;
	}
	if (t == KH_KEY_ED25519) {
		if (req != KH_DIGEST_DEFAULT)
			return kh_err_set(e, KH_E_INVALID_ARGUMENT,
					  "Ed25519 signs the certificate itself (RFC 8410 §6: PureEdDSA); do not choose a digest");
		*out = KH_DIGEST_DEFAULT;
		return KH_OK;
	}
	*out = req == KH_DIGEST_DEFAULT ? KH_DIGEST_SHA256 : req;
	return KH_OK;
}

/* ---- the template ---- */

enum kh_err pki_subject_parse(const char *dn, const char *san, const char *fqdn, const char *eku,
			      struct pki_subject *out, struct kh_errbuf *e)
{
	struct pki_subject s = { NULL, NULL, NULL };
	int r = KH_OK;

	KH_TRY(pki_dn_parse(dn, &s.name, e));
	KH_TRY(pki_san_parse(san, fqdn, &s.san, e));
	KH_TRY(pki_eku_parse(eku, &s.eku, e));
	*out = s;
	memset(&s, 0, sizeof(s));
out:
	pki_subject_clear(&s);
	return r;
}

void pki_subject_clear(struct pki_subject *s)
{
	if (s == NULL)
		return;
	X509_NAME_free(s->name);
	GENERAL_NAMES_free(s->san);
	sk_ASN1_OBJECT_pop_free(s->eku, ASN1_OBJECT_free);
	memset(s, 0, sizeof(s[0]));
}
