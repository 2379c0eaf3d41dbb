/* test_config.c: keyholdd's INI configuration (service/config/config.c, DESIGN
 * §6): defaults, every key, and a "NAME:LINE: reason" error with the right
 * line for every kind of bad line. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kh_log.h"
#include "proto.h"
#include "config/config.h"

#define TOKEN "[token]\nmodule = /usr/lib/softhsm/libsofthsm2.so\nuri = pkcs11:token=keyhold\npin_file = /etc/keyhold/pin\n"

static struct svc_config *parse_ok(const char *text)
{
	struct svc_config *c = NULL;
	struct kh_errbuf e = { 0 };

	if (svc_config_parse(text, "test.conf", &c, &e) != KH_OK)
		fail_msg("refused: %s\n---\n%s---", e.msg, text);
	assert_non_null(c);
	return c;
}

/* Expects a refusal at line with a reason containing want. */
static void parse_bad_at(const char *text, int line, const char *want)
{
	struct svc_config *c = (struct svc_config *)(uintptr_t)0x1;
	struct kh_errbuf e = { 0 };
	char prefix[64];

	if (svc_config_parse(text, "test.conf", &c, &e) == KH_OK)
		fail_msg("accepted:\n%s---", text);
	assert_int_equal(e.code, KH_E_INVALID_ARGUMENT);
	assert_true(c == (struct svc_config *)(uintptr_t)0x1);
	snprintf(prefix, sizeof(prefix), "test.conf:%d: ", line);
	if (strncmp(e.msg, prefix, strlen(prefix)) != 0)
		fail_msg("expected '%s...', got '%s'\n---\n%s---", prefix, e.msg, text);
	if (want != NULL && strstr(e.msg, want) == NULL)
		fail_msg("'%s' does not mention '%s'", e.msg, want);
}

/* A [service] key with a bad value, on line 2, with a valid [token]. */
static void service_bad(const char *kv, const char *want)
{
	char text[1024];

	snprintf(text, sizeof(text), "[service]\n%s\n" TOKEN, kv);
	parse_bad_at(text, 2, want);
}

static void service_ok(const char *kv, struct svc_config **out)
{
	char text[1024];

	snprintf(text, sizeof(text), "[service]\n%s\n" TOKEN, kv);
	*out = parse_ok(text);
}

static void test_defaults(void **state)
{
	struct svc_config *c = parse_ok(TOKEN);

	(void)state;
	assert_string_equal(c->path, "test.conf");
	assert_string_equal(c->socket, KH_DEFAULT_SOCKET);
	assert_int_equal(c->socket_mode, 0660);
	assert_null(c->socket_group);
	assert_string_equal(c->state_dir, "/var/lib/keyhold");
	assert_int_equal(c->workers, 4);
	assert_int_equal(c->fips_mode, SVC_FIPS_OFF);
	assert_false(c->fips_allow_eddsa);
	assert_int_equal(c->frame_max, PROTO_FRAME_MAX_DEFAULT);
	assert_int_equal(c->max_connections, 4096);
	assert_int_equal(c->max_inflight, 128);
	assert_int_equal(c->idle_timeout_s, 600);
	assert_false(c->loop_sched_normal);
	assert_int_equal(c->lock_spin_us, 30);
	assert_int_equal(c->log_level, KH_LOG_INFO);
	assert_string_equal(c->module, "/usr/lib/softhsm/libsofthsm2.so");
	assert_string_equal(c->uri, "pkcs11:token=keyhold");
	assert_string_equal(c->pin_file, "/etc/keyhold/pin");
	assert_int_equal(c->sessions, 8);
	assert_null(c->tls_listen);
	assert_null(c->tls_key);
	assert_null(c->tls_cert);
	assert_null(c->tls_client_truststore);
	assert_null(c->grants);
	assert_int_equal(c->n_grants, 0);
	svc_config_free(c);
	svc_config_free(NULL);
}

static void test_every_key(void **state)
{
	const char *text =
		"; keyhold.conf with every key\n"
		"# both comment styles\n"
		"[service]\n"
		"socket = /run/kh/kh.sock\n"
		"socket_group = keyhold\n"
		"socket_mode = 0600\n"
		"state_dir = /srv/keyhold\n"
		"workers = 16\n"
		"fips_mode = aligned   ; inline comment\n"
		"fips_allow_eddsa = yes\n"
		"frame_max = 65536\n"
		"max_connections = 10\n"
		"max_inflight = 5\n"
		"idle_timeout = 30\n"
		"log_level = debug\n"
		"\n"
		"[token]\n"
		"module=/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so\n"
		"uri = pkcs11:token=tpm%20token;serial=1\n"
		"pin_file = /etc/keyhold/tpm.pin\n"
		"sessions = 2\n"
		"[tls]\n"
		"listen = 127.0.0.1:7443\n"
		"key = my-tls-key\n"
		"cert = /etc/keyhold/tls.pem\n"
		"client_truststore = clients\n"
		"[access]\n"
		"admin = uid:0, gid:5\n"
		"signer = user:root group:root\n"
		"auditor = cert:spiffe://example.org/auditor\n"
		"admin = uid:1000\n";
	struct svc_config *c = parse_ok(text);

	(void)state;
	assert_string_equal(c->socket, "/run/kh/kh.sock");
	assert_string_equal(c->socket_group, "keyhold");
	assert_int_equal(c->socket_mode, 0600);
	assert_string_equal(c->state_dir, "/srv/keyhold");
	assert_int_equal(c->workers, 16);
	assert_int_equal(c->fips_mode, SVC_FIPS_ALIGNED);
	assert_true(c->fips_allow_eddsa);
	assert_int_equal(c->frame_max, 65536);
	assert_int_equal(c->max_connections, 10);
	assert_int_equal(c->max_inflight, 5);
	assert_int_equal(c->idle_timeout_s, 30);
	assert_int_equal(c->log_level, KH_LOG_DEBUG);
	assert_string_equal(c->module, "/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so");
	assert_string_equal(c->uri, "pkcs11:token=tpm%20token;serial=1");
	assert_string_equal(c->pin_file, "/etc/keyhold/tpm.pin");
	assert_int_equal(c->sessions, 2);
	assert_string_equal(c->tls_listen, "127.0.0.1:7443");
	assert_string_equal(c->tls_key, "my-tls-key");
	assert_string_equal(c->tls_cert, "/etc/keyhold/tls.pem");
	assert_string_equal(c->tls_client_truststore, "clients");
	/* [access]: a role may be listed again; the grants add up. */
	assert_int_equal(c->n_grants, 6);
	assert_int_equal(c->grants[0].role, SVC_ROLE_ADMIN);
	assert_int_equal(c->grants[0].kind, SVC_PK_UID);
	assert_int_equal(c->grants[0].uid, 0);
	assert_int_equal(c->grants[1].kind, SVC_PK_GID);
	assert_int_equal(c->grants[1].gid, 5);
	assert_int_equal(c->grants[2].role, SVC_ROLE_SIGNER);
	assert_int_equal(c->grants[2].kind, SVC_PK_UID); /* user:root */
	assert_int_equal(c->grants[2].uid, 0);
	assert_int_equal(c->grants[3].kind, SVC_PK_GID); /* group:root */
	assert_int_equal(c->grants[3].gid, 0);
	assert_int_equal(c->grants[4].role, SVC_ROLE_AUDITOR);
	assert_int_equal(c->grants[4].kind, SVC_PK_CERT);
	assert_string_equal(c->grants[4].cert, "spiffe://example.org/auditor");
	assert_int_equal(c->grants[5].role, SVC_ROLE_ADMIN);
	assert_int_equal(c->grants[5].uid, 1000);
	svc_config_free(c);
}

static void test_enum_values(void **state)
{
	static const struct {
		const char *kv;
		int fips, level;
	} cases[] = {
		{ "fips_mode = off", SVC_FIPS_OFF, -1 },
		{ "fips_mode = aligned", SVC_FIPS_ALIGNED, -1 },
		{ "fips_mode = validated", SVC_FIPS_VALIDATED, -1 },
		{ "log_level = error", -1, KH_LOG_ERR },
		{ "log_level = warn", -1, KH_LOG_WARN },
		{ "log_level = info", -1, KH_LOG_INFO },
		{ "log_level = debug", -1, KH_LOG_DEBUG },
	};
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i;
	struct svc_config *c;
	char kv[64];

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		service_ok(cases[i].kv, &c);
		if (cases[i].fips >= 0)
			assert_int_equal(c->fips_mode, cases[i].fips);
		if (cases[i].level >= 0)
			assert_int_equal(c->log_level, cases[i].level);
		svc_config_free(c);
	}
	for (i = 0; i < 4; i++) {
		snprintf(kv, sizeof(kv), "fips_allow_eddsa = %s", yes[i]);
		service_ok(kv, &c);
		assert_true(c->fips_allow_eddsa);
		svc_config_free(c);
		snprintf(kv, sizeof(kv), "fips_allow_eddsa = %s", no[i]);
		service_ok(kv, &c);
		assert_false(c->fips_allow_eddsa);
		svc_config_free(c);
	}
	c = parse_ok(TOKEN "lock_spin_us = 0\n");
	assert_int_equal(c->lock_spin_us, 0);
	svc_config_free(c);
	c = parse_ok(TOKEN "lock_spin_us = 1000\n");
	assert_int_equal(c->lock_spin_us, 1000);
	svc_config_free(c);
	service_ok("loop_sched = normal", &c);
	assert_true(c->loop_sched_normal);
	svc_config_free(c);
	service_ok("loop_sched = batch", &c);
	assert_false(c->loop_sched_normal);
	svc_config_free(c);
	/* Boundaries of the numeric keys are accepted. */
	service_ok("workers = 1", &c);
	assert_int_equal(c->workers, 1);
	svc_config_free(c);
	service_ok("workers = 256", &c);
	assert_int_equal(c->workers, 256);
	svc_config_free(c);
	service_ok("frame_max = 4096", &c);
	assert_int_equal(c->frame_max, 4096);
	svc_config_free(c);
	snprintf(kv, sizeof(kv), "frame_max = %u", PROTO_FRAME_MAX_LIMIT);
	service_ok(kv, &c);
	assert_int_equal(c->frame_max, PROTO_FRAME_MAX_LIMIT);
	svc_config_free(c);
	service_ok("idle_timeout = 86400", &c);
	assert_int_equal(c->idle_timeout_s, 86400);
	svc_config_free(c);
	service_ok("socket_mode = 660", &c); /* octal with or without the 0 */
	assert_int_equal(c->socket_mode, 0660);
	svc_config_free(c);
	service_ok("socket_mode = 0", &c);
	assert_int_equal(c->socket_mode, 0);
	svc_config_free(c);
}

static void test_bad_values(void **state)
{
	char kv[96];

	(void)state;
	service_bad("workers = 0", "workers must be a whole number from 1 to 256, not '0'");
	service_bad("workers = 257", "workers must be");
	service_bad("workers = many", "not 'many'");
	service_bad("workers = -1", "workers");
	service_bad("workers = 4x", "workers");
	service_bad("workers = 0x4", "workers");
	service_bad("workers = 4.0", "workers");
	service_bad("workers = 99999999999999999999999", "workers");
	service_bad("workers =", "workers");
	service_bad("frame_max = 4095", "frame_max");
	snprintf(kv, sizeof(kv), "frame_max = %u", PROTO_FRAME_MAX_LIMIT + 1);
	service_bad(kv, "frame_max");
	service_bad("max_connections = 0", "max_connections");
	service_bad("max_connections = 100001", "max_connections");
	service_bad("loop_sched = fifo", "loop_sched must be batch or normal");
	parse_bad_at("[token]\nmodule = /m.so\nuri = pkcs11:token=t\npin_file = /p\nlock_spin_us = 1001\n", 5, "lock_spin_us");
	service_bad("max_inflight = 0", "max_inflight");
	service_bad("max_inflight = 65537", "max_inflight");
	service_bad("idle_timeout = 0", "idle_timeout");
	service_bad("idle_timeout = 86401", "idle_timeout");
	service_bad("fips_mode = on", "fips_mode must be off, aligned or validated, not 'on'");
	service_bad("fips_mode = FIPS", "fips_mode");
	service_bad("fips_allow_eddsa = maybe", "fips_allow_eddsa must be yes or no");
	service_bad("fips_allow_eddsa = YES", "fips_allow_eddsa");
	service_bad("log_level = verbose", "log_level must be");
	service_bad("socket_mode = 0666", "others no access");
	service_bad("socket_mode = 0661", "socket_mode");
	service_bad("socket_mode = 0777", "socket_mode");
	service_bad("socket_mode = 01660", "socket_mode");
	service_bad("socket_mode = 0680", "socket_mode"); /* 8 is not octal */
	service_bad("socket_mode = rw", "socket_mode");
	service_bad("socket_mode = -0660", "socket_mode");
	service_bad("socket_mode =", "socket_mode");
	service_bad("socket =", "empty value");
	service_bad("state_dir =", "empty value");
	service_bad("socket_group =", "empty value");

	parse_bad_at("[token]\nmodule = /m.so\nuri = token=keyhold\npin_file = /p\n", 3,
		     "uri must be a PKCS#11 URI");
	parse_bad_at("[token]\nmodule = /m.so\nuri = pkcs11:token=k\npin_file = /p\nsessions = 0\n", 5, "sessions");
	parse_bad_at("[token]\nmodule = /m.so\nuri = pkcs11:token=k\npin_file = /p\nsessions = 257\n", 5, "sessions");
	parse_bad_at("[token]\nmodule =\nuri = pkcs11:token=k\npin_file = /p\n", 2, "empty value");
	parse_bad_at(TOKEN "[tls]\nlisten = 7443\nkey = k\ncert = /c\n", 6, "listen must be HOST:PORT");
	parse_bad_at(TOKEN "[tls]\nlisten = :7443\nkey = bad/key\ncert = /c\n", 7, "key must name a token key");
	parse_bad_at(TOKEN "[tls]\ncert =\n", 6, "empty value");
}

/* [audit] anchor_interval: seconds, 0 (every checkpoint) to 3600, default 1. */
static void test_audit_anchor_interval(void **state)
{
	struct svc_config *c = parse_ok(TOKEN);

	(void)state;
	assert_int_equal(c->audit_anchor_interval_s, 1);
	svc_config_free(c);
	c = parse_ok(TOKEN "[audit]\nanchor_interval = 0\n");
	assert_int_equal(c->audit_anchor_interval_s, 0);
	svc_config_free(c);
	c = parse_ok(TOKEN "[audit]\nanchor_interval = 3600\n");
	assert_int_equal(c->audit_anchor_interval_s, 3600);
	svc_config_free(c);
	parse_bad_at(TOKEN "[audit]\nanchor_interval = 3601\n", 6, "anchor_interval");
	parse_bad_at(TOKEN "[audit]\nanchor_interval = soon\n", 6, "anchor_interval");
}

static void test_unknown(void **state)
{
	(void)state;
	service_bad("sockets = /x", "unknown key 'sockets' in [service]");
	parse_bad_at(TOKEN "colour = blue\n", 5, "unknown key 'colour' in [token]");
	parse_bad_at(TOKEN "[tls]\nport = 1\n", 6, "unknown key 'port' in [tls]");
	parse_bad_at(TOKEN "[services]\nworkers = 2\n", 6, "unknown section [services]");
	parse_bad_at(TOKEN "[Service]\nworkers = 2\n", 6, "unknown section [Service]");
	parse_bad_at("workers = 2\n" TOKEN, 1, "outside any section");
	parse_bad_at("\n\n; comment\nworkers = 2\n" TOKEN, 4, "outside any section");
	/* Keys are case-sensitive. */
	service_bad("Workers = 2", "unknown key 'Workers'");
}

/* [revocation] and [expiry] (docs/REVOCATION.md). */
static void test_revocation_expiry(void **state)
{
	struct svc_config *c;
	unsigned d = 0;
	char **argv = NULL;
	struct kh_errbuf e = { 0 };

	(void)state;
	c = parse_ok(TOKEN);
	assert_int_equal(c->rev_connect_timeout_s, 5);
	assert_int_equal(c->rev_timeout_s, 15);
	assert_int_equal(c->rev_nonce, SVC_NONCE_ON);
	assert_null(c->rev_proxy);
	assert_int_equal(c->exp_notify_days, 30);
	assert_int_equal(c->exp_notify_every_s, 86400);
	assert_int_equal(c->exp_check_interval_s, 3600);
	assert_null(c->exp_hook);
	svc_config_free(c);
	c = parse_ok(TOKEN "[revocation]\nconnect_timeout = 2s\ntimeout = 1m\ncrl_max_size = 1048576\n"
			   "ocsp_max_size = 4096\nocsp_nonce = required\nproxy = http://proxy:3128\n"
			   "[expiry]\nnotify_days = 60\nnotify_every = 12h\ncheck_interval = 15m\nhook_timeout = 10s\n"
			   "hook = /bin/echo \"two words\" -x\n");
	assert_int_equal(c->rev_connect_timeout_s, 2);
	assert_int_equal(c->rev_timeout_s, 60);
	assert_int_equal(c->rev_crl_max, 1048576);
	assert_int_equal(c->rev_ocsp_max, 4096);
	assert_int_equal(c->rev_nonce, SVC_NONCE_REQUIRED);
	assert_string_equal(c->rev_proxy, "http://proxy:3128");
	assert_int_equal(c->exp_notify_days, 60);
	assert_int_equal(c->exp_notify_every_s, 12 * 3600);
	assert_int_equal(c->exp_check_interval_s, 900);
	assert_int_equal(c->exp_hook_timeout_s, 10);
	assert_string_equal(c->exp_hook[0], "/bin/echo");
	assert_string_equal(c->exp_hook[1], "two words");
	assert_string_equal(c->exp_hook[2], "-x");
	assert_null(c->exp_hook[3]);
	svc_config_free(c);
	c = parse_ok(TOKEN "[revocation]\nocsp_nonce = no\n");
	assert_int_equal(c->rev_nonce, SVC_NONCE_OFF);
	svc_config_free(c);

	parse_bad_at(TOKEN "[revocation]\ntimeout = 15\n", 6, "written with a unit");
	parse_bad_at(TOKEN "[revocation]\ntimeout = 0s\n", 6, "from 1s");
	parse_bad_at(TOKEN "[revocation]\ntimeout = 2w\n", 6, "timeout must be a duration");
	parse_bad_at(TOKEN "[revocation]\nocsp_nonce = maybe\n", 6, "yes, no or required");
	parse_bad_at(TOKEN "[revocation]\nproxy = socks5://x\n", 6, "http://");
	parse_bad_at(TOKEN "[revocation]\ncrl_max_size = 10\n", 6, "crl_max_size");
	parse_bad_at(TOKEN "[revocation]\nretries = 3\n", 6, "unknown key 'retries' in [revocation]");
	parse_bad_at(TOKEN "[expiry]\nnotify_days = 0\n", 6, "notify_days");
	parse_bad_at(TOKEN "[expiry]\nnotify_every = 1s\n", 6, "from 60s");
	parse_bad_at(TOKEN "[expiry]\nhook = notify.sh\n", 6, "absolute path");
	parse_bad_at(TOKEN "[expiry]\nhook = /nonexistent/notify.sh\n", 6, "absolute path");
	parse_bad_at(TOKEN "[expiry]\nhook = /bin/echo \"open\n", 6, "unterminated");
	parse_bad_at(TOKEN "[expiry]\nhook = /bin/echo\nhook = /bin/true\n", 7, "set twice");

	/* Durations: a unit is required; overflow is refused. */
	assert_int_equal(svc_config_duration("7d", 0, UINT32_MAX, &d), KH_OK);
	assert_int_equal(d, 7 * 86400);
	assert_int_equal(svc_config_duration("90m", 0, UINT32_MAX, &d), KH_OK);
	assert_int_equal(d, 5400);
	assert_int_equal(svc_config_duration("60", 0, UINT32_MAX, &d), KH_E_INVALID_ARGUMENT);
	assert_int_equal(svc_config_duration("d", 0, UINT32_MAX, &d), KH_E_INVALID_ARGUMENT);
	assert_int_equal(svc_config_duration("-1s", 0, UINT32_MAX, &d), KH_E_INVALID_ARGUMENT);
	assert_int_equal(svc_config_duration("99999999999d", 0, UINT32_MAX, &d), KH_E_INVALID_ARGUMENT);
	assert_int_equal(svc_config_duration("50000d", 0, UINT32_MAX, &d), KH_E_INVALID_ARGUMENT);
	assert_int_equal(svc_config_duration(NULL, 0, 1, &d), KH_E_INVALID_ARGUMENT);
	/* Command lines: no shell, quotes group, escapes inside quotes. */
	assert_int_equal(svc_config_argv("  /a   b\t\"c \\\"d\\\"\" \"\" ", &argv, &e), KH_OK);
	assert_string_equal(argv[0], "/a");
	assert_string_equal(argv[1], "b");
	assert_string_equal(argv[2], "c \"d\"");
	assert_string_equal(argv[3], "");
	assert_null(argv[4]);
	svc_config_argv_free(argv);
	argv = NULL;
	assert_int_equal(svc_config_argv("   ", &argv, &e), KH_E_INVALID_ARGUMENT);
	assert_null(argv);
	kh_err_clear(&e);
	assert_int_equal(svc_config_argv("/a $(rm -rf x) `y`;z", &argv, &e), KH_OK);
	assert_string_equal(argv[1], "$(rm"); /* words, never a shell */
	svc_config_argv_free(argv);
}

/* [metrics] (docs/OPERATIONS.md): a numeric address; loopback unless
 * allow_remote = yes. */
static void test_metrics(void **state)
{
	struct svc_config *c;

	(void)state;
	c = parse_ok(TOKEN);
	assert_false(c->metrics_listen);
	assert_int_equal(c->metrics_probe_interval_s, 5);
	svc_config_free(c);
	c = parse_ok(TOKEN "[metrics]\nlisten = 127.0.0.1:9464\nprobe_interval = 2s\n");
	assert_true(c->metrics_listen);
	assert_true(c->metrics_loopback);
	assert_string_equal(c->metrics_host, "127.0.0.1");
	assert_int_equal(c->metrics_port, 9464);
	assert_int_equal(c->metrics_probe_interval_s, 2);
	svc_config_free(c);
	c = parse_ok(TOKEN "[metrics]\nlisten = [::1]:0\n");
	assert_true(c->metrics_loopback);
	assert_string_equal(c->metrics_host, "::1");
	assert_int_equal(c->metrics_port, 0);
	svc_config_free(c);
	c = parse_ok(TOKEN "[metrics]\nlisten = 127.8.9.10:1\n");
	assert_true(c->metrics_loopback);
	svc_config_free(c);
	c = parse_ok(TOKEN "[metrics]\nlisten = 192.0.2.1:9464\nallow_remote = yes\n");
	assert_false(c->metrics_loopback);
	assert_true(c->metrics_allow_remote);
	svc_config_free(c);
	c = parse_ok(TOKEN "[metrics]\nlisten = [2001:db8::1]:9464\nallow_remote = yes\n");
	assert_false(c->metrics_loopback);
	assert_string_equal(c->metrics_host, "2001:db8::1");
	svc_config_free(c);

	parse_bad_at(TOKEN "[metrics]\nlisten = 0.0.0.0:9464\n", 6, "not a loopback address");
	parse_bad_at(TOKEN "[metrics]\nlisten = [::]:9464\n", 6, "allow_remote = yes");
	parse_bad_at(TOKEN "[metrics]\nlisten = 192.0.2.1:9464\nallow_remote = no\n", 7, "not a loopback address");
	parse_bad_at(TOKEN "[metrics]\nlisten = localhost:9464\n", 6, "not a numeric");
	parse_bad_at(TOKEN "[metrics]\nlisten = 9464\n", 6, "ADDRESS:PORT");
	parse_bad_at(TOKEN "[metrics]\nlisten = 127.0.0.1:65536\n", 6, "ADDRESS:PORT");
	parse_bad_at(TOKEN "[metrics]\nlisten = 127.0.0.1:\n", 6, "ADDRESS:PORT");
	parse_bad_at(TOKEN "[metrics]\nlisten = [::1:9464\n", 6, "ADDRESS:PORT");
	parse_bad_at(TOKEN "[metrics]\nlisten = ::1:9464\n", 6, "ADDRESS:PORT");
	parse_bad_at(TOKEN "[metrics]\nprobe_interval = 0s\n", 6, "probe_interval");
	parse_bad_at(TOKEN "[metrics]\nport = 1\n", 6, "unknown key 'port' in [metrics]");
}

static void count_restart(void *arg, const char *what)
{
	char *seen = arg;
	size_t n = strlen(seen);

	snprintf(seen + n, 512 - n, "%s;", what);
}

/* SIGHUP: reloadable settings move to the new live configuration, the
 * others keep their running value and are reported. */
static void test_reloaded(void **state)
{
	struct svc_config *old, *fresh, *live;
	char seen[512] = "";

	(void)state;
	old = parse_ok("[service]\nworkers = 4\nlog_level = info\n" TOKEN
		       "[access]\nadmin = uid:0\n[expiry]\nnotify_days = 10\n");
	fresh = parse_ok("[service]\nworkers = 2\nlog_level = debug\nsocket = /run/other.sock\n" TOKEN
			 "[access]\nsigner = uid:0\nauditor = uid:1\n[key:k]\nsigners = uid:0\n"
			 "[expiry]\nnotify_days = 20\nhook = /bin/true\n[revocation]\nproxy = http://p:3128\n"
			 "[metrics]\nlisten = 127.0.0.1:1\n");
	live = svc_config_reloaded(old, fresh, count_restart, seen);
	assert_non_null(live);
	assert_string_equal(seen, "[service] socket;[service] workers;[metrics] listen;");
	/* Kept: */
	assert_int_equal(live->workers, 4);
	assert_ptr_equal(live->socket, old->socket);
	assert_false(live->metrics_listen);
	/* Moved: */
	assert_int_equal(live->log_level, KH_LOG_DEBUG);
	assert_int_equal(live->n_grants, 2);
	assert_int_equal(live->grants[0].role, SVC_ROLE_SIGNER);
	assert_int_equal(live->n_key_policies, 1);
	assert_int_equal(live->exp_notify_days, 20);
	assert_string_equal(live->exp_hook[0], "/bin/true");
	assert_string_equal(live->rev_proxy, "http://p:3128");
	assert_null(fresh->grants);
	assert_null(fresh->key_policies);
	assert_null(fresh->exp_hook);
	assert_null(fresh->rev_proxy);
	svc_config_free(fresh);
	/* The replaced one gives up only what it owned alone. */
	svc_config_free_retired(old);
	svc_config_free(live);
	svc_config_free_retired(NULL);
}

static void test_access(void **state)
{
	struct svc_config *c;

	(void)state;
	parse_bad_at(TOKEN "[access]\noperator = uid:0\n", 6, "unknown role 'operator'");
	parse_bad_at(TOKEN "[access]\nadmin = uid:abc\n", 6, "principal 'uid:abc'");
	parse_bad_at(TOKEN "[access]\nadmin = uid:\n", 6, "principal 'uid:'");
	parse_bad_at(TOKEN "[access]\nadmin = uid:-1\n", 6, "principal");
	parse_bad_at(TOKEN "[access]\nadmin = uid:4294967295\n", 6, "principal"); /* (uid_t)-1 */
	parse_bad_at(TOKEN "[access]\nadmin = gid:1x\n", 6, "principal");
	parse_bad_at(TOKEN "[access]\nadmin = 0\n", 6, "principal '0'");
	parse_bad_at(TOKEN "[access]\nadmin = root\n", 6, "principal 'root'");
	parse_bad_at(TOKEN "[access]\nadmin = cert:\n", 6, "principal");
	/* An account that does not exist (any more) names no one: logged,
	 * ignored, and no reason to refuse the start (issue 13, item 9). */
	c = parse_ok(TOKEN "[access]\nadmin = uid:0, user:no-such-user-kh\nsigner = group:no-such-group-kh\n"
			   "[key:k]\nsigners = user:no-such-user-kh, uid:7\n");
	assert_int_equal(c->n_grants, 1);
	assert_int_equal(c->grants[0].uid, 0);
	assert_int_equal(c->n_key_policies, 1);
	assert_int_equal(c->key_policies[0].n_signers, 1);
	assert_int_equal(c->key_policies[0].signers[0].uid, 7);
	svc_config_free(c);
	/* A [key:] whose only signer's account is gone grants nothing. */
	c = parse_ok(TOKEN "[key:k]\nsigners = group:no-such-group-kh\n");
	assert_int_equal(c->n_key_policies, 1);
	assert_int_equal(c->key_policies[0].n_signers, 0);
	svc_config_free(c);
	/* The second principal of a list is checked too. */
	parse_bad_at(TOKEN "[access]\nadmin = uid:0, bogus:1\n", 6, "bogus:1");
	/* An empty list grants nothing; with indented lines under it, it is
	 * the one-principal-per-line style. */
	c = parse_ok(TOKEN "[access]\nadmin =\n");
	assert_int_equal(c->n_grants, 0);
	svc_config_free(c);
	c = parse_ok(TOKEN "[access]\nadmin =\n  uid:0\n  uid:1\n");
	assert_int_equal(c->n_grants, 2);
	assert_int_equal(c->grants[1].uid, 1);
	svc_config_free(c);

	c = parse_ok(TOKEN "[access]\nsigner = uid:4294967294\n");
	assert_int_equal(c->n_grants, 1);
	assert_int_equal(c->grants[0].uid, 4294967294u);
	svc_config_free(c);
	/* An indented line continues the list (inih multi-line values). */
	c = parse_ok(TOKEN "[access]\nadmin = uid:0\n  uid:1000\n  gid:10\nsigner = gid:20\n");
	assert_int_equal(c->n_grants, 4);
	assert_int_equal(c->grants[1].kind, SVC_PK_UID);
	assert_int_equal(c->grants[1].uid, 1000);
	assert_int_equal(c->grants[1].role, SVC_ROLE_ADMIN);
	assert_int_equal(c->grants[2].gid, 10);
	assert_int_equal(c->grants[3].role, SVC_ROLE_SIGNER);
	svc_config_free(c);
	/* A bad principal on a continuation line is reported on that line. */
	parse_bad_at(TOKEN "[access]\nadmin = uid:0\n\n  uid:x\n", 8, "uid:x");
}

static void test_repeats_and_continuations(void **state)
{
	(void)state;
	parse_bad_at("[service]\nworkers = 2\nworkers = 3\n" TOKEN, 3, "'workers' is set twice in [service]");
	parse_bad_at(TOKEN "pin_file = /other\n", 5, "'pin_file' is set twice in [token]");
	/* A section may be reopened, but a key still only set once. */
	parse_bad_at("[service]\nworkers = 2\n" TOKEN "[service]\nworkers = 3\n", 8, "set twice");
	/* An indented line continues the previous key: for a single-valued
	 * key that is a second value, reported on the indented line. */
	parse_bad_at("[service]\nsocket = /run/a\n    /run/b\n" TOKEN, 3, "indented line continues");
	parse_bad_at("[token]\nmodule = /usr/lib/softhsm/\n  libsofthsm2.so\nuri = pkcs11:token=k\npin_file = /p\n", 3,
		     "'module' is set twice");
}

static void test_syntax_errors(void **state)
{
	(void)state;
	parse_bad_at("[service]\nworkers = 2\n[token\n", 3, "syntax error");
	parse_bad_at(TOKEN "just some words\n", 5, "syntax error");
	parse_bad_at("[service]\n\n\n# c\n; c\nworkers 4\n" TOKEN, 6, "syntax error");
	parse_bad_at("[service]\n= 4\n" TOKEN, 2, NULL);
	/* The first problem in the file is the one reported, whether it is a
	 * syntax error or a bad value. */
	parse_bad_at("[service]\nnot a pair\nworkers = 0\n" TOKEN, 2, "syntax error");
	parse_bad_at("[service]\nworkers = 0\nnot a pair\n" TOKEN, 2, "workers");
	parse_bad_at("[service]\nworkers = 0\nworkers = 1\n" TOKEN, 2, "workers must be");
}

static void test_missing_token_keys(void **state)
{
	(void)state;
	/* Whole-file checks are reported at the last line. */
	parse_bad_at("[service]\nworkers = 2\n", 2, "[token] needs module, uri and pin_file");
	parse_bad_at("[token]\nmodule = /m.so\nuri = pkcs11:token=k\n", 3, "[token] needs module, uri and pin_file");
	parse_bad_at("[token]\nuri = pkcs11:token=k\npin_file = /p\n\n", 4, "needs");
	parse_bad_at("", 0, "needs");
	parse_bad_at(TOKEN "[tls]\nlisten = 127.0.0.1:7443\n", 6, "[tls] listen needs key and cert");
	parse_bad_at(TOKEN "[tls]\nlisten = 127.0.0.1:7443\nkey = k\n", 7, "[tls] listen needs key and cert");
}

/* pin_credential = NAME: $CREDENTIALS_DIRECTORY/NAME, the systemd
 * credential, in place of pin_file. */
static void test_pin_credential(void **state)
{
	const char *tok = "[token]\nmodule = /m.so\nuri = pkcs11:token=k\n";
	char text[512];
	struct svc_config *c;

	(void)state;
	assert_int_equal(unsetenv("CREDENTIALS_DIRECTORY"), 0);
	snprintf(text, sizeof(text), "%spin_credential = pin\n", tok);
	parse_bad_at(text, 4, "CREDENTIALS_DIRECTORY, which is not set");
	parse_bad_at(text, 4, "LoadCredential=pin:");

	assert_int_equal(setenv("CREDENTIALS_DIRECTORY", "/run/credentials/keyholdd.service", 1), 0);
	c = parse_ok(text);
	assert_string_equal(c->pin_file, "/run/credentials/keyholdd.service/pin");
	svc_config_free(c);

	snprintf(text, sizeof(text), "%spin_credential = ../pin\n", tok);
	parse_bad_at(text, 4, "credential name");
	snprintf(text, sizeof(text), "%spin_credential = ..\n", tok);
	parse_bad_at(text, 4, "credential name");
	snprintf(text, sizeof(text), "%spin_file = /p\npin_credential = pin\n", tok);
	parse_bad_at(text, 5, "not both");
	snprintf(text, sizeof(text), "%spin_credential = pin\npin_file = /p\n", tok);
	parse_bad_at(text, 5, "not both");
	assert_int_equal(unsetenv("CREDENTIALS_DIRECTORY"), 0);
}

static void test_line_counting(void **state)
{
	struct svc_config *c;
	char text[2048];

	(void)state;
	/* CRLF line endings, a UTF-8 BOM and no final newline. */
	c = parse_ok("\xef\xbb\xbf[service]\r\nworkers = 8\r\n[token]\r\nmodule = /m.so\r\nuri = pkcs11:token=k\r\n"
		     "pin_file = /p");
	assert_int_equal(c->workers, 8);
	assert_string_equal(c->pin_file, "/p");
	svc_config_free(c);
	parse_bad_at("[service]\r\n\r\nworkers = x\r\n" TOKEN, 3, "workers");
	parse_bad_at(TOKEN "[service]\nworkers = x", 6, "workers");

	/* A line longer than inih's buffer is refused on its own line, and
	 * does not shift the line numbers of what follows. */
	memset(text, 0, sizeof(text));
	memcpy(text, "[service]\nstate_dir = /", 23);
	memset(text + 23, 'd', 300);
	memcpy(text + 323, "\nworkers = 2\n" TOKEN, strlen("\nworkers = 2\n" TOKEN) + 1);
	parse_bad_at(text, 2, "longer than");
	/* Just below the limit is fine: 199 characters plus the newline. */
	memset(text, 0, sizeof(text));
	memcpy(text, "[service]\nstate_dir = /", 23);
	memset(text + 23, 'd', 199 - 22);
	memcpy(text + 200, "\nworkers = x\n" TOKEN, strlen("\nworkers = x\n" TOKEN) + 1);
	parse_bad_at(text, 3, "workers");
	text[200] = '\r'; /* and with CRLF */
	memmove(text + 201, text + 200, strlen(text + 200) + 1);
	text[200] = '\r';
	text[201] = '\n';
	parse_bad_at(text, 3, "workers");
}

/* svc_config_load: the same through a file, plus what only files have. */
static void test_load(void **state)
{
	char dir[] = "/tmp/kh-cfg.XXXXXX", p[128], cmd[160];
	struct svc_config *c = NULL;
	struct kh_errbuf e = { 0 };
	FILE *f;
	size_t i;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(p, sizeof(p), "%s/keyhold.conf", dir);

	assert_int_equal(svc_config_load(p, &c, &e), KH_E_FAILED_PRECONDITION);
	assert_non_null(strstr(e.msg, "cannot open"));

	f = fopen(p, "w");
	assert_non_null(f);
	fputs("[service]\nworkers = 3\n" TOKEN, f);
	fclose(f);
	kh_err_clear(&e);
	assert_int_equal(svc_config_load(p, &c, &e), KH_OK);
	assert_int_equal(c->workers, 3);
	assert_string_equal(c->path, p);
	svc_config_free(c);

	f = fopen(p, "w");
	assert_non_null(f);
	fputs("[service]\n\nworkers = three\n" TOKEN, f);
	fclose(f);
	kh_err_clear(&e);
	assert_int_equal(svc_config_load(p, &c, &e), KH_E_INVALID_ARGUMENT);
	snprintf(cmd, sizeof(cmd), "%s:3: workers", p);
	assert_non_null(strstr(e.msg, cmd));

	f = fopen(p, "w");
	assert_non_null(f);
	fputs("[service]\nworkers = 3", f);
	fputc('\0', f);
	fputs("\n" TOKEN, f);
	fclose(f);
	kh_err_clear(&e);
	assert_int_equal(svc_config_load(p, &c, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "NUL"));

	f = fopen(p, "w");
	assert_non_null(f);
	for (i = 0; i < (1u << 20) / 16 + 1; i++)
		fputs(";;;;;;;;;;;;;;;\n", f);
	fclose(f);
	kh_err_clear(&e);
	assert_int_equal(svc_config_load(p, &c, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "larger than"));

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_enum_values),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_audit_anchor_interval),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_access),
		cmocka_unit_test(test_revocation_expiry),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_reloaded),
		cmocka_unit_test(test_repeats_and_continuations),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_missing_token_keys),
		cmocka_unit_test(test_pin_credential),
		cmocka_unit_test(test_line_counting),
		cmocka_unit_test(test_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
