/* h_acme.c: AcmeAccount, the ACME account of a trustpoint: key rollover
 * (RFC 8555 §7.3.5), deactivation (§7.3.6) and the external account
 * binding for the next registration (§7.3.4), done by pki/acme.c on this
 * worker; the answer is the trustpoint as it is afterwards. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "kh_log.h"
#include "pki/acme.h"
#include "pki/pki_state.h"
#include "rpc/rpc.h"

enum kh_err svc_h_acme_account(struct rpc_call *c, struct kh_errbuf *e)
{
	const Keyhold__V1__AcmeAccountRequest *q = (const void *)c->req;
	Keyhold__V1__AcmeAccountResponse *m = rpc_msg(c, &keyhold__v1__acme_account_response__descriptor);
	char detail[KH_NAME_MAX * 2 + ACME_URL_MAX + 300] = "";
	int r = KH_OK;

	KH_ENSURE(m != NULL, KH_E_RESOURCE_EXHAUSTED);
	if (q->action == KEYHOLD__V1__ACME_ACCOUNT_ACTION__ACME_ACCOUNT_SET_EAB) {
		KH_TRY(svc_acme_set_eab(c->s, q->name, q->eab_kid, q->eab_hmac_key.data, q->eab_hmac_key.len, e));
		snprintf(detail, sizeof(detail), "external account binding kid %.256s set for the next registration",
			 q->eab_kid);
	} else {
		KH_TRY(svc_acme_account(c->s, q->name,
					q->action == KEYHOLD__V1__ACME_ACCOUNT_ACTION__ACME_ACCOUNT_KEY_ROLLOVER
						? SVC_ACME_KEY_ROLLOVER
						: SVC_ACME_DEACTIVATE,
					detail, sizeof(detail), e));
	}
	m->detail = rpc_strdup(c, detail);
	pthread_mutex_lock(&c->s->pki->lock);
	r = rpc_trustpoint(c, q->name, &m->trustpoint, e);
	pthread_mutex_unlock(&c->s->pki->lock);
	if (r != KH_OK)
		goto out;
	KH_ENSURE(!c->oom, KH_E_RESOURCE_EXHAUSTED);
	c->resp = &m->base;
out:
	return r;
}
