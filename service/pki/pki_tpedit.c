/* pki_tpedit.c: helpers of trustpoint editing (issue 16): --ip-san, the
 * CN that is an IP address also written as an iPAddress SAN (RFC 5280
 * §4.2.1.6; RFC 6125 §6.2.1 verifiers match IPs only against SANs). */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include <openssl/x509.h>

#include "kh_util.h"
#include "pki/pki.h"

enum kh_err pki_cn_ip_san(const char *dn, char *san, size_t sansz, struct kh_errbuf *e)
{
	X509_NAME *n = NULL;
	const ASN1_STRING *v;
	unsigned char addr[16];
	char cn[KH_IP_MAX + 1], item[KH_IP_MAX + 8];
	int i = -1, last = -1, len, r = KH_OK;
	size_t have;

	KH_TRY(pki_dn_parse(dn, &n, e));
	while ((i = X509_NAME_get_index_by_NID(n, NID_commonName, i)) >= 0)
		last = i;
	KH_ENSURE(last >= 0, kh_err_set(e, KH_E_INVALID_ARGUMENT, "--ip-san: the subject has no CN"));
	v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, last));
	len = ASN1_STRING_length(v);
	KH_ENSURE(len > 0 && len <= KH_IP_MAX,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "--ip-san: the CN is not an IP address"));
	memcpy(cn, ASN1_STRING_get0_data(v), (size_t)len);
	cn[len] = '\0';
	KH_ENSURE(inet_pton(AF_INET, cn, addr) == 1 || inet_pton(AF_INET6, cn, addr) == 1,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "--ip-san: the CN '%s' is not an IPv4 or IPv6 address", cn));
	snprintf(item, sizeof(item), "IP:%s", cn);
	if (strcasestr(san, item) != NULL)
		goto out;
	have = strlen(san);
	KH_ENSURE(have + 1 + strlen(item) < sansz && have + 1 + strlen(item) <= KH_SAN_MAX,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "--ip-san: the SAN list would be longer than %d characters",
			     KH_SAN_MAX));
	snprintf(san + have, sansz - have, "%s%s", have > 0 ? "," : "", item);
out:
	X509_NAME_free(n);
	return r;
}
