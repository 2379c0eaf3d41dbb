/* tspool.c: `truststore create|delete|export|show` (a trust store as a
 * trustpool, docs/PKI.md "Trust stores as trustpools"). Human output on
 * stdout, one JSON document with --json, errors per the CLI contract. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"

static int tsp_name(struct cli *cli, const char *store)
{
	if (!kh_name_valid(store))
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "trust store name must match [A-Za-z0-9._-]{1,64}");
	return 0;
}

static int tsp_fp(struct cli *cli, const char *fp)
{
	if (fp != NULL && strlen(fp) > CLI_FP_IN_MAX)
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "fingerprint is longer than %d characters", CLI_FP_IN_MAX);
	return 0;
}

int cli_ts_create(struct cli *cli, struct cli_args *a)
{
	const char *store = cli_pos(a);
	kh_msg *q = NULL, *r = NULL;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (store == NULL)
		return cli_usage(cli, "usage: keyhold truststore create STORE");
	if ((rc = tsp_name(cli, store)) != 0 || (rc = cli_connect(cli)) != 0 ||
	    (rc = cli_request(cli, "TruststoreCreate", &q)) != 0 ||
	    (rc = cli_call(cli, q, kh_msg_set_str(q, "store", store), &r)) != 0)
		return rc;
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "store", store);
		cli_json_bool(cli->j, "created", true);
		cli_json_end_obj(cli->j);
	} else {
		printf("trust store %s created (empty)\n", store);
	}
	kh_msg_free(r);
	return 0;
}

int cli_ts_delete(struct cli *cli, struct cli_args *a)
{
	bool force = cli_flag(a, "--force");
	const char *store = cli_pos(a);
	kh_msg *q = NULL, *r = NULL;
	enum kh_err e;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (store == NULL)
		return cli_usage(cli, "usage: keyhold truststore delete STORE [--force]");
	if ((rc = tsp_name(cli, store)) != 0 || (rc = cli_connect(cli)) != 0 ||
	    (rc = cli_request(cli, "TruststoreDelete", &q)) != 0)
		return rc;
	e = kh_msg_set_str(q, "store", store);
	if (e == KH_OK)
		e = kh_msg_set_bool(q, "force", force);
	if ((rc = cli_call(cli, q, e, &r)) != 0)
		return rc;
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "store", store);
		cli_json_u64(cli->j, "certs_removed", kh_msg_get_uint(r, "certs_removed"));
		cli_json_u64(cli->j, "crls_removed", kh_msg_get_uint(r, "crls_removed"));
		cli_json_end_obj(cli->j);
	} else {
		printf("trust store %s deleted (%u certificate(s), %u CRL(s))\n", store,
		       (uint32_t)kh_msg_get_uint(r, "certs_removed"), (uint32_t)kh_msg_get_uint(r, "crls_removed"));
	}
	kh_msg_free(r);
	return 0;
}

int cli_ts_export(struct cli *cli, struct cli_args *a)
{
	const char *fmt = cli_opt(a, "--format");
	const char *fp = cli_opt(a, "--fingerprint");
	const char *outp = cli_opt(a, "--out");
	const char *store = cli_pos(a);
	const char *fname = "pem", *fvalue = "CERT_FORMAT_PEM";
	kh_msg *q = NULL, *r = NULL;
	const uint8_t *data = NULL;
	size_t len = 0;
	enum kh_err e;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (store == NULL)
		return cli_usage(cli, "usage: keyhold truststore export STORE [--format pem|pkcs7|der] [--fingerprint FP] "
				      "[--out FILE]");
	if (fmt != NULL) {
		if (strcasecmp(fmt, "pem") == 0) {
			fname = "pem";
			fvalue = "CERT_FORMAT_PEM";
		} else if (strcasecmp(fmt, "pkcs7") == 0 || strcasecmp(fmt, "p7b") == 0) {
			fname = "pkcs7";
			fvalue = "CERT_FORMAT_PKCS7";
		} else if (strcasecmp(fmt, "der") == 0) {
			fname = "der";
			fvalue = "CERT_FORMAT_DER";
		} else {
			return cli_usage(cli, "unknown format '%s'; use pem, pkcs7 or der (der: one certificate)", fmt);
		}
	}
	if (strcmp(fname, "der") == 0 && fp == NULL)
		return cli_usage(cli, "DER holds one certificate: give --fingerprint FP, or use pem or pkcs7");
	if (strcmp(fname, "der") == 0 && outp == NULL && !cli->json && isatty(STDOUT_FILENO))
		return cli_usage(cli, "DER is binary: use --out FILE or redirect stdout");
	if ((rc = tsp_name(cli, store)) != 0 || (rc = tsp_fp(cli, fp)) != 0 || (rc = cli_connect(cli)) != 0 ||
	    (rc = cli_request(cli, "TruststoreExport", &q)) != 0)
		return rc;
	e = kh_msg_set_str(q, "store", store);
	if (e == KH_OK)
		e = kh_msg_set_enum(q, "format", fvalue);
	if (e == KH_OK && fp != NULL)
		e = kh_msg_set_str(q, "fingerprint", fp);
	if ((rc = cli_call(cli, q, e, &r)) != 0)
		return rc;
	if (kh_msg_get_bytes(r, "data", &data, &len) != KH_OK)
		len = 0;
	rc = cli_export_out(cli, "store", store, fname, r, data, len, outp);
	kh_msg_free(r);
	return rc;
}

/* A repeated string field as a JSON array. */
static void tsp_json_list(struct cli_json *j, const char *key, const kh_msg *m, const char *field)
{
	size_t i, n = kh_msg_count(m, field);

	cli_json_arr(j, key);
	for (i = 0; i < n; i++)
		cli_json_str(j, NULL, kh_msg_get_str_at(m, field, i));
	cli_json_end_arr(j);
}

/* A repeated string field as one line of text ("(none)" when empty). */
static void tsp_text_list(const char *label, const kh_msg *m, const char *field)
{
	size_t i, n = kh_msg_count(m, field);

	printf("%-20s", label);
	for (i = 0; i < n; i++)
		printf("%s%s", i ? ", " : "", kh_msg_get_str_at(m, field, i));
	printf("%s\n", n == 0 ? "(none)" : "");
}

int cli_ts_show(struct cli *cli, struct cli_args *a)
{
	bool pem = cli_flag(a, "--pem");
	const char *store = cli_pos(a);
	const char *fp = cli_pos(a);
	kh_msg *q = NULL, *r = NULL;
	const kh_msg *d, *ci;
	char t1[40], t2[40], t3[40];
	int32_t pl;
	enum kh_err e;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (store == NULL || fp == NULL)
		return cli_usage(cli, "usage: keyhold truststore show STORE FINGERPRINT [--pem]");
	if ((rc = tsp_name(cli, store)) != 0 || (rc = tsp_fp(cli, fp)) != 0 || (rc = cli_connect(cli)) != 0 ||
	    (rc = cli_request(cli, "TruststoreShow", &q)) != 0)
		return rc;
	e = kh_msg_set_str(q, "store", store);
	if (e == KH_OK)
		e = kh_msg_set_str(q, "fingerprint", fp);
	if ((rc = cli_call(cli, q, e, &r)) != 0)
		return rc;
	d = cli_sub(r, "cert");
	ci = cli_sub(d, "info");
	pl = (int32_t)kh_msg_get_int(d, "path_len");
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "store", store);
		cli_json_str(cli->j, "added", cli_time_str(kh_msg_get_int(r, "added"), t3, sizeof(t3)));
		cli_json_str(cli->j, "subject", kh_msg_get_str(ci, "subject"));
		cli_json_str(cli->j, "issuer", kh_msg_get_str(ci, "issuer"));
		cli_json_str(cli->j, "serial", kh_msg_get_str(ci, "serial"));
		cli_json_str(cli->j, "not_before", cli_time_str(kh_msg_get_int(ci, "not_before"), t1, sizeof(t1)));
		cli_json_str(cli->j, "not_after", cli_time_str(kh_msg_get_int(ci, "not_after"), t2, sizeof(t2)));
		cli_json_u64(cli->j, "version", kh_msg_get_uint(d, "version"));
		cli_json_str(cli->j, "signature_algorithm", kh_msg_get_str(d, "signature_algorithm"));
		cli_json_str(cli->j, "public_key", kh_msg_get_str(d, "public_key"));
		tsp_json_list(cli->j, "sans", d, "sans");
		tsp_json_list(cli->j, "key_usage", d, "key_usage");
		tsp_json_list(cli->j, "eku", d, "eku");
		cli_json_obj(cli->j, "basic_constraints");
		cli_json_bool(cli->j, "present", kh_msg_get_bool(d, "basic_constraints"));
		cli_json_bool(cli->j, "ca", kh_msg_get_bool(ci, "ca"));
		if (pl >= 0)
			cli_json_i64(cli->j, "path_len", pl);
		cli_json_end_obj(cli->j);
		tsp_json_list(cli->j, "policies", d, "policies");
		cli_json_bool(cli->j, "self_signed", kh_msg_get_bool(ci, "self_signed"));
		cli_json_str(cli->j, "fingerprint_sha256", kh_msg_get_str(ci, "fingerprint"));
		cli_json_str(cli->j, "fingerprint_sha1", kh_msg_get_str(d, "fingerprint_sha1"));
		cli_json_str(cli->j, "subject_key_id", kh_msg_get_str(d, "subject_key_id"));
		cli_json_str(cli->j, "authority_key_id", kh_msg_get_str(d, "authority_key_id"));
		cli_json_str(cli->j, "pem", kh_msg_get_str(d, "pem"));
		cli_json_end_obj(cli->j);
	} else {
		printf("%-20s%s\n", "subject:", kh_msg_get_str(ci, "subject"));
		printf("%-20s%s\n", "issuer:", kh_msg_get_str(ci, "issuer"));
		printf("%-20s%s\n", "serial:", kh_msg_get_str(ci, "serial"));
		printf("%-20s%s .. %s\n", "valid:", cli_time_str(kh_msg_get_int(ci, "not_before"), t1, sizeof(t1)),
		       cli_time_str(kh_msg_get_int(ci, "not_after"), t2, sizeof(t2)));
		printf("%-20sv%u, %s\n", "version, signature:", (uint32_t)kh_msg_get_uint(d, "version"),
		       kh_msg_get_str(d, "signature_algorithm"));
		printf("%-20s%s\n", "public key:", kh_msg_get_str(d, "public_key"));
		tsp_text_list("SANs:", d, "sans");
		tsp_text_list("key usage:", d, "key_usage");
		tsp_text_list("EKU:", d, "eku");
		if (!kh_msg_get_bool(d, "basic_constraints"))
			printf("%-20s(absent)\n", "basic constraints:");
		else if (pl >= 0)
			printf("%-20sCA:%s, pathlen:%d\n", "basic constraints:", kh_msg_get_bool(ci, "ca") ? "TRUE" : "FALSE",
			       pl);
		else
			printf("%-20sCA:%s\n", "basic constraints:", kh_msg_get_bool(ci, "ca") ? "TRUE" : "FALSE");
		tsp_text_list("policies:", d, "policies");
		printf("%-20s%s\n", "self-signed:", kh_msg_get_bool(ci, "self_signed") ? "yes" : "no");
		printf("%-20s%s\n", "sha256:", kh_msg_get_str(ci, "fingerprint"));
		printf("%-20s%s\n", "sha1:", kh_msg_get_str(d, "fingerprint_sha1"));
		printf("%-20s%s\n", "subject key id:", kh_msg_get_str(d, "subject_key_id"));
		printf("%-20s%s\n", "authority key id:", kh_msg_get_str(d, "authority_key_id"));
		printf("%-20s%s\n", "added:", cli_time_str(kh_msg_get_int(r, "added"), t3, sizeof(t3)));
		if (pem)
			fputs(kh_msg_get_str(d, "pem"), stdout);
	}
	kh_msg_free(r);
	return 0;
}
