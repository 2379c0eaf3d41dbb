/* token.c: module loading, token lookup by URI, login, the session pool,
 * and re-initialisation when the token goes away. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "hsm_int.h"
#include "kh_log.h"
#include "kh_util.h"

static enum kh_err hsm_open_session_locked(struct hsm *h, CK_SESSION_HANDLE *out, CK_RV *rv_out);

enum kh_err hsm_rv_err(struct kh_errbuf *e, CK_RV rv, const char *what, const char *name)
{
	enum kh_err code;

	switch (rv) {
	case CKR_OK:
		return KH_OK;
	case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_DEVICE_ERROR:
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
	case CKR_CRYPTOKI_NOT_INITIALIZED:
	case CKR_SESSION_COUNT:
	case CKR_DEVICE_MEMORY:
		code = KH_E_UNAVAILABLE;
		break;
	case CKR_HOST_MEMORY:
		code = KH_E_RESOURCE_EXHAUSTED;
		break;
	case CKR_PIN_INCORRECT:
	case CKR_PIN_LOCKED:
	case CKR_PIN_EXPIRED:
	case CKR_USER_NOT_LOGGED_IN:
		code = KH_E_UNAUTHENTICATED;
		break;
	case CKR_MECHANISM_INVALID:
	case CKR_MECHANISM_PARAM_INVALID:
	case CKR_KEY_SIZE_RANGE:
	case CKR_CURVE_NOT_SUPPORTED:
	case CKR_DOMAIN_PARAMS_INVALID:
	case CKR_TEMPLATE_INCONSISTENT:
	case CKR_KEY_TYPE_INCONSISTENT:
	case CKR_KEY_FUNCTION_NOT_PERMITTED:
		code = KH_E_FAILED_PRECONDITION;
		break;
	case CKR_DATA_LEN_RANGE:
	case CKR_DATA_INVALID:
	case CKR_ARGUMENTS_BAD:
		code = KH_E_INVALID_ARGUMENT;
		break;
	case CKR_KEY_HANDLE_INVALID:
	case CKR_OBJECT_HANDLE_INVALID:
		code = KH_E_NOT_FOUND;
		break;
	default:
		code = KH_E_INTERNAL;
		break;
	}
	if (name != NULL)
		return kh_err_set(e, code, "token refused %s for '%s': %s", what, name, hsm_rv_name(rv));
	return kh_err_set(e, code, "token refused %s: %s", what, hsm_rv_name(rv));
}

bool hsm_has_mech(const struct hsm *h, CK_MECHANISM_TYPE m, CK_FLAGS need, const CK_MECHANISM_INFO **info)
{
	size_t i;

	for (i = 0; i < h->n_mechs; i++) {
		if (h->mechs[i] != m)
			continue;
		if ((h->mech_info[i].flags & need) != need)
			return false;
		if (info != NULL)
			*info = &h->mech_info[i];
		return true;
	}
	return false;
}

void hsm_token_rdlock(struct hsm *h) { pthread_rwlock_rdlock(&h->token_lock); }
void hsm_token_unlock(struct hsm *h) { pthread_rwlock_unlock(&h->token_lock); }

enum kh_err hsm_begin(struct hsm *h, struct hsm_sess *s, struct kh_errbuf *e)
{
	int r;

	if (!h->available)
		hsm_revive(h);
	hsm_token_rdlock(h);
	r = hsm_sess_get(h, s, e);
	if (r != KH_OK)
		hsm_token_unlock(h);
	return r;
}

/* CKR_GENERAL_ERROR is tpm2-pkcs11's answer to nearly everything, a TPM
 * (or tpm2-abrmd) that went away included; its ESYS context then stays
 * unusable until C_Finalize. For such an answer a harmless call on the
 * same session tells a refusal from a lost token. */
static bool hsm_rv_ambiguous(CK_RV rv)
{
	return rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED;
}

void hsm_mark_gone(struct hsm *h)
{
	bool was;

	pthread_mutex_lock(&h->pool_lock);
	was = h->available;
	hsm_set_available(h, false);
	pthread_mutex_unlock(&h->pool_lock);
	if (was)
		log_event(KH_LOG_WARN, KH_MSGID_TOKEN_LOST, "the token is unavailable; requests that need it fail UNAVAILABLE");
}

void hsm_end(struct hsm *h, struct hsm_sess *s, CK_RV rv)
{
	if (rv == CKR_FIPS_SELF_TEST_FAILED && h->token_failure != NULL)
		h->token_failure(h->token_failure_arg,
				 "the token answered CKR_FIPS_SELF_TEST_FAILED: its module failed a self-test");
	if (hsm_rv_ambiguous(rv) && h->available && s->gen == h->generation) {
		CK_BYTE probe[1];
		CK_RV rv2 = h->f->C_GenerateRandom(s->h, probe, sizeof(probe));

		if (rv2 != CKR_OK) {
			log_warn("the token stopped answering (%s, then %s from C_GenerateRandom); "
				 "re-attaching",
				 hsm_rv_name(rv), hsm_rv_name(rv2));
			hsm_mark_gone(h);
		} else if (hsm_keys_vanished(h, s->h)) {
			/* SoftHSM2 without its token directory: it answers, but
			 * with CKR_GENERAL_ERROR and no objects. */
		}
	}
	hsm_sess_put(h, s, rv);
	hsm_token_unlock(h);
}

enum kh_err hsm_gone_err(struct hsm *h, enum kh_err r, CK_RV rv, struct kh_errbuf *e)
{
	if (r == KH_OK || rv == CKR_OK || h->available)
		return r;
	kh_err_clear(e);
	return kh_err_set(e, KH_E_UNAVAILABLE,
			  "the token went away (%s); keyhold re-attaches to it at most every %u s",
			  hsm_rv_name(rv), h->reinit_interval_s);
}

/* ---- PIN ---- */

/* Opens path (flags | O_NOFOLLOW) walking it one component at a time with
 * O_NOFOLLOW, so that no component is a symbolic link: a link in a parent
 * directory would let whoever can change the link choose the PIN file.
 * *fd_out is written only on success. */
static enum kh_err hsm_open_nofollow(const char *path, int flags, int *fd_out, struct kh_errbuf *e)
{
	char *copy = NULL, *comp, *next;
	int dfd = -1, fd = -1, nfd, r = KH_OK;
	struct stat st;

	copy = strdup(path);
	if (copy == NULL) {
		r = kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	dfd = open(path[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		r = kh_err_set(e, KH_E_FAILED_PRECONDITION, "cannot open PIN file %s: %s", path, strerror(errno));
		goto out;
	}
	comp = copy;
	for (;;) {
		while (*comp == '/')
			comp++;
		next = strchr(comp, '/');
		if (next != NULL) {
			*next++ = '\0';
			while (*next == '/')
				next++;
			if (*next == '\0')
				next = NULL; /* "dir/": the file is dir */
		}
		if (next == NULL)
			break;
		if (comp[0] == '\0' || strcmp(comp, ".") == 0) {
			comp = next;
			continue;
		}
		if (fstatat(dfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
			r = kh_err_set(e, KH_E_FAILED_PRECONDITION,
				   "PIN file %s: its directory '%s' is a symbolic link; name the PIN file by its real path",
				   path, comp);
			goto out;
		}
		nfd = openat(dfd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0) {
			r = kh_err_set(e, KH_E_FAILED_PRECONDITION, "cannot open PIN file %s: %s: %s", path, comp,
				   strerror(errno));
			goto out;
		}
		close(dfd);
		dfd = nfd;
		comp = next;
	}
	fd = openat(dfd, comp[0] != '\0' ? comp : ".", flags | O_NOFOLLOW);
	if (fd < 0) {
		r = kh_err_set(e, KH_E_FAILED_PRECONDITION, "cannot open PIN file %s: %s", path,
			       errno == ELOOP ? "it is a symbolic link" : strerror(errno));
		goto out;
	}
	*fd_out = fd;
out:
	if (dfd >= 0)
		close(dfd);
	free(copy);
	return r;
}

enum kh_err hsm_pin_read(const char *path, uid_t owner, char **pin_out, size_t *len_out, struct kh_errbuf *e)
{
	enum { PIN_MAX = HSM_PIN_MAX };
	int r = KH_OK;
	FILE *fp = NULL;
	char *pin = NULL;
	struct stat st;
	size_t n;
	int fd = -1;

	/* O_NONBLOCK: a FIFO in place of the file must be refused below, not
	 * block start-up until someone writes to it. It changes nothing for
	 * the regular file that passes the checks. O_NOFOLLOW, for the file
	 * and every directory on its path: no symlinks. */
	KH_TRY(hsm_open_nofollow(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK, &fd, e));
	fp = fdopen(fd, "r");
	KH_ENSURE(fp != NULL, kh_err_set(e, KH_E_INTERNAL, "fdopen %s: %s", path, strerror(errno)));
	KH_ENSURE(fstat(fd, &st) == 0, kh_err_set(e, KH_E_INTERNAL, "stat %s: %s", path, strerror(errno)));
	KH_ENSURE(S_ISREG(st.st_mode),
		  kh_err_set(e, KH_E_FAILED_PRECONDITION, "PIN file %s is not a regular file", path));
	KH_ENSURE((st.st_mode & 077) == 0,
		  kh_err_set(e, KH_E_PERMISSION_DENIED,
			     "PIN file %s has mode %04o: it must not be readable by group or others; run chmod 600 %s",
			     path, (unsigned)(st.st_mode & 07777), path));
	/* Whoever owns the file can change the PIN keyholdd presents, or
	 * make it read another: only root and keyholdd's own user may. */
	KH_ENSURE(st.st_uid == 0 || st.st_uid == geteuid() || st.st_uid == owner,
		  kh_err_set(e, KH_E_PERMISSION_DENIED,
			     "PIN file %s belongs to uid %u: it must belong to root or keyholdd's user (uid %u); "
			     "run chown root %s",
			     path, (unsigned)st.st_uid, (unsigned)owner, path));
	pin = OPENSSL_secure_zalloc(PIN_MAX + 1);
	KH_ENSURE(pin != NULL, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "no secure memory for the PIN"));
	n = fread(pin, 1, PIN_MAX + 1, fp);
	KH_ENSURE(n <= PIN_MAX, kh_err_set(e, KH_E_INVALID_ARGUMENT, "PIN file %s is longer than %d bytes",
					     path, PIN_MAX));
	while (n > 0 && (pin[n - 1] == '\n' || pin[n - 1] == '\r'))
		pin[--n] = '\0';
	KH_ENSURE(n > 0, kh_err_set(e, KH_E_INVALID_ARGUMENT, "PIN file %s is empty", path));
	*pin_out = pin;
	*len_out = n;
	pin = NULL;
out:
	OPENSSL_secure_clear_free(pin, PIN_MAX + 1);
	if (fp != NULL)
		fclose(fp); /* closes fd */
	else if (fd >= 0)
		close(fd);
	return r;
}

void hsm_pin_free(char *pin, size_t len)
{
	(void)len;
	if (pin != NULL)
		OPENSSL_secure_clear_free(pin, HSM_PIN_MAX + 1);
}

/* ---- token lookup and login ---- */

static bool hsm_field_eq(const char *want, const unsigned char *field, size_t fieldlen)
{
	char got[65];

	kh_copy_padded(got, sizeof(got), field, fieldlen);
	return strcmp(want, got) == 0;
}

static enum kh_err hsm_find_slot(struct hsm *h, CK_SLOT_ID *slot_out, CK_TOKEN_INFO *ti_out,
				 struct kh_errbuf *e)
{
	int r = KH_OK;
	CK_SLOT_ID *slots = NULL;
	CK_ULONG n = 0, i;
	CK_RV rv;
	CK_SLOT_ID slot = 0;
	CK_TOKEN_INFO tinfo;
	int found = 0;
	char seen[256] = "";
	size_t seen_len = 0;

	memset(&tinfo, 0, sizeof(tinfo));
	rv = h->f->C_GetSlotList(CK_TRUE, NULL, &n);
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "C_GetSlotList", NULL));
	KH_ENSURE(n > 0, kh_err_set(e, KH_E_NOT_FOUND, "module %s shows no token", h->module_path));
	slots = calloc(n, sizeof(*slots));
	KH_ENSURE(slots != NULL, KH_E_RESOURCE_EXHAUSTED);
	rv = h->f->C_GetSlotList(CK_TRUE, slots, &n);
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "C_GetSlotList", NULL));
	for (i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		char label[33];
		const struct hsm_uri *u = &h->uri;

		if (h->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		if (!(ti.flags & CKF_TOKEN_INITIALIZED))
			continue;
		kh_copy_padded(label, sizeof(label), ti.label, sizeof(ti.label));
		if (seen_len + strlen(label) + 3 < sizeof(seen)) {
			seen_len += (size_t)snprintf(seen + seen_len, sizeof(seen) - seen_len, "%s'%s'",
						     seen_len ? ", " : "", label);
		}
		if (u->has_token && !hsm_field_eq(u->token, ti.label, sizeof(ti.label)))
			continue;
		if (u->has_serial && !hsm_field_eq(u->serial, ti.serialNumber, sizeof(ti.serialNumber)))
			continue;
		if (u->has_manufacturer &&
		    !hsm_field_eq(u->manufacturer, ti.manufacturerID, sizeof(ti.manufacturerID)))
			continue;
		if (u->has_model && !hsm_field_eq(u->model, ti.model, sizeof(ti.model)))
			continue;
		if (u->has_slot_id && u->slot_id != slots[i])
			continue;
		found++;
		slot = slots[i];
		tinfo = ti;
	}
	KH_ENSURE(found > 0, kh_err_set(e, KH_E_NOT_FOUND,
					"no initialised token matches the configured URI (tokens present: %s)",
					seen_len ? seen : "none"));
	KH_ENSURE(found == 1, kh_err_set(e, KH_E_FAILED_PRECONDITION,
					 "%d tokens match the configured URI; add serial= to choose one",
					 found));
	*slot_out = slot;
	*ti_out = tinfo;
out:
	free(slots);
	return r;
}

static enum kh_err hsm_login(struct hsm *h, CK_SESSION_HANDLE s, struct kh_errbuf *e)
{
	CK_RV rv;
	int r = KH_OK;

	KH_ENSURE(!h->pin_rejected,
		  kh_err_set(e, KH_E_UNAUTHENTICATED,
			     "the token refused the PIN before; keyhold will not retry it (the token could lock); fix the PIN file and restart"));
	rv = h->f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)h->pin, h->pin_len);
	if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_EXPIRED ||
	    rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE) {
		/* Remembered: a retry with the same PIN could lock the token. */
		h->pin_rejected = true;
		r = kh_err_set(e, KH_E_UNAUTHENTICATED, "the token refused the PIN (%s); fix the PIN file and restart",
			       hsm_rv_name(rv));
		goto out;
	}
	KH_ENSURE(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN, hsm_rv_err(e, rv, "C_Login", NULL));
out:
	return r;
}

static enum kh_err hsm_read_mechs(struct hsm *h, struct kh_errbuf *e)
{
	int r = KH_OK;
	CK_ULONG n = 0, i;
	CK_RV rv;

	free(h->mechs);
	free(h->mech_info);
	h->mechs = NULL;
	h->mech_info = NULL;
	h->n_mechs = 0;
	rv = h->f->C_GetMechanismList(h->slot, NULL, &n);
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "C_GetMechanismList", NULL));
	/* One spare entry: p11-kit-client.so before 0.25 (Debian 12's 0.24.1)
	 * drops mechanisms it cannot forward with a memmove that reads one
	 * element past the caller's array (mechanism_list_purge); a node on a
	 * token shared through p11-kit server (docs/CLUSTER.md) meets it. */
	h->mechs = calloc(n + 1, sizeof(*h->mechs));
	h->mech_info = calloc(n ? n : 1, sizeof(*h->mech_info));
	KH_ENSURE(h->mechs != NULL && h->mech_info != NULL, KH_E_RESOURCE_EXHAUSTED);
	rv = h->f->C_GetMechanismList(h->slot, h->mechs, &n);
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "C_GetMechanismList", NULL));
	for (i = 0; i < n; i++) {
		rv = h->f->C_GetMechanismInfo(h->slot, h->mechs[i], &h->mech_info[i]);
		if (rv != CKR_OK)
			memset(&h->mech_info[i], 0, sizeof(h->mech_info[i]));
	}
	h->n_mechs = n;
out:
	return r;
}

/* Finds the token, logs in and opens the pool. Caller holds the write lock
 * (or is hsm_open, before anyone else can see h). */
static enum kh_err hsm_attach(struct hsm *h, unsigned want, struct kh_errbuf *e)
{
	int r = KH_OK;
	CK_SESSION_HANDLE s;
	CK_RV rv = CKR_OK;
	unsigned max;

	KH_TRY(hsm_find_slot(h, &h->slot, &h->tinfo, e));
	if (h->tinfo.flags & CKF_ERROR_STATE)
		log_warn("token reports CKF_ERROR_STATE");
	max = want;
	if (h->tinfo.ulMaxSessionCount != CK_EFFECTIVELY_INFINITE &&
	    h->tinfo.ulMaxSessionCount != CK_UNAVAILABLE_INFORMATION &&
	    h->tinfo.ulMaxSessionCount < max)
		max = (unsigned)h->tinfo.ulMaxSessionCount;
	/* Every pool session is read/write (key generation and deletion need
	 * it), so the token's read/write limit applies too (PKCS#11 2.40 §3.2,
	 * CK_TOKEN_INFO.ulMaxRwSessionCount). */
	if (h->tinfo.ulMaxRwSessionCount != CK_EFFECTIVELY_INFINITE &&
	    h->tinfo.ulMaxRwSessionCount != CK_UNAVAILABLE_INFORMATION &&
	    h->tinfo.ulMaxRwSessionCount < max)
		max = (unsigned)h->tinfo.ulMaxRwSessionCount;
	if (max < 1)
		max = 1;
	if (max > HSM_MAX_SESSIONS)
		max = HSM_MAX_SESSIONS;
	h->want_sessions = max;
	KH_TRY(hsm_read_mechs(h, e));

	/* Serially, one at a time: tpm2-pkcs11 1.9 races in C_OpenSession. */
	while (h->n_sessions < h->want_sessions) {
		if (hsm_open_session_locked(h, &s, &rv) != KH_OK) {
			if (h->n_sessions == 0) {
				r = hsm_rv_err(e, rv, "C_OpenSession", NULL);
				goto out;
			}
			log_warn("token gave %u of %u sessions (%s)", h->n_sessions, h->want_sessions,
				 hsm_rv_name(rv));
			h->want_sessions = h->n_sessions;
			break;
		}
		if (h->n_sessions == 0)
			KH_TRY(hsm_login(h, s, e));
		h->idle[h->n_idle++] = s;
		h->n_sessions++;
	}
	hsm_set_available(h, true);
out:
	return r;
}

static void hsm_detach(struct hsm *h)
{
	if (h->f == NULL)
		return;
	/* C_CloseAllSessions also logs out (PKCS#11 2.40 §5.6). */
	kh_ignore((int)h->f->C_CloseAllSessions(h->slot));
	h->n_idle = 0;
	h->n_sessions = 0;
	hsm_set_available(h, false);
}

static enum kh_err hsm_initialize(struct hsm *h, struct kh_errbuf *e)
{
	CK_C_INITIALIZE_ARGS args;
	CK_RV rv;
	int r = KH_OK;

	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	if (h->lock_spin_us > 0) {
		/* keyholdd's mutexes (hsm/lock.c); with CKF_OS_LOCKING_OK set the
		 * module may still use its own (PKCS#11 2.40 §5.4). */
		hsm_lock_args(&args, h->lock_spin_us);
		rv = h->f->C_Initialize(&args);
		if (rv != CKR_CANT_LOCK && rv != CKR_ARGUMENTS_BAD)
			goto done;
		log_info("%s does not take keyholdd's mutex functions (%s); it uses its own", h->module_path,
			 hsm_rv_name(rv));
		memset(&args, 0, sizeof(args));
		args.flags = CKF_OS_LOCKING_OK;
	}
	rv = h->f->C_Initialize(&args);
done:
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "C_Initialize", NULL));
out:
	return r;
}

enum kh_err hsm_open(const struct hsm_config *cfg, struct hsm **out, struct kh_errbuf *e)
{
	int r = KH_OK;
	struct hsm *h = NULL;
	CK_C_GetFunctionList getfl;
	CK_RV rv;
	bool initialized = false;

	h = calloc(1, sizeof(*h));
	KH_ENSURE(h != NULL, KH_E_RESOURCE_EXHAUSTED);
	pthread_rwlock_init(&h->token_lock, NULL);
	pthread_rwlock_init(&h->keys_lock, NULL);
	pthread_mutex_init(&h->pool_lock, NULL);
	pthread_mutex_init(&h->open_lock, NULL);
	pthread_mutex_init(&h->reinit_lock, NULL);
	pthread_mutex_init(&h->gen_lock, NULL);
	pthread_mutex_init(&h->snap_lock, NULL);
	pthread_cond_init(&h->pool_cond, NULL);
	h->reinit_interval_s = cfg->reinit_interval_s ? cfg->reinit_interval_s : 2;
	h->lock_spin_us = cfg->lock_spin_us;

	KH_TRY(hsm_uri_parse(cfg->uri, &h->uri, e));
	KH_ENSURE(h->uri.has_token || h->uri.has_serial,
		  kh_err_set(e, KH_E_INVALID_ARGUMENT,
			     "token URI '%s' names no token: add token=LABEL or serial=SERIAL", cfg->uri));
	h->module_path = strdup(cfg->module);
	KH_ENSURE(h->module_path != NULL, KH_E_RESOURCE_EXHAUSTED);
	KH_TRY(hsm_pin_read(cfg->pin_file, cfg->pin_owner, &h->pin, &h->pin_len, e));

	/* RTLD_NODELETE: modules often leave threads or atexit handlers behind. */
	h->dl = dlopen(cfg->module, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	KH_ENSURE(h->dl != NULL, kh_err_set(e, KH_E_FAILED_PRECONDITION, "cannot load PKCS#11 module %s: %s",
					    cfg->module, dlerror()));
	*(void **)&getfl = dlsym(h->dl, "C_GetFunctionList");
	KH_ENSURE(getfl != NULL, kh_err_set(e, KH_E_FAILED_PRECONDITION,
					    "%s is not a PKCS#11 module (no C_GetFunctionList)", cfg->module));
	rv = getfl(&h->f);
	KH_ENSURE(rv == CKR_OK && h->f != NULL, hsm_rv_err(e, rv, "C_GetFunctionList", NULL));
	KH_TRY(hsm_initialize(h, e));
	initialized = true;
	hsm_quirks_detect(h);
	KH_TRY(hsm_attach(h, cfg->sessions ? cfg->sessions : 4, e));
	hsm_probe_curves(h);
	{
		struct kh_token_info ti;

		hsm_token_info(h, &ti);
		log_info("token '%s' (%s %s, serial %s) in slot %lu, %u sessions", ti.label, ti.manufacturer,
			 ti.model, ti.serial, (unsigned long)h->slot, h->n_sessions);
	}
	*out = h;
	h = NULL;
out:
	if (h != NULL) {
		if (initialized) {
			hsm_detach(h);
			h->f->C_Finalize(NULL);
		}
		h->f = NULL;
		hsm_close(h);
	}
	return r;
}

void hsm_close(struct hsm *h)
{
	if (h == NULL)
		return;
	if (h->f != NULL) {
		hsm_detach(h);
		h->f->C_Finalize(NULL);
	}
	hsm_keys_reset(h);
	free(h->keys);
	if (h->dl != NULL)
		dlclose(h->dl);
	hsm_pin_free(h->pin, h->pin_len);
	free(h->module_path);
	free(h->mechs);
	free(h->mech_info);
	pthread_rwlock_destroy(&h->token_lock);
	pthread_rwlock_destroy(&h->keys_lock);
	pthread_mutex_destroy(&h->pool_lock);
	pthread_mutex_destroy(&h->open_lock);
	pthread_mutex_destroy(&h->reinit_lock);
	pthread_mutex_destroy(&h->gen_lock);
	pthread_mutex_destroy(&h->snap_lock);
	kh_key_list_clear(&h->snap);
	pthread_cond_destroy(&h->pool_cond);
	free(h);
}

/* ---- re-initialisation ---- */

/* Detaches, re-initialises the module and attaches again. Caller holds
 * reinit_lock and no token lock. */
static void hsm_reinit_now(struct hsm *h, const char *why)
{
	struct kh_errbuf e = { 0 };
	int r;

	h->last_reinit_us = kh_now_mono_us();
	pthread_rwlock_wrlock(&h->token_lock);
	log_warn("re-initialising the PKCS#11 module: %s", why);
	hsm_detach(h);
	h->f->C_Finalize(NULL);
	h->generation++;
	h->had_keys = false;
	hsm_keys_reset(h);
	r = hsm_initialize(h, &e);
	if (r == KH_OK)
		r = hsm_attach(h, h->want_sessions ? h->want_sessions : 1, &e);
	if (r != KH_OK) {
		hsm_detach(h);
		log_warn("token still unavailable: %s", e.msg);
	} else {
		log_event(KH_LOG_INFO, KH_MSGID_TOKEN_BACK, "token attached again: %u sessions", h->n_sessions);
	}
	pthread_rwlock_unlock(&h->token_lock);
}

/* Re-attaches to the token after it went away, at most once per
 * reinit_interval_s. Must be called without the token lock. */
void hsm_revive(struct hsm *h)
{
	uint64_t now = kh_now_mono_us();
	bool done = false;

	pthread_mutex_lock(&h->reinit_lock);
	if (!h->available && !h->pin_rejected &&
	    (h->last_reinit_us == 0 || now - h->last_reinit_us >= (uint64_t)h->reinit_interval_s * 1000000u)) {
		hsm_reinit_now(h, "the token went away");
		done = true;
	}
	pthread_mutex_unlock(&h->reinit_lock);
	/* Outside reinit_lock: the listing re-enters hsm_begin. */
	if (done && h->available)
		hsm_keys_rebuild(h);
}

void hsm_reload(struct hsm *h, const char *why)
{
	bool done = false;

	pthread_mutex_lock(&h->reinit_lock);
	if (!h->pin_rejected) {
		hsm_reinit_now(h, why);
		done = true;
	}
	pthread_mutex_unlock(&h->reinit_lock);
	if (done && h->available)
		hsm_keys_rebuild(h);
}

static bool hsm_rv_token_gone(CK_RV rv)
{
	return rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_DEVICE_ERROR ||
	       rv == CKR_CRYPTOKI_NOT_INITIALIZED || rv == CKR_SLOT_ID_INVALID ||
	       rv == CKR_TOKEN_NOT_RECOGNIZED;
}

static bool hsm_rv_session_dead(CK_RV rv)
{
	return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
	       rv == CKR_OPERATION_ACTIVE || hsm_rv_token_gone(rv);
}

int hsm_rv_retry(struct hsm *h, CK_RV rv)
{
	switch (rv) {
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
	case CKR_OPERATION_ACTIVE:
	case CKR_KEY_HANDLE_INVALID:
	case CKR_OBJECT_HANDLE_INVALID:
		return 1;
	case CKR_USER_NOT_LOGGED_IN: {
		struct hsm_sess s;
		struct kh_errbuf e = { 0 };
		int ok;

		ok = hsm_begin(h, &s, &e) == KH_OK;
		if (ok) {
			ok = hsm_login(h, s.h, &e) == KH_OK;
			hsm_end(h, &s, CKR_OK);
		}
		if (!ok)
			log_warn("re-login failed: %s", e.msg);
		return ok;
	}
	default:
		break;
	}
	/* hsm_end may have found the token gone behind an ambiguous rv. */
	if (hsm_rv_token_gone(rv) || !h->available) {
		hsm_mark_gone(h);
		hsm_revive(h);
		return h->available;
	}
	return 0;
}

/* ---- session pool ---- */

static enum kh_err hsm_open_session_locked(struct hsm *h, CK_SESSION_HANDLE *out, CK_RV *rv_out)
{
	CK_RV rv;

	pthread_mutex_lock(&h->open_lock);
	rv = h->f->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, out);
	pthread_mutex_unlock(&h->open_lock);
	*rv_out = rv;
	return rv == CKR_OK ? KH_OK : KH_E_UNAVAILABLE;
}

enum kh_err hsm_sess_get(struct hsm *h, struct hsm_sess *s, struct kh_errbuf *e)
{
	CK_SESSION_HANDLE sh = CK_INVALID_HANDLE;
	CK_RV rv = CKR_OK;
	unsigned gen = 0;
	bool available, refill = false;
	int r = KH_OK;

	pthread_mutex_lock(&h->pool_lock);
	for (;;) {
		available = h->available;
		if (!available)
			break;
		if (h->n_idle > 0) {
			sh = h->idle[--h->n_idle];
			gen = h->generation;
			break;
		}
		if (h->n_sessions < h->want_sessions) {
			/* Refill a slot a dead session left, outside the pool lock. */
			h->n_sessions++;
			refill = true;
			break;
		}
		pthread_cond_wait(&h->pool_cond, &h->pool_lock);
	}
	pthread_mutex_unlock(&h->pool_lock);
	KH_ENSURE(available, kh_err_set(e, KH_E_UNAVAILABLE, "the token is not available; keyhold retries every %u s",
					 h->reinit_interval_s));
	if (refill) {
		if (hsm_open_session_locked(h, &sh, &rv) != KH_OK) {
			pthread_mutex_lock(&h->pool_lock);
			h->n_sessions--;
			pthread_cond_signal(&h->pool_cond);
			pthread_mutex_unlock(&h->pool_lock);
			if (hsm_rv_token_gone(rv)) {
				pthread_mutex_lock(&h->pool_lock);
				hsm_set_available(h, false);
				pthread_mutex_unlock(&h->pool_lock);
			}
			r = hsm_rv_err(e, rv, "C_OpenSession", NULL);
			goto out;
		}
		gen = h->generation;
	}
	s->h = sh;
	s->gen = gen;
out:
	return r;
}

void hsm_sess_put(struct hsm *h, struct hsm_sess *s, CK_RV rv)
{
	bool dead = hsm_rv_session_dead(rv);

	if (dead && !hsm_rv_token_gone(rv))
		kh_ignore((int)h->f->C_CloseSession(s->h));
	pthread_mutex_lock(&h->pool_lock);
	if (s->gen != h->generation) {
		/* Opened before a re-initialisation: already gone. */
	} else if (dead) {
		if (h->n_sessions > 0)
			h->n_sessions--;
	} else {
		h->idle[h->n_idle++] = s->h;
	}
	pthread_cond_signal(&h->pool_cond);
	pthread_mutex_unlock(&h->pool_lock);
	s->h = CK_INVALID_HANDLE;
}

/* ---- info ---- */

static void hsm_flag_names(CK_FLAGS f, char *out, size_t outsz)
{
	static const struct { CK_FLAGS bit; const char *name; } names[] = {
		{ CKF_RNG, "RNG" },
		{ CKF_WRITE_PROTECTED, "WRITE_PROTECTED" },
		{ CKF_LOGIN_REQUIRED, "LOGIN_REQUIRED" },
		{ CKF_USER_PIN_INITIALIZED, "USER_PIN_INITIALIZED" },
		{ CKF_RESTORE_KEY_NOT_NEEDED, "RESTORE_KEY_NOT_NEEDED" },
		{ CKF_CLOCK_ON_TOKEN, "CLOCK_ON_TOKEN" },
		{ CKF_PROTECTED_AUTHENTICATION_PATH, "PROTECTED_AUTHENTICATION_PATH" },
		{ CKF_DUAL_CRYPTO_OPERATIONS, "DUAL_CRYPTO_OPERATIONS" },
		{ CKF_TOKEN_INITIALIZED, "TOKEN_INITIALIZED" },
		{ CKF_USER_PIN_COUNT_LOW, "USER_PIN_COUNT_LOW" },
		{ CKF_USER_PIN_FINAL_TRY, "USER_PIN_FINAL_TRY" },
		{ CKF_USER_PIN_LOCKED, "USER_PIN_LOCKED" },
		{ CKF_USER_PIN_TO_BE_CHANGED, "USER_PIN_TO_BE_CHANGED" },
		{ CKF_SO_PIN_LOCKED, "SO_PIN_LOCKED" },
		{ CKF_ERROR_STATE, "ERROR_STATE" },
	};
	size_t i, off = 0;

	out[0] = '\0';
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int n;

		if (!(f & names[i].bit))
			continue;
		n = snprintf(out + off, outsz - off, "%s%s", off ? "," : "", names[i].name);
		if (n < 0 || (size_t)n >= outsz - off)
			break;
		off += (size_t)n;
	}
}

/* Caller holds the token read lock: ti from C_GetTokenInfo, or from the
 * last one when that is at most max_age_us old (0: always asks). */
static void hsm_tinfo_read(struct hsm *h, uint64_t max_age_us, CK_TOKEN_INFO *ti)
{
	uint64_t now = kh_now_mono_us();
	bool hit;

	pthread_mutex_lock(&h->snap_lock);
	hit = max_age_us > 0 && h->snap_tinfo_us != 0 && h->snap_tinfo_gen == h->generation &&
	      now - h->snap_tinfo_us <= max_age_us;
	if (hit)
		*ti = h->snap_tinfo;
	pthread_mutex_unlock(&h->snap_lock);
	if (hit)
		return;
	*ti = h->tinfo;
	if (!h->available || h->f->C_GetTokenInfo(h->slot, ti) != CKR_OK) {
		*ti = h->tinfo;
		return;
	}
	pthread_mutex_lock(&h->snap_lock);
	h->snap_tinfo = *ti;
	h->snap_tinfo_us = now;
	h->snap_tinfo_gen = h->generation;
	pthread_mutex_unlock(&h->snap_lock);
}

void hsm_token_info_recent(struct hsm *h, uint64_t max_age_us, struct kh_token_info *out)
{
	CK_TOKEN_INFO ti;

	memset(out, 0, sizeof(*out));
	hsm_token_rdlock(h);
	out->available = h->available;
	hsm_tinfo_read(h, max_age_us, &ti);
	kh_copy_padded(out->label, sizeof(out->label), ti.label, sizeof(ti.label));
	kh_copy_padded(out->manufacturer, sizeof(out->manufacturer), ti.manufacturerID,
		       sizeof(ti.manufacturerID));
	kh_copy_padded(out->model, sizeof(out->model), ti.model, sizeof(ti.model));
	kh_copy_padded(out->serial, sizeof(out->serial), ti.serialNumber, sizeof(ti.serialNumber));
	snprintf(out->hw_version, sizeof(out->hw_version), "%u.%u", ti.hardwareVersion.major,
		 ti.hardwareVersion.minor);
	snprintf(out->fw_version, sizeof(out->fw_version), "%u.%u", ti.firmwareVersion.major,
		 ti.firmwareVersion.minor);
	out->flags = ti.flags;
	hsm_flag_names(ti.flags, out->flag_names, sizeof(out->flag_names));
	out->max_sessions = (ti.ulMaxSessionCount == CK_EFFECTIVELY_INFINITE ||
			     ti.ulMaxSessionCount == CK_UNAVAILABLE_INFORMATION)
				    ? 0
				    : (uint32_t)ti.ulMaxSessionCount;
	out->sessions = h->n_sessions;
	hsm_token_unlock(h);
}

void hsm_token_info(struct hsm *h, struct kh_token_info *out)
{
	hsm_token_info_recent(h, 0, out);
}

enum kh_err hsm_token_flags(struct hsm *h, uint64_t *flags, struct kh_errbuf *e)
{
	CK_TOKEN_INFO ti;
	CK_RV rv;

	int r = KH_OK;

	hsm_token_rdlock(h);
	rv = h->available ? h->f->C_GetTokenInfo(h->slot, &ti) : CKR_TOKEN_NOT_PRESENT;
	hsm_token_unlock(h);
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "C_GetTokenInfo", NULL));
	*flags = ti.flags;
out:
	return r;
}

void hsm_set_available(struct hsm *h, bool v)
{
	if (h->available != v) {
		atomic_fetch_add(v ? &h->went_up : &h->went_down, 1);
		hsm_keys_changed(h); /* a listing from before says nothing now */
	}
	h->available = v;
}

void hsm_observe(struct hsm *h, const char *op, CK_MECHANISM_TYPE mech, uint64_t t0_us, CK_RV rv)
{
	if (h->op_observer != NULL)
		h->op_observer(h->op_observer_arg, op, (unsigned long)mech, kh_now_mono_us() - t0_us, rv == CKR_OK);
}

void hsm_set_op_observer(struct hsm *h, hsm_op_observer_fn fn, void *arg)
{
	h->op_observer = fn;
	h->op_observer_arg = arg;
}

void hsm_health(struct hsm *h, struct hsm_health *out)
{
	pthread_mutex_lock(&h->pool_lock);
	out->available = h->available;
	out->sessions = h->n_sessions;
	out->idle = h->n_idle;
	pthread_mutex_unlock(&h->pool_lock);
	out->went_up = atomic_load(&h->went_up);
	out->went_down = atomic_load(&h->went_down);
}

void hsm_set_token_failure_hook(struct hsm *h, hsm_token_failure_fn fn, void *arg)
{
	h->token_failure = fn;
	h->token_failure_arg = arg;
}

void hsm_set_random_check(struct hsm *h, hsm_random_check_fn fn, void *arg)
{
	h->random_check = fn;
	h->random_check_arg = arg;
}

enum kh_err hsm_random_on(struct hsm *h, CK_SESSION_HANDLE s, uint8_t *out, size_t len, CK_RV *rv_out,
			  struct kh_errbuf *e)
{
	uint64_t t0 = kh_now_mono_us();
	CK_RV rv = h->f->C_GenerateRandom(s, out, len);
	int r = KH_OK;

	hsm_observe(h, "random", 0, t0, rv);

	*rv_out = rv;
	KH_ENSURE(rv == CKR_OK, hsm_rv_err(e, rv, "C_GenerateRandom", NULL));
	/* Continuous RNG test (FIPS 140-2 §4.9.2) on every block taken. */
	if (h->random_check != NULL)
		KH_TRY(h->random_check(h->random_check_arg, out, len, e));
out:
	/* A block the check refused is not left for anyone to use. */
	if (r != KH_OK && rv == CKR_OK)
		OPENSSL_cleanse(out, len);
	return r;
}

enum kh_err hsm_random(struct hsm *h, uint8_t *out, size_t len, struct kh_errbuf *e)
{
	struct hsm_sess s;
	CK_RV rv = CKR_OK;
	int r = KH_OK, attempt;

	for (attempt = 0;; attempt++) {
		KH_TRY(hsm_begin(h, &s, e));
		r = hsm_random_on(h, s.h, out, len, &rv, e);
		hsm_end(h, &s, rv);
		if (rv == CKR_OK || attempt > 0 || !hsm_rv_retry(h, rv))
			break;
		kh_err_clear(e);
	}
	r = hsm_gone_err(h, r, rv, e);
out:
	return r;
}
