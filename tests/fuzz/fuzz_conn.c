/* fuzz_conn.c: a whole connection into the real service: keyholdd's pieces
 * (config, SoftHSM2 token, worker pool, key policy, audit log, server) are
 * started once in-process; every input is the byte stream of one Unix
 * connection (a socketpair adopted by the server as if accepted), fed
 * while the event loop runs, until the server has answered and closed.
 * The peer holds the signer and auditor roles with grants on two token
 * keys, so Sign, the policy checks, the audit RPCs and every decoder are
 * reached; admin RPCs are refused (key generation would fill the token).
 * The service starts exactly as keyholdd does (svc_start), so FIPS state,
 * the PKI store and the audit log are the real ones. The token is a
 * throwaway one made with scripts/softhsm-token.sh. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "audit/audit.h"
#include "kh_log.h"
#include "kh_util.h"
#include "core/svc.h"
#include "rpc/dispatch.h"
#include "net/net.h"
#include "daemon/lifecycle.h"
#include "config/config.h"
#include "pool/pool.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_ROTATE 2000 /* inputs between fresh audit logs */

static struct {
	struct svc s;
	struct event_base *base;
	char dir[64];
	char audit_path[128];
	unsigned runs;
} fz;

static int fz_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* The throwaway token and state go when the process ends (no fork after
 * C_Initialize: removed here, not by rm). */
static void fz_cleanup(void)
{
	if (fz.dir[0] != '\0' && getenv("KH_KEEP") == NULL)
		nftw(fz.dir, fz_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* At exit (libFuzzer ends with exit()): the workers and the audit log's
 * threads stop first, so that none uses OpenSSL or the token while
 * OpenSSL's own exit handler, registered before this one and so run
 * after it, tears OpenSSL down (the checkpoint thread could be signing). */
static void fz_stop(void)
{
	svc_pool_free(fz.s.pool);
	fz.s.pool = NULL;
	audit_close(fz.s.audit);
	fz.s.audit = NULL;
}

static void fz_die(const char *what, const char *msg)
{
	fprintf(stderr, "fuzz_conn: %s: %s\n", what, msg);
	exit(1);
}

static void fz_audit_open(void)
{
	struct audit_config ac;
	struct kh_errbuf e = { 0 };

	memset(&ac, 0, sizeof(ac));
	ac.path = fz.audit_path;
	ac.checkpoint_records = 64;
	ac.checkpoint_interval_s = 60;
	if (audit_open(&ac, fz.s.hsm, &fz.s.audit, &e) != KH_OK)
		fz_die("audit", e.msg);
}

static void fz_keygen(const char *name, enum kh_key_type t)
{
	struct kh_key_info ki;
	struct kh_errbuf e = { 0 };
	enum kh_err r;

	memset(&ki, 0, sizeof(ki));
	r = hsm_key_generate(fz.s.hsm, name, t, &ki, &e);
	if (r != KH_OK && r != KH_E_ALREADY_EXISTS)
		fz_die(name, e.msg);
	kh_key_info_clear(&ki);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *src = getenv("KH_SRC");
	char cmd[512], conf[2048], path[128];
	struct kh_errbuf e = { 0 };
	struct svc_config *cfg = NULL;

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	if (src == NULL)
		src = KH_SOURCE_DIR;
	snprintf(fz.dir, sizeof(fz.dir), "/tmp/kh-fuzz-conn.XXXXXX");
	if (mkdtemp(fz.dir) == NULL)
		fz_die("mkdtemp", strerror(errno));
	atexit(fz_cleanup);
	/* The token first: nothing may fork after C_Initialize. */
	snprintf(cmd, sizeof(cmd), "'%s/scripts/softhsm-token.sh' '%s/token' keyhold > /dev/null", src, fz.dir);
	if (system(cmd) != 0)
		fz_die("softhsm-token.sh", "failed");
	snprintf(path, sizeof(path), "%s/token/softhsm2.conf", fz.dir);
	setenv("SOFTHSM2_CONF", path, 1);
	snprintf(path, sizeof(path), "%s/state", fz.dir);
	mkdir(path, 0700);
	snprintf(fz.audit_path, sizeof(fz.audit_path), "%s/state/audit.log", fz.dir);
	snprintf(conf, sizeof(conf),
		 "[service]\nsocket = %s/sock\nstate_dir = %s/state\nworkers = 2\nmax_inflight = 8\n"
		 /* loops = 1: the connection on the loop this harness runs */
		 "log_level = error\nrate = 0\nloops = 1\n"
		 "[token]\nmodule = /usr/lib/softhsm/libsofthsm2.so\nuri = pkcs11:token=keyhold\n"
		 "pin_file = %s/token/pin\nsessions = 4\n"
		 "[access]\nsigner = uid:%u\nauditor = uid:%u\n"
		 "[key:fz-ec]\nsigners = uid:%u\ndigests = sha256,sha384\n"
		 "[key:fz-rsa]\nsigners = uid:%u\npadding = pss\n"
		 "[audit]\ncheckpoint_records = 64\ncheckpoint_interval = 60\n",
		 fz.dir, fz.dir, fz.dir, (unsigned)getuid(), (unsigned)getuid(), (unsigned)getuid(),
		 (unsigned)getuid());
	if (svc_config_parse(conf, "fuzz.conf", &cfg, &e) != KH_OK)
		fz_die("config", e.msg);
	fz.s.cfg = cfg;
	kh_log_set_level(KH_LOG_ERR);
	evthread_use_pthreads();
	fz.base = event_base_new();
	if (fz.base == NULL)
		fz_die("event_base_new", "failed");
	/* The same start-up as keyholdd (service/daemon/lifecycle.c). */
	fz.s.start_us = kh_now_mono_us();
	if (svc_start(&fz.s, fz.base, &e) != KH_OK)
		fz_die("start", e.msg);
	fz_keygen("fz-ec", KH_KEY_P256);
	fz_keygen("fz-rsa", KH_KEY_RSA2048);
	atexit(fz_stop);
	return 0;
}

/* A fresh audit log now and then keeps AuditShow/AuditVerify (which read
 * the whole file) from slowing every later input. No job runs meanwhile:
 * the pool is drained and rebuilt around it. */
static void fz_rotate(void)
{
	svc_pool_free(fz.s.pool);
	fz.s.pool = NULL;
	audit_close(fz.s.audit);
	fz.s.audit = NULL;
	unlink(fz.audit_path);
	fz_audit_open();
	if (svc_pool_new(fz.base, fz.s.cfg->workers, &fz.s.pool) != KH_OK)
		fz_die("pool", "failed");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];
	size_t off = 0;
	bool shut = false;
	char sink[65536];

	if (++fz.runs % FZ_ROTATE == 0)
		fz_rotate();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return 0;
	if (svc_server_adopt(fz.s.server, sv[1]) != KH_OK) {
		close(sv[0]);
		return 0;
	}
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	for (;;) {
		ssize_t n;

		if (off < size) {
			n = write(sv[0], data + off, size - off);
			if (n > 0)
				off += (size_t)n;
			else if (n < 0 && errno != EAGAIN)
				off = size; /* the server closed on us */
		}
		if (off == size && !shut) {
			shutdown(sv[0], SHUT_WR);
			shut = true;
		}
		/* One round of the loop: the server reads, dispatches, writes;
		 * at worst it waits for the once-a-second housekeeping timer. */
		event_base_loop(fz.base, EVLOOP_ONCE);
		for (;;) {
			n = read(sv[0], sink, sizeof(sink));
			if (n <= 0)
				break;
		}
		if (n == 0)
			break; /* answered everything and closed */
		if (n < 0 && errno != EAGAIN)
			break;
	}
	close(sv[0]);
	/* A connection closed early (a bad frame) may leave jobs running:
	 * finish them, so every input is judged on its own. */
	while (svc_server_inflight(fz.s.server) > 0)
		event_base_loop(fz.base, EVLOOP_ONCE);
	return 0;
}
