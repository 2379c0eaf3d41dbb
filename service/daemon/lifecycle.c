/* lifecycle.c: keyholdd's start-up after the configuration is read, in the
 * order DESIGN requires (FIPS library context, token, power-up self-tests,
 * state, workers, policy, TLS, listeners, privilege drop, audit log), and
 * the shutdown that undoes it. main() and the whole-connection fuzzer both
 * use these, so the fuzzer drives the service keyholdd really runs. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "proto.h"
#include "audit/audit.h"
#include "cluster/cluster.h"
#include "kh_log.h"
#include "fips/fips.h"
#include "core/svc.h"
#include "core/svc_clock.h"
#include "core/svc_metrics.h"
#include "metrics/metrics.h"
#include "pki/acme.h"
#include "pool/pool.h"
#include "net/net.h"
#include "daemon/lifecycle.h"
#include "pki/pki_state.h"
#include "revocation/revocation.h"
#include "rpc/rpc.h"
#include "access/access.h"
#include "net/tls.h"
#include "store/store.h"
#include "store/store_dir.h"

/* Drops to cfg's user after the listeners are bound (DESIGN §9): its
 * groups, then gid, then uid, for real, effective and saved ids. The
 * token stays usable only if that user can reach it (SoftHSM2: its token
 * directory; see docs/SECURITY.md). */
static enum kh_err svc_drop_privileges(const char *user, struct kh_errbuf *e)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return kh_err_set(e, KH_E_FAILED_PRECONDITION, "[service] user '%s' does not exist", user);
	if (geteuid() != 0) {
		if (geteuid() == pw.pw_uid)
			return KH_OK;
		return kh_err_set(e, KH_E_FAILED_PRECONDITION, "cannot become user '%s': keyholdd does not run as root",
				  user);
	}
	if (initgroups(pw.pw_name, pw.pw_gid) != 0 || setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid) != 0 ||
	    setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid) != 0)
		return kh_err_set(e, KH_E_FAILED_PRECONDITION, "cannot become user '%s': %s", user, strerror(errno));
	if (pw.pw_uid != 0 && setuid(0) == 0)
		return kh_err_set(e, KH_E_INTERNAL, "dropped to '%s' but root could be regained", user);
	/* Credential changes reset the dumpable flag: set it again. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		log_warn("PR_SET_DUMPABLE failed");
	log_info("running as %s (uid %u, gid %u)", user, (unsigned)pw.pw_uid, (unsigned)pw.pw_gid);
	return KH_OK;
}

enum kh_err svc_service_uid(const struct svc_config *cfg, uid_t *out, struct kh_errbuf *e)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (cfg->user == NULL) {
		*out = geteuid();
		return KH_OK;
	}
	if (getpwnam_r(cfg->user, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return kh_err_set(e, KH_E_FAILED_PRECONDITION, "[service] user '%s' does not exist", cfg->user);
	*out = pw.pw_uid;
	return KH_OK;
}

enum kh_err svc_state_open(const struct svc_config *cfg, bool lock, struct store_dir **out, struct kh_errbuf *e)
{
	/* Every file keyholdd keeps in state_dir; checked before any is used
	 * so that a planted link or another user's file stops the start. */
	static const char *const files[] = { STORE_FILE,   STORE_FILE "-wal", STORE_FILE "-shm", "key-grants",
					     "key-grants.imported", "audit.log", "fips-keys", "fips-keys.tmp",
					     STORE_DIR_LOCK_FILE };
	struct store_dir *sd = NULL;
	uid_t uid;
	size_t i;
	int r = KH_OK;

	KH_TRY(svc_service_uid(cfg, &uid, e));
	KH_TRY(store_dir_open(cfg->state_dir, uid, &sd, e));
	/* The lock first: a second keyholdd is told so, whatever else. */
	if (lock)
		KH_TRY(store_dir_lock(sd, e));
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		KH_TRY(store_dir_check(sd, files[i], e));
	*out = sd;
	sd = NULL;
out:
	store_dir_free(sd);
	return r;
}

static enum kh_err svc_fetch_digests(struct svc *s, struct kh_errbuf *e)
{
	static const char *const names[KH_DIGEST_MAX + 1] = {
		[KH_DIGEST_SHA256] = "SHA256", [KH_DIGEST_SHA384] = "SHA384", [KH_DIGEST_SHA512] = "SHA512",
		[KH_DIGEST_SHA1] = "SHA1",     [KH_DIGEST_MD5] = "MD5",       [KH_DIGEST_SHA224] = "SHA224",
	};
	unsigned i;

	for (i = 1; i <= KH_DIGEST_MAX; i++) {
		s->md[i] = EVP_MD_fetch(s->libctx, names[i], NULL);
		if (s->md[i] == NULL && (i == KH_DIGEST_SHA256 || i == KH_DIGEST_SHA384 || i == KH_DIGEST_SHA512))
			return kh_err_set(e, KH_E_INTERNAL, "OpenSSL offers no %s", names[i]);
	}
	return KH_OK;
}

static void svc_free_digests(struct svc *s)
{
	unsigned i;

	for (i = 0; i <= KH_DIGEST_MAX; i++) {
		EVP_MD_free(s->md[i]);
		s->md[i] = NULL;
	}
}

/* st: the state database for the anchor's copy, opened before the
 * privilege drop (taken). */
static enum kh_err svc_open_audit(struct svc *s, struct store *st, struct kh_errbuf *e)
{
	struct audit_config ac;
	size_t plen = strlen(s->cfg->state_dir) + sizeof("/audit.log");
	char *path = malloc(plen);
	int r;

	if (path == NULL) {
		store_close(st);
		return kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	}
	snprintf(path, plen, "%s/audit.log", s->cfg->state_dir);
	memset(&ac, 0, sizeof(ac));
	ac.path = s->cfg->audit_file != NULL ? s->cfg->audit_file : path;
	ac.key = s->cfg->audit_key != NULL ? s->cfg->audit_key : SVC_AUDIT_KEY_DEFAULT;
	ac.checkpoint_records = s->cfg->audit_checkpoint_records;
	ac.checkpoint_interval_s = s->cfg->audit_checkpoint_interval_s;
	ac.anchor_interval_s = s->cfg->audit_anchor_interval_s;
	ac.sync_always = s->cfg->audit_sync_always;
	ac.store = st;
	ac.tamper_refuse = s->cfg->audit_tamper_refuse;
	ac.rotate_size = s->cfg->audit_rotate_size;
	ac.rotate_age_s = s->cfg->audit_rotate_age_s;
	ac.rotate_keep = s->cfg->audit_rotate_keep;
	ac.now_s = svc_now;
	ac.journal = s->cfg->audit_journal;
	ac.node = s->cfg->cluster_node;
	ac.anchor_per_node = s->cfg->state_postgresql;
	r = audit_open(&ac, s->hsm, &s->audit, e);
	free(path);
	return r;
}

/* One worker per token session (DESIGN §10): a worker without a session
 * would only wait for one, so the pool is the smaller of [service]
 * workers and the sessions the token gave (sessions, ulMaxSessionCount). */
static enum kh_err svc_size_pool(struct svc *s, struct kh_errbuf *e)
{
	struct kh_token_info ti;

	hsm_token_info(s->hsm, &ti);
	if (ti.sessions == 0)
		return kh_err_set(e, KH_E_UNAVAILABLE, "the token gave no session");
	s->workers = s->cfg->workers < ti.sessions ? s->cfg->workers : ti.sessions;
	if (s->workers < s->cfg->workers)
		log_info("%u workers: one per token session ([service] workers = %u)", s->workers, s->cfg->workers);
	return KH_OK;
}

/* A notification from the state database's listener thread (cluster/):
 * what a node (another, or this one) changed, dropped from this node's
 * caches; the next use reads it again. */
static void svc_state_changed(const char *topic, void *arg)
{
	struct svc *s = arg;

	log_dbg("state database: notified that '%s' changed: dropped from this node's caches", topic);
	if (strcmp(topic, STORE_TOPIC_ALL) == 0) {
		access_grants_invalidate(s->grants);
		hsm_keys_invalidate(s->hsm, NULL);
	} else if (strcmp(topic, "grants") == 0) {
		access_grants_invalidate(s->grants);
	} else if (strncmp(topic, "key:", 4) == 0) {
		hsm_keys_invalidate(s->hsm, topic + 4);
	}
}

/* The FIPS ERROR state's reaction (fips/ calls it through a callback, so
 * it never reaches into the server): stop listening and drain. */
static void svc_fips_error_shutdown(void *arg)
{
	struct svc *s = arg;

	if (s->server != NULL)
		svc_server_shutdown(s->server);
}

enum kh_err svc_start(struct svc *s, struct event_base *base, struct kh_errbuf *e)
{
	struct hsm_config hc;
	struct kh_errbuf why = { 0 };
	struct store *ast = NULL, *gst = NULL, *cst = NULL;
	int r = KH_OK;

	/* state_dir before anything reads or writes in it (the FIPS key list
	 * is read next): a second keyholdd on it, or a directory or file
	 * others can write, stops the start here. */
	if (svc_state_open(s->cfg, true, &s->state_dir, &why) != KH_OK)
		return kh_err_set(e, why.code, "state: %s", why.msg);
	/* FIPS mode first: keyholdd's own library context (and in validated
	 * mode the FIPS provider) before anything is fetched from it. */
	if (selftest_init(s, &why) != KH_OK) {
		s->exit_code = SELFTEST_EXIT_ERROR;
		return kh_err_set(e, why.code, "%s", why.msg);
	}
	KH_TRY(proto_check_methods(e));
	KH_TRY(svc_fetch_digests(s, e));
	memset(&hc, 0, sizeof(hc));
	hc.module = s->cfg->module;
	hc.uri = s->cfg->uri;
	hc.pin_file = s->cfg->pin_file;
	KH_TRY(svc_service_uid(s->cfg, &hc.pin_owner, e));
	hc.sessions = s->cfg->sessions;
	hc.lock_spin_us = s->cfg->lock_spin_us;
	if (hsm_open(&hc, &s->hsm, &why) != KH_OK)
		return kh_err_set(e, why.code, "token: %s: %s", kh_err_name(why.code), why.msg);
	s->metrics = svc_metrics_new();
	KH_ENSURE(s->metrics != NULL, kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "out of memory"));
	hsm_set_op_observer(s->hsm, metrics_token_observer, s);
	/* Power-up self-tests before any listener opens (DESIGN §8):
	 * INIT -> SELF_TEST -> OPERATIONAL | ERROR. */
	selftest_install_hooks(s);
	if (selftest_run_powerup(s, &why) != KH_OK) {
		s->exit_code = SELFTEST_EXIT_ERROR;
		return kh_err_set(e, why.code, "FIPS ERROR state: %s; closing the token, keyholdd halts (exit status %d)",
				  why.msg, SELFTEST_EXIT_ERROR);
	}
	/* PKI state (and finishing what a crash interrupted) once the token
	 * has passed its tests. */
	if (svc_pki_open(s, &why) != KH_OK)
		return kh_err_set(e, why.code, "state: %s: %s", kh_err_name(why.code), why.msg);
	KH_TRY(svc_size_pool(s, e));
	KH_ENSURE(svc_pool_new(base, s->workers, &s->pool) == KH_OK,
		  kh_err_set(e, KH_E_RESOURCE_EXHAUSTED, "cannot start %u workers", s->workers));
	/* GetStatus's, the grants' and the cluster's own connections to the
	 * state database, like every database handle before the privilege
	 * drop. */
	KH_TRY(svc_status_refresh_new(s, e));
	if (svc_store_open(s, &gst, &why) != KH_OK)
		return kh_err_set(e, why.code, "key grants: %s", why.msg);
	KH_TRY(access_grants_new(s->cfg, s->state_dir, gst, &s->grants, e));
	if (svc_store_open(s, &cst, &why) != KH_OK)
		return kh_err_set(e, why.code, "cluster: %s", why.msg);
	KH_TRY(svc_cluster_open(s, cst, e));
	/* What another node changes reaches this node's caches. */
	KH_TRY(svc_cluster_listen(s, svc_state_changed, s, e));
	s->announce = svc_cluster_notify;
	if (s->cfg->tls_listen != NULL)
		KH_TRY(svc_tls_ctx_new(s, &s->tls_ctx, e));
	KH_TRY(svc_server_new(s, base, &s->server, e));
	/* Bound before the privilege drop, like the other listeners. */
	KH_TRY(metrics_start(s, base, e));
	KH_TRY(acme_http01_start(s, base, e));
	KH_ENSURE(selftest_attach_loop(s, base, svc_fips_error_shutdown, s) == KH_OK,
		  kh_err_set(e, KH_E_INTERNAL, "cannot watch for the FIPS ERROR state"));
	/* The audit anchor's database handle, like the PKI state's, is opened
	 * before the privilege drop. */
	if (svc_store_open(s, &ast, &why) != KH_OK)
		return kh_err_set(e, why.code, "audit log: %s", why.msg);
	if (s->cfg->user != NULL && (r = svc_drop_privileges(s->cfg->user, e)) != KH_OK) {
		store_close(ast);
		goto out;
	}
	/* Before the loop runs: no request is served without a record. */
	if (svc_open_audit(s, ast, &why) != KH_OK)
		return kh_err_set(e, why.code, "audit log: %s", why.msg);
	s->enroll_auto = svc_tp_enroll_auto;
	KH_TRY(svc_cluster_start(s, base, e));
	KH_TRY(svc_expiry_start(s, base, e));
	KH_TRY(svc_scep_poll_start(s, base, e));
	KH_TRY(svc_revsched_start(s, base, e));
out:
	return r;
}

void svc_stop(struct svc *s)
{
	/* The connections' event loops first: a request running in place on
	 * one uses what is torn down below. */
	if (s->server != NULL)
		svc_server_stop_loops(s->server);
	/* Workers next: their completions still reach the connections;
	 * answers waiting for the audit group commit are completions too. */
	svc_pool_join(s->pool);
	audit_commit_drain(s->audit);
	svc_pool_free(s->pool);
	s->pool = NULL;
	svc_status_refresh_free(s);
	svc_expiry_stop(s);
	svc_scep_poll_stop(s);
	svc_revsched_stop(s);
	/* After the scheduled jobs: their roles are given up for another node. */
	svc_cluster_stop(s);
	metrics_stop(s);
	acme_http01_stop(s);
	svc_server_free(s->server);
	s->server = NULL;
	svc_pki_close(s);
	audit_close(s->audit);
	s->audit = NULL;
	access_grants_free(s->grants);
	s->grants = NULL;
	SSL_CTX_free(s->tls_ctx);
	s->tls_ctx = NULL;
	/* Closing the token also cleanses the PIN. */
	hsm_close(s->hsm);
	s->hsm = NULL;
	svc_metrics_free(s->metrics);
	s->metrics = NULL;
	svc_free_digests(s);
	selftest_free(s);
	/* Last: closing it releases the instance lock. */
	store_dir_free(s->state_dir);
	s->state_dir = NULL;
}
