/* rpc_cert.c: CertInfo and CrlInfo messages from a parsed certificate's or
 * CRL's description (pki_cert_info, pki_crl_info), and ValidationSettings
 * from a trust store's settings, for the trust store, revocation and
 * expiry answers. The strings are copied into the call's
 * memory, so the description need not outlive the handler. */
#include "pki/pki.h"
#include "rpc/rpc.h"

Keyhold__V1__CertInfo *rpc_cert_info(struct rpc_call *c, const struct kh_cert_info *k)
{
	Keyhold__V1__CertInfo *m = rpc_msg(c, &keyhold__v1__cert_info__descriptor);

	if (m == NULL)
		return NULL;
	m->subject = rpc_strdup(c, k->subject);
	m->issuer = rpc_strdup(c, k->issuer);
	m->serial = rpc_strdup(c, k->serial);
	m->not_before = k->not_before;
	m->not_after = k->not_after;
	m->fingerprint = rpc_strdup(c, k->fingerprint);
	m->ca = k->ca;
	m->self_signed = k->self_signed;
	return c->oom ? NULL : m;
}

Keyhold__V1__CrlInfo *rpc_crl_info(struct rpc_call *c, const struct kh_crl_info *k)
{
	Keyhold__V1__CrlInfo *m = rpc_msg(c, &keyhold__v1__crl_info__descriptor);

	if (m == NULL)
		return NULL;
	m->issuer = rpc_strdup(c, k->issuer);
	m->this_update = k->this_update;
	m->next_update = k->next_update;
	m->revoked = k->revoked;
	m->number = rpc_strdup(c, k->number);
	m->number_decimal = rpc_strdup(c, k->number_dec);
	m->fingerprint = rpc_strdup(c, k->fingerprint);
	return c->oom ? NULL : m;
}

Keyhold__V1__ValidationSettings *rpc_validation(struct rpc_call *c, const struct kh_validation *v)
{
	Keyhold__V1__ValidationSettings *m = rpc_msg(c, &keyhold__v1__validation_settings__descriptor);
	size_t i;

	if (m == NULL)
		return NULL;
	m->policies = rpc_array(c, v->n_policies, sizeof(*m->policies));
	for (i = 0; m->policies != NULL && i < v->n_policies; i++)
		m->policies[m->n_policies++] = rpc_strdup(c, v->policies[i]);
	m->require_explicit_policy = v->require_explicit_policy;
	m->inhibit_policy_mapping = v->inhibit_policy_mapping;
	m->inhibit_any_policy = v->inhibit_any_policy;
	m->min_rsa_bits = v->min_rsa_bits;
	m->min_ec_bits = v->min_ec_bits;
	m->allow_sha1 = v->allow_sha1;
	return c->oom ? NULL : m;
}
