/* cert.c: `keyhold cert check|expiring|monitor` and the policy verbs
 * `trustpoint set` and `truststore set` (docs/REVOCATION.md). Human output
 * on stdout, one JSON document with --json, errors per the CLI contract. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kh_util.h"

static const char *cc_time(int64_t t, char *buf, size_t n)
{
	if (t == 0)
		return "-";
	kh_time_format_rfc3339(t, buf, n);
	return buf;
}

static int cc_read(struct cli *cli, const char *path, struct kh_bytes *out)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	if (cli_read_file(cli, path, KH_PKI_BLOB_MAX, &buf, &len) != 0)
		return CLI_EXIT_ERR;
	if (len == 0) {
		free(buf);
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "%s is empty", path);
	}
	out->data = buf;
	out->len = len;
	return 0;
}

static int cc_copy(struct cli *cli, char *dst, size_t dstsz, const char *v, const char *what)
{
	if (strlen(v) >= dstsz)
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "%s is longer than %zu characters", what, dstsz - 1);
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

/* "revoked (keyCompromise)", "good", "unknown". */
static const char *cc_status(enum kh_rev_status st, const char *reason, char *buf, size_t n)
{
	if (st == KH_REV_REVOKED) {
		snprintf(buf, n, "revoked (%s)", reason[0] != '\0' ? reason : "unspecified");
		return buf;
	}
	return kh_rev_status_name(st);
}

/* ---- cert check ---- */

static int cert_check(struct cli *cli, struct cli_args *a)
{
	const char *store = cli_opt(a, "--store");
	const char *untrusted = cli_opt(a, "--untrusted");
	const char *path = cli_pos(a);
	struct kh_cert_check_req req;
	struct kh_cert_check_resp r;
	struct kh_errbuf e = { 0 };
	char sb[64], tb[40];
	bool failed;
	size_t i;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (path == NULL || store == NULL)
		return cli_usage(cli, "usage: keyhold cert check FILE --store STORE [--untrusted FILE]");
	memset(&req, 0, sizeof(req));
	if (!kh_name_valid(store))
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "trust store name must match [A-Za-z0-9._-]{1,64}");
	memcpy(req.store, store, strlen(store) + 1);
	rc = cc_read(cli, path, &req.cert);
	if (rc == 0 && untrusted != NULL)
		rc = cc_read(cli, untrusted, &req.untrusted);
	if (rc == 0)
		rc = cli_connect(cli);
	if (rc == 0 && kh_cert_check(cli->c, &req, &r, &e) != KH_OK)
		rc = cli_fail(cli, &e);
	kh_bytes_clear(&req.cert);
	kh_bytes_clear(&req.untrusted);
	if (rc != 0)
		return rc;
	/* Revoked always fails; unknown fails unless the policy ends in none. */
	failed = r.status == KH_REV_REVOKED || (r.status == KH_REV_UNKNOWN && !r.soft_fail);
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "store", store);
		cli_json_str(cli->j, "status", kh_rev_status_name(r.status));
		if (r.status == KH_REV_REVOKED)
			cli_json_str(cli->j, "reason", r.reason);
		cli_json_str(cli->j, "policy", r.policy);
		cli_json_bool(cli->j, "soft_fail", r.soft_fail);
		cli_json_str(cli->j, "detail", r.detail);
		cli_json_arr(cli->j, "certs");
		for (i = 0; i < r.n_certs; i++) {
			const struct kh_cert_rev *c = &r.certs[i];

			cli_json_obj(cli->j, NULL);
			cli_json_str(cli->j, "subject", c->cert.subject);
			cli_json_str(cli->j, "issuer", c->cert.issuer);
			cli_json_str(cli->j, "serial", c->cert.serial);
			cli_json_str(cli->j, "fingerprint_sha256", c->cert.fingerprint);
			cli_json_str(cli->j, "status", kh_rev_status_name(c->status));
			if (c->status == KH_REV_REVOKED) {
				cli_json_str(cli->j, "reason", c->reason);
				cli_json_str(cli->j, "revoked_at", cc_time(c->revoked_at, tb, sizeof(tb)));
			}
			cli_json_str(cli->j, "method", c->method);
			cli_json_str(cli->j, "source", c->source);
			cli_json_str(cli->j, "detail", c->detail);
			cli_json_end_obj(cli->j);
		}
		cli_json_end_arr(cli->j);
		if (failed) {
			/* The contract's error object, inside the one document. */
			cli_json_obj(cli->j, "error");
			cli_json_str(cli->j, "code", "FAILED_PRECONDITION");
			cli_json_str(cli->j, "message", r.detail);
			cli_json_end_obj(cli->j);
		}
		cli_json_end_obj(cli->j);
	} else {
		printf("%s\n", cc_status(r.status, r.reason, sb, sizeof(sb)));
		for (i = 0; i < r.n_certs; i++) {
			const struct kh_cert_rev *c = &r.certs[i];

			printf("  %s: %s", c->cert.subject, cc_status(c->status, c->reason, sb, sizeof(sb)));
			if (c->status == KH_REV_REVOKED)
				printf(" since %s", cc_time(c->revoked_at, tb, sizeof(tb)));
			if (c->method[0] != '\0')
				printf(" (%s %s)", c->method, c->source);
			if (c->status == KH_REV_UNKNOWN && c->detail[0] != '\0')
				printf(" (%s)", c->detail);
			printf("\n");
		}
		if (r.n_certs == 0)
			printf("  %s\n", r.detail);
		if (failed)
			fprintf(stderr, "error: FAILED_PRECONDITION: %s%s%s%s\n", r.detail,
				r.status == KH_REV_UNKNOWN ? " (policy '" : "", r.status == KH_REV_UNKNOWN ? r.policy : "",
				r.status == KH_REV_UNKNOWN ? "' fails hard when nothing answers)" : "");
		else if (r.status == KH_REV_UNKNOWN && strcmp(r.policy, "none") == 0)
			fprintf(stderr, "warning: revocation checking is off for trust store %s (policy none): %s\n", store,
				r.detail);
		else if (r.status == KH_REV_UNKNOWN)
			fprintf(stderr, "warning: %s; accepted: policy '%s' ends in none (soft-fail)\n", r.detail, r.policy);
	}
	kh_cert_check_resp_clear(&r);
	return failed ? CLI_EXIT_ERR : 0;
}

/* ---- cert expiring / monitor ---- */

static void exp_json(struct cli_json *j, const struct kh_expiring_cert *c)
{
	char t1[40], t2[40];
	size_t k;

	cli_json_obj(j, NULL);
	cli_json_str(j, "subject", c->cert.subject);
	cli_json_str(j, "issuer", c->cert.issuer);
	cli_json_str(j, "serial", c->cert.serial);
	cli_json_str(j, "fingerprint_sha256", c->cert.fingerprint);
	cli_json_str(j, "not_after", cc_time(c->cert.not_after, t1, sizeof(t1)));
	cli_json_i64(j, "days_left", c->days_left); /* negative once expired */
	cli_json_bool(j, "expired", c->days_left < 0);
	cli_json_arr(j, "held_by");
	for (k = 0; k < c->n_held_by; k++)
		cli_json_str(j, NULL, c->held_by[k]);
	cli_json_end_arr(j);
	cli_json_str(j, "last_notified", cc_time(c->last_notified, t2, sizeof(t2)));
	cli_json_u64(j, "notifications", c->notifications);
	cli_json_end_obj(j);
}

static void exp_row(const struct kh_expiring_cert *c)
{
	char t1[40], t2[40], held[KH_HELD_BY_MAX * KH_HELD_BY_LEN] = "";
	size_t k;

	for (k = 0; k < c->n_held_by; k++) {
		size_t n = strlen(held);

		snprintf(held + n, sizeof(held) - n, "%s%s", k > 0 ? "," : "", c->held_by[k]);
	}
	printf("%-20s  %5lld  %-20s %3u  %s  [%s]\n", cc_time(c->cert.not_after, t1, sizeof(t1)), (long long)c->days_left,
	       cc_time(c->last_notified, t2, sizeof(t2)), c->notifications, c->cert.subject, held);
}

static int cert_expiring(struct cli *cli, struct cli_args *a)
{
	const char *within = cli_opt(a, "--within");
	bool all = cli_flag(a, "--all");
	struct kh_expiring_list l;
	struct kh_errbuf e = { 0 };
	uint64_t days = 0;
	size_t i;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (within != NULL && (kh_parse_u64(within, 1, 36500, &days) != 0 || all))
		return cli_usage(cli, "usage: keyhold cert expiring [--within DAYS (1 to 36500) | --all]");
	if ((rc = cli_connect(cli)) != 0)
		return rc;
	if (kh_cert_expiring(cli->c, (uint32_t)days, all, &l, &e) != KH_OK)
		return cli_fail(cli, &e);
	if (cli->json) {
		char tb[40];

		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "now", cc_time(l.now, tb, sizeof(tb)));
		if (!all)
			cli_json_u64(cli->j, "within_days", l.within_days);
		cli_json_arr(cli->j, "certificates");
		for (i = 0; i < l.n; i++)
			exp_json(cli->j, &l.certs[i]);
		cli_json_end_arr(cli->j);
		cli_json_end_obj(cli->j);
	} else {
		if (all)
			printf("every certificate keyhold holds, soonest expiry first\n");
		else
			printf("certificates expiring within %u days, soonest first\n", l.within_days);
		printf("%-20s  %5s  %-20s %3s  %s\n", "NOT AFTER", "DAYS", "LAST NOTIFIED", "#", "SUBJECT  [HELD BY]");
		for (i = 0; i < l.n; i++)
			exp_row(&l.certs[i]);
	}
	kh_expiring_list_clear(&l);
	return 0;
}

static int cert_monitor(struct cli *cli, struct cli_args *a)
{
	struct kh_monitor_resp m;
	struct kh_errbuf e = { 0 };
	size_t i;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0)
		return rc;
	if (kh_monitor_run(cli->c, &m, &e) != KH_OK)
		return cli_fail(cli, &e);
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_arr(cli->j, "notified");
		for (i = 0; i < m.n_notified; i++)
			exp_json(cli->j, &m.notified[i]);
		cli_json_end_arr(cli->j);
		cli_json_arr(cli->j, "renewals");
		for (i = 0; i < m.n_renewals; i++)
			cli_json_str(cli->j, NULL, m.renewals[i]);
		cli_json_end_arr(cli->j);
		cli_json_arr(cli->j, "errors");
		for (i = 0; i < m.n_errors; i++)
			cli_json_str(cli->j, NULL, m.errors[i]);
		cli_json_end_arr(cli->j);
		if (m.n_errors > 0) {
			cli_json_obj(cli->j, "error");
			cli_json_str(cli->j, "code", "FAILED_PRECONDITION");
			cli_json_str(cli->j, "message", m.errors[0]);
			cli_json_end_obj(cli->j);
		}
		cli_json_end_obj(cli->j);
	} else {
		printf("%zu notification(s), %zu renewal action(s)\n", m.n_notified, m.n_renewals);
		for (i = 0; i < m.n_notified; i++)
			exp_row(&m.notified[i]);
		for (i = 0; i < m.n_renewals; i++)
			printf("renewal: %s\n", m.renewals[i]);
		for (i = 0; i < m.n_errors; i++)
			fprintf(stderr, "error: FAILED_PRECONDITION: %s\n", m.errors[i]);
	}
	rc = m.n_errors > 0 ? CLI_EXIT_ERR : 0;
	kh_monitor_resp_clear(&m);
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

int cli_tp_set(struct cli *cli, struct cli_args *a)
{
	const char *rev = cli_opt(a, "--revocation");
	const char *url = cli_opt(a, "--ocsp-url");
	const char *name;
	struct kh_tp_policy_req req;
	struct kh_trustpoint t;
	struct kh_errbuf e = { 0 };
	bool mode_given = false;
	int rc;

	memset(&req, 0, sizeof(req));
	if ((rc = cli_renew_opts(cli, a, &req.set_renew, &req.renew_at, &req.renew_regenerate, &mode_given)) != 0)
		return rc;
	name = cli_pos(a);
	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL || (rev == NULL && url == NULL && !req.set_renew && !mode_given))
		return cli_usage(cli, "usage: keyhold trustpoint set TP [--revocation LIST] [--ocsp-url URL] "
				      "[--renew-at PERCENT|off] [--renew-regenerate|--renew-same-key]");
	if (!kh_name_valid(name))
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "trustpoint name must match [A-Za-z0-9._-]{1,64}");
	memcpy(req.name, name, strlen(name) + 1);
	if (rev != NULL) {
		req.set_revocation = true;
		if ((rc = cc_copy(cli, req.revocation, sizeof(req.revocation), rev, "the revocation list")) != 0)
			return rc;
	}
	if (url != NULL) {
		req.set_ocsp_url = true;
		if ((rc = cc_copy(cli, req.ocsp_url, sizeof(req.ocsp_url), url, "the OCSP URL")) != 0)
			return rc;
	}
	if ((rc = cli_connect(cli)) != 0)
		return rc;
	if (mode_given && !req.set_renew) {
		/* Only the key mode changes: keep the percent. */
		if (kh_trustpoint_get(cli->c, name, &t, &e) != KH_OK)
			return cli_fail(cli, &e);
		req.renew_at = t.renew_at;
		kh_trustpoint_clear(&t);
		if (req.renew_at == 0)
			return cli_usage(cli, "trustpoint %s does not renew; give --renew-at PERCENT too", name);
		req.set_renew = true;
	} else if (req.set_renew && !mode_given && req.renew_at > 0) {
		/* A new percent keeps the key mode. */
		if (kh_trustpoint_get(cli->c, name, &t, &e) != KH_OK)
			return cli_fail(cli, &e);
		req.renew_regenerate = t.renew_regenerate;
		kh_trustpoint_clear(&t);
	}
	if (kh_trustpoint_set_policy(cli->c, &req, &t, &e) != KH_OK)
		return cli_fail(cli, &e);
	cli_tp_out(cli, &t);
	kh_trustpoint_clear(&t);
	return 0;
}

int cli_ts_set(struct cli *cli, struct cli_args *a)
{
	const char *rev = cli_opt(a, "--revocation");
	const char *url = cli_opt(a, "--ocsp-url");
	const char *store = cli_pos(a);
	struct kh_ts_policy_req req;
	struct kh_ts_policy p;
	struct kh_errbuf e = { 0 };
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (store == NULL || (rev == NULL && url == NULL))
		return cli_usage(cli, "usage: keyhold truststore set STORE [--revocation LIST] [--ocsp-url URL]");
	memset(&req, 0, sizeof(req));
	if (!kh_name_valid(store))
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "trust store name must match [A-Za-z0-9._-]{1,64}");
	memcpy(req.store, store, strlen(store) + 1);
	if (rev != NULL) {
		req.set_revocation = true;
		if ((rc = cc_copy(cli, req.revocation, sizeof(req.revocation), rev, "the revocation list")) != 0)
			return rc;
	}
	if (url != NULL) {
		req.set_ocsp_url = true;
		if ((rc = cc_copy(cli, req.ocsp_url, sizeof(req.ocsp_url), url, "the OCSP URL")) != 0)
			return rc;
	}
	if ((rc = cli_connect(cli)) != 0)
		return rc;
	if (kh_truststore_set_policy(cli->c, &req, &p, &e) != KH_OK)
		return cli_fail(cli, &e);
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "store", p.store);
		cli_json_str(cli->j, "revocation", p.revocation);
		cli_json_str(cli->j, "ocsp_url", p.ocsp_url);
		cli_json_end_obj(cli->j);
	} else {
		printf("trust store %s: revocation %s%s%s\n", p.store, p.revocation, p.ocsp_url[0] ? ", OCSP responder " : "",
		       p.ocsp_url);
	}
	return 0;
}
