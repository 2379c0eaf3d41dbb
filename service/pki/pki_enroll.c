/* pki_enroll.c: enrollment and key rollover of a trustpoint (DESIGN §5,
 * §7), for the RPCs and the expiry monitor's renewal alike: a self-signed
 * certificate issued now or a CSR staged, a new key generated and the old
 * one retired, the identity certificate installed, each in the order
 * pki_state.c explains. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>

#include "kh_log.h"
#include "kh_util.h"
#include "fips/fips_policy.h"
#include "keys/key_life.h"
#include "pki/pki.h"
#include "pki/pki_state.h"
#include "core/svc_clock.h"


static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static void tp_lock(struct svc *s)
{
	pthread_mutex_lock(&s->pki->lock);
}

static void tp_unlock(struct svc *s)
{
	pthread_mutex_unlock(&s->pki->lock);
}

/* A signer for key with the digest the trustpoint or request asked for. */
enum kh_err svc_pki_signer(struct svc *s, const char *key, enum kh_digest want, struct pki_signer *sg,
			   struct kh_errbuf *e)
{
	enum kh_key_type type = KH_KEY_UNSPECIFIED;
	EVP_PKEY *pub = NULL;
	enum kh_digest d;
	int r = KH_OK;

	memset(sg, 0, sizeof(*sg));
	KH_TRY(hsm_key_meta(s->hsm, key, &type, &pub, e));
	KH_ENSURE(pub != NULL, kh_err_set(e, KH_E_FAILED_PRECONDITION, "key '%s' has no public key on the token", key));
	KH_ENSURE(type != KH_KEY_UNSPECIFIED,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "key '%s' is of a type keyhold cannot certify", key));
	KH_TRY(pki_sig_digest(type, want, &d, e));
	/* FIPS mode: the key and the digest must be approved (DESIGN §8). */
	KH_TRY(fips_policy_public_key(s->cfg, pub, e));
	KH_TRY(fips_policy_cert_digest(s->cfg, type, d, "CSR or certificate", e));
	KH_ENSURE(d == KH_DIGEST_DEFAULT || s->md[d] != NULL,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "digest %s is not available", kh_digest_name(d)));
	sg->hsm = s->hsm;
	sg->key = key;
	sg->type = type;
	sg->pub = pub;
	sg->digest = d;
	sg->md = d == KH_DIGEST_DEFAULT ? NULL : s->md[d];
	pub = NULL;
out:
	EVP_PKEY_free(pub);
	return r;
}

void svc_pki_signer_clear(struct pki_signer *sg)
{
	EVP_PKEY_free(sg->pub);
	memset(sg, 0, sizeof(*sg));
}

int64_t svc_pki_renew_after(int64_t not_before, int64_t not_after, uint32_t renew_at)
{
	if (renew_at == 0 || renew_at > 99 || not_after <= not_before)
		return 0;
	/* Cisco's auto-enroll PERCENT: that share of the lifetime elapsed. */
	return not_before + (not_after - not_before) * (int64_t)renew_at / 100;
}

static enum kh_err tp_subject(const struct store_tp *t, struct pki_subject *sub, struct kh_errbuf *e)
{
	return pki_subject_parse(t->subject, t->san, t->fqdn, t->eku, sub, e);
}

/* The token must hand back the key it was asked for. A module that
 * answers C_GenerateKeyPair with the handles of another object (seen with
 * tpm2-pkcs11 1.9 after the lowest-numbered objects were destroyed) must
 * not get a trustpoint bound to someone else's key; the new key stays
 * recorded and shows up as orphaned. */
enum kh_err svc_pki_check_new_key(const char *want, const struct kh_key_info *got, struct kh_errbuf *e)
{
	if (strcmp(got->name, want) == 0)
		return KH_OK;
	log_err("asked the token for key '%s', it answered with key '%s'", want, got->name);
	return kh_err_set(e, KH_E_INTERNAL,
			  "the token answered the generation of key '%s' with another object ('%s'); restart keyholdd and "
			  "check `keyhold status` for orphaned keys",
			  want, got->name);
}

/* ---- installing an identity certificate ---- */

/* Makes leaf (issued for key) t's identity certificate with chain (issuer
 * first; may be NULL). When key is the rollover key, the trustpoint moves
 * to it and *old_key names the key it leaves. A pending CSR for key is
 * fulfilled and dropped. */
enum kh_err svc_pki_set_identity(struct store_tp *t, X509 *leaf, STACK_OF(X509) *chain, const char *key,
				 char old_key[KH_NAME_MAX + 1])
{
	struct kh_bytes cert = { NULL, 0 }, *ch = NULL;
	size_t n = (size_t)(chain != NULL ? sk_X509_num(chain) : 0), i, made = 0;
	int r = KH_OK;

	old_key[0] = '\0';
	KH_TRY(pki_x509_der(leaf, &cert.data, &cert.len));
	ch = calloc(n ? n : 1, sizeof(*ch));
	KH_ENSURE(ch != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < n; i++, made++)
		KH_TRY(pki_x509_der(sk_X509_value(chain, (int)i), &ch[i].data, &ch[i].len));
	kh_bytes_clear(&t->cert);
	for (i = 0; i < t->n_chain; i++)
		kh_bytes_clear(&t->chain[i]);
	free(t->chain);
	t->cert = cert;
	t->cert_not_after = pki_time(X509_get0_notAfter(leaf));
	t->chain = ch;
	t->n_chain = n;
	cert.data = NULL;
	ch = NULL;
	made = 0;
	if (strcmp(key, t->key) != 0) {
		kh_strlcpy(old_key, t->key, KH_NAME_MAX + 1);
		kh_strlcpy(t->key, key, sizeof(t->key));
		if (strcmp(t->next_key, key) == 0)
			t->next_key[0] = '\0';
	}
	if (t->csr.len > 0 && strcmp(t->csr_key, key) == 0) {
		kh_bytes_clear(&t->csr);
		t->csr_key[0] = '\0';
		t->csr_created = 0;
	}
	t->updated = now_s();
out:
	kh_bytes_clear(&cert);
	for (i = 0; i < made; i++)
		kh_bytes_clear(&ch[i]);
	free(ch);
	return r;
}

/* Writes t in one transaction and, in the same transaction, retires the
 * candidate keys that nothing references any more. */
enum kh_err svc_pki_commit(struct svc *s, const struct store_tp *t, const char *const *cand, size_t n_cand,
			   char retired[][KH_NAME_MAX + 1], size_t *n_retired, struct kh_errbuf *e)
{
	size_t i;
	int r = KH_OK;

	KH_TRY(store_begin(s->pki->store, e));
	r = store_tp_update(s->pki->store, t, e);
	for (i = 0; r == KH_OK && i < n_cand; i++)
		r = svc_pki_retire_if_unused(s, t->name, cand[i], retired, n_retired, e);
	if (r != KH_OK) {
		store_rollback(s->pki->store);
		*n_retired = 0;
		goto out;
	}
	r = store_commit(s->pki->store, e);
	if (r != KH_OK)
		*n_retired = 0;
out:
	return r;
}

/* ---- Enroll ---- */

void svc_pki_enrolled_clear(struct svc_pki_enrolled *o)
{
	if (o == NULL)
		return;
	free(o->csr_pem);
	memset(o, 0, sizeof(*o));
}

enum kh_err svc_pki_enroll(struct svc *s, const char *name, struct svc_pki_enrolled *o, struct kh_errbuf *e)
{
	char retired[SVC_PKI_RETIRED_MAX][KH_NAME_MAX + 1], old_key[KH_NAME_MAX + 1];
	struct pki_subject sub = { NULL, NULL, NULL };
	struct pki_signer sg;
	struct store_tp t;
	const char *cand[1];
	char key[KH_NAME_MAX + 1];
	X509 *cert = NULL;
	X509_REQ *csr = NULL;
	size_t n_retired = 0;
	int r = KH_OK;

	memset(o, 0, sizeof(*o));
	memset(&t, 0, sizeof(t));
	memset(&sg, 0, sizeof(sg));
	tp_lock(s);
	KH_TRY(store_tp_get(s->pki->store, name, &t, e));
	/* During a rollover the new key is the one to enroll. */
	kh_strlcpy(key, t.next_key[0] != '\0' ? t.next_key : t.key, sizeof(key));
	KH_TRY(tp_subject(&t, &sub, e));
	KH_TRY(svc_pki_signer(s, key, t.digest, &sg, e));
	o->enrollment = t.enrollment;
	kh_strlcpy(o->key, key, sizeof(o->key));
	if (t.enrollment == KH_ENROLL_SELF) {
		KH_TRY(pki_selfsigned_build_at(&sg, &sub, t.validity_days ? t.validity_days : SVC_PKI_DEFAULT_DAYS, svc_now(),
					       &cert, e));
		KH_TRY(svc_pki_set_identity(&t, cert, NULL, key, old_key));
		cand[0] = old_key;
		svc_pki_crash_point(s, "enroll.before_commit");
		KH_TRY(svc_pki_commit(s, &t, cand, 1, retired, &n_retired, e));
		svc_pki_crash_point(s, "enroll.after_commit");
		svc_pki_destroy_retired(s, retired, n_retired);
		pki_cert_info(cert, &o->cert);
		o->has_cert = true;
		if (n_retired > 0)
			kh_strlcpy(o->retired_key, retired[0], sizeof(o->retired_key));
		log_info("trustpoint '%s': self-signed certificate issued (serial %s)", t.name, o->cert.serial);
	} else {
		KH_TRY(pki_csr_build(&sg, &sub, NULL, &csr, e));
		KH_TRY(pki_csr_der(csr, &t.csr, e));
		kh_strlcpy(t.csr_key, key, sizeof(t.csr_key));
		t.csr_created = t.updated = now_s();
		/* One pending CSR per trustpoint: this one replaces any other. */
		svc_pki_crash_point(s, "enroll.before_commit");
		KH_TRY(svc_pki_commit(s, &t, NULL, 0, retired, &n_retired, e));
		KH_TRY(pki_csr_pem(csr, &o->csr_pem, e));
		log_info("trustpoint '%s': CSR for key '%s' pending", t.name, key);
	}
out:
	tp_unlock(s);
	X509_free(cert);
	X509_REQ_free(csr);
	svc_pki_signer_clear(&sg);
	pki_subject_clear(&sub);
	store_tp_clear(&t);
	return r;
}

/* ---- Regenerate (key rollover) ---- */

/* "TP.N": the next free name for a regenerated key. */
static enum kh_err tp_new_key_name(struct svc *s, const struct store_tp *t, char out[KH_NAME_MAX + 1],
				   uint32_t *serial, struct kh_errbuf *e)
{
	uint32_t n;
	int r = KH_OK;

	for (n = t->key_serial + 1; n < t->key_serial + 1000; n++) {
		struct kh_key_info ki;
		struct store_mkey mk;
		struct kh_errbuf ke = { 0 };
		char suffix[16], user[KH_NAME_MAX + 1];
		size_t base;
		bool found = false;
		int kr;

		snprintf(suffix, sizeof(suffix), ".%u", n);
		base = strlen(t->name);
		if (base > KH_NAME_MAX - strlen(suffix))
			base = KH_NAME_MAX - strlen(suffix);
		memcpy(out, t->name, base);
		kh_strlcpy(out + base, suffix, KH_NAME_MAX + 1 - base);
		memset(&ki, 0, sizeof(ki));
		kr = hsm_key_get(s->hsm, out, &ki, &ke);
		kh_key_info_clear(&ki);
		if (kr == KH_OK)
			continue;
		KH_ENSURE(kr == KH_E_NOT_FOUND, kh_err_set(e, kr, "%s", ke.msg));
		KH_TRY(store_mkey_get(s->pki->store, out, &mk, &found, e));
		KH_TRY(store_tp_key_user(s->pki->store, out, user, e));
		if (!found && user[0] == '\0') {
			*serial = n;
			goto out;
		}
	}
	r = kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "no free key name for trustpoint '%s'", t->name);
out:
	return r;
}

enum kh_err svc_pki_regenerate(struct svc *s, const char *name, enum kh_key_type want, struct svc_pki_enrolled *o,
			       struct kh_errbuf *e)
{
	char retired[SVC_PKI_RETIRED_MAX][KH_NAME_MAX + 1], old_key[KH_NAME_MAX + 1], newkey[KH_NAME_MAX + 1];
	char prev_next[KH_NAME_MAX + 1];
	struct pki_subject sub = { NULL, NULL, NULL };
	struct pki_signer sg;
	struct store_tp t;
	struct kh_key_info ki;
	struct kh_errbuf ign = { 0 };
	enum kh_key_type type = want;
	const char *cand[2];
	EVP_PKEY *pub = NULL;
	X509 *cert = NULL;
	X509_REQ *csr = NULL;
	size_t n_retired = 0;
	uint32_t serial = 0;
	bool generated = false;
	int r = KH_OK;

	memset(o, 0, sizeof(*o));
	memset(&t, 0, sizeof(t));
	memset(&sg, 0, sizeof(sg));
	memset(&ki, 0, sizeof(ki));
	tp_lock(s);
	KH_TRY(store_tp_get(s->pki->store, name, &t, e));
	if (type == KH_KEY_UNSPECIFIED) {
		r = hsm_key_meta(s->hsm, t.key, &type, &pub, &ign);
		kh_err_clear(&ign);
		KH_ENSURE(r == KH_OK && type != KH_KEY_UNSPECIFIED,
			  kh_err_set(e, KH_E_FAILED_PRECONDITION,
				     "the type of trustpoint '%s''s key '%s' is unknown; name one with --type", name, t.key));
	}
	KH_ENSURE(t.enrollment != KH_ENROLL_URL || type == KH_KEY_RSA2048 || type == KH_KEY_RSA3072 ||
			  type == KH_KEY_RSA4096,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT, "trustpoint '%s' enrolls by SCEP, which needs an RSA key", name));
	KH_TRY(hsm_key_type_supported(s->hsm, type, e));
	KH_TRY(tp_subject(&t, &sub, e));
	{
		enum kh_digest d;

		KH_TRY(pki_sig_digest(type, t.digest, &d, e));
	}
	KH_TRY(tp_new_key_name(s, &t, newkey, &serial, e));
	/* Intent, then the key (see svc_pki.c). */
	KH_TRY(store_mkey_add(s->pki->store, newkey, t.name, e));
	svc_pki_crash_point(s, "regenerate.after_intent");
	/* SCEP (url): the new key decrypts its CertRep, as the first did;
	 * its CSR is staged as for terminal and sent by RenewalReq. */
	r = svc_key_generate_ex(s, newkey, type, t.enrollment == KH_ENROLL_URL, &ki, e);
	if (r != KH_OK) {
		kh_ignore(store_mkey_remove(s->pki->store, newkey, &ign));
		goto out;
	}
	KH_TRY(svc_pki_check_new_key(newkey, &ki, e));
	generated = true;
	svc_pki_crash_point(s, "regenerate.after_keygen");
	KH_TRY(svc_pki_signer(s, newkey, t.digest, &sg, e));
	kh_strlcpy(prev_next, t.next_key, sizeof(prev_next));
	t.key_serial = serial;
	o->enrollment = t.enrollment;
	kh_strlcpy(o->key, newkey, sizeof(o->key));
	if (t.enrollment == KH_ENROLL_SELF) {
		/* The new certificate is at hand: the rollover completes now. */
		KH_TRY(pki_selfsigned_build_at(&sg, &sub, t.validity_days ? t.validity_days : SVC_PKI_DEFAULT_DAYS, svc_now(),
					       &cert, e));
		KH_TRY(svc_pki_set_identity(&t, cert, NULL, newkey, old_key));
		t.next_key[0] = '\0';
		if (t.csr.len > 0) {
			kh_bytes_clear(&t.csr);
			t.csr_key[0] = '\0';
			t.csr_created = 0;
		}
		cand[0] = old_key;
		cand[1] = prev_next;
		svc_pki_crash_point(s, "regenerate.before_commit");
		KH_TRY(svc_pki_commit(s, &t, cand, 2, retired, &n_retired, e));
		generated = false;
		svc_pki_crash_point(s, "regenerate.after_commit");
		svc_pki_destroy_retired(s, retired, n_retired);
		pki_cert_info(cert, &o->cert);
		o->has_cert = true;
		if (n_retired > 0)
			kh_strlcpy(o->retired_key, retired[0], sizeof(o->retired_key));
		log_info("trustpoint '%s': key rolled over from '%s' to '%s' (self-signed)", t.name, old_key, newkey);
	} else {
		/* Terminal: the old key and certificate stay in use until the
		 * new certificate is imported. */
		KH_TRY(pki_csr_build(&sg, &sub, NULL, &csr, e));
		KH_TRY(pki_csr_der(csr, &t.csr, e));
		kh_strlcpy(t.csr_key, newkey, sizeof(t.csr_key));
		kh_strlcpy(t.next_key, newkey, sizeof(t.next_key));
		t.csr_created = t.updated = now_s();
		cand[0] = prev_next; /* an earlier, abandoned rollover key */
		svc_pki_crash_point(s, "regenerate.before_commit");
		KH_TRY(svc_pki_commit(s, &t, cand, 1, retired, &n_retired, e));
		generated = false;
		svc_pki_crash_point(s, "regenerate.after_commit");
		svc_pki_destroy_retired(s, retired, n_retired);
		KH_TRY(pki_csr_pem(csr, &o->csr_pem, e));
		if (n_retired > 0)
			kh_strlcpy(o->retired_key, retired[0], sizeof(o->retired_key));
		log_info("trustpoint '%s': new key '%s' awaits its certificate; '%s' stays in use", t.name, newkey, t.key);
	}
out:
	if (generated) {
		if (svc_key_destroy(s, newkey, &ign) == KH_OK)
			kh_ignore(store_mkey_remove(s->pki->store, newkey, &ign));
		else
			log_err("new key '%s' of trustpoint '%s' could not be deleted: %s", newkey, name, ign.msg);
	}
	tp_unlock(s);
	EVP_PKEY_free(pub);
	X509_free(cert);
	X509_REQ_free(csr);
	kh_key_info_clear(&ki);
	svc_pki_signer_clear(&sg);
	pki_subject_clear(&sub);
	store_tp_clear(&t);
	return r;
}
