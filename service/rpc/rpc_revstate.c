/* rpc_revstate.c: what the revocation scheduler (revocation/rev_sched.c)
 * found last, in the answers of ListTrustpoints/GetTrustpoint (the worst
 * state of the identity certificate and its chain) and ListExpiring (each
 * certificate's own). */
#include <stdlib.h>
#include <string.h>

#include "kh_util.h"
#include "pki/pki.h"
#include "pki/pki_state.h"
#include "revocation/revocation.h"
#include "rpc/rpc.h"

enum kh_err rpc_tp_revocation_state(struct rpc_call *c, const struct store_tp *t, Keyhold__V1__Trustpoint *m,
				    struct kh_errbuf *e)
{
	struct store_revstate *v = NULL;
	const struct store_revstate *w;
	char (*fp)[KH_FP_HEX + 1] = NULL;
	const char **fps = NULL;
	size_t n = 0, nfp = 0, i;
	int r = KH_OK;

	if (t->cert.len == 0)
		return KH_OK;
	fp = calloc(t->n_chain + 1, sizeof(*fp));
	fps = calloc(t->n_chain + 1, sizeof(*fps));
	KH_ENSURE(fp != NULL && fps != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i <= t->n_chain; i++) {
		const struct kh_bytes *d = i == 0 ? &t->cert : &t->chain[i - 1];
		X509 *x = pki_x509_from_der(d->data, d->len);

		if (x == NULL)
			continue;
		pki_fingerprint(x, fp[nfp]);
		fps[nfp] = fp[nfp];
		nfp++;
		X509_free(x);
	}
	KH_TRY(svc_rev_states_locked(c->s, &v, &n, e));
	w = svc_rev_state_worst(v, n, fps, nfp);
	if (w != NULL) {
		m->revocation_state = rpc_strdup(c, w->status);
		m->revocation_detail = rpc_strdup(c, w->detail);
		m->revocation_checked = w->checked;
		m->revocation_changed = w->changed;
		KH_ENSURE(!c->oom, KH_E_RESOURCE_EXHAUSTED);
	}
out:
	free(v);
	free(fp);
	free(fps);
	return r;
}

enum kh_err rpc_rev_states(struct rpc_call *c, struct store_revstate **out, size_t *n, struct kh_errbuf *e)
{
	int r;

	pthread_mutex_lock(&c->s->pki->lock);
	r = svc_rev_states_locked(c->s, out, n, e);
	pthread_mutex_unlock(&c->s->pki->lock);
	return r;
}
