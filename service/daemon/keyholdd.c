/* keyholdd.c: keyholdd start-up and shutdown: hardening, configuration, the
 * token, the worker pool, the listener, readiness, and the event loop. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "kh_log.h"
#include "kh_util.h"
#include "fips/fips.h"
#include "core/svc.h"
#include "core/svc_clock.h"
#include "net/net.h"
#include "daemon/lifecycle.h"
#include "daemon/notify.h"
#include "daemon/reload.h"
#include "revocation/revocation.h"
#include "store/store_dir.h"
#include "config/config.h"

#define EXIT_CONFIG 78 /* EX_CONFIG */

static void usage(FILE *fp)
{
	fprintf(fp, "usage: keyholdd [--config FILE] [--foreground] [--check]\n"
		    "       keyholdd --fips-install\n"
		    "  --config FILE   the INI configuration (keyholdd.conf(5); default " KH_DEFAULT_CONFIG ")\n"
		    "  --foreground    stay in the foreground and log to stderr (or journald)\n"
		    "  --check         validate the configuration and the PIN file, then exit\n"
		    "  --fips-install  write the software-integrity sidecar (.keyholdd.hmac) next to\n"
		    "                  this executable, for FIPS mode (docs/FIPS.md)\n");
}

/* PR_SET_DUMPABLE=0 and no core files: the PIN must never reach a dump. */
static void svc_harden(void)
{
	struct rlimit rl = { 0, 0 };

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		log_warn("PR_SET_DUMPABLE failed");
	if (setrlimit(RLIMIT_CORE, &rl) != 0)
		log_warn("RLIMIT_CORE failed");
	/* One descriptor per connection: take what the hard limit allows. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			log_warn("cannot raise RLIMIT_NOFILE");
	}
	signal(SIGPIPE, SIG_IGN);
	/* The PIN lives in the secure heap (mlocked, guarded). */
	if (CRYPTO_secure_malloc_init(32768, 32) != 1)
		log_warn("OpenSSL secure heap unavailable; the PIN is kept in ordinary memory");
}

/* keyholdd --check in FIPS mode: the provider fips_mode asks for loads and
 * the executable matches its integrity sidecar, so that a unit's
 * ExecStartPre catches what would otherwise halt start-up with exit 70. */
static enum kh_err svc_check_fips(struct svc_config *cfg, struct kh_errbuf *e)
{
	struct kh_errbuf why = { 0 };
	struct svc s;
	enum kh_err r;

	memset(&s, 0, sizeof(s));
	s.cfg = cfg;
	KH_TRY(selftest_init(&s, &why));
	KH_TRY(selftest_integrity_check(s.libctx, &why));
out:
	selftest_free(&s);
	if (r != KH_OK)
		r = kh_err_set(e, r, "fips_mode = %s: %s", svc_fips_mode_name(cfg->fips_mode), why.msg);
	return r;
}

/* keyholdd --check: prints what is wrong (or OK) for the person at the
 * terminal; main maps an error to EX_CONFIG. */
static enum kh_err svc_check(struct svc_config *cfg)
{
	struct kh_errbuf e = { 0 };
	struct store_dir *sd = NULL;
	char *pin = NULL;
	size_t len = 0;
	uid_t uid = 0;
	const char *step = ""; /* printed before the message */
	enum kh_err r;

	KH_TRY(svc_service_uid(cfg, &uid, &e));
	KH_TRY(hsm_pin_read(cfg->pin_file, uid, &pin, &len, &e));
	hsm_pin_free(pin, len);
	pin = NULL;
	/* state_dir's owner and mode and its files, without the instance
	 * lock (a running keyholdd holds it). */
	step = "state: ";
	KH_TRY(svc_state_open(cfg, false, &sd, &e));
	store_dir_free(sd);
	sd = NULL;
	step = "";
	KH_ENSURE(access(cfg->module, R_OK) == 0,
		  kh_err_set(&e, KH_E_FAILED_PRECONDITION, "PKCS#11 module %s is not readable", cfg->module));
	if (cfg->fips_mode != SVC_FIPS_OFF)
		KH_TRY(svc_check_fips(cfg, &e));
	printf("%s: OK\n", cfg->path);
out:
	if (r != KH_OK)
		fprintf(stderr, "keyholdd: %s: %s%s\n", cfg->path, step, e.msg);
	store_dir_free(sd);
	hsm_pin_free(pin, len);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "check", no_argument, NULL, 'k' },
		{ "fips-install", no_argument, NULL, 'I' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL;
	bool foreground = false, check = false, fips_install = false, http_init = false;
	struct svc s;
	struct svc_config *cfg = NULL;
	struct kh_errbuf e = { 0 };
	struct event_base *base = NULL;
	int opt, rc = 1;

	while ((opt = getopt_long(argc, argv, "c:fkhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': config = optarg; break;
		case 'f': foreground = true; break;
		case 'k': check = true; break;
		case 'I': fips_install = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("keyholdd %s\n", KEYHOLD_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (fips_install && config == NULL && optind == argc) {
		if (selftest_integrity_install(stdout, &e) != KH_OK) {
			fprintf(stderr, "keyholdd: %s\n", e.msg);
			return 1;
		}
		return 0;
	}
	if (optind != argc || fips_install) {
		usage(stderr);
		return 2;
	}
	if (config == NULL)
		config = KH_DEFAULT_CONFIG;

	memset(&s, 0, sizeof(s));
	s.start_us = kh_now_mono_us();
	atomic_store(&s.state, SVC_STATE_INIT);
	svc_harden();
	if (svc_config_load(config, &cfg, &e) != KH_OK) {
		fprintf(stderr, "keyholdd: %s\n", e.msg);
		return EXIT_CONFIG;
	}
	s.cfg = cfg;
	cfg = NULL;
	kh_log_set_level((enum kh_log_level)s.cfg->log_level);
	if (check) {
		rc = svc_check(s.cfg) == KH_OK ? 0 : EXIT_CONFIG;
		svc_config_free(s.cfg);
		return rc;
	}
	if (!foreground && daemon(0, 0) != 0) {
		/* Daemonise before C_Initialize: never fork after it. */
		fprintf(stderr, "keyholdd: daemon: %s\n", strerror(errno));
		goto out;
	}
	if (!foreground)
		kh_log_use_syslog();
	log_event(KH_LOG_INFO, KH_MSGID_START, "keyholdd %s starting (config %s)", KEYHOLD_VERSION, config);

	/* Before any thread: libcurl's global set-up is not thread-safe. */
	svc_clock_init();
	if (svc_http_global_init(&e) != KH_OK) {
		log_err("%s", e.msg);
		goto out;
	}
	http_init = true;
	evthread_use_pthreads();
	base = event_base_new();
	if (base == NULL) {
		log_err("cannot create the event loop");
		goto out;
	}
	svc_notify_init(&s);
	if (svc_start(&s, base, &e) != KH_OK) {
		log_err("%s", e.msg);
		svc_notify_status("failed to start: %s", e.msg);
		if (s.exit_code == SELFTEST_EXIT_ERROR)
			log_err("keyholdd halts (exit status %d)", SELFTEST_EXIT_ERROR);
		rc = s.exit_code != 0 ? s.exit_code : 1;
		goto out;
	}
	log_event(KH_LOG_INFO, KH_MSGID_READY, "keyholdd %s ready in %llu ms (%u workers)", KEYHOLD_VERSION,
		 (unsigned long long)((kh_now_mono_us() - s.start_us) / 1000u), s.workers);
	if (svc_reload_start(&s, base, &e) != KH_OK || svc_notify_start(&s, base, &e) != KH_OK) {
		log_err("%s", e.msg);
		goto out;
	}
	event_base_dispatch(base);
	rc = s.exit_code;
	log_event(KH_LOG_INFO, KH_MSGID_STOP, "%s", rc == SELFTEST_EXIT_ERROR ? "stopped in the FIPS ERROR state" : "stopped");
out:
	svc_notify_stop();
	svc_stop(&s);
	if (base != NULL)
		event_base_free(base);
	svc_config_free(s.cfg);
	/* After the live configuration: those reloads replaced. */
	svc_reload_stop();
	if (http_init)
		svc_http_global_cleanup();
	return rc;
}
