/* h_status.c: GetStatus and GetCapabilities. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/provider.h>

#include "kh_log.h"
#include "kh_util.h"
#include "fips/fips.h"
#include "daemon/svc.h"
#include "pki/pki_state.h"

static int svc_provider_name_cb(OSSL_PROVIDER *prov, void *arg)
{
	char *out = arg;
	size_t off = strlen(out);

	snprintf(out + off, 128 - off, "%s%s", off ? "," : "", OSSL_PROVIDER_get0_name(prov));
	return 1;
}

/* The keys who may see (docs/SECURITY.md): all for admins and auditors,
 * the granted ones for a signer. */
static uint32_t svc_status_visible_keys(struct svc *s, const struct svc_principal *who, const struct kh_key_list *keys)
{
	uint32_t n = 0;
	size_t i;

	for (i = 0; i < keys->n; i++)
		if (access_key_view(s->grants, who, keys->keys[i].name) != ACCESS_VIEW_NONE)
			n++;
	return n;
}

enum kh_err svc_h_get_status(struct svc *s, const struct svc_principal *who, union proto_req_body *req,
			     union proto_resp_body *resp, struct kh_errbuf *e)
{
	struct kh_status *st = &resp->status;
	struct kh_key_list keys = { 0 };
	struct kh_errbuf ignore = { 0 };
	int r;

	(void)req;
	kh_strlcpy(st->version, KEYHOLD_VERSION, sizeof(st->version));
	kh_strlcpy(st->state, svc_state_name((enum svc_state)atomic_load(&s->state)), sizeof(st->state));
	kh_strlcpy(st->fips_mode, svc_fips_mode_name(s->cfg->fips_mode), sizeof(st->fips_mode));
	kh_strlcpy(st->openssl_version, OpenSSL_version(OPENSSL_VERSION), sizeof(st->openssl_version));
	st->providers[0] = '\0';
	OSSL_PROVIDER_do_all(s->libctx, svc_provider_name_cb, st->providers);
	hsm_token_info(s->hsm, &st->token);
	st->workers = s->workers;
	st->uptime_s = (kh_now_mono_us() - s->start_us) / 1000000u;
	if (hsm_key_list(s->hsm, &keys, &ignore) == KH_OK)
		st->keys = svc_status_visible_keys(s, who, &keys);
	/* FIPS: module_validated, self-tests, conditional counts, keys made
	 * outside FIPS mode. */
	r = selftest_status(s, &keys, st);
	kh_key_list_clear(&keys);
	st->connections = atomic_load(&s->connections);
	st->requests = atomic_load(&s->requests);
	if (r != KH_OK)
		return kh_err_set(e, r, "cannot assemble the status");
	/* Keys keyhold generated for trustpoints that nothing uses now. */
	kh_err_clear(&ignore);
	if (svc_pki_orphans(s, &st->orphaned_keys, &st->n_orphaned, &ignore) != KH_OK)
		log_warn("cannot list orphaned keys: %s", ignore.msg);
	/* A signer learns nothing of keys it has no grant for. */
	st->n_nonfips = access_filter_key_names(s->grants, who, st->nonfips_keys, st->n_nonfips);
	st->n_orphaned = access_filter_key_names(s->grants, who, st->orphaned_keys, st->n_orphaned);
	return KH_OK;
}

enum kh_err svc_h_get_capabilities(struct svc *s, const struct svc_principal *who, union proto_req_body *req,
				   union proto_resp_body *resp, struct kh_errbuf *e)
{
	(void)who;
	(void)req;
	return hsm_capabilities(s->hsm, &resp->caps, e);
}
