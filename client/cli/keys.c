/* keys.c: `keyhold status`, `capabilities`, `key ...` and `sign`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cli.h"
#include "kp_parse.h"

/* Largest message `sign` sends whole; bigger files need --prehashed. The
 * service's default frame cap is 1 MiB; leave room for the envelope. */
#define CLI_SIGN_MAX ((1u << 20) - 4096)

/* CKA_ID as the service keeps it: at most 32 bytes. */
#define CLI_KEY_ID_MAX 32

static const char *type_name(const kh_msg *m, const char *field)
{
	const char *n = cli_key_type_name(kh_msg_get_enum(m, field));

	return n != NULL ? n : "unknown";
}

/* The bytes field of m, or NULL/0. */
static const uint8_t *msg_bytes(const kh_msg *m, const char *field, size_t *len)
{
	const uint8_t *v = NULL;

	if (kh_msg_get_bytes(m, field, &v, len) != KH_OK) {
		*len = 0;
		return NULL;
	}
	return v;
}

/* k: a KeyInfo. */
static void spki_fingerprint(const kh_msg *k, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;
	size_t i, len;
	const uint8_t *spki = msg_bytes(k, "spki", &len);

	out[0] = '\0';
	if (len == 0 || EVP_Digest(spki, len, md, &n, EVP_sha256(), NULL) != 1)
		return;
	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* ---- status ---- */

void cli_selftests_json(struct cli_json *j, const kh_msg *m, const char *field)
{
	size_t i, n = kh_msg_count(m, field);

	cli_json_arr(j, "self_tests");
	for (i = 0; i < n; i++) {
		const kh_msg *v = cli_item(m, field, i);
		const char *detail = kh_msg_get_str(v, "detail");

		cli_json_obj(j, NULL);
		cli_json_str(j, "id", kh_msg_get_str(v, "id"));
		cli_json_str(j, "type", kh_msg_get_str(v, "type"));
		cli_json_str(j, "description", kh_msg_get_str(v, "description"));
		cli_json_str(j, "source", kh_msg_get_str(v, "source"));
		cli_json_str(j, "result", kh_msg_get_bool(v, "passed") ? "pass" : "fail");
		cli_json_u64(j, "duration_us", kh_msg_get_uint(v, "duration_us"));
		if (detail[0] != '\0')
			cli_json_str(j, "detail", detail);
		cli_json_end_obj(j);
	}
	cli_json_end_arr(j);
}

void cli_selftests_print(const kh_msg *m, const char *field)
{
	size_t i, n = kh_msg_count(m, field);

	for (i = 0; i < n; i++) {
		const kh_msg *v = cli_item(m, field, i);
		const char *detail = kh_msg_get_str(v, "detail");

		printf("  %-24s %-4s %8llu us  %s%s%s\n", kh_msg_get_str(v, "id"),
		       kh_msg_get_bool(v, "passed") ? "pass" : "FAIL",
		       (unsigned long long)kh_msg_get_uint(v, "duration_us"), kh_msg_get_str(v, "description"),
		       detail[0] ? ": " : "", detail);
	}
}

/* The cluster part of a GetStatus answer: this node, every node sharing
 * the state database with its state and last heartbeat, and who holds
 * each scheduled role (docs/CLUSTER.md). */
static void cli_cluster_status(struct cli *cli, const kh_msg *st)
{
	struct cli_json *j = cli->j;
	size_t i, n = kh_msg_count(st, "cluster_nodes"), nr = kh_msg_count(st, "cluster_roles");
	int64_t now = kh_msg_get_int(st, "cluster_now");
	char tb[40], tb2[40];

	if (cli->json) {
		cli_json_obj(j, "cluster");
		cli_json_str(j, "node", kh_msg_get_str(st, "node"));
		cli_json_u64(j, "lease_ttl_s", kh_msg_get_uint(st, "lease_ttl_s"));
		cli_json_arr(j, "nodes");
		for (i = 0; i < n; i++) {
			const kh_msg *o = cli_item(st, "cluster_nodes", i);

			cli_json_obj(j, NULL);
			cli_json_str(j, "name", kh_msg_get_str(o, "name"));
			cli_json_str(j, "state", kh_msg_get_str(o, "state"));
			cli_json_bool(j, "alive", kh_msg_get_bool(o, "alive"));
			cli_json_str(j, "started", cli_time_str(kh_msg_get_int(o, "started"), tb, sizeof(tb)));
			cli_json_str(j, "heartbeat", cli_time_str(kh_msg_get_int(o, "heartbeat"), tb, sizeof(tb)));
			cli_json_i64(j, "heartbeat_age_s", now - kh_msg_get_int(o, "heartbeat"));
			cli_json_str(j, "version", kh_msg_get_str(o, "version"));
			cli_json_end_obj(j);
		}
		cli_json_end_arr(j);
		cli_json_arr(j, "roles");
		for (i = 0; i < nr; i++) {
			const kh_msg *o = cli_item(st, "cluster_roles", i);

			cli_json_obj(j, NULL);
			cli_json_str(j, "role", kh_msg_get_str(o, "role"));
			cli_json_str(j, "holder", kh_msg_get_str(o, "holder"));
			cli_json_str(j, "since", cli_time_str(kh_msg_get_int(o, "acquired"), tb, sizeof(tb)));
			cli_json_str(j, "expires", cli_time_str(kh_msg_get_int(o, "expires"), tb, sizeof(tb)));
			if (kh_msg_get_str(o, "last_holder")[0] != '\0')
				cli_json_str(j, "last_holder", kh_msg_get_str(o, "last_holder"));
			cli_json_end_obj(j);
		}
		cli_json_end_arr(j);
		cli_json_end_obj(j);
		return;
	}
	if (kh_msg_get_str(st, "node")[0] == '\0')
		return;
	printf("cluster: this node is %s; %zu node(s), leases of %llu s\n", kh_msg_get_str(st, "node"), n,
	       (unsigned long long)kh_msg_get_uint(st, "lease_ttl_s"));
	for (i = 0; i < n; i++) {
		const kh_msg *o = cli_item(st, "cluster_nodes", i);

		printf("  node %-20s %-8s %s, last heartbeat %s (%llds ago), started %s, version %s\n",
		       kh_msg_get_str(o, "name"), kh_msg_get_str(o, "state"),
		       kh_msg_get_bool(o, "alive") ? "alive" : "NO HEARTBEAT",
		       cli_time_str(kh_msg_get_int(o, "heartbeat"), tb, sizeof(tb)),
		       (long long)(now - kh_msg_get_int(o, "heartbeat")),
		       cli_time_str(kh_msg_get_int(o, "started"), tb2, sizeof(tb2)), kh_msg_get_str(o, "version"));
	}
	for (i = 0; i < nr; i++) {
		const kh_msg *o = cli_item(st, "cluster_roles", i);
		const char *h = kh_msg_get_str(o, "holder"), *lh = kh_msg_get_str(o, "last_holder");

		if (h[0] != '\0')
			printf("  role %-12s held by %s since %s, lease until %s\n", kh_msg_get_str(o, "role"), h,
			       cli_time_str(kh_msg_get_int(o, "acquired"), tb, sizeof(tb)),
			       cli_time_str(kh_msg_get_int(o, "expires"), tb2, sizeof(tb2)));
		else if (lh[0] != '\0')
			printf("  role %-12s free (the lease of %s expired %s); the next node to look takes it\n",
			       kh_msg_get_str(o, "role"), lh, cli_time_str(kh_msg_get_int(o, "expires"), tb, sizeof(tb)));
		else
			printf("  role %-12s free (never taken yet)\n", kh_msg_get_str(o, "role"));
	}
}

/* st: a GetStatus answer. Healthy: OPERATIONAL with the token present. */
static bool cli_healthy(const kh_msg *st)
{
	return strcmp(kh_msg_get_str(st, "state"), "OPERATIONAL") == 0 &&
	       kh_msg_get_bool(cli_sub(st, "token"), "available");
}

int cli_cmd_status(struct cli *cli, struct cli_args *a)
{
	kh_msg *q = NULL, *st = NULL;
	const kh_msg *tok, *cond;
	struct cli_json *j = cli->j;
	size_t i, n;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0 ||
	    (rc = cli_request(cli, "GetStatus", &q)) != 0 || (rc = cli_call(cli, q, KH_OK, &st)) != 0)
		return rc;
	tok = cli_sub(st, "token");
	cond = cli_sub(st, "conditional");
	if (cli->json) {
		cli_json_obj(j, NULL);
		cli_json_str(j, "version", kh_msg_get_str(st, "version"));
		cli_json_str(j, "state", kh_msg_get_str(st, "state"));
		cli_json_str(j, "fips_mode", kh_msg_get_str(st, "fips_mode"));
		cli_json_bool(j, "module_validated", kh_msg_get_bool(st, "module_validated"));
		cli_json_str(j, "openssl_version", kh_msg_get_str(st, "openssl_version"));
		cli_json_str(j, "providers", kh_msg_get_str(st, "providers"));
		cli_json_obj(j, "token");
		cli_json_str(j, "label", kh_msg_get_str(tok, "label"));
		cli_json_str(j, "manufacturer", kh_msg_get_str(tok, "manufacturer"));
		cli_json_str(j, "model", kh_msg_get_str(tok, "model"));
		cli_json_str(j, "serial", kh_msg_get_str(tok, "serial"));
		cli_json_str(j, "hardware_version", kh_msg_get_str(tok, "hw_version"));
		cli_json_str(j, "firmware_version", kh_msg_get_str(tok, "fw_version"));
		cli_json_u64(j, "flags", kh_msg_get_uint(tok, "flags"));
		cli_json_str(j, "flag_names", kh_msg_get_str(tok, "flag_names"));
		cli_json_u64(j, "max_sessions", kh_msg_get_uint(tok, "max_sessions"));
		cli_json_u64(j, "sessions", kh_msg_get_uint(tok, "sessions"));
		cli_json_bool(j, "available", kh_msg_get_bool(tok, "available"));
		cli_json_end_obj(j);
		cli_json_u64(j, "workers", kh_msg_get_uint(st, "workers"));
		cli_json_u64(j, "uptime_s", kh_msg_get_uint(st, "uptime_s"));
		cli_json_u64(j, "keys", kh_msg_get_uint(st, "keys"));
		cli_json_u64(j, "connections", kh_msg_get_uint(st, "connections"));
		cli_json_u64(j, "requests", kh_msg_get_uint(st, "requests"));
		cli_selftests_json(j, st, "self_tests");
		cli_json_obj(j, "conditional_tests");
		cli_json_u64(j, "pairwise_run", kh_msg_get_uint(cond, "pairwise_run"));
		cli_json_u64(j, "pairwise_failed", kh_msg_get_uint(cond, "pairwise_failed"));
		cli_json_u64(j, "rng_run", kh_msg_get_uint(cond, "rng_run"));
		cli_json_u64(j, "rng_failed", kh_msg_get_uint(cond, "rng_failed"));
		cli_json_u64(j, "verify_run", kh_msg_get_uint(cond, "verify_run"));
		cli_json_u64(j, "verify_failed", kh_msg_get_uint(cond, "verify_failed"));
		cli_json_end_obj(j);
		cli_json_arr(j, "orphaned_keys");
		n = kh_msg_count(st, "orphaned_keys");
		for (i = 0; i < n; i++)
			cli_json_str(j, NULL, kh_msg_get_str_at(st, "orphaned_keys", i));
		cli_json_end_arr(j);
		cli_json_arr(j, "nonfips_keys");
		n = kh_msg_count(st, "nonfips_keys");
		for (i = 0; i < n; i++)
			cli_json_str(j, NULL, kh_msg_get_str_at(st, "nonfips_keys", i));
		cli_json_end_arr(j);
		cli_cluster_status(cli, st);
		cli_json_end_obj(j);
	} else {
		uint32_t max_sessions = (uint32_t)kh_msg_get_uint(tok, "max_sessions");

		printf("keyholdd %s: %s\n", kh_msg_get_str(st, "version"), kh_msg_get_str(st, "state"));
		printf("fips_mode: %s (module validated: %s)\n", kh_msg_get_str(st, "fips_mode"),
		       kh_msg_get_bool(st, "module_validated") ? "yes" : "no");
		printf("openssl: %s; providers: %s\n", kh_msg_get_str(st, "openssl_version"), kh_msg_get_str(st, "providers"));
		printf("token: '%s' %s %s, serial %s, hardware %s, firmware %s%s\n", kh_msg_get_str(tok, "label"),
		       kh_msg_get_str(tok, "manufacturer"), kh_msg_get_str(tok, "model"), kh_msg_get_str(tok, "serial"),
		       kh_msg_get_str(tok, "hw_version"), kh_msg_get_str(tok, "fw_version"),
		       kh_msg_get_bool(tok, "available") ? "" : " (NOT AVAILABLE)");
		printf("token flags: %s\n", kh_msg_get_str(tok, "flag_names"));
		printf("sessions: %u (token max %s%u), workers: %u\n", (uint32_t)kh_msg_get_uint(tok, "sessions"),
		       max_sessions ? "" : "unlimited/", max_sessions, (uint32_t)kh_msg_get_uint(st, "workers"));
		printf("keys: %u, connections: %u, requests: %llu, uptime: %llus\n", (uint32_t)kh_msg_get_uint(st, "keys"),
		       (uint32_t)kh_msg_get_uint(st, "connections"), (unsigned long long)kh_msg_get_uint(st, "requests"),
		       (unsigned long long)kh_msg_get_uint(st, "uptime_s"));
		if (kh_msg_count(st, "self_tests") > 0) {
			printf("self-tests:\n");
			cli_selftests_print(st, "self_tests");
			printf("conditional tests: pairwise %llu (%llu failed), rng %llu (%llu failed), "
			       "verify %llu (%llu failed)\n",
			       (unsigned long long)kh_msg_get_uint(cond, "pairwise_run"),
			       (unsigned long long)kh_msg_get_uint(cond, "pairwise_failed"),
			       (unsigned long long)kh_msg_get_uint(cond, "rng_run"),
			       (unsigned long long)kh_msg_get_uint(cond, "rng_failed"),
			       (unsigned long long)kh_msg_get_uint(cond, "verify_run"),
			       (unsigned long long)kh_msg_get_uint(cond, "verify_failed"));
		}
		n = kh_msg_count(st, "orphaned_keys");
		for (i = 0; i < n; i++)
			printf("orphaned key (no trustpoint uses it): %s\n", kh_msg_get_str_at(st, "orphaned_keys", i));
		n = kh_msg_count(st, "nonfips_keys");
		for (i = 0; i < n; i++)
			printf("key created outside FIPS mode: %s\n", kh_msg_get_str_at(st, "nonfips_keys", i));
		cli_cluster_status(cli, st);
	}
	rc = cli_healthy(st) ? 0 : CLI_EXIT_UNAVAILABLE;
	kh_msg_free(st);
	return rc;
}

int cli_cmd_health(struct cli *cli, struct cli_args *a)
{
	kh_msg *q = NULL, *st = NULL;
	const kh_msg *tok;
	struct cli_json *j = cli->j;
	bool ok, avail;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0 ||
	    (rc = cli_request(cli, "GetStatus", &q)) != 0 || (rc = cli_call(cli, q, KH_OK, &st)) != 0)
		return rc;
	tok = cli_sub(st, "token");
	avail = kh_msg_get_bool(tok, "available");
	ok = cli_healthy(st);
	if (cli->json) {
		cli_json_obj(j, NULL);
		cli_json_bool(j, "healthy", ok);
		cli_json_str(j, "state", kh_msg_get_str(st, "state"));
		cli_json_bool(j, "token_available", avail);
		cli_json_end_obj(j);
	} else {
		printf("%s: %s, token %s\n", ok ? "healthy" : "unhealthy", kh_msg_get_str(st, "state"),
		       avail ? "present" : "NOT AVAILABLE");
	}
	kh_msg_free(st);
	return ok ? 0 : CLI_EXIT_UNAVAILABLE;
}

int cli_cmd_capabilities(struct cli *cli, struct cli_args *a)
{
	kh_msg *q = NULL, *caps = NULL;
	struct cli_json *j = cli->j;
	size_t i, n;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0 ||
	    (rc = cli_request(cli, "GetCapabilities", &q)) != 0 || (rc = cli_call(cli, q, KH_OK, &caps)) != 0)
		return rc;
	cli_json_obj(j, NULL);
	cli_json_arr(j, "key_types");
	if (!cli->json)
		printf("key types:\n");
	n = kh_msg_count(caps, "key_types");
	for (i = 0; i < n; i++) {
		const kh_msg *t = cli_item(caps, "key_types", i);
		bool avail = kh_msg_get_bool(t, "available");

		cli_json_obj(j, NULL);
		cli_json_str(j, "type", type_name(t, "type"));
		cli_json_bool(j, "available", avail);
		if (!avail)
			cli_json_str(j, "reason", kh_msg_get_str(t, "reason"));
		cli_json_end_obj(j);
		if (!cli->json)
			printf("  %-10s %s%s\n", type_name(t, "type"), avail ? "yes" : "no: ",
			       avail ? "" : kh_msg_get_str(t, "reason"));
	}
	cli_json_end_arr(j);
	cli_json_bool(j, "pss", kh_msg_get_bool(caps, "pss"));
	cli_json_arr(j, "mechanisms");
	n = kh_msg_count(caps, "mechanisms");
	if (!cli->json)
		printf("mechanisms (%zu):\n", n);
	for (i = 0; i < n; i++) {
		const kh_msg *m = cli_item(caps, "mechanisms", i);

		cli_json_obj(j, NULL);
		cli_json_str(j, "name", kh_msg_get_str(m, "name"));
		cli_json_u64(j, "id", kh_msg_get_uint(m, "id"));
		cli_json_u64(j, "min_key", kh_msg_get_uint(m, "min_key"));
		cli_json_u64(j, "max_key", kh_msg_get_uint(m, "max_key"));
		cli_json_u64(j, "flags", kh_msg_get_uint(m, "flags"));
		cli_json_end_obj(j);
		if (!cli->json)
			printf("  %-32s 0x%08llx keys %u..%u flags 0x%llx\n", kh_msg_get_str(m, "name"),
			       (unsigned long long)kh_msg_get_uint(m, "id"), (uint32_t)kh_msg_get_uint(m, "min_key"),
			       (uint32_t)kh_msg_get_uint(m, "max_key"), (unsigned long long)kh_msg_get_uint(m, "flags"));
	}
	cli_json_end_arr(j);
	cli_json_end_obj(j);
	kh_msg_free(caps);
	return 0;
}

/* ---- key ---- */

/* k: a KeyInfo. */
static void key_json(struct cli_json *j, const kh_msg *k)
{
	char fp[65];
	size_t id_len;
	const uint8_t *id = msg_bytes(k, "id", &id_len);

	spki_fingerprint(k, fp);
	cli_json_obj(j, NULL);
	cli_json_str(j, "name", kh_msg_get_str(k, "name"));
	cli_json_str(j, "type", type_name(k, "type"));
	cli_json_u64(j, "bits", kh_msg_get_uint(k, "bits"));
	cli_json_hex(j, "id", id, id_len < CLI_KEY_ID_MAX ? id_len : CLI_KEY_ID_MAX);
	cli_json_str(j, "spki_sha256", fp);
	cli_json_bool(j, "fips_created", kh_msg_get_bool(k, "fips_created"));
	cli_json_end_obj(j);
}

static void key_print(const kh_msg *k)
{
	char fp[65], id[65];
	size_t i, id_len;
	const uint8_t *kid = msg_bytes(k, "id", &id_len);

	spki_fingerprint(k, fp);
	for (i = 0; i < id_len && i < CLI_KEY_ID_MAX; i++)
		snprintf(id + 2 * i, 3, "%02x", kid[i]);
	id[2 * i] = '\0';
	printf("name:        %s\ntype:        %s (%u bits)\nid:          %s\nspki sha256: %s\n", kh_msg_get_str(k, "name"),
	       type_name(k, "type"), (uint32_t)kh_msg_get_uint(k, "bits"), id, fp);
}

/* A PEM text of key k: as it is, or with --json in {"name", field}. */
static void key_text_out(struct cli *cli, const kh_msg *k, const char *field, const char *text, size_t len)
{
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "name", kh_msg_get_str(k, "name"));
		cli_json_strn(cli->j, field, text, len);
		cli_json_end_obj(cli->j);
	} else {
		fwrite(text, 1, len, stdout);
	}
}

static int key_pem_block(struct cli *cli, const kh_msg *k, const char *field, const char *label, const uint8_t *der,
			 size_t len)
{
	char *buf = NULL;
	size_t blen = 0;
	FILE *f = open_memstream(&buf, &blen);
	bool ok = f != NULL && PEM_write(f, label, "", der, (long)len) > 0;

	if (f != NULL)
		ok = fclose(f) == 0 && ok;
	if (!ok) {
		free(buf);
		return cli_failf(cli, KH_E_INTERNAL, "cannot write PEM");
	}
	key_text_out(cli, k, field, buf, blen);
	free(buf);
	return 0;
}

static int key_pem(struct cli *cli, const kh_msg *k)
{
	size_t len;
	const unsigned char *p = msg_bytes(k, "spki", &len);
	EVP_PKEY *pk = p != NULL ? d2i_PUBKEY(NULL, &p, (long)len) : NULL;
	int ok;

	char *buf = NULL;
	size_t blen = 0;
	FILE *f;

	if (pk == NULL)
		return cli_failf(cli, KH_E_DATA_LOSS, "key '%s' has no usable public key", kh_msg_get_str(k, "name"));
	f = open_memstream(&buf, &blen);
	ok = f != NULL && PEM_write_PUBKEY(f, pk) == 1;
	EVP_PKEY_free(pk);
	if (f != NULL)
		ok = fclose(f) == 0 && ok;
	if (!ok) {
		free(buf);
		return cli_failf(cli, KH_E_INTERNAL, "cannot write PEM");
	}
	key_text_out(cli, k, "pem", buf, blen);
	free(buf);
	return 0;
}

/* A KEYHOLD KEY reference file (docs/PROVIDER.md): the key's name, the
 * socket this CLI reached keyholdd on ("" over TLS: the provider's own
 * setting) and the public key, for the OpenSSL provider. */
static int key_reference(struct cli *cli, const kh_msg *k)
{
	struct kp_ref r;
	uint8_t *der = NULL;
	size_t len = 0, cap;
	const char *name = kh_msg_get_str(k, "name");
	const char *sock = cli->opts.connect == NULL && !cli_uses_endpoints(&cli->opts) && cli->opts.socket != NULL
				   ? cli->opts.socket
				   : "";
	int rc = 0;

	memset(&r, 0, sizeof(r));
	r.spki = msg_bytes(k, "spki", &r.spki_len);
	if (strlen(name) > KP_NAME_MAX || strlen(sock) > KP_SOCKET_MAX || r.spki == NULL)
		return cli_failf(cli, KH_E_DATA_LOSS, "key '%s' cannot be written as a reference", name);
	memcpy(r.name, name, strlen(name) + 1);
	memcpy(r.socket, sock, strlen(sock) + 1);
	cap = r.spki_len + KP_NAME_MAX + KP_SOCKET_MAX + 32;
	if ((der = malloc(cap)) == NULL)
		return cli_failf(cli, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	if (kp_ref_encode(&r, der, cap, &len) != 0)
		rc = cli_failf(cli, KH_E_DATA_LOSS, "key '%s' cannot be written as a reference", name);
	else
		rc = key_pem_block(cli, k, "reference", "KEYHOLD KEY", der, len);
	free(der);
	return rc;
}

/* A name longer than any the service takes is refused before sending. */
static int key_name_fits(struct cli *cli, const char *name)
{
	if (strlen(name) > CLI_NAME_MAX)
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "name must match [A-Za-z0-9._-]{1,64}");
	return 0;
}

/* A request of method with its one string field set to v. */
static int key_request(struct cli *cli, const char *method, const char *field, const char *v, kh_msg **resp)
{
	kh_msg *q = NULL;
	int rc;

	if ((rc = key_name_fits(cli, v)) != 0 || (rc = cli_request(cli, method, &q)) != 0)
		return rc;
	return cli_call(cli, q, kh_msg_set_str(q, field, v), resp);
}

static int key_generate(struct cli *cli, struct cli_args *a)
{
	const char *tname = cli_opt(a, "--type");
	const char *name = cli_pos(a);
	kh_msg *q = NULL, *resp = NULL;
	const char *t;
	enum kh_err r;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL || tname == NULL)
		return cli_usage(cli, "usage: keyhold key generate NAME --type rsa2048|rsa3072|rsa4096|p256|p384|p521|ed25519");
	t = cli_key_type_value(tname);
	if (t == NULL)
		return cli_usage(cli, "unknown key type '%s'; use rsa2048, rsa3072, rsa4096, p256, p384, p521 or ed25519",
				 tname);
	if ((rc = cli_connect(cli)) != 0 || (rc = key_name_fits(cli, name)) != 0 ||
	    (rc = cli_request(cli, "GenerateKey", &q)) != 0)
		return rc;
	r = kh_msg_set_str(q, "name", name);
	if (r == KH_OK)
		r = kh_msg_set_enum(q, "type", t);
	if ((rc = cli_call(cli, q, r, &resp)) != 0)
		return rc;
	if (cli->json)
		key_json(cli->j, cli_sub(resp, "key"));
	else
		key_print(cli_sub(resp, "key"));
	kh_msg_free(resp);
	return 0;
}

static int key_list(struct cli *cli, struct cli_args *a)
{
	kh_msg *l = NULL;
	enum kh_err r;
	size_t i, n;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0)
		return rc;
	if ((r = kh_key_list(cli->c, &l)) != KH_OK)
		return cli_fail(cli, r, kh_client_error_message(cli->c));
	n = kh_msg_count(l, "keys");
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_arr(cli->j, "keys");
		for (i = 0; i < n; i++)
			key_json(cli->j, cli_item(l, "keys", i));
		cli_json_end_arr(cli->j);
		cli_json_end_obj(cli->j);
	} else {
		printf("%-32s %-10s %5s  %s\n", "NAME", "TYPE", "BITS", "SPKI SHA256");
		for (i = 0; i < n; i++) {
			const kh_msg *k = cli_item(l, "keys", i);
			char fp[65];

			spki_fingerprint(k, fp);
			printf("%-32s %-10s %5u  %.16s...\n", kh_msg_get_str(k, "name"), type_name(k, "type"),
			       (uint32_t)kh_msg_get_uint(k, "bits"), fp);
		}
	}
	kh_msg_free(l);
	return 0;
}

static int key_show(struct cli *cli, struct cli_args *a)
{
	bool pem = cli_flag(a, "--pem");
	bool reference = cli_flag(a, "--reference");
	const char *name = cli_pos(a);
	kh_msg *resp = NULL;
	const kh_msg *k;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL)
		return cli_usage(cli, "usage: keyhold key show NAME [--pem | --reference]");
	if (pem && reference)
		return cli_usage(cli, "--pem and --reference are exclusive");
	if ((rc = cli_connect(cli)) != 0 || (rc = key_request(cli, "GetPublicKey", "name", name, &resp)) != 0)
		return rc;
	k = cli_sub(resp, "key");
	if (pem) {
		rc = key_pem(cli, k);
	} else if (reference) {
		rc = key_reference(cli, k);
	} else if (cli->json) {
		key_json(cli->j, k);
	} else {
		key_print(k);
	}
	kh_msg_free(resp);
	return rc;
}

static int key_delete(struct cli *cli, struct cli_args *a)
{
	bool force = cli_flag(a, "--force");
	const char *name = cli_pos(a);
	kh_msg *resp = NULL;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL)
		return cli_usage(cli, "usage: keyhold key delete NAME --force");
	if (!force)
		return cli_failf(cli, KH_E_FAILED_PRECONDITION,
				 "deleting '%s' destroys the private key in the token for good; add --force", name);
	if ((rc = cli_connect(cli)) != 0 || (rc = key_request(cli, "DeleteKey", "name", name, &resp)) != 0)
		return rc;
	kh_msg_free(resp);
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "deleted", name);
		cli_json_end_obj(cli->j);
	} else {
		printf("deleted key %s\n", name);
	}
	return 0;
}

int cli_cmd_key(struct cli *cli, struct cli_args *a)
{
	const char *verb = cli_pos(a);

	if (verb == NULL)
		return cli_usage(cli, "usage: keyhold key generate|list|show|delete ...");
	if (strcmp(verb, "generate") == 0)
		return key_generate(cli, a);
	if (strcmp(verb, "list") == 0)
		return key_list(cli, a);
	if (strcmp(verb, "show") == 0)
		return key_show(cli, a);
	if (strcmp(verb, "delete") == 0)
		return key_delete(cli, a);
	return cli_usage(cli, "unknown verb 'key %s'; use generate, list, show or delete", verb);
}

/* ---- sign ---- */

int cli_cmd_sign(struct cli *cli, struct cli_args *a)
{
	const char *in = cli_opt(a, "--in");
	const char *outp = cli_opt(a, "--out");
	const char *dname = cli_opt(a, "--digest");
	bool pss = cli_flag(a, "--pss");
	bool prehashed = cli_flag(a, "--prehashed");
	const char *name = cli_pos(a);
	const char *digest = NULL;
	kh_msg *q = NULL, *resp = NULL;
	const uint8_t *sig;
	uint8_t *data = NULL;
	size_t len = 0, sig_len;
	enum kh_err r;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL || in == NULL)
		return cli_usage(cli, "usage: keyhold sign NAME --in FILE [--digest sha256|sha384|sha512] [--pss] "
				      "[--prehashed] [--out FILE]");
	if (!kh_name_valid(name))
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "key name must match [A-Za-z0-9._-]{1,64}");
	if (dname != NULL) {
		digest = cli_digest_value(dname);
		if (digest == NULL)
			return cli_usage(cli, "unknown digest '%s'; use sha256, sha384 or sha512", dname);
	}
	if (outp == NULL && !cli->json && isatty(STDOUT_FILENO))
		return cli_usage(cli, "the signature is binary: use --out FILE or redirect stdout");
	if ((rc = cli_read_file(cli, in, prehashed ? 64 : CLI_SIGN_MAX, &data, &len)) != 0)
		return rc;
	if ((rc = cli_connect(cli)) != 0 || (rc = cli_request(cli, "Sign", &q)) != 0) {
		free(data);
		return rc;
	}
	r = kh_msg_set_str(q, "key", name);
	if (r == KH_OK && digest != NULL)
		r = kh_msg_set_enum(q, "digest", digest);
	if (r == KH_OK && pss)
		r = kh_msg_set_enum(q, "padding", "PSS");
	/* The oneof input: the data is sent even when empty. */
	if (r == KH_OK)
		r = kh_msg_set_bytes(q, prehashed ? "prehashed" : "message", data, len);
	rc = cli_call(cli, q, r, &resp);
	free(data);
	if (rc != 0)
		return rc;
	sig = msg_bytes(resp, "signature", &sig_len);
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "key", name);
		cli_json_str(cli->j, "algorithm", kh_msg_get_str(resp, "algorithm"));
		cli_json_hex(cli->j, "signature_hex", sig, sig_len);
		if (outp != NULL)
			cli_json_str(cli->j, "out", outp);
		cli_json_end_obj(cli->j);
	}
	if (outp != NULL || !cli->json)
		rc = cli_write_file(cli, outp, sig, sig_len);
	kh_msg_free(resp);
	return rc;
}
