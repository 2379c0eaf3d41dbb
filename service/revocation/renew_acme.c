/* renew_acme.c: automatic renewal of ACME trustpoints by the expiry
 * monitor (expiry.c): once the certificate crossed renew_at, a new order
 * through svc->enroll_auto (the very enroll and import of `trustpoint
 * enroll`, so rollover and crash safety are theirs), with a new key first
 * when renew-regenerate asks for one. A failure is remembered in the
 * trustpoint's ACME row and retried with a bounded back-off (5 minutes,
 * doubling, at most a day), at the first monitor pass after it. */
#include <stdio.h>
#include <string.h>

#include "kh_log.h"
#include "kh_util.h"
#include "pki/acme.h"
#include "pki/pki.h"
#include "pki/pki_state.h"
#include "revocation/revocation.h"

int64_t svc_renew_acme_backoff(uint32_t failures)
{
	int64_t d = SVC_RENEW_BACKOFF_MIN;
	uint32_t i;

	for (i = 1; i < failures && d < SVC_RENEW_BACKOFF_MAX; i++)
		d *= 2;
	return d < SVC_RENEW_BACKOFF_MAX ? d : SVC_RENEW_BACKOFF_MAX;
}

/* The state the renewal of tp starts from (PKI lock held by the caller). */
static enum kh_err renew_acme_read(struct svc *s, const char *tp, struct store_tp_acme *ac, struct store_tp *t,
				   struct kh_errbuf *e)
{
	int r = KH_OK;

	KH_TRY(store_tp_get(s->pki->store, tp, t, e));
	KH_TRY(store_tp_acme_get(s->pki->store, tp, ac, e));
out:
	return r;
}

void svc_renew_acme(struct svc *s, const char *tp, bool regenerate, int64_t now, struct svc_renew_acme *o)
{
	struct store_tp_acme ac;
	struct store_tp t;
	struct svc_pki_enrolled en;
	struct kh_errbuf e = { 0 }, ign = { 0 };
	X509 *x = NULL;
	int r;

	memset(o, 0, sizeof(*o));
	memset(&ac, 0, sizeof(ac));
	memset(&t, 0, sizeof(t));
	memset(&en, 0, sizeof(en));
	pthread_mutex_lock(&s->pki->lock);
	r = renew_acme_read(s, tp, &ac, &t, &e);
	pthread_mutex_unlock(&s->pki->lock);
	if (r != KH_OK)
		goto failed;
	x = t.cert.len > 0 ? pki_x509_from_der(t.cert.data, t.cert.len) : NULL;
	if (x != NULL) {
		pki_cert_info(x, &o->cert);
		o->has_cert = true;
	}
	o->failures = ac.renew_failures;
	if (ac.renew_next > now) {
		o->result = SVC_RENEW_WAIT;
		o->next = ac.renew_next;
		kh_strlcpy(o->error, ac.renew_error, sizeof(o->error));
		goto out;
	}
	if (s->enroll_auto == NULL) {
		r = kh_err_set(&e, KH_E_UNIMPLEMENTED, "no automatic enrollment in this process");
		goto failed;
	}
	/* A new key first (renew-regenerate), unless an earlier attempt made
	 * it already: the order enrolls the rollover key. */
	if (regenerate && t.next_key[0] == '\0') {
		r = svc_pki_regenerate(s, tp, KH_KEY_UNSPECIFIED, &en, &e);
		if (r != KH_OK)
			goto failed;
	}
	r = s->enroll_auto(s, tp, o->serial, sizeof(o->serial), &e);
	if (r != KH_OK)
		goto failed;
	o->result = SVC_RENEW_DONE;
	if (svc_acme_renewal_set(s, tp, 0, "", 0, &ign) != KH_OK)
		log_warn("trustpoint '%s': renewal state not cleared: %s", tp, ign.msg);
	goto out;
failed:
	o->result = SVC_RENEW_FAILED;
	o->failures++;
	o->next = now + svc_renew_acme_backoff(o->failures);
	kh_strlcpy(o->error, e.msg[0] != '\0' ? e.msg : kh_err_name(r), sizeof(o->error));
	if (svc_acme_renewal_set(s, tp, o->failures, o->error, o->next, &ign) != KH_OK)
		log_err("trustpoint '%s': renewal failure not recorded: %s", tp, ign.msg);
out:
	X509_free(x);
	svc_pki_enrolled_clear(&en);
	store_tp_clear(&t);
	store_tp_acme_clear(&ac);
}
