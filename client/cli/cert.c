/* cert.c: `keyhold cert check|expiring|monitor` and the policy verbs
 * `trustpoint set` and `truststore set` (docs/REVOCATION.md). Human output
 * on stdout, one JSON document with --json, errors per the CLI contract. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int cc_read(struct cli *cli, const char *path, struct cli_bytes *out)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	int rc = cli_read_file(cli, path, CLI_PKI_BLOB_MAX, &buf, &len);

	if (rc != 0)
		return rc;
	if (len == 0) {
		free(buf);
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "%s is empty", path);
	}
	out->data = buf;
	out->len = len;
	return 0;
}

static int cc_len(struct cli *cli, const char *v, size_t max, const char *what)
{
	if (strlen(v) > max)
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "%s is longer than %zu characters", what, max);
	return 0;
}

/* "revoked (keyCompromise)", "good", "unknown". */
static const char *cc_status(const char *st, const char *reason, char *buf, size_t n)
{
	if (strcmp(st, "REVOCATION_REVOKED") == 0) {
		snprintf(buf, n, "revoked (%s)", reason[0] != '\0' ? reason : "unspecified");
		return buf;
	}
	return cli_rev_status_name(st);
}

/* Sets the string field of q when v is given and not empty. */
static enum kh_err set_str(kh_msg *q, const char *field, const char *v)
{
	return v != NULL && v[0] != '\0' ? kh_msg_set_str(q, field, v) : KH_OK;
}

/* ---- cert check ---- */

static enum kh_err cert_check_fill(kh_msg *q, const char *store, const struct cli_bytes *cert,
				   const struct cli_bytes *untrusted)
{
	enum kh_err r;

	CLI_TRY(kh_msg_set_str(q, "store", store));
	CLI_TRY(kh_msg_set_bytes(q, "cert", cert->data, cert->len));
	if (untrusted->len > 0)
		CLI_TRY(kh_msg_set_bytes(q, "untrusted", untrusted->data, untrusted->len));
out:
	return r;
}

static int cert_check(struct cli *cli, struct cli_args *a)
{
	const char *store = cli_opt(a, "--store");
	const char *untrusted = cli_opt(a, "--untrusted");
	const char *path = cli_pos(a);
	struct cli_bytes cert = { NULL, 0 }, unt = { NULL, 0 };
	kh_msg *q = NULL, *r = NULL;
	const char *status, *reason, *policy, *detail;
	char sb[64], tb[40];
	bool failed, soft_fail, revoked, unknown;
	size_t i, n, k;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (path == NULL || store == NULL)
		return cli_usage(cli, "usage: keyhold cert check FILE --store STORE [--untrusted FILE]");
	if (!kh_name_valid(store))
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "trust store name must match [A-Za-z0-9._-]{1,64}");
	rc = cc_read(cli, path, &cert);
	if (rc == 0 && untrusted != NULL)
		rc = cc_read(cli, untrusted, &unt);
	if (rc == 0)
		rc = cli_connect(cli);
	if (rc == 0 && cert.len + unt.len > CLI_PKI_BLOB_MAX)
		rc = cli_failf(cli, KH_E_INVALID_ARGUMENT, "the certificates are larger than %u bytes", CLI_PKI_BLOB_MAX);
	if (rc == 0 && (rc = cli_request(cli, "CheckCertificate", &q)) == 0)
		rc = cli_call(cli, q, cert_check_fill(q, store, &cert, &unt), &r);
	free(cert.data);
	free(unt.data);
	if (rc != 0)
		return rc;
	status = kh_msg_get_enum(r, "status");
	reason = kh_msg_get_str(r, "reason");
	policy = kh_msg_get_str(r, "policy");
	detail = kh_msg_get_str(r, "detail");
	soft_fail = kh_msg_get_bool(r, "soft_fail");
	revoked = strcmp(status, "REVOCATION_REVOKED") == 0;
	unknown = strcmp(cli_rev_status_name(status), "unknown") == 0;
	n = kh_msg_count(r, "certs");
	/* Revoked always fails; unknown fails unless the policy ends in none. */
	failed = revoked || (unknown && !soft_fail);
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "store", store);
		cli_json_str(cli->j, "status", cli_rev_status_name(status));
		if (revoked)
			cli_json_str(cli->j, "reason", reason);
		cli_json_str(cli->j, "policy", policy);
		cli_json_bool(cli->j, "soft_fail", soft_fail);
		cli_json_str(cli->j, "detail", detail);
		cli_json_arr(cli->j, "certs");
		for (i = 0; i < n; i++) {
			const kh_msg *c = cli_item(r, "certs", i);
			const kh_msg *ci = cli_sub(c, "cert");
			const char *cst = kh_msg_get_enum(c, "status");

			cli_json_obj(cli->j, NULL);
			cli_json_str(cli->j, "subject", kh_msg_get_str(ci, "subject"));
			cli_json_str(cli->j, "issuer", kh_msg_get_str(ci, "issuer"));
			cli_json_str(cli->j, "serial", kh_msg_get_str(ci, "serial"));
			cli_json_str(cli->j, "fingerprint_sha256", kh_msg_get_str(ci, "fingerprint"));
			cli_json_str(cli->j, "status", cli_rev_status_name(cst));
			if (strcmp(cst, "REVOCATION_REVOKED") == 0) {
				cli_json_str(cli->j, "reason", kh_msg_get_str(c, "reason"));
				cli_json_str(cli->j, "revoked_at", cli_time_str(kh_msg_get_int(c, "revoked_at"), tb, sizeof(tb)));
			}
			cli_json_str(cli->j, "method", kh_msg_get_str(c, "method"));
			cli_json_str(cli->j, "source", kh_msg_get_str(c, "source"));
			cli_json_str(cli->j, "detail", kh_msg_get_str(c, "detail"));
			cli_json_arr(cli->j, "steps");
			for (k = 0; k < kh_msg_count(c, "steps"); k++) {
				const kh_msg *st = cli_item(c, "steps", k);

				cli_json_obj(cli->j, NULL);
				cli_json_str(cli->j, "method", kh_msg_get_str(st, "method"));
				cli_json_str(cli->j, "result", kh_msg_get_str(st, "result"));
				cli_json_str(cli->j, "detail", kh_msg_get_str(st, "detail"));
				cli_json_end_obj(cli->j);
			}
			cli_json_end_arr(cli->j);
			cli_json_end_obj(cli->j);
		}
		cli_json_end_arr(cli->j);
		if (failed) {
			/* The contract's error object, inside the one document. */
			cli_json_obj(cli->j, "error");
			cli_json_str(cli->j, "code", "FAILED_PRECONDITION");
			cli_json_str(cli->j, "message", detail);
			cli_json_i64(cli->j, "exit_status", CLI_EXIT_INVALID);
			cli_json_end_obj(cli->j);
		}
		cli_json_end_obj(cli->j);
	} else {
		printf("%s\n", cc_status(status, reason, sb, sizeof(sb)));
		for (i = 0; i < n; i++) {
			const kh_msg *c = cli_item(r, "certs", i);
			const char *cst = kh_msg_get_enum(c, "status");
			const char *method = kh_msg_get_str(c, "method"), *cdetail = kh_msg_get_str(c, "detail");

			printf("  %s: %s", kh_msg_get_str(cli_sub(c, "cert"), "subject"),
			       cc_status(cst, kh_msg_get_str(c, "reason"), sb, sizeof(sb)));
			if (strcmp(cst, "REVOCATION_REVOKED") == 0)
				printf(" since %s", cli_time_str(kh_msg_get_int(c, "revoked_at"), tb, sizeof(tb)));
			if (method[0] != '\0')
				printf(" (%s %s)", method, kh_msg_get_str(c, "source"));
			if (strcmp(cli_rev_status_name(cst), "unknown") == 0 && cdetail[0] != '\0')
				printf(" (%s)", cdetail);
			printf("\n");
			/* The policy as walked: "ocsp: unknown (...) -> crl: good (...)". */
			for (k = 0; k < kh_msg_count(c, "steps"); k++) {
				const kh_msg *st = cli_item(c, "steps", k);

				printf("%s%s: %s (%s)", k == 0 ? "    " : " -> ", kh_msg_get_str(st, "method"),
				       kh_msg_get_str(st, "result"), kh_msg_get_str(st, "detail"));
			}
			if (k > 0)
				printf("\n");
		}
		if (n == 0)
			printf("  %s\n", detail);
		if (failed)
			fprintf(stderr, "error: FAILED_PRECONDITION: %s%s%s%s\n", detail, unknown ? " (policy '" : "",
				unknown ? policy : "", unknown ? "' fails hard when nothing answers)" : "");
		else if (unknown && strcmp(policy, "none") == 0)
			fprintf(stderr, "warning: revocation checking is off for trust store %s (policy none): %s\n", store,
				detail);
		else if (unknown)
			fprintf(stderr, "warning: %s; accepted: policy '%s' ends in none (soft-fail)\n", detail, policy);
	}
	kh_msg_free(r);
	return failed ? CLI_EXIT_INVALID : 0; /* FAILED_PRECONDITION */
}

/* ---- cert expiring / monitor ---- */

/* Places one certificate is reported in (the service lists at most 8). */
#define CLI_HELD_BY_MAX 8
#define CLI_HELD_BY_LEN 80

/* c: an ExpiringCert. */
static void exp_json(struct cli_json *j, const kh_msg *c)
{
	const kh_msg *ci = cli_sub(c, "cert");
	int64_t days_left = kh_msg_get_int(c, "days_left");
	size_t k, n = kh_msg_count(c, "held_by");
	char t1[40], t2[40];

	cli_json_obj(j, NULL);
	cli_json_str(j, "subject", kh_msg_get_str(ci, "subject"));
	cli_json_str(j, "issuer", kh_msg_get_str(ci, "issuer"));
	cli_json_str(j, "serial", kh_msg_get_str(ci, "serial"));
	cli_json_str(j, "fingerprint_sha256", kh_msg_get_str(ci, "fingerprint"));
	cli_json_str(j, "not_after", cli_time_str(kh_msg_get_int(ci, "not_after"), t1, sizeof(t1)));
	cli_json_i64(j, "days_left", days_left); /* negative once expired */
	cli_json_bool(j, "expired", days_left < 0);
	cli_json_arr(j, "held_by");
	for (k = 0; k < n && k < CLI_HELD_BY_MAX; k++)
		cli_json_str(j, NULL, kh_msg_get_str_at(c, "held_by", k));
	cli_json_end_arr(j);
	cli_json_str(j, "last_notified", cli_time_str(kh_msg_get_int(c, "last_notified"), t2, sizeof(t2)));
	cli_json_u64(j, "notifications", kh_msg_get_uint(c, "notifications"));
	cli_json_str(j, "revocation", kh_msg_get_str(c, "revocation_state"));
	cli_json_str(j, "revocation_detail", kh_msg_get_str(c, "revocation_detail"));
	cli_json_end_obj(j);
}

static void exp_row(const kh_msg *c)
{
	const kh_msg *ci = cli_sub(c, "cert");
	char t1[40], t2[40], held[CLI_HELD_BY_MAX * CLI_HELD_BY_LEN] = "";
	size_t k, n = kh_msg_count(c, "held_by");

	for (k = 0; k < n && k < CLI_HELD_BY_MAX; k++) {
		size_t len = strlen(held);

		snprintf(held + len, sizeof(held) - len, "%s%s", k > 0 ? "," : "", kh_msg_get_str_at(c, "held_by", k));
	}
	const char *rev = kh_msg_get_str(c, "revocation_state");

	printf("%-20s  %5lld  %-20s %3u  %s  [%s]%s%s\n", cli_time_str(kh_msg_get_int(ci, "not_after"), t1, sizeof(t1)),
	       (long long)kh_msg_get_int(c, "days_left"), cli_time_str(kh_msg_get_int(c, "last_notified"), t2, sizeof(t2)),
	       (uint32_t)kh_msg_get_uint(c, "notifications"), kh_msg_get_str(ci, "subject"), held,
	       strcmp(rev, "revoked") == 0 || strcmp(rev, "unknown") == 0 ? "  REVOCATION: " : "",
	       strcmp(rev, "revoked") == 0 ? "REVOKED" : strcmp(rev, "unknown") == 0 ? "unknown" : "");
}

static int cert_expiring(struct cli *cli, struct cli_args *a)
{
	const char *within = cli_opt(a, "--within");
	bool all = cli_flag(a, "--all");
	kh_msg *q = NULL, *l = NULL;
	uint64_t days = 0;
	size_t i, n;
	enum kh_err r;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (within != NULL && (kh_parse_u64(within, 1, 36500, &days) != 0 || all))
		return cli_usage(cli, "usage: keyhold cert expiring [--within DAYS (1 to 36500) | --all]");
	if ((rc = cli_connect(cli)) != 0 || (rc = cli_request(cli, "ListExpiring", &q)) != 0)
		return rc;
	r = kh_msg_set_uint(q, "within_days", days);
	if (r == KH_OK)
		r = kh_msg_set_bool(q, "all", all);
	if ((rc = cli_call(cli, q, r, &l)) != 0)
		return rc;
	n = kh_msg_count(l, "certs");
	if (cli->json) {
		char tb[40];

		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "now", cli_time_str(kh_msg_get_int(l, "now"), tb, sizeof(tb)));
		if (!all)
			cli_json_u64(cli->j, "within_days", kh_msg_get_uint(l, "within_days"));
		cli_json_arr(cli->j, "certificates");
		for (i = 0; i < n; i++)
			exp_json(cli->j, cli_item(l, "certs", i));
		cli_json_end_arr(cli->j);
		cli_json_end_obj(cli->j);
	} else {
		if (all)
			printf("every certificate keyhold holds, soonest expiry first\n");
		else
			printf("certificates expiring within %u days, soonest first\n",
			       (uint32_t)kh_msg_get_uint(l, "within_days"));
		printf("%-20s  %5s  %-20s %3s  %s\n", "NOT AFTER", "DAYS", "LAST NOTIFIED", "#", "SUBJECT  [HELD BY]");
		for (i = 0; i < n; i++)
			exp_row(cli_item(l, "certs", i));
	}
	kh_msg_free(l);
	return 0;
}

static int cert_monitor(struct cli *cli, struct cli_args *a)
{
	kh_msg *q = NULL, *m = NULL;
	size_t i, nn, nr, ne;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0 ||
	    (rc = cli_request(cli, "RunMonitor", &q)) != 0 || (rc = cli_call(cli, q, KH_OK, &m)) != 0)
		return rc;
	nn = kh_msg_count(m, "notified");
	nr = kh_msg_count(m, "renewals");
	ne = kh_msg_count(m, "errors");
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_arr(cli->j, "notified");
		for (i = 0; i < nn; i++)
			exp_json(cli->j, cli_item(m, "notified", i));
		cli_json_end_arr(cli->j);
		cli_json_arr(cli->j, "renewals");
		for (i = 0; i < nr; i++)
			cli_json_str(cli->j, NULL, kh_msg_get_str_at(m, "renewals", i));
		cli_json_end_arr(cli->j);
		cli_json_arr(cli->j, "errors");
		for (i = 0; i < ne; i++)
			cli_json_str(cli->j, NULL, kh_msg_get_str_at(m, "errors", i));
		cli_json_end_arr(cli->j);
		if (ne > 0) {
			cli_json_obj(cli->j, "error");
			cli_json_str(cli->j, "code", "FAILED_PRECONDITION");
			cli_json_str(cli->j, "message", kh_msg_get_str_at(m, "errors", 0));
			cli_json_i64(cli->j, "exit_status", CLI_EXIT_INVALID);
			cli_json_end_obj(cli->j);
		}
		cli_json_end_obj(cli->j);
	} else {
		printf("%zu notification(s), %zu renewal action(s)\n", nn, nr);
		for (i = 0; i < nn; i++)
			exp_row(cli_item(m, "notified", i));
		for (i = 0; i < nr; i++)
			printf("renewal: %s\n", kh_msg_get_str_at(m, "renewals", i));
		for (i = 0; i < ne; i++)
			fprintf(stderr, "error: FAILED_PRECONDITION: %s\n", kh_msg_get_str_at(m, "errors", i));
	}
	rc = ne > 0 ? CLI_EXIT_INVALID : 0; /* FAILED_PRECONDITION */
	kh_msg_free(m);
	return rc;
}

int cli_cmd_cert(struct cli *cli, struct cli_args *a)
{
	const char *verb = cli_pos(a);

	if (verb == NULL)
		return cli_usage(cli, "usage: keyhold cert check|expiring|monitor ...");
	if (strcmp(verb, "check") == 0)
		return cert_check(cli, a);
	if (strcmp(verb, "expiring") == 0)
		return cert_expiring(cli, a);
	if (strcmp(verb, "monitor") == 0)
		return cert_monitor(cli, a);
	return cli_usage(cli, "unknown verb 'cert %s'; use check, expiring or monitor", verb);
}

/* ---- trustpoint set / truststore set ---- */

/* --renew-at PCT: 1..99, or 0/off to stop renewing. */
static int cc_renew_at(struct cli *cli, const char *v, uint32_t *out)
{
	uint64_t n;

	if (strcmp(v, "off") == 0) {
		*out = 0;
		return 0;
	}
	if (kh_parse_u64(v, 0, 99, &n) != 0)
		return cli_usage(cli, "--renew-at takes a percent of the certificate's lifetime from 1 to 99, or off");
	*out = (uint32_t)n;
	return 0;
}

int cli_renew_opts(struct cli *cli, struct cli_args *a, bool *set, uint32_t *renew_at, bool *regenerate,
		   bool *mode_given)
{
	const char *ra = cli_opt(a, "--renew-at");
	bool regen = cli_flag(a, "--renew-regenerate");
	bool same = cli_flag(a, "--renew-same-key");
	int rc;

	*set = false;
	*mode_given = regen || same;
	if (regen && same)
		return cli_usage(cli, "give --renew-regenerate or --renew-same-key, not both");
	*regenerate = regen;
	if (ra != NULL) {
		if ((rc = cc_renew_at(cli, ra, renew_at)) != 0)
			return rc;
		*set = true;
	}
	return 0;
}

/* The trustpoint name (GetTrustpoint); 0 and *resp, or the error printed. */
static int cc_tp_get(struct cli *cli, const char *name, kh_msg **resp)
{
	kh_msg *q = NULL;
	int rc;

	if ((rc = cli_request(cli, "GetTrustpoint", &q)) != 0)
		return rc;
	return cli_call(cli, q, kh_msg_set_str(q, "name", name), resp);
}

/* The OCSP URL rule of the service; 0 or the error printed. */
static int cc_url(struct cli *cli, const char *url)
{
	if (!kh_url_valid(url != NULL ? url : ""))
		return cli_failf(cli, KH_E_INVALID_ARGUMENT,
				 "the OCSP URL must be an http:// URL of at most %d characters (keyhold fetches no https, "
				 "ldap or file URLs)",
				 CLI_URL_MAX);
	return 0;
}

struct cc_tp_policy {
	const char *name, *revocation, *ocsp_url;
	bool set_renew;
	uint32_t renew_at;
	bool renew_regenerate;
	/* the next enrollment (NULL: unchanged) */
	const char *subject, *san, *eku, *fqdn, *digest, *enrollment;
	bool set_days, ip_san;
	uint32_t days;
};

/* set_FIELD and FIELD when v is given (an empty value clears it). */
static enum kh_err cc_set_opt(kh_msg *q, const char *field, const char *v)
{
	char flag[32];
	enum kh_err r;

	snprintf(flag, sizeof(flag), "set_%s", field);
	if (v == NULL)
		return KH_OK;
	if ((r = kh_msg_set_bool(q, flag, true)) != KH_OK)
		return r;
	return set_str(q, field, v);
}

static enum kh_err cc_tp_fill(kh_msg *q, const struct cc_tp_policy *p)
{
	enum kh_err r;

	CLI_TRY(kh_msg_set_str(q, "name", p->name));
	CLI_TRY(kh_msg_set_bool(q, "set_revocation", p->revocation != NULL));
	CLI_TRY(set_str(q, "revocation", p->revocation));
	CLI_TRY(kh_msg_set_bool(q, "set_ocsp_url", p->ocsp_url != NULL));
	CLI_TRY(set_str(q, "ocsp_url", p->ocsp_url));
	CLI_TRY(kh_msg_set_bool(q, "set_renew", p->set_renew));
	CLI_TRY(kh_msg_set_uint(q, "renew_at", p->renew_at));
	CLI_TRY(kh_msg_set_bool(q, "renew_regenerate", p->renew_regenerate));
	CLI_TRY(cc_set_opt(q, "subject", p->subject));
	CLI_TRY(cc_set_opt(q, "san", p->san));
	CLI_TRY(cc_set_opt(q, "eku", p->eku));
	CLI_TRY(cc_set_opt(q, "fqdn", p->fqdn));
	if (p->digest != NULL) {
		CLI_TRY(kh_msg_set_bool(q, "set_digest", true));
		CLI_TRY(kh_msg_set_enum(q, "digest", p->digest));
	}
	if (p->enrollment != NULL) {
		CLI_TRY(kh_msg_set_bool(q, "set_enrollment", true));
		CLI_TRY(kh_msg_set_enum(q, "enrollment", p->enrollment));
	}
	CLI_TRY(kh_msg_set_bool(q, "set_days", p->set_days));
	CLI_TRY(kh_msg_set_uint(q, "validity_days", p->days));
	CLI_TRY(kh_msg_set_bool(q, "ip_san", p->ip_san));
out:
	return r;
}

/* The enrollment options of `trustpoint set`: 0, or the usage error. */
static int cc_tp_enroll_opts(struct cli *cli, struct cli_args *a, struct cc_tp_policy *p)
{
	const char *dname = cli_opt(a, "--digest"), *enr = cli_opt(a, "--enrollment"), *days = cli_opt(a, "--days");
	uint64_t d = 0;
	int rc;

	p->subject = cli_opt(a, "--subject");
	p->san = cli_opt(a, "--san");
	p->eku = cli_opt(a, "--eku");
	p->fqdn = cli_opt(a, "--fqdn");
	p->ip_san = cli_flag(a, "--ip-san");
	if (dname != NULL && (p->digest = cli_digest_value(dname)) == NULL)
		return cli_usage(cli, "unknown digest '%s'; use sha256, sha384 or sha512", dname);
	if (enr != NULL) {
		p->enrollment = strcmp(enr, "self") == 0 ? "ENROLLMENT_SELF"
				: strcmp(enr, "terminal") == 0 ? "ENROLLMENT_TERMINAL" : NULL;
		if (p->enrollment == NULL)
			return cli_usage(cli, "unknown enrollment '%s'; use self or terminal", enr);
	}
	if (days != NULL) {
		if (kh_parse_u64(days, 1, 36500, &d) != 0)
			return cli_usage(cli, "--days takes 1 to 36500");
		p->set_days = true;
		p->days = (uint32_t)d;
	}
	if ((p->subject != NULL && (rc = cc_len(cli, p->subject, CLI_DN_MAX, "the subject")) != 0) ||
	    (p->san != NULL && (rc = cc_len(cli, p->san, CLI_SAN_MAX, "the SAN list")) != 0) ||
	    (p->eku != NULL && (rc = cc_len(cli, p->eku, CLI_EKU_MAX, "the EKU list")) != 0) ||
	    (p->fqdn != NULL && (rc = cc_len(cli, p->fqdn, CLI_FQDN_MAX, "the FQDN")) != 0))
		return rc;
	return 0;
}

int cli_tp_set(struct cli *cli, struct cli_args *a)
{
	struct cc_tp_policy p;
	kh_msg *q = NULL, *t = NULL;
	bool mode_given = false;
	int rc;

	memset(&p, 0, sizeof(p));
	p.revocation = cli_opt(a, "--revocation");
	p.ocsp_url = cli_opt(a, "--ocsp-url");
	if ((rc = cli_renew_opts(cli, a, &p.set_renew, &p.renew_at, &p.renew_regenerate, &mode_given)) != 0)
		return rc;
	if ((rc = cc_tp_enroll_opts(cli, a, &p)) != 0)
		return rc;
	p.name = cli_pos(a);
	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (p.name == NULL || (p.revocation == NULL && p.ocsp_url == NULL && !p.set_renew && !mode_given &&
			       p.subject == NULL && p.san == NULL && p.eku == NULL && p.fqdn == NULL && p.digest == NULL &&
			       p.enrollment == NULL && !p.set_days && !p.ip_san))
		return cli_usage(cli, "usage: keyhold trustpoint set TP [--revocation LIST] [--ocsp-url URL] "
				      "[--renew-at PERCENT|off] [--renew-regenerate|--renew-same-key] [--subject DN] "
				      "[--san LIST] [--eku LIST] [--fqdn F|none] [--ip-san] [--digest D] "
				      "[--enrollment self|terminal] [--days N]");
	if (!kh_name_valid(p.name))
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "trustpoint name must match [A-Za-z0-9._-]{1,64}");
	if ((p.revocation != NULL && (rc = cc_len(cli, p.revocation, CLI_REVOCATION_MAX, "the revocation list")) != 0) ||
	    (p.ocsp_url != NULL && (rc = cc_len(cli, p.ocsp_url, CLI_URL_MAX, "the OCSP URL")) != 0))
		return rc;
	if ((rc = cli_connect(cli)) != 0)
		return rc;
	if (mode_given && !p.set_renew) {
		/* Only the key mode changes: keep the percent. */
		if ((rc = cc_tp_get(cli, p.name, &t)) != 0)
			return rc;
		p.renew_at = (uint32_t)kh_msg_get_uint(cli_sub(t, "trustpoint"), "renew_at");
		kh_msg_free(t);
		t = NULL;
		if (p.renew_at == 0)
			return cli_usage(cli, "trustpoint %s does not renew; give --renew-at PERCENT too", p.name);
		p.set_renew = true;
	} else if (p.set_renew && !mode_given && p.renew_at > 0) {
		/* A new percent keeps the key mode. */
		if ((rc = cc_tp_get(cli, p.name, &t)) != 0)
			return rc;
		p.renew_regenerate = kh_msg_get_bool(cli_sub(t, "trustpoint"), "renew_regenerate");
		kh_msg_free(t);
		t = NULL;
	}
	if ((rc = cc_url(cli, p.ocsp_url)) != 0)
		return rc;
	if (p.renew_at > 99)
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "renew-at is a percent from 1 to 99 (0: off)");
	if ((rc = cli_request(cli, "SetTrustpointPolicy", &q)) != 0 || (rc = cli_call(cli, q, cc_tp_fill(q, &p), &t)) != 0)
		return rc;
	cli_tp_out(cli, cli_sub(t, "trustpoint"));
	kh_msg_free(t);
	return 0;
}

void cli_validation_json(struct cli_json *j, const char *key, const kh_msg *v)
{
	size_t i, n;

	if (v == NULL)
		return;
	n = kh_msg_count(v, "policies");
	cli_json_obj(j, key);
	cli_json_arr(j, "policies");
	if (n == 0)
		cli_json_str(j, NULL, "anyPolicy");
	for (i = 0; i < n; i++)
		cli_json_str(j, NULL, kh_msg_get_str_at(v, "policies", i));
	cli_json_end_arr(j);
	cli_json_bool(j, "require_explicit_policy", kh_msg_get_bool(v, "require_explicit_policy"));
	cli_json_bool(j, "inhibit_policy_mapping", kh_msg_get_bool(v, "inhibit_policy_mapping"));
	cli_json_bool(j, "inhibit_any_policy", kh_msg_get_bool(v, "inhibit_any_policy"));
	cli_json_u64(j, "min_rsa_bits", kh_msg_get_uint(v, "min_rsa_bits"));
	cli_json_u64(j, "min_ec_bits", kh_msg_get_uint(v, "min_ec_bits"));
	cli_json_bool(j, "allow_sha1", kh_msg_get_bool(v, "allow_sha1"));
	cli_json_end_obj(j);
}

void cli_validation_text(const char *prefix, const kh_msg *v)
{
	size_t i, n;

	if (v == NULL)
		return;
	n = kh_msg_count(v, "policies");
	printf("%spolicies ", prefix);
	if (n == 0)
		printf("anyPolicy");
	for (i = 0; i < n; i++)
		printf("%s%s", i ? "," : "", kh_msg_get_str_at(v, "policies", i));
	printf("%s%s%s; key floor RSA/DSA %u, EC %u bits%s\n",
	       kh_msg_get_bool(v, "require_explicit_policy") ? ", explicit policy required" : "",
	       kh_msg_get_bool(v, "inhibit_policy_mapping") ? ", policy mapping inhibited" : "",
	       kh_msg_get_bool(v, "inhibit_any_policy") ? ", anyPolicy inhibited" : "",
	       (uint32_t)kh_msg_get_uint(v, "min_rsa_bits"), (uint32_t)kh_msg_get_uint(v, "min_ec_bits"),
	       kh_msg_get_bool(v, "allow_sha1") ? ", SHA-1 allowed" : "");
}

struct cc_ts_policy {
	const char *store, *rev, *url, *crl_url, *responder_file;
	struct cli_bytes responder;         /* read from responder_file */
	const char *policies[KH_POLICIES_MAX];
	size_t n_policies;
	bool set_policies;
	int explicit_policy, inhibit_map, inhibit_any, sha1; /* -1: unchanged */
	uint32_t rsa, ec;                                    /* 0: unchanged */
};

static enum kh_err cc_ts_fill(kh_msg *q, const struct cc_ts_policy *p)
{
	enum kh_err r;
	size_t i;

	CLI_TRY(kh_msg_set_str(q, "store", p->store));
	CLI_TRY(kh_msg_set_bool(q, "set_revocation", p->rev != NULL));
	CLI_TRY(set_str(q, "revocation", p->rev));
	CLI_TRY(kh_msg_set_bool(q, "set_ocsp_url", p->url != NULL));
	CLI_TRY(set_str(q, "ocsp_url", p->url));
	CLI_TRY(kh_msg_set_bool(q, "set_crl_url", p->crl_url != NULL));
	/* "none" clears it. */
	CLI_TRY(set_str(q, "crl_url", p->crl_url != NULL && strcmp(p->crl_url, "none") == 0 ? "" : p->crl_url));
	CLI_TRY(kh_msg_set_bool(q, "set_ocsp_responder", p->responder_file != NULL));
	if (p->responder.len > 0)
		CLI_TRY(kh_msg_set_bytes(q, "ocsp_responder", p->responder.data, p->responder.len));
	CLI_TRY(kh_msg_set_bool(q, "set_policies", p->set_policies));
	for (i = 0; i < p->n_policies; i++)
		CLI_TRY(kh_msg_add_str(q, "policies", p->policies[i]));
	CLI_TRY(kh_msg_set_bool(q, "set_require_explicit_policy", p->explicit_policy >= 0));
	CLI_TRY(kh_msg_set_bool(q, "require_explicit_policy", p->explicit_policy > 0));
	CLI_TRY(kh_msg_set_bool(q, "set_inhibit_policy_mapping", p->inhibit_map >= 0));
	CLI_TRY(kh_msg_set_bool(q, "inhibit_policy_mapping", p->inhibit_map > 0));
	CLI_TRY(kh_msg_set_bool(q, "set_inhibit_any_policy", p->inhibit_any >= 0));
	CLI_TRY(kh_msg_set_bool(q, "inhibit_any_policy", p->inhibit_any > 0));
	CLI_TRY(kh_msg_set_bool(q, "set_allow_sha1", p->sha1 >= 0));
	CLI_TRY(kh_msg_set_bool(q, "allow_sha1", p->sha1 > 0));
	CLI_TRY(kh_msg_set_bool(q, "set_min_rsa_bits", p->rsa > 0));
	CLI_TRY(kh_msg_set_uint(q, "min_rsa_bits", p->rsa));
	CLI_TRY(kh_msg_set_bool(q, "set_min_ec_bits", p->ec > 0));
	CLI_TRY(kh_msg_set_uint(q, "min_ec_bits", p->ec));
out:
	return r;
}

/* An on|off option: -1 absent, 0 off, 1 on; -2 after a usage error. */
static int cc_onoff(struct cli *cli, struct cli_args *a, const char *name)
{
	const char *v = cli_opt(a, name);

	if (v == NULL)
		return -1;
	if (strcmp(v, "on") == 0 || strcmp(v, "yes") == 0)
		return 1;
	if (strcmp(v, "off") == 0 || strcmp(v, "no") == 0)
		return 0;
	cli_usage(cli, "%s takes on or off, not '%s'", name, v);
	return -2;
}

/* A --min-*-bits option within lo..hi; 0 when absent; -1 after an error. */
static int cc_bits(struct cli *cli, struct cli_args *a, const char *name, uint64_t lo, uint64_t hi, uint32_t *out)
{
	const char *v = cli_opt(a, name);
	uint64_t n;

	*out = 0;
	if (v == NULL)
		return 0;
	if (kh_parse_u64(v, lo, hi, &n) != 0) {
		cli_usage(cli, "%s takes %llu to %llu bits, not '%s'", name, (unsigned long long)lo,
			  (unsigned long long)hi, v);
		return -1;
	}
	*out = (uint32_t)n;
	return 0;
}

#define CC_TS_USAGE                                                                                         \
	"usage: keyhold truststore set STORE [--revocation LIST] [--ocsp-url URL] [--crl-url URL|none] "   \
	"[--ocsp-responder-cert FILE|none] "                                                               \
	"[--policy OID]... "                                                                                \
	"[--require-explicit-policy on|off] [--inhibit-policy-mapping on|off] [--inhibit-any-policy on|off] " \
	"[--min-rsa-bits N] [--min-ec-bits N] [--allow-sha1 on|off]"

int cli_ts_set(struct cli *cli, struct cli_args *a)
{
	struct cc_ts_policy p;
	const char *ocsp, *pol;
	kh_msg *q = NULL, *r = NULL;
	int rc;

	memset(&p, 0, sizeof(p));
	p.rev = cli_opt(a, "--revocation");
	p.url = cli_opt(a, "--ocsp-url");
	p.crl_url = cli_opt(a, "--crl-url");
	p.responder_file = cli_opt(a, "--ocsp-responder-cert");
	while ((pol = cli_opt(a, "--policy")) != NULL) {
		if (p.n_policies == KH_POLICIES_MAX)
			return cli_usage(cli, "at most %d --policy options", KH_POLICIES_MAX);
		if (!kh_oid_valid(pol))
			return cli_failf(cli, KH_E_INVALID_ARGUMENT,
					 "'%s' is not a policy: give a dotted OID (such as 2.16.840.1.101.3.2.1.48.1) or "
					 "anyPolicy",
					 pol);
		p.set_policies = true;
		/* anyPolicy alone is the default: stored as no policy. */
		if (strcmp(pol, "anyPolicy") != 0)
			p.policies[p.n_policies++] = pol;
	}
	if ((p.explicit_policy = cc_onoff(cli, a, "--require-explicit-policy")) == -2 ||
	    (p.inhibit_map = cc_onoff(cli, a, "--inhibit-policy-mapping")) == -2 ||
	    (p.inhibit_any = cc_onoff(cli, a, "--inhibit-any-policy")) == -2 ||
	    (p.sha1 = cc_onoff(cli, a, "--allow-sha1")) == -2)
		return CLI_EXIT_USAGE;
	if (cc_bits(cli, a, "--min-rsa-bits", KH_FLOOR_RSA_MIN, KH_FLOOR_RSA_MAX, &p.rsa) != 0 ||
	    cc_bits(cli, a, "--min-ec-bits", KH_FLOOR_EC_MIN, KH_FLOOR_EC_MAX, &p.ec) != 0)
		return CLI_EXIT_USAGE;
	p.store = cli_pos(a);
	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (p.store == NULL || (p.rev == NULL && p.url == NULL && p.crl_url == NULL && p.responder_file == NULL && !p.set_policies && p.explicit_policy < 0 &&
				p.inhibit_map < 0 && p.inhibit_any < 0 && p.sha1 < 0 && p.rsa == 0 && p.ec == 0))
		return cli_usage(cli, CC_TS_USAGE);
	if (!kh_name_valid(p.store))
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "trust store name must match [A-Za-z0-9._-]{1,64}");
	if ((p.rev != NULL && (rc = cc_len(cli, p.rev, CLI_REVOCATION_MAX, "the revocation list")) != 0) ||
	    (p.url != NULL && (rc = cc_len(cli, p.url, CLI_URL_MAX, "the OCSP URL")) != 0))
		return rc;
	/* --ocsp-responder-cert none: no trusted responder any more. */
	if (p.responder_file != NULL && strcmp(p.responder_file, "none") != 0 &&
	    (rc = cc_read(cli, p.responder_file, &p.responder)) != 0)
		return rc;
	rc = cli_connect(cli);
	if (rc == 0 && p.url != NULL)
		rc = cc_url(cli, p.url);
	if (rc == 0)
		rc = cli_request(cli, "SetTruststorePolicy", &q);
	if (rc == 0)
		rc = cli_call(cli, q, cc_ts_fill(q, &p), &r);
	free(p.responder.data);
	if (rc != 0)
		return rc;
	ocsp = kh_msg_get_str(r, "ocsp_url");
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "store", kh_msg_get_str(r, "store"));
		cli_json_str(cli->j, "revocation", kh_msg_get_str(r, "revocation"));
		cli_json_str(cli->j, "ocsp_url", ocsp);
		cli_json_str(cli->j, "crl_url", kh_msg_get_str(r, "crl_url"));
		if (kh_msg_has(r, "ocsp_responder")) {
			cli_json_obj(cli->j, "ocsp_responder");
			cli_json_str(cli->j, "subject", kh_msg_get_str(cli_sub(r, "ocsp_responder"), "subject"));
			cli_json_str(cli->j, "fingerprint_sha256", kh_msg_get_str(cli_sub(r, "ocsp_responder"), "fingerprint"));
			cli_json_end_obj(cli->j);
		}
		cli_validation_json(cli->j, "validation", cli_sub(r, "validation"));
		cli_json_end_obj(cli->j);
	} else {
		printf("trust store %s: revocation %s%s%s\n", kh_msg_get_str(r, "store"), kh_msg_get_str(r, "revocation"),
		       ocsp[0] ? ", OCSP responder " : "", ocsp);
		if (kh_msg_get_str(r, "crl_url")[0] != '\0')
			printf("crl url: %s (fetched every [revocation] recheck_interval)\n", kh_msg_get_str(r, "crl_url"));
		if (kh_msg_has(r, "ocsp_responder"))
			printf("trusted OCSP responder: %s (SHA-256 %s)\n", kh_msg_get_str(cli_sub(r, "ocsp_responder"), "subject"),
			       kh_msg_get_str(cli_sub(r, "ocsp_responder"), "fingerprint"));
		cli_validation_text("validation: ", cli_sub(r, "validation"));
	}
	kh_msg_free(r);
	return 0;
}
