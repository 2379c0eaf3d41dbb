/* keys.c: token key pairs: generation with keyhold's template, lookup by
 * label through a cache of object handles, listing, deletion, session keys
 * for self-tests, and what the token can generate. */
#include <stdlib.h>
#include <string.h>

#include <openssl/obj_mac.h>

#include "hsm_int.h"
#include "kh_log.h"
#include "kh_util.h"

#define HSM_FIND_MAX 64

/* ---- key types ---- */

struct hsm_type_spec {
	enum kh_key_type type;
	CK_KEY_TYPE ck;
	CK_MECHANISM_TYPE gen, sign;
	uint32_t bits;
};

static const struct hsm_type_spec hsm_types[] = {
	{ KH_KEY_RSA2048, CKK_RSA, CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_RSA_PKCS, 2048 },
	{ KH_KEY_RSA3072, CKK_RSA, CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_RSA_PKCS, 3072 },
	{ KH_KEY_RSA4096, CKK_RSA, CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_RSA_PKCS, 4096 },
	{ KH_KEY_P256, CKK_EC, CKM_EC_KEY_PAIR_GEN, CKM_ECDSA, 256 },
	{ KH_KEY_P384, CKK_EC, CKM_EC_KEY_PAIR_GEN, CKM_ECDSA, 384 },
	{ KH_KEY_P521, CKK_EC, CKM_EC_KEY_PAIR_GEN, CKM_ECDSA, 521 },
	{ KH_KEY_ED25519, CKK_EC_EDWARDS, CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA, 256 },
	{ KH_KEY_RSA1024, CKK_RSA, CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_RSA_PKCS, 1024 },
	{ KH_KEY_SECP256K1, CKK_EC, CKM_EC_KEY_PAIR_GEN, CKM_ECDSA, 256 },
};

static const struct hsm_type_spec *hsm_type_spec(enum kh_key_type t)
{
	size_t i;

	for (i = 0; i < sizeof(hsm_types) / sizeof(hsm_types[0]); i++)
		if (hsm_types[i].type == t)
			return &hsm_types[i];
	return NULL;
}

enum kh_key_type hsm_key_type_of(CK_KEY_TYPE kt, uint32_t bits, int curve_nid)
{
	if (kt == CKK_RSA) {
		switch (bits) {
		case 1024: return KH_KEY_RSA1024;
		case 2048: return KH_KEY_RSA2048;
		case 3072: return KH_KEY_RSA3072;
		case 4096: return KH_KEY_RSA4096;
		default: return KH_KEY_UNSPECIFIED;
		}
	}
	if (kt == CKK_EC) {
		switch (curve_nid) {
		case NID_X9_62_prime256v1: return KH_KEY_P256;
		case NID_secp384r1: return KH_KEY_P384;
		case NID_secp521r1: return KH_KEY_P521;
		case NID_secp256k1: return KH_KEY_SECP256K1;
		default: return KH_KEY_UNSPECIFIED;
		}
	}
	if (kt == CKK_EC_EDWARDS && curve_nid == NID_ED25519)
		return KH_KEY_ED25519;
	return KH_KEY_UNSPECIFIED;
}

size_t hsm_sig_len_of(CK_KEY_TYPE kt, uint32_t bits)
{
	if (kt == CKK_RSA)
		return (bits + 7) / 8;
	if (kt == CKK_EC)
		return 2 * ((bits + 7) / 8);
	if (kt == CKK_EC_EDWARDS)
		return 64;
	return 0;
}

enum kh_err hsm_key_type_supported(struct hsm *h, enum kh_key_type t, struct kh_errbuf *e)
{
	const struct hsm_type_spec *sp = hsm_type_spec(t);
	const CK_MECHANISM_INFO *gi = NULL, *si = NULL;
	const char *tn = kh_key_type_name(t);
	char b1[24], b2[24];
	int r = KH_OK;

	KH_ENSURE(sp != NULL, kh_err_set(e, KH_E_INVALID_ARGUMENT, "unknown key type"));
	KH_ENSURE(hsm_has_mech(h, sp->gen, CKF_GENERATE_KEY_PAIR, &gi),
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "the token cannot generate %s keys: it does not offer %s", tn,
			     hsm_mech_name(sp->gen, b1, sizeof(b1))));
	KH_ENSURE(hsm_has_mech(h, sp->sign, CKF_SIGN, &si),
		  kh_err_set(e, KH_E_FAILED_PRECONDITION,
			     "the token cannot sign with %s keys: it does not offer %s with CKF_SIGN", tn,
			     hsm_mech_name(sp->sign, b2, sizeof(b2))));
	/* ulMin/MaxKeySize are bits for RSA and EC (PKCS#11 2.40 §2.1, §2.3).
	 * Some tokens leave them 0: treat 0 as "no information". */
	KH_ENSURE(gi->ulMaxKeySize == 0 || (sp->bits <= gi->ulMaxKeySize && sp->bits >= gi->ulMinKeySize) ||
			  sp->ck == CKK_EC_EDWARDS,
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "the token cannot generate %s keys: %s allows %lu to %lu bits",
			     tn, hsm_mech_name(sp->gen, b1, sizeof(b1)), (unsigned long)gi->ulMinKeySize,
			     (unsigned long)gi->ulMaxKeySize));
	/* A curve inside the advertised size range can still fail (probe.c). */
	KH_ENSURE(!(h->probe_bad & (1u << t)),
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "the token cannot use %s keys; usable EC curves: %s (%s)", tn,
			     h->probe_usable[0] ? h->probe_usable : "none", h->probe_why[t]));
out:
	return r;
}

enum kh_err hsm_capabilities(struct hsm *h, struct kh_capabilities *out, struct kh_errbuf *e)
{
	struct kh_capabilities c;
	size_t i;
	int t, r = KH_OK;

	memset(&c, 0, sizeof(c));
	for (t = 1; t <= KH_KEY_TYPE_MAX; t++) {
		struct kh_errbuf why = { 0 };
		struct kh_key_type_avail *a = &c.types[c.n_types++];

		a->type = (enum kh_key_type)t;
		a->available = hsm_key_type_supported(h, a->type, &why) == KH_OK;
		if (!a->available)
			kh_strlcpy(a->reason, why.msg, sizeof(a->reason));
	}
	c.mechs = calloc(h->n_mechs ? h->n_mechs : 1, sizeof(*c.mechs));
	KH_ENSURE(c.mechs != NULL, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory"));
	for (i = 0; i < h->n_mechs; i++) {
		struct kh_mechanism *m = &c.mechs[i];
		char buf[24];

		m->id = h->mechs[i];
		kh_strlcpy(m->name, hsm_mech_name(h->mechs[i], buf, sizeof(buf)), sizeof(m->name));
		m->min_key = (uint32_t)h->mech_info[i].ulMinKeySize;
		m->max_key = (uint32_t)h->mech_info[i].ulMaxKeySize;
		m->flags = h->mech_info[i].flags;
	}
	c.n_mechs = h->n_mechs;
	c.pss = hsm_has_mech(h, CKM_RSA_PKCS_PSS, CKF_SIGN, NULL);
	*out = c;
out:
	return r;
}

/* ---- object search ---- */

static CK_RV hsm_find(struct hsm *h, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
		      CK_OBJECT_HANDLE *found, CK_ULONG max, CK_ULONG *count)
{
	CK_RV rv, rv2;

	*count = 0;
	rv = h->f->C_FindObjectsInit(s, tmpl, n);
	if (rv != CKR_OK)
		return rv;
	rv = h->f->C_FindObjects(s, found, max, count);
	rv2 = h->f->C_FindObjectsFinal(s);
	return rv != CKR_OK ? rv : rv2;
}

static CK_RV hsm_attr_fixed(struct hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE t,
			    void *buf, CK_ULONG bufsz, CK_ULONG *len)
{
	CK_ATTRIBUTE a = { t, buf, bufsz };
	CK_RV rv = h->f->C_GetAttributeValue(s, o, &a, 1);

	if (rv == CKR_OK && a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
		rv = CKR_ATTRIBUTE_TYPE_INVALID;
	if (rv == CKR_OK && len != NULL)
		*len = a.ulValueLen;
	return rv;
}

/* ---- the cache ---- */

static void hsm_key_free(struct hsm_key *k)
{
	if (k == NULL)
		return;
	free(k->spki);
	EVP_PKEY_free(k->pkey);
	free(k);
}

void hsm_keys_reset(struct hsm *h)
{
	size_t i;

	pthread_rwlock_wrlock(&h->keys_lock);
	for (i = 0; i < h->n_keys; i++)
		hsm_key_free(h->keys[i]);
	h->n_keys = 0;
	pthread_rwlock_unlock(&h->keys_lock);
	hsm_keys_changed(h);
}

/* Caller holds keys_lock (any mode). */
static struct hsm_key *hsm_cache_find(struct hsm *h, const char *name)
{
	size_t i;

	for (i = 0; i < h->n_keys; i++)
		if (h->keys[i]->generation == h->generation && strcmp(h->keys[i]->name, name) == 0)
			return h->keys[i];
	return NULL;
}

/* Takes k; on a race the entry already there wins and k is freed. */
static void hsm_cache_insert(struct hsm *h, struct hsm_key *k)
{
	pthread_rwlock_wrlock(&h->keys_lock);
	if (hsm_cache_find(h, k->name) != NULL) {
		pthread_rwlock_unlock(&h->keys_lock);
		hsm_key_free(k);
		return;
	}
	if (h->n_keys == h->cap_keys) {
		size_t cap = h->cap_keys ? h->cap_keys * 2 : 16;
		struct hsm_key **nk = realloc(h->keys, cap * sizeof(*nk));

		if (nk == NULL) {
			pthread_rwlock_unlock(&h->keys_lock);
			hsm_key_free(k);
			return;
		}
		h->keys = nk;
		h->cap_keys = cap;
	}
	h->keys[h->n_keys++] = k;
	pthread_rwlock_unlock(&h->keys_lock);
}

void hsm_key_forget(struct hsm *h, const char *name)
{
	size_t i;

	pthread_rwlock_wrlock(&h->keys_lock);
	for (i = 0; i < h->n_keys; i++) {
		if (strcmp(h->keys[i]->name, name) == 0) {
			hsm_key_free(h->keys[i]);
			h->keys[i] = h->keys[--h->n_keys];
			break;
		}
	}
	pthread_rwlock_unlock(&h->keys_lock);
	hsm_keys_changed(h);
}

void hsm_keys_invalidate(struct hsm *h, const char *name)
{
	if (name == NULL)
		hsm_keys_reset(h);
	else
		hsm_key_forget(h, name);
}

/* Drops the entries of keys not in l (deleted through another process on
 * the same token: a cluster's other node). */
static void hsm_cache_prune(struct hsm *h, const struct kh_key_list *l)
{
	size_t i, j;

	pthread_rwlock_wrlock(&h->keys_lock);
	for (i = 0; i < h->n_keys;) {
		bool listed = false;

		for (j = 0; j < l->n && !listed; j++)
			listed = strcmp(l->keys[j].name, h->keys[i]->name) == 0;
		if (listed) {
			i++;
			continue;
		}
		log_info("key '%s' is no longer on the token (deleted elsewhere): forgotten", h->keys[i]->name);
		hsm_key_free(h->keys[i]);
		h->keys[i] = h->keys[--h->n_keys];
	}
	pthread_rwlock_unlock(&h->keys_lock);
}

/* True when the cached private key handle still names a private key
 * labelled name: a key deleted through another process gives
 * CKR_OBJECT_HANDLE_INVALID here, and a token that reuses handles a
 * different label. */
static bool hsm_key_still(struct hsm *h, CK_SESSION_HANDLE s, const struct hsm_key *k)
{
	char label[KH_NAME_MAX + 2];
	CK_ULONG len = 0;

	return hsm_attr_fixed(h, s, k->priv, CKA_LABEL, label, sizeof(label) - 1, &len) == CKR_OK &&
	       len == strlen(k->name) && memcmp(label, k->name, len) == 0;
}

/* Builds a cache entry for the private key object priv. */
static enum kh_err hsm_key_load(struct hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE priv,
				struct hsm_key **out, struct kh_errbuf *e)
{
	int r = KH_OK;
	struct hsm_key *k = NULL;
	CK_ULONG len = 0, n = 0;
	CK_OBJECT_CLASS pubclass = CKO_PUBLIC_KEY;
	CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE;
	CK_ATTRIBUTE tmpl[2];
	CK_RV rv;
	char label[KH_NAME_MAX + 2];
	int nid = 0;

	k = calloc(1, sizeof(*k));
	KH_ENSURE(k != NULL, KH_E_RESOURCE_EXHAUSTED);
	rv = hsm_attr_fixed(h, s, priv, CKA_LABEL, label, sizeof(label) - 1, &len);
	KH_ENSURE(rv == CKR_OK && len > 0 && len <= KH_NAME_MAX,
		  kh_err_set(e, KH_E_NOT_FOUND, "private key without a usable label"));
	label[len] = '\0';
	KH_ENSURE(kh_name_valid(label), kh_err_set(e, KH_E_NOT_FOUND, "label is not a keyhold name"));
	memcpy(k->name, label, len + 1);
	rv = hsm_attr_fixed(h, s, priv, CKA_KEY_TYPE, &k->ck_type, sizeof(k->ck_type), NULL);
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "reading CKA_KEY_TYPE", k->name));
	rv = hsm_attr_fixed(h, s, priv, CKA_ID, k->id, sizeof(k->id), &len);
	k->id_len = rv == CKR_OK ? len : 0;
	k->priv = priv;

	/* The public half shares CKA_ID (or, without one, the label). */
	tmpl[0] = (CK_ATTRIBUTE){ CKA_CLASS, &pubclass, sizeof(pubclass) };
	if (k->id_len > 0)
		tmpl[1] = (CK_ATTRIBUTE){ CKA_ID, k->id, k->id_len };
	else
		tmpl[1] = (CK_ATTRIBUTE){ CKA_LABEL, k->name, strlen(k->name) };
	rv = hsm_find(h, s, tmpl, 2, &pub, 1, &n);
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "searching the public key", k->name));
	k->pub = n == 1 ? pub : CK_INVALID_HANDLE;
	if (k->pub != CK_INVALID_HANDLE ||
	    k->ck_type == CKK_RSA) /* RSA private keys carry the modulus too */
		r = hsm_spki_read(h, s, k->pub != CK_INVALID_HANDLE ? k->pub : priv, k->ck_type, &k->spki,
				  &k->spki_len, &k->pkey, &k->bits, &nid, e);
	if (r != KH_OK) {
		log_warn("key '%s': no public key (%s)", k->name, e != NULL ? e->msg : "");
		kh_err_clear(e);
		r = KH_OK;
	}
	k->type = hsm_key_type_of(k->ck_type, k->bits, nid);
	k->sig_len = hsm_sig_len_of(k->ck_type, k->bits);
	k->generation = h->generation;
	h->had_keys = true;
	*out = k;
	k = NULL;
out:
	hsm_key_free(k);
	return r;
}

/* True when session s finds no private key object on the token. */
static bool hsm_token_has_no_keys(struct hsm *h, CK_SESSION_HANDLE s)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE tmpl[2] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_TOKEN, &yes, sizeof(yes) } };
	CK_OBJECT_HANDLE o;
	CK_ULONG n = 0;

	return hsm_find(h, s, tmpl, 2, &o, 1, &n) == CKR_OK && n == 0;
}

bool hsm_keys_vanished(struct hsm *h, CK_SESSION_HANDLE s)
{
	if (!h->had_keys || !h->available || !hsm_token_has_no_keys(h, s))
		return false;
	log_warn("the token shows none of the keys it held a moment ago: taking it for gone "
		 "(a removed token, or a token store that went away); re-attaching");
	hsm_mark_gone(h);
	return true;
}

void hsm_keys_rebuild(struct hsm *h)
{
	struct kh_key_list l = { 0 };
	struct kh_errbuf e = { 0 };

	if (hsm_key_list(h, &l, &e) == KH_OK)
		log_info("token keys after re-attaching: %zu", l.n);
	else
		log_warn("cannot list the token's keys after re-attaching: %s", e.msg);
	kh_key_list_clear(&l);
}

static CK_RV hsm_find_by_label(struct hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *name,
			       CK_OBJECT_HANDLE *found, CK_ULONG max, CK_ULONG *n)
{
	CK_ATTRIBUTE tmpl[2] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_LABEL, (void *)(uintptr_t)name, strlen(name) },
	};

	return hsm_find(h, s, tmpl, 2, found, max, n);
}

enum kh_err hsm_key_lookup(struct hsm *h, CK_SESSION_HANDLE s, const char *name, struct hsm_key *out,
			   struct kh_errbuf *e)
{
	int r = KH_OK;
	struct hsm_key *k;
	CK_OBJECT_HANDLE found[2];
	CK_ULONG n = 0;
	CK_RV rv;

	pthread_rwlock_rdlock(&h->keys_lock);
	k = hsm_cache_find(h, name);
	if (k != NULL) {
		*out = *k;
		out->spki = NULL;
		out->spki_len = 0;
		if (out->pkey != NULL)
			EVP_PKEY_up_ref(out->pkey);
	}
	pthread_rwlock_unlock(&h->keys_lock);
	if (k != NULL)
		goto out; /* a cache hit */

	rv = hsm_find_by_label(h, s, CKO_PRIVATE_KEY, name, found, 2, &n);
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "searching keys", name));
	/* Not found, or the token lost every key: the second is UNAVAILABLE. */
	KH_ENSURE(n > 0 || !hsm_keys_vanished(h, s),
		  kh_err_set(e, KH_E_UNAVAILABLE,
			     "the token went away (it shows none of its keys); keyhold re-attaches to it at most every %u s",
			     h->reinit_interval_s));
	KH_ENSURE(n > 0, kh_err_set(e, KH_E_NOT_FOUND, "no key named '%s'", name));
	if (n > 1)
		log_warn("more than one private key is labelled '%s'; using the first", name);
	KH_TRY(hsm_key_load(h, s, found[0], &k, e));
	*out = *k;
	out->spki = NULL;
	out->spki_len = 0;
	if (out->pkey != NULL)
		EVP_PKEY_up_ref(out->pkey);
	hsm_cache_insert(h, k);
	hsm_keys_changed(h); /* a key keyholdd did not know of a moment ago */
out:
	return r;
}

void hsm_key_copy_release(struct hsm_key *k)
{
	EVP_PKEY_free(k->pkey);
	k->pkey = NULL;
}

static enum kh_err hsm_info_from(const struct hsm_key *k, struct kh_key_info *out)
{
	struct kh_key_info info;
	int r = KH_OK;

	memset(&info, 0, sizeof(info));
	memcpy(info.name, k->name, sizeof(info.name));
	info.type = k->type;
	info.bits = k->bits;
	memcpy(info.id, k->id, k->id_len);
	info.id_len = k->id_len;
	if (k->spki_len > 0) {
		info.spki = malloc(k->spki_len);
		KH_ENSURE(info.spki != NULL, KH_E_RESOURCE_EXHAUSTED);
		memcpy(info.spki, k->spki, k->spki_len);
		info.spki_len = k->spki_len;
	}
	*out = info;
out:
	return r;
}

enum kh_err hsm_key_get(struct hsm *h, const char *name, struct kh_key_info *info, struct kh_errbuf *e)
{
	int r = KH_OK;
	struct hsm_sess s;
	struct hsm_key tmp;
	struct hsm_key *k;
	bool in_session = false;

	KH_TRY(hsm_begin(h, &s, e));
	in_session = true;
	KH_TRY(hsm_key_lookup(h, s.h, name, &tmp, e));
	/* Describing a key reads the token (one attribute) so that every
	 * node of a cluster says the same about a key another one deleted;
	 * signing trusts the cache and finds a stale handle again. */
	if (!hsm_key_still(h, s.h, &tmp)) {
		hsm_key_copy_release(&tmp);
		hsm_key_forget(h, name);
		KH_TRY(hsm_key_lookup(h, s.h, name, &tmp, e));
	}
	hsm_key_copy_release(&tmp);
	pthread_rwlock_rdlock(&h->keys_lock);
	k = hsm_cache_find(h, name);
	r = k != NULL ? hsm_info_from(k, info) : kh_err_set(e, KH_E_NOT_FOUND, "no key named '%s'", name);
	pthread_rwlock_unlock(&h->keys_lock);
out:
	if (in_session)
		hsm_end(h, &s, CKR_OK);
	return r;
}

enum kh_err hsm_key_meta(struct hsm *h, const char *name, enum kh_key_type *type, EVP_PKEY **pkey,
			 struct kh_errbuf *e)
{
	int r = KH_OK;
	struct hsm_key *k, tmp;
	struct hsm_sess s;

	pthread_rwlock_rdlock(&h->keys_lock);
	k = hsm_cache_find(h, name);
	if (k != NULL) {
		*type = k->type;
		*pkey = k->pkey;
		if (k->pkey != NULL)
			EVP_PKEY_up_ref(k->pkey);
	}
	pthread_rwlock_unlock(&h->keys_lock);
	if (k != NULL)
		goto out; /* a cache hit */
	KH_TRY(hsm_begin(h, &s, e));
	r = hsm_key_lookup(h, s.h, name, &tmp, e);
	hsm_end(h, &s, CKR_OK);
	if (r == KH_OK) {
		*type = tmp.type;
		*pkey = tmp.pkey; /* the lookup's up-ref becomes the caller's */
	}
out:
	return r;
}

/* ---- the last listing (hsm_key_list_recent) ---- */

void hsm_keys_changed(struct hsm *h)
{
	atomic_fetch_add(&h->keys_epoch, 1);
}

static enum kh_err hsm_list_copy(const struct kh_key_list *in, struct kh_key_list *out)
{
	struct kh_key_list l = { 0 };
	size_t i;

	l.keys = calloc(in->n ? in->n : 1, sizeof(*l.keys));
	if (l.keys == NULL)
		return KH_E_RESOURCE_EXHAUSTED;
	for (i = 0; i < in->n; i++) {
		l.keys[i] = in->keys[i];
		l.keys[i].spki = NULL;
		l.keys[i].spki_len = 0;
		if (in->keys[i].spki_len > 0) {
			l.keys[i].spki = malloc(in->keys[i].spki_len);
			if (l.keys[i].spki == NULL) {
				l.n = i;
				kh_key_list_clear(&l);
				return KH_E_RESOURCE_EXHAUSTED;
			}
			memcpy(l.keys[i].spki, in->keys[i].spki, in->keys[i].spki_len);
			l.keys[i].spki_len = in->keys[i].spki_len;
		}
	}
	l.n = in->n;
	*out = l;
	return KH_OK;
}

/* Keeps a copy of l, listed in epoch; a listing older than the one kept
 * (two at once) is not kept. Out of memory: nothing kept. */
static void hsm_snap_store(struct hsm *h, const struct kh_key_list *l, uint64_t epoch)
{
	struct kh_key_list copy = { 0 };

	if (hsm_list_copy(l, &copy) != KH_OK)
		return;
	pthread_mutex_lock(&h->snap_lock);
	if (!h->snap_have || epoch >= h->snap_epoch) {
		struct kh_key_list old = h->snap;

		h->snap = copy;
		copy = old;
		h->snap_have = true;
		h->snap_epoch = epoch;
		h->snap_us = kh_now_mono_us();
	}
	pthread_mutex_unlock(&h->snap_lock);
	kh_key_list_clear(&copy);
}

enum kh_err hsm_key_list_recent(struct hsm *h, uint64_t max_age_us, struct kh_key_list *out,
				struct kh_errbuf *e)
{
	int r = KH_E_NOT_FOUND;

	pthread_mutex_lock(&h->snap_lock);
	if (h->snap_have && h->snap_epoch == atomic_load(&h->keys_epoch) &&
	    kh_now_mono_us() - h->snap_us <= max_age_us)
		r = hsm_list_copy(&h->snap, out);
	pthread_mutex_unlock(&h->snap_lock);
	if (r == KH_E_NOT_FOUND)
		return hsm_key_list(h, out, e);
	if (r != KH_OK)
		return kh_err_set(e, r, "out of memory listing keys");
	return KH_OK;
}

uint64_t hsm_recent_age_us(struct hsm *h)
{
	uint64_t now = kh_now_mono_us(), age = UINT64_MAX;

	pthread_mutex_lock(&h->snap_lock);
	/* A re-attachment (a new generation) resets the keys: a new epoch. */
	if (h->snap_have && h->snap_epoch == atomic_load(&h->keys_epoch) && h->snap_tinfo_us != 0) {
		age = now - h->snap_us;
		if (now - h->snap_tinfo_us > age)
			age = now - h->snap_tinfo_us;
	}
	pthread_mutex_unlock(&h->snap_lock);
	return age;
}

static int hsm_info_cmp(const void *a, const void *b)
{
	return strcmp(((const struct kh_key_info *)a)->name, ((const struct kh_key_info *)b)->name);
}

enum kh_err hsm_key_list(struct hsm *h, struct kh_key_list *out, struct kh_errbuf *e)
{
	int r = KH_OK;
	struct hsm_sess s;
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE tmpl[2] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_TOKEN, &yes, sizeof(yes) } };
	CK_OBJECT_HANDLE *all = NULL;
	size_t n_all = 0, cap = 0, i;
	struct kh_key_list list = { 0 };
	bool in_session = false;
	CK_RV rv = CKR_OK;
	uint64_t epoch = atomic_load(&h->keys_epoch);

	KH_TRY(hsm_begin(h, &s, e));
	in_session = true;
	rv = h->f->C_FindObjectsInit(s.h, tmpl, 2);
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "C_FindObjectsInit", NULL));
	for (;;) {
		CK_ULONG got = 0;

		if (n_all + HSM_FIND_MAX > cap) {
			CK_OBJECT_HANDLE *na;

			cap = cap ? cap * 2 : 4 * HSM_FIND_MAX;
			na = realloc(all, cap * sizeof(*na));
			if (na == NULL) {
				kh_ignore((int)h->f->C_FindObjectsFinal(s.h));
				r = KH_E_RESOURCE_EXHAUSTED;
				goto out;
			}
			all = na;
		}
		rv = h->f->C_FindObjects(s.h, all + n_all, HSM_FIND_MAX, &got);
		if (rv != CKR_OK || got == 0)
			break;
		n_all += got;
	}
	kh_ignore((int)h->f->C_FindObjectsFinal(s.h));
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "C_FindObjects", NULL));
	KH_ENSURE(n_all > 0 || !hsm_keys_vanished(h, s.h),
		  kh_err_set(e, KH_E_UNAVAILABLE,
			     "the token went away (it shows none of its keys); keyhold re-attaches to it at most every %u s",
			     h->reinit_interval_s));

	list.keys = calloc(n_all ? n_all : 1, sizeof(*list.keys));
	KH_ENSURE(list.keys != NULL, KH_E_RESOURCE_EXHAUSTED);
	for (i = 0; i < n_all; i++) {
		struct hsm_key *k = NULL;
		struct kh_errbuf skip = { 0 };
		bool dup = false;
		size_t j;

		if (hsm_key_load(h, s.h, all[i], &k, &skip) != KH_OK)
			continue; /* unlabelled or foreign objects are not keyhold keys */
		for (j = 0; j < list.n; j++)
			dup = dup || strcmp(list.keys[j].name, k->name) == 0;
		if (dup) {
			log_warn("more than one private key is labelled '%s'", k->name);
			hsm_key_free(k);
			continue;
		}
		r = hsm_info_from(k, &list.keys[list.n]);
		if (r != KH_OK) {
			hsm_key_free(k);
			goto out;
		}
		list.n++;
		hsm_cache_insert(h, k);
	}
	qsort(list.keys, list.n, sizeof(*list.keys), hsm_info_cmp);
	hsm_cache_prune(h, &list);
	hsm_snap_store(h, &list, epoch);
	*out = list;
	memset(&list, 0, sizeof(list));
out:
	if (in_session)
		hsm_end(h, &s, rv);
	r = hsm_gone_err(h, r, rv, e);
	kh_key_list_clear(&list);
	free(all);
	return r;
}

/* ---- generation ---- */

static enum kh_err hsm_reserve(struct hsm *h, const char *name, struct kh_errbuf *e)
{
	unsigned i;
	int r = KH_OK;

	pthread_mutex_lock(&h->gen_lock);
	for (i = 0; i < h->n_pending; i++)
		if (strcmp(h->pending[i], name) == 0)
			r = kh_err_set(e, KH_E_ALREADY_EXISTS, "a key named '%s' is being generated", name);
	if (r == KH_OK && h->n_pending == HSM_PENDING_MAX)
		r = kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "too many key generations at once; retry later");
	if (r == KH_OK)
		kh_strlcpy(h->pending[h->n_pending++], name, sizeof(h->pending[0]));
	pthread_mutex_unlock(&h->gen_lock);
	return r;
}

static void hsm_unreserve(struct hsm *h, const char *name)
{
	unsigned i;

	pthread_mutex_lock(&h->gen_lock);
	for (i = 0; i < h->n_pending; i++) {
		if (strcmp(h->pending[i], name) == 0) {
			memcpy(h->pending[i], h->pending[--h->n_pending], sizeof(h->pending[0]));
			break;
		}
	}
	pthread_mutex_unlock(&h->gen_lock);
}

/* Generates a pair on session s. token: persistent (with label) or a
 * session pair. id is the pair's CKA_ID. */
static CK_RV hsm_generate_pair(struct hsm *h, CK_SESSION_HANDLE s, const struct hsm_type_spec *sp, bool decrypt,
			       const char *label, bool token, const uint8_t id[HSM_ID_LEN], CK_OBJECT_HANDLE *pub,
			       CK_OBJECT_HANDLE *priv)
{
	static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	static CK_BYTE e65537[] = { 0x01, 0x00, 0x01 };
	CK_MECHANISM mech = { sp->gen, NULL, 0 };
	CK_ULONG bits = sp->bits;
	CK_ATTRIBUTE pubt[10], privt[11];
	CK_ULONG np = 0, nk = 0;
	const uint8_t *params;
	size_t params_len;
	bool rsa_decrypt = sp->ck == CKK_RSA && (decrypt || (h->quirks & HSM_QUIRK_RSA_SIGN_NEEDS_DECRYPT));
	uint64_t t0;
	CK_RV rv;

	/* A token that keeps no session objects gets an unlabelled token pair
	 * that the caller destroys like a session pair. */
	if (!token && (h->quirks & HSM_QUIRK_TOKEN_OBJECTS_ONLY))
		token = true;
	pubt[np++] = (CK_ATTRIBUTE){ CKA_TOKEN, token ? &yes : &no, sizeof(CK_BBOOL) };
	if (!(h->quirks & HSM_QUIRK_PUB_USAGE_DERIVED)) {
		pubt[np++] = (CK_ATTRIBUTE){ CKA_VERIFY, &yes, sizeof(yes) };
		pubt[np++] = (CK_ATTRIBUTE){ CKA_ENCRYPT, &no, sizeof(no) };
	}
	pubt[np++] = (CK_ATTRIBUTE){ CKA_WRAP, &no, sizeof(no) };
	pubt[np++] = (CK_ATTRIBUTE){ CKA_ID, (void *)(uintptr_t)id, HSM_ID_LEN };
	if (label != NULL)
		pubt[np++] = (CK_ATTRIBUTE){ CKA_LABEL, (void *)(uintptr_t)label, strlen(label) };
	if (sp->ck == CKK_RSA) {
		pubt[np++] = (CK_ATTRIBUTE){ CKA_MODULUS_BITS, &bits, sizeof(bits) };
		pubt[np++] = (CK_ATTRIBUTE){ CKA_PUBLIC_EXPONENT, e65537, sizeof(e65537) };
	} else {
		params = hsm_ec_params(sp->type, &params_len);
		pubt[np++] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, (void *)(uintptr_t)params, params_len };
	}

	privt[nk++] = (CK_ATTRIBUTE){ CKA_TOKEN, token ? &yes : &no, sizeof(CK_BBOOL) };
	privt[nk++] = (CK_ATTRIBUTE){ CKA_PRIVATE, &yes, sizeof(yes) };
	privt[nk++] = (CK_ATTRIBUTE){ CKA_SENSITIVE, &yes, sizeof(yes) };
	privt[nk++] = (CK_ATTRIBUTE){ CKA_EXTRACTABLE, &no, sizeof(no) };
	privt[nk++] = (CK_ATTRIBUTE){ CKA_SIGN, &yes, sizeof(yes) };
	privt[nk++] = (CK_ATTRIBUTE){ CKA_DECRYPT, rsa_decrypt ? &yes : &no, sizeof(CK_BBOOL) };
	privt[nk++] = (CK_ATTRIBUTE){ CKA_UNWRAP, &no, sizeof(no) };
	privt[nk++] = (CK_ATTRIBUTE){ CKA_DERIVE, &no, sizeof(no) };
	privt[nk++] = (CK_ATTRIBUTE){ CKA_ID, (void *)(uintptr_t)id, HSM_ID_LEN };
	if (label != NULL)
		privt[nk++] = (CK_ATTRIBUTE){ CKA_LABEL, (void *)(uintptr_t)label, strlen(label) };

	t0 = kh_now_mono_us();
	rv = h->f->C_GenerateKeyPair(s, &mech, pubt, np, privt, nk, pub, priv);
	hsm_observe(h, "generate", mech.mechanism, t0, rv);
	return rv;
}

/* Is o the object with CKA_ID id? */
static bool hsm_obj_has_id(struct hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, const uint8_t id[HSM_ID_LEN])
{
	uint8_t got[HSM_ID_LEN + 1];
	CK_ULONG len = 0;

	return hsm_attr_fixed(h, s, o, CKA_ID, got, sizeof(got), &len) == CKR_OK && len == HSM_ID_LEN &&
	       memcmp(got, id, HSM_ID_LEN) == 0;
}

static CK_RV hsm_find_by_id(struct hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const uint8_t id[HSM_ID_LEN],
			    CK_OBJECT_HANDLE *o)
{
	CK_ATTRIBUTE tmpl[2] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_ID, (void *)(uintptr_t)id, HSM_ID_LEN },
	};
	CK_OBJECT_HANDLE found[2];
	CK_ULONG n = 0;
	CK_RV rv = hsm_find(h, s, tmpl, 2, found, 2, &n);

	if (rv == CKR_OK && n != 1)
		rv = CKR_OBJECT_HANDLE_INVALID;
	if (rv == CKR_OK)
		*o = found[0];
	return rv;
}

/* tpm2-pkcs11 1.9 hands out the handles of an existing object after a
 * deletion (its handle counter runs back), so C_GenerateKeyPair's handles
 * can name another key, and signing with or destroying them would hit that
 * key. The pair is trusted only when both handles carry the CKA_ID just
 * generated. On a mismatch the module is reloaded (renumbering its objects
 * from its store) and the pair is found again by CKA_ID. Called without a
 * session or lock. */
static enum kh_err hsm_pair_refind(struct hsm *h, const char *what, const uint8_t id[HSM_ID_LEN],
				   CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv, struct kh_errbuf *e)
{
	struct hsm_sess s;
	CK_OBJECT_HANDLE found_pub = CK_INVALID_HANDLE, found_priv = CK_INVALID_HANDLE;
	CK_RV rv;
	int r = KH_OK;

	log_warn("the token answered the generation of %s with another object's handles; reloading the module",
		 what);
	hsm_reload(h, "the token reused object handles");
	KH_TRY(hsm_begin(h, &s, e));
	rv = hsm_find_by_id(h, s.h, CKO_PRIVATE_KEY, id, &found_priv);
	if (rv == CKR_OK)
		rv = hsm_find_by_id(h, s.h, CKO_PUBLIC_KEY, id, &found_pub);
	hsm_end(h, &s, CKR_OK);
	KH_ENSURE(rv == CKR_OK,
		  kh_err_set(e, KH_E_INTERNAL, "the token lost the new key pair %s (%s)", what, hsm_rv_name(rv)));
	*pub = found_pub;
	*priv = found_priv;
out:
	return r;
}

/* Destroys a pair this module generated, checking first that each handle
 * still names an object with the pair's CKA_ID (see hsm_pair_refind). */
static void hsm_destroy_pair(struct hsm *h, CK_OBJECT_HANDLE pub, CK_OBJECT_HANDLE priv, const uint8_t id[HSM_ID_LEN])
{
	struct hsm_sess s;
	struct kh_errbuf e = { 0 };
	CK_OBJECT_HANDLE objs[2] = { priv, pub };
	unsigned i;

	if (hsm_begin(h, &s, &e) != KH_OK) {
		log_err("cannot destroy a failed key pair: %s", e.msg);
		return;
	}
	for (i = 0; i < 2; i++) {
		CK_RV rv;

		if (objs[i] == CK_INVALID_HANDLE)
			continue;
		if (!hsm_obj_has_id(h, s.h, objs[i], id)) {
			log_err("not destroying object %lu: it is not the generated %s key", (unsigned long)objs[i],
				i == 0 ? "private" : "public");
			continue;
		}
		rv = h->f->C_DestroyObject(s.h, objs[i]);
		if (rv != CKR_OK)
			log_err("cannot destroy a generated %s key object: %s", i == 0 ? "private" : "public",
				hsm_rv_name(rv));
	}
	hsm_end(h, &s, CKR_OK);
}

void hsm_set_keygen_check(struct hsm *h, hsm_keygen_check_fn fn, void *arg)
{
	h->keygen_check = fn;
	h->keygen_check_arg = arg;
}

enum kh_err hsm_key_generate(struct hsm *h, const char *name, enum kh_key_type type, struct kh_key_info *info,
			     struct kh_errbuf *e)
{
	return hsm_key_generate_ex(h, name, type, false, info, e);
}

enum kh_err hsm_key_generate_ex(struct hsm *h, const char *name, enum kh_key_type type, bool decrypt,
				struct kh_key_info *info, struct kh_errbuf *e)
{
	int r = KH_OK;
	const struct hsm_type_spec *sp = hsm_type_spec(type);
	struct hsm_sess s;
	struct hsm_key *k = NULL;
	struct kh_key_info ki = { 0 };
	CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE, found[1];
	CK_ULONG n = 0;
	CK_RV rv = CKR_OK;
	uint8_t id[HSM_ID_LEN];
	bool reserved = false, in_session = false;

	KH_ENSURE(kh_name_valid(name), kh_err_set(e, KH_E_INVALID_ARGUMENT,
						  "key name must match [A-Za-z0-9._-]{1,64}"));
	KH_ENSURE(sp != NULL, kh_err_set(e, KH_E_INVALID_ARGUMENT, "unknown key type"));
	KH_TRY(hsm_key_type_supported(h, type, e));
	KH_TRY(hsm_reserve(h, name, e));
	reserved = true;
	KH_TRY(hsm_begin(h, &s, e));
	in_session = true;
	rv = hsm_find_by_label(h, s.h, CKO_PRIVATE_KEY, name, found, 1, &n);
	if (rv == CKR_OK && n == 0)
		rv = hsm_find_by_label(h, s.h, CKO_PUBLIC_KEY, name, found, 1, &n);
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "searching keys", name));
	KH_ENSURE(n == 0, kh_err_set(e, KH_E_ALREADY_EXISTS, "a key named '%s' already exists", name));
	KH_TRY(hsm_random_on(h, s.h, id, sizeof(id), &rv, e));
	rv = hsm_generate_pair(h, s.h, sp, decrypt, name, true, id, &pub, &priv);
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "key generation", name));
	if (!hsm_obj_has_id(h, s.h, priv, id) || !hsm_obj_has_id(h, s.h, pub, id)) {
		hsm_end(h, &s, rv);
		in_session = false;
		KH_TRY(hsm_pair_refind(h, name, id, &pub, &priv, e));
		KH_TRY(hsm_begin(h, &s, e));
		in_session = true;
	}
	r = hsm_key_load(h, s.h, priv, &k, e);
	if (r == KH_OK && k->spki == NULL)
		r = kh_err_set(e, KH_E_INTERNAL, "the token did not return the new public key");
	hsm_end(h, &s, rv);
	in_session = false;
	if (r == KH_OK)
		r = hsm_info_from(k, &ki);
	/* Conditional self-test: pairwise consistency (DESIGN §8). */
	if (r == KH_OK && h->keygen_check != NULL)
		r = h->keygen_check(h->keygen_check_arg, h, &ki, e);
	if (r != KH_OK) {
		hsm_destroy_pair(h, pub, priv, id);
		hsm_key_forget(h, name);
		goto out;
	}
	log_info("generated %s key '%s'", kh_key_type_name(type), name);
	hsm_cache_insert(h, k);
	hsm_keys_changed(h);
	k = NULL;
	*info = ki;
	memset(&ki, 0, sizeof(ki));
out:
	if (in_session)
		hsm_end(h, &s, rv);
	r = hsm_gone_err(h, r, rv, e);
	if (reserved)
		hsm_unreserve(h, name);
	hsm_key_free(k);
	kh_key_info_clear(&ki);
	return r;
}

enum kh_err hsm_key_delete(struct hsm *h, const char *name, struct kh_errbuf *e)
{
	int r = KH_OK;
	struct hsm_sess s;
	CK_OBJECT_HANDLE found[HSM_FIND_MAX];
	CK_ULONG n = 0, i;
	CK_RV rv = CKR_OK;
	uint8_t id[32];
	CK_ULONG id_len = 0;
	bool in_session = false;

	KH_TRY(hsm_begin(h, &s, e));
	in_session = true;
	rv = hsm_find_by_label(h, s.h, CKO_PRIVATE_KEY, name, found, 1, &n);
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "searching keys", name));
	if (n == 0)
		hsm_key_forget(h, name); /* deleted through another node */
	KH_ENSURE(n == 1, kh_err_set(e, KH_E_NOT_FOUND, "no key named '%s'", name));
	rv = hsm_attr_fixed(h, s.h, found[0], CKA_ID, id, sizeof(id), &id_len);
	if (rv != CKR_OK)
		id_len = 0;
	rv = h->f->C_DestroyObject(s.h, found[0]);
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "deleting the private key", name));
	hsm_key_forget(h, name);
	/* The public key and any certificate share the CKA_ID (or label). */
	if (id_len > 0) {
		CK_ATTRIBUTE t = { CKA_ID, id, id_len };

		rv = hsm_find(h, s.h, &t, 1, found, HSM_FIND_MAX, &n);
	} else {
		rv = hsm_find_by_label(h, s.h, CKO_PUBLIC_KEY, name, found, HSM_FIND_MAX, &n);
	}
	for (i = 0; rv == CKR_OK && i < n; i++)
		if (h->f->C_DestroyObject(s.h, found[i]) != CKR_OK)
			log_warn("key '%s': could not delete a companion object", name);
	rv = CKR_OK;
	/* The last key is gone by keyhold's hand: an empty token is now no
	 * sign of loss. */
	if (hsm_token_has_no_keys(h, s.h))
		h->had_keys = false;
	log_info("deleted key '%s'", name);
out:
	if (in_session)
		hsm_end(h, &s, rv);
	return hsm_gone_err(h, r, rv, e);
}

/* ---- session keys (self-tests) ---- */

enum kh_err hsm_session_key_generate(struct hsm *h, enum kh_key_type type, struct hsm_session_key **out,
				     struct kh_errbuf *e)
{
	int r = KH_OK;
	const struct hsm_type_spec *sp = hsm_type_spec(type);
	struct hsm_session_key *k = NULL;
	struct hsm_sess s;
	CK_RV rv = CKR_OK;
	uint32_t bits = 0;
	uint8_t id[HSM_ID_LEN];
	int nid;
	bool in_session = false;

	KH_ENSURE(sp != NULL, kh_err_set(e, KH_E_INVALID_ARGUMENT, "unknown key type"));
	KH_TRY(hsm_key_type_supported(h, type, e));
	k = calloc(1, sizeof(*k));
	KH_ENSURE(k != NULL, KH_E_RESOURCE_EXHAUSTED);
	k->ck_type = sp->ck;
	KH_TRY(hsm_begin(h, &s, e));
	in_session = true;
	KH_TRY(hsm_random_on(h, s.h, id, sizeof(id), &rv, e));
	rv = hsm_generate_pair(h, s.h, sp, false, NULL, false, id, &k->pub, &k->priv);
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "session key generation", NULL));
	memcpy(k->id, id, HSM_ID_LEN);
	if (!hsm_obj_has_id(h, s.h, k->priv, id) || !hsm_obj_has_id(h, s.h, k->pub, id)) {
		hsm_end(h, &s, rv);
		in_session = false;
		KH_TRY(hsm_pair_refind(h, "a self-test key", id, &k->pub, &k->priv, e));
		KH_TRY(hsm_begin(h, &s, e));
		in_session = true;
	}
	KH_TRY(hsm_spki_read(h, s.h, k->pub, sp->ck, &k->spki, &k->spki_len, NULL, &bits, &nid, e));
	k->sig_len = hsm_sig_len_of(sp->ck, bits);
	*out = k;
	k = NULL;
out:
	if (in_session)
		hsm_end(h, &s, rv);
	if (k != NULL)
		hsm_session_key_destroy(h, k);
	return r;
}

const uint8_t *hsm_session_key_spki(const struct hsm_session_key *k, size_t *len)
{
	*len = k->spki_len;
	return k->spki;
}

void hsm_session_key_destroy(struct hsm *h, struct hsm_session_key *k)
{
	if (k == NULL)
		return;
	if (k->priv != CK_INVALID_HANDLE || k->pub != CK_INVALID_HANDLE)
		hsm_destroy_pair(h, k->pub, k->priv, k->id);
	free(k->spki);
	free(k);
}

/* ---- the types of hsm.h ---- */

void kh_key_info_clear(struct kh_key_info *k)
{
	if (k == NULL)
		return;
	free(k->spki);
	k->spki = NULL;
	k->spki_len = 0;
}

void kh_key_list_clear(struct kh_key_list *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		kh_key_info_clear(&l->keys[i]);
	free(l->keys);
	l->keys = NULL;
	l->n = 0;
}

void kh_capabilities_clear(struct kh_capabilities *c)
{
	if (c == NULL)
		return;
	free(c->mechs);
	memset(c, 0, sizeof(*c));
}
