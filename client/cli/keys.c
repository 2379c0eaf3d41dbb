/* keys.c: `keyhold status`, `capabilities`, `key ...` and `sign`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cli.h"

/* Largest message `sign` sends whole; bigger files need --prehashed. The
 * service's default frame cap is 1 MiB; leave room for the envelope. */
#define CLI_SIGN_MAX ((1u << 20) - 4096)

static const char *type_name(enum kh_key_type t)
{
	const char *n = kh_key_type_name(t);

	return n != NULL ? n : "unknown";
}

static void spki_fingerprint(const struct kh_key_info *k, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;
	size_t i;

	out[0] = '\0';
	if (k->spki_len == 0 || EVP_Digest(k->spki, k->spki_len, md, &n, EVP_sha256(), NULL) != 1)
		return;
	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* ---- status ---- */

void cli_selftests_json(struct cli_json *j, const struct kh_selftest_result *v, size_t n)
{
	size_t i;

	cli_json_arr(j, "self_tests");
	for (i = 0; i < n; i++) {
		cli_json_obj(j, NULL);
		cli_json_str(j, "id", v[i].id);
		cli_json_str(j, "type", v[i].type);
		cli_json_str(j, "description", v[i].description);
		cli_json_str(j, "source", v[i].source);
		cli_json_str(j, "result", v[i].passed ? "pass" : "fail");
		cli_json_u64(j, "duration_us", v[i].duration_us);
		if (v[i].detail[0] != '\0')
			cli_json_str(j, "detail", v[i].detail);
		cli_json_end_obj(j);
	}
	cli_json_end_arr(j);
}

void cli_selftests_print(const struct kh_selftest_result *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		printf("  %-24s %-4s %8llu us  %s%s%s\n", v[i].id, v[i].passed ? "pass" : "FAIL",
		       (unsigned long long)v[i].duration_us, v[i].description, v[i].detail[0] ? ": " : "",
		       v[i].detail);
}

int cli_cmd_status(struct cli *cli, struct cli_args *a)
{
	struct kh_status st;
	struct kh_errbuf e = { 0 };
	struct cli_json *j = cli->j;
	size_t i;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0)
		return rc;
	if (kh_get_status(cli->c, &st, &e) != KH_OK)
		return cli_fail(cli, &e);
	if (cli->json) {
		cli_json_obj(j, NULL);
		cli_json_str(j, "version", st.version);
		cli_json_str(j, "state", st.state);
		cli_json_str(j, "fips_mode", st.fips_mode);
		cli_json_bool(j, "module_validated", st.module_validated);
		cli_json_str(j, "openssl_version", st.openssl_version);
		cli_json_str(j, "providers", st.providers);
		cli_json_obj(j, "token");
		cli_json_str(j, "label", st.token.label);
		cli_json_str(j, "manufacturer", st.token.manufacturer);
		cli_json_str(j, "model", st.token.model);
		cli_json_str(j, "serial", st.token.serial);
		cli_json_str(j, "hardware_version", st.token.hw_version);
		cli_json_str(j, "firmware_version", st.token.fw_version);
		cli_json_u64(j, "flags", st.token.flags);
		cli_json_str(j, "flag_names", st.token.flag_names);
		cli_json_u64(j, "max_sessions", st.token.max_sessions);
		cli_json_u64(j, "sessions", st.token.sessions);
		cli_json_bool(j, "available", st.token.available);
		cli_json_end_obj(j);
		cli_json_u64(j, "workers", st.workers);
		cli_json_u64(j, "uptime_s", st.uptime_s);
		cli_json_u64(j, "keys", st.keys);
		cli_json_u64(j, "connections", st.connections);
		cli_json_u64(j, "requests", st.requests);
		cli_selftests_json(j, st.selftests, st.n_selftests);
		cli_json_obj(j, "conditional_tests");
		cli_json_u64(j, "pairwise_run", st.cond_pairwise_run);
		cli_json_u64(j, "pairwise_failed", st.cond_pairwise_failed);
		cli_json_u64(j, "rng_run", st.cond_rng_run);
		cli_json_u64(j, "rng_failed", st.cond_rng_failed);
		cli_json_u64(j, "verify_run", st.cond_verify_run);
		cli_json_u64(j, "verify_failed", st.cond_verify_failed);
		cli_json_end_obj(j);
		cli_json_arr(j, "orphaned_keys");
		for (i = 0; i < st.n_orphaned; i++)
			cli_json_str(j, NULL, st.orphaned_keys[i]);
		cli_json_end_arr(j);
		cli_json_arr(j, "nonfips_keys");
		for (i = 0; i < st.n_nonfips; i++)
			cli_json_str(j, NULL, st.nonfips_keys[i]);
		cli_json_end_arr(j);
		cli_json_end_obj(j);
	} else {
		printf("keyholdd %s: %s\n", st.version, st.state);
		printf("fips_mode: %s (module validated: %s)\n", st.fips_mode, st.module_validated ? "yes" : "no");
		printf("openssl: %s; providers: %s\n", st.openssl_version, st.providers);
		printf("token: '%s' %s %s, serial %s, hardware %s, firmware %s%s\n", st.token.label,
		       st.token.manufacturer, st.token.model, st.token.serial, st.token.hw_version,
		       st.token.fw_version, st.token.available ? "" : " (NOT AVAILABLE)");
		printf("token flags: %s\n", st.token.flag_names);
		printf("sessions: %u (token max %s%u), workers: %u\n", st.token.sessions,
		       st.token.max_sessions ? "" : "unlimited/", st.token.max_sessions, st.workers);
		printf("keys: %u, connections: %u, requests: %llu, uptime: %llus\n", st.keys, st.connections,
		       (unsigned long long)st.requests, (unsigned long long)st.uptime_s);
		if (st.n_selftests > 0) {
			printf("self-tests:\n");
			cli_selftests_print(st.selftests, st.n_selftests);
			printf("conditional tests: pairwise %llu (%llu failed), rng %llu (%llu failed), "
			       "verify %llu (%llu failed)\n",
			       (unsigned long long)st.cond_pairwise_run, (unsigned long long)st.cond_pairwise_failed,
			       (unsigned long long)st.cond_rng_run, (unsigned long long)st.cond_rng_failed,
			       (unsigned long long)st.cond_verify_run, (unsigned long long)st.cond_verify_failed);
		}
		for (i = 0; i < st.n_orphaned; i++)
			printf("orphaned key (no trustpoint uses it): %s\n", st.orphaned_keys[i]);
		for (i = 0; i < st.n_nonfips; i++)
			printf("key created outside FIPS mode: %s\n", st.nonfips_keys[i]);
	}
	kh_status_clear(&st);
	return 0;
}

int cli_cmd_capabilities(struct cli *cli, struct cli_args *a)
{
	struct kh_capabilities caps;
	struct kh_errbuf e = { 0 };
	struct cli_json *j = cli->j;
	size_t i;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0)
		return rc;
	if (kh_get_capabilities(cli->c, &caps, &e) != KH_OK)
		return cli_fail(cli, &e);
	cli_json_obj(j, NULL);
	cli_json_arr(j, "key_types");
	if (!cli->json)
		printf("key types:\n");
	for (i = 0; i < caps.n_types; i++) {
		cli_json_obj(j, NULL);
		cli_json_str(j, "type", type_name(caps.types[i].type));
		cli_json_bool(j, "available", caps.types[i].available);
		if (!caps.types[i].available)
			cli_json_str(j, "reason", caps.types[i].reason);
		cli_json_end_obj(j);
		if (!cli->json)
			printf("  %-10s %s%s\n", type_name(caps.types[i].type), caps.types[i].available ? "yes" : "no: ",
			       caps.types[i].available ? "" : caps.types[i].reason);
	}
	cli_json_end_arr(j);
	cli_json_bool(j, "pss", caps.pss);
	cli_json_arr(j, "mechanisms");
	if (!cli->json)
		printf("mechanisms (%zu):\n", caps.n_mechs);
	for (i = 0; i < caps.n_mechs; i++) {
		cli_json_obj(j, NULL);
		cli_json_str(j, "name", caps.mechs[i].name);
		cli_json_u64(j, "id", caps.mechs[i].id);
		cli_json_u64(j, "min_key", caps.mechs[i].min_key);
		cli_json_u64(j, "max_key", caps.mechs[i].max_key);
		cli_json_u64(j, "flags", caps.mechs[i].flags);
		cli_json_end_obj(j);
		if (!cli->json)
			printf("  %-32s 0x%08llx keys %u..%u flags 0x%llx\n", caps.mechs[i].name,
			       (unsigned long long)caps.mechs[i].id, caps.mechs[i].min_key, caps.mechs[i].max_key,
			       (unsigned long long)caps.mechs[i].flags);
	}
	cli_json_end_arr(j);
	cli_json_end_obj(j);
	kh_capabilities_clear(&caps);
	return 0;
}

/* ---- key ---- */

static void key_json(struct cli_json *j, const struct kh_key_info *k)
{
	char fp[65];

	spki_fingerprint(k, fp);
	cli_json_obj(j, NULL);
	cli_json_str(j, "name", k->name);
	cli_json_str(j, "type", type_name(k->type));
	cli_json_u64(j, "bits", k->bits);
	cli_json_hex(j, "id", k->id, k->id_len);
	cli_json_str(j, "spki_sha256", fp);
	cli_json_bool(j, "fips_created", k->fips_created);
	cli_json_end_obj(j);
}

static void key_print(const struct kh_key_info *k)
{
	char fp[65], id[65];
	size_t i;

	spki_fingerprint(k, fp);
	for (i = 0; i < k->id_len && i < 32; i++)
		snprintf(id + 2 * i, 3, "%02x", k->id[i]);
	id[2 * i] = '\0';
	printf("name:        %s\ntype:        %s (%u bits)\nid:          %s\nspki sha256: %s\n", k->name,
	       type_name(k->type), k->bits, id, fp);
}

static int key_pem(struct cli *cli, const struct kh_key_info *k)
{
	const unsigned char *p = k->spki;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)k->spki_len);
	int ok;

	if (pk == NULL)
		return cli_failf(cli, KH_E_DATA_LOSS, "key '%s' has no usable public key", k->name);
	ok = PEM_write_PUBKEY(stdout, pk);
	EVP_PKEY_free(pk);
	if (ok != 1)
		return cli_failf(cli, KH_E_INTERNAL, "cannot write PEM");
	return 0;
}

static int key_generate(struct cli *cli, struct cli_args *a)
{
	const char *tname = cli_opt(a, "--type");
	const char *name = cli_pos(a);
	struct kh_key_info k;
	struct kh_errbuf e = { 0 };
	enum kh_key_type t;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL || tname == NULL)
		return cli_usage(cli, "usage: keyhold key generate NAME --type rsa2048|rsa3072|rsa4096|p256|p384|p521|ed25519");
	t = kh_key_type_from_name(tname);
	if (t == KH_KEY_UNSPECIFIED)
		return cli_usage(cli, "unknown key type '%s'; use rsa2048, rsa3072, rsa4096, p256, p384, p521 or ed25519",
				 tname);
	if ((rc = cli_connect(cli)) != 0)
		return rc;
	if (kh_generate_key(cli->c, name, t, &k, &e) != KH_OK)
		return cli_fail(cli, &e);
	if (cli->json)
		key_json(cli->j, &k);
	else
		key_print(&k);
	kh_key_info_clear(&k);
	return 0;
}

static int key_list(struct cli *cli, struct cli_args *a)
{
	struct kh_key_list l;
	struct kh_errbuf e = { 0 };
	size_t i;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0)
		return rc;
	if (kh_list_keys(cli->c, &l, &e) != KH_OK)
		return cli_fail(cli, &e);
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_arr(cli->j, "keys");
		for (i = 0; i < l.n; i++)
			key_json(cli->j, &l.keys[i]);
		cli_json_end_arr(cli->j);
		cli_json_end_obj(cli->j);
	} else {
		printf("%-32s %-10s %5s  %s\n", "NAME", "TYPE", "BITS", "SPKI SHA256");
		for (i = 0; i < l.n; i++) {
			char fp[65];

			spki_fingerprint(&l.keys[i], fp);
			printf("%-32s %-10s %5u  %.16s...\n", l.keys[i].name, type_name(l.keys[i].type),
			       l.keys[i].bits, fp);
		}
	}
	kh_key_list_clear(&l);
	return 0;
}

static int key_show(struct cli *cli, struct cli_args *a)
{
	bool pem = cli_flag(a, "--pem");
	const char *name = cli_pos(a);
	struct kh_key_info k;
	struct kh_errbuf e = { 0 };
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL)
		return cli_usage(cli, "usage: keyhold key show NAME [--pem]");
	if ((rc = cli_connect(cli)) != 0)
		return rc;
	if (kh_get_public_key(cli->c, name, &k, &e) != KH_OK)
		return cli_fail(cli, &e);
	if (pem) {
		rc = key_pem(cli, &k);
	} else if (cli->json) {
		key_json(cli->j, &k);
	} else {
		key_print(&k);
	}
	kh_key_info_clear(&k);
	return rc;
}

static int key_delete(struct cli *cli, struct cli_args *a)
{
	bool force = cli_flag(a, "--force");
	const char *name = cli_pos(a);
	struct kh_errbuf e = { 0 };
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL)
		return cli_usage(cli, "usage: keyhold key delete NAME --force");
	if (!force)
		return cli_failf(cli, KH_E_FAILED_PRECONDITION,
				 "deleting '%s' destroys the private key in the token for good; add --force", name);
	if ((rc = cli_connect(cli)) != 0)
		return rc;
	if (kh_delete_key(cli->c, name, &e) != KH_OK)
		return cli_fail(cli, &e);
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
	struct kh_sign_req req;
	struct kh_sign_resp resp;
	struct kh_errbuf e = { 0 };
	uint8_t *data = NULL;
	size_t len = 0;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL || in == NULL)
		return cli_usage(cli, "usage: keyhold sign NAME --in FILE [--digest sha256|sha384|sha512] [--pss] "
				      "[--prehashed] [--out FILE]");
	memset(&req, 0, sizeof(req));
	if (strlen(name) > KH_NAME_MAX || !kh_name_valid(name))
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "key name must match [A-Za-z0-9._-]{1,64}");
	memcpy(req.key, name, strlen(name) + 1);
	if (dname != NULL) {
		req.digest = kh_digest_from_name(dname);
		if (req.digest == KH_DIGEST_DEFAULT)
			return cli_usage(cli, "unknown digest '%s'; use sha256, sha384 or sha512", dname);
	}
	if (outp == NULL && !cli->json && isatty(STDOUT_FILENO))
		return cli_usage(cli, "the signature is binary: use --out FILE or redirect stdout");
	req.padding = pss ? KH_PAD_PSS : KH_PAD_DEFAULT;
	req.prehashed = prehashed;
	if (cli_read_file(cli, in, prehashed ? 64 : CLI_SIGN_MAX, &data, &len) != 0)
		return CLI_EXIT_ERR;
	req.data = data;
	req.len = len;
	if ((rc = cli_connect(cli)) != 0) {
		free(data);
		return rc;
	}
	rc = kh_sign(cli->c, &req, &resp, &e);
	free(data);
	if (rc != KH_OK)
		return cli_fail(cli, &e);
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "key", name);
		cli_json_str(cli->j, "algorithm", resp.algorithm);
		cli_json_hex(cli->j, "signature_hex", resp.sig, resp.sig_len);
		if (outp != NULL)
			cli_json_str(cli->j, "out", outp);
		cli_json_end_obj(cli->j);
	}
	if (outp != NULL || !cli->json)
		rc = cli_write_file(cli, outp, resp.sig, resp.sig_len);
	kh_sign_resp_clear(&resp);
	return rc;
}
