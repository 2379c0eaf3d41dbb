/* security.c: `keyhold audit show|verify` and `keyhold policy
 * grant|revoke|list` (per-key grants). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* ---- audit ---- */

/* --since: an RFC 3339 time at or after the epoch (kh_time_parse_rfc3339,
 * as `truststore verify --at` takes it); 0 on success. */
static int cli_parse_since(const char *s, uint64_t *out)
{
	int64_t t;

	if (kh_time_parse_rfc3339(s, &t) != 0 || t < 0)
		return -1;
	*out = (uint64_t)t;
	return 0;
}

static void cli_time(uint64_t us, char *out, size_t n)
{
	time_t s = (time_t)(us / 1000000u);
	struct tm tm;
	char base[32];

	gmtime_r(&s, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, n, "%s.%06uZ", base, (unsigned)(us % 1000000u));
}

static int cli_audit_show(struct cli *cli, struct cli_args *a)
{
	struct kh_audit_show_req q;
	struct kh_errbuf e = { 0 };
	struct cli_json *j = cli->j;
	const char *since = cli_opt(a, "--since"), *lim = cli_opt(a, "--limit");
	uint64_t total = 0, max = UINT64_MAX;
	int rc;

	memset(&q, 0, sizeof(q));
	if (since != NULL && cli_parse_since(since, &q.since_s) != 0)
		return cli_usage(cli, "--since takes an RFC 3339 time like 2024-05-01T12:00:00Z, not '%s'", since);
	if (lim != NULL) {
		char *end = NULL;
		unsigned long long v = strtoull(lim, &end, 10);

		if (*lim == '\0' || *end != '\0' || v == 0)
			return cli_usage(cli, "--limit takes a positive number");
		max = v;
	}
	if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0)
		return rc;
	cli_json_obj(j, NULL);
	cli_json_arr(j, "records");
	for (;;) {
		struct kh_audit_records page;
		size_t i;

		if (kh_audit_show(cli->c, &q, &page, &e) != KH_OK)
			return cli_fail(cli, &e);
		for (i = 0; i < page.n && total < max; i++, total++) {
			const struct kh_audit_record *r = &page.recs[i];
			char when[40];

			cli_time(r->time_us, when, sizeof(when));
			if (cli->json) {
				cli_json_obj(j, NULL);
				cli_json_u64(j, "seq", r->seq);
				cli_json_str(j, "time", when);
				cli_json_str(j, "principal", r->principal);
				cli_json_str(j, "method", r->method);
				cli_json_str(j, "object", r->object);
				cli_json_str(j, "result", kh_err_name(r->code));
				cli_json_u64(j, "duration_us", r->duration_us);
				cli_json_u64(j, "count", r->count);
				cli_json_bool(j, "checkpoint", r->checkpoint);
				cli_json_end_obj(j);
			} else {
				char many[40] = "";

				if (r->count > 1)
					snprintf(many, sizeof(many), " (%llu requests)", (unsigned long long)r->count);
				printf("%6llu %s %-24s %-16s %-20s %-18s %8llu us%s%s\n", (unsigned long long)r->seq, when,
				       r->principal, r->method, r->object[0] ? r->object : "-", kh_err_name(r->code),
				       (unsigned long long)r->duration_us, many, r->checkpoint ? " [signed checkpoint]" : "");
			}
		}
		q.from_seq = page.next_seq;
		kh_audit_records_clear(&page);
		if (!page.more || total >= max)
			break;
	}
	cli_json_end_arr(j);
	cli_json_end_obj(j);
	return 0;
}

static int cli_audit_verify(struct cli *cli, struct cli_args *a)
{
	struct kh_audit_verify v;
	struct kh_errbuf e = { 0 };
	struct cli_json *j = cli->j;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0)
		return rc;
	if (kh_audit_verify(cli->c, &v, &e) != KH_OK)
		return cli_fail(cli, &e);
	if (!v.ok)
		return cli_failf(cli, KH_E_DATA_LOSS,
				 "the audit log is not intact: first bad record: %llu (line %llu): %s",
				 (unsigned long long)v.bad_seq, (unsigned long long)v.bad_line, v.reason);
	if (cli->json) {
		cli_json_obj(j, NULL);
		cli_json_bool(j, "ok", true);
		cli_json_u64(j, "records", v.records);
		cli_json_u64(j, "checkpoints", v.checkpoints);
		cli_json_u64(j, "last_checkpoint_seq", v.last_checkpoint_seq);
		cli_json_u64(j, "unsigned_tail", v.unsigned_tail);
		cli_json_str(j, "key_fingerprint", v.key_fp);
		cli_json_end_obj(j);
	} else {
		printf("audit log intact: %llu records, %llu signed checkpoints", (unsigned long long)v.records,
		       (unsigned long long)v.checkpoints);
		if (v.checkpoints > 0)
			printf(" (the last is record %llu)", (unsigned long long)v.last_checkpoint_seq);
		printf("\n");
		if (v.unsigned_tail > 0)
			printf("%llu records after the last checkpoint are chained but not yet signed\n",
			       (unsigned long long)v.unsigned_tail);
		printf("checkpoint key SPKI SHA-256: %s\n", v.key_fp);
	}
	return 0;
}

int cli_cmd_audit(struct cli *cli, struct cli_args *a)
{
	const char *verb = cli_pos(a);

	if (verb != NULL && strcmp(verb, "show") == 0)
		return cli_audit_show(cli, a);
	if (verb != NULL && strcmp(verb, "verify") == 0)
		return cli_audit_verify(cli, a);
	return cli_usage(cli, "audit takes show [--since RFC3339] [--limit N] or verify");
}

/* ---- policy ---- */

static unsigned cli_name_set(const char *list, const char *const *names, unsigned max, const char **bad)
{
	char buf[256];
	char *tok, *save = NULL;
	unsigned set = 0, i;

	if (strlen(list) >= sizeof(buf)) {
		*bad = list;
		return 0;
	}
	memcpy(buf, list, strlen(list) + 1);
	for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		for (i = 1; i <= max; i++)
			if (strcmp(tok, names[i]) == 0)
				break;
		if (i > max) {
			*bad = list;
			return 0;
		}
		set |= 1u << i;
	}
	return set;
}

static const char *const cli_digests[] = { "", "sha256", "sha384", "sha512", "sha1", "md5", "sha224" };
static const char *const cli_paddings[] = { "", "pkcs1", "pss" };

static void cli_set_text(char *out, size_t n, unsigned set, const char *const *names, unsigned max)
{
	size_t off = 0;
	unsigned i;

	out[0] = '\0';
	if (set == 0) {
		snprintf(out, n, "any");
		return;
	}
	for (i = 1; i <= max && off < n; i++)
		if (set & (1u << i))
			off += (size_t)snprintf(out + off, n - off, "%s%s", off ? "," : "", names[i]);
}

int cli_cmd_policy(struct cli *cli, struct cli_args *a)
{
	const char *verb = cli_pos(a);
	struct kh_errbuf e = { 0 };
	int rc;

	if (verb != NULL && strcmp(verb, "grant") == 0) {
		struct kh_key_grant g;
		const char *key = cli_pos(a), *who = cli_pos(a);
		const char *d = cli_opt(a, "--digests"), *p = cli_opt(a, "--padding"), *bad = NULL;

		if (key == NULL || who == NULL)
			return cli_usage(cli, "policy grant KEY PRINCIPAL [--digests sha256,...] [--padding pkcs1,pss]");
		memset(&g, 0, sizeof(g));
		if (strlen(key) >= sizeof(g.key) || strlen(who) >= sizeof(g.principal))
			return cli_usage(cli, "key or principal too long");
		memcpy(g.key, key, strlen(key) + 1);
		memcpy(g.principal, who, strlen(who) + 1);
		if (d != NULL && (g.digests = cli_name_set(d, cli_digests, KH_DIGEST_MAX, &bad)) == 0)
			return cli_usage(cli, "--digests takes a list like sha256,sha384, not '%s'", bad ? bad : d);
		if (p != NULL && (g.paddings = cli_name_set(p, cli_paddings, KH_PAD_MAX, &bad)) == 0)
			return cli_usage(cli, "--padding takes pkcs1, pss or pkcs1,pss, not '%s'", bad ? bad : p);
		if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0)
			return rc;
		if (kh_grant_key(cli->c, &g, &e) != KH_OK)
			return cli_fail(cli, &e);
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "granted", key);
		cli_json_str(cli->j, "principal", who);
		cli_json_end_obj(cli->j);
		if (!cli->json)
			printf("granted key %s to %s\n", key, who);
		return 0;
	}
	if (verb != NULL && strcmp(verb, "revoke") == 0) {
		const char *key = cli_pos(a), *who = cli_pos(a);

		if (key == NULL || who == NULL)
			return cli_usage(cli, "policy revoke KEY PRINCIPAL");
		if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0)
			return rc;
		if (kh_revoke_key_grant(cli->c, key, who, &e) != KH_OK)
			return cli_fail(cli, &e);
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "revoked", key);
		cli_json_str(cli->j, "principal", who);
		cli_json_end_obj(cli->j);
		if (!cli->json)
			printf("revoked key %s from %s\n", key, who);
		return 0;
	}
	if (verb != NULL && strcmp(verb, "list") == 0) {
		const char *key = cli_pos(a);
		struct kh_grant_list l;
		size_t i;

		if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0)
			return rc;
		if (kh_list_key_grants(cli->c, key, &l, &e) != KH_OK)
			return cli_fail(cli, &e);
		cli_json_obj(cli->j, NULL);
		cli_json_arr(cli->j, "grants");
		for (i = 0; i < l.n; i++) {
			char d[96], p[32];

			cli_set_text(d, sizeof(d), l.grants[i].digests, cli_digests, KH_DIGEST_MAX);
			cli_set_text(p, sizeof(p), l.grants[i].paddings, cli_paddings, KH_PAD_MAX);
			cli_json_obj(cli->j, NULL);
			cli_json_str(cli->j, "key", l.grants[i].key);
			cli_json_str(cli->j, "principal", l.grants[i].principal);
			cli_json_str(cli->j, "digests", d);
			cli_json_str(cli->j, "padding", p);
			cli_json_str(cli->j, "source", l.grants[i].source);
			cli_json_end_obj(cli->j);
			if (!cli->json)
				printf("%-24s %-32s digests %-20s padding %-10s (%s)\n", l.grants[i].key,
				       l.grants[i].principal, d, p, l.grants[i].source);
		}
		cli_json_end_arr(cli->j);
		cli_json_end_obj(cli->j);
		kh_grant_list_clear(&l);
		return 0;
	}
	return cli_usage(cli, "policy takes grant KEY PRINCIPAL [--digests L] [--padding L], revoke KEY PRINCIPAL or list [KEY]");
}
