/* security.c: `keyhold audit show|verify` and `keyhold policy
 * grant|revoke|list` (per-key grants). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* ---- audit ---- */

/* --since: an RFC 3339 time at or after the epoch (cli_time_parse,
 * as `truststore verify --at` takes it); 0 on success. */
static int cli_parse_since(const char *s, uint64_t *out)
{
	int64_t t;

	if (kh_time_parse_rfc3339(s, &t) != 0 || t < 0)
		return -1;
	*out = (uint64_t)t;
	return 0;
}

static void cli_time_us(uint64_t us, char *out, size_t n)
{
	time_t s = (time_t)(us / 1000000u);
	struct tm tm;
	char base[32];

	gmtime_r(&s, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, n, "%s.%06uZ", base, (unsigned)(us % 1000000u));
}

/* The name of an AuditRecord's gRPC code. */
static const char *cli_code_name(int64_t code)
{
	return kh_err_name(code >= 0 && code <= 16 ? (int)-code : KH_E_UNKNOWN);
}

static int cli_audit_show(struct cli *cli, struct cli_args *a)
{
	struct cli_json *j = cli->j;
	const char *since = cli_opt(a, "--since"), *lim = cli_opt(a, "--limit");
	uint64_t total = 0, max = UINT64_MAX, since_s = 0, from_seq = 0;
	int rc;

	if (since != NULL && cli_parse_since(since, &since_s) != 0)
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
		kh_msg *q = NULL, *page = NULL;
		enum kh_err r;
		size_t i, n;
		bool more;

		if ((rc = cli_request(cli, "AuditShow", &q)) != 0)
			return rc;
		r = kh_msg_set_uint(q, "since", since_s);
		if (r == KH_OK)
			r = kh_msg_set_uint(q, "from_seq", from_seq);
		if ((rc = cli_call(cli, q, r, &page)) != 0)
			return rc;
		n = kh_msg_count(page, "records");
		for (i = 0; i < n && total < max; i++, total++) {
			const kh_msg *rec = cli_item(page, "records", i);
			uint64_t seq = kh_msg_get_uint(rec, "seq"), time_us = kh_msg_get_uint(rec, "time_us");
			uint64_t duration_us = kh_msg_get_uint(rec, "duration_us"), count = kh_msg_get_uint(rec, "count");
			const char *principal = kh_msg_get_str(rec, "principal"), *method = kh_msg_get_str(rec, "method");
			const char *object = kh_msg_get_str(rec, "object");
			const char *result = cli_code_name(kh_msg_get_int(rec, "code"));
			bool checkpoint = kh_msg_get_bool(rec, "checkpoint");
			char when[40];

			cli_time_us(time_us, when, sizeof(when));
			if (cli->json) {
				cli_json_obj(j, NULL);
				cli_json_u64(j, "seq", seq);
				cli_json_str(j, "time", when);
				cli_json_str(j, "principal", principal);
				cli_json_str(j, "method", method);
				cli_json_str(j, "object", object);
				cli_json_str(j, "result", result);
				cli_json_u64(j, "duration_us", duration_us);
				cli_json_u64(j, "count", count);
				cli_json_bool(j, "checkpoint", checkpoint);
				cli_json_end_obj(j);
			} else {
				char many[40] = "";

				if (count > 1)
					snprintf(many, sizeof(many), " (%llu requests)", (unsigned long long)count);
				printf("%6llu %s %-24s %-16s %-20s %-18s %8llu us%s%s\n", (unsigned long long)seq, when,
				       principal, method, object[0] ? object : "-", result,
				       (unsigned long long)duration_us, many, checkpoint ? " [signed checkpoint]" : "");
			}
		}
		from_seq = kh_msg_get_uint(page, "next_seq");
		more = kh_msg_get_bool(page, "more");
		kh_msg_free(page);
		if (!more || total >= max)
			break;
	}
	cli_json_end_arr(j);
	cli_json_end_obj(j);
	return 0;
}

/* verify --cluster: each node's recorded checkpoints (JSON inside the
 * verdict's object, or text lines). */
static void cli_audit_nodes(struct cli *cli, const kh_msg *v)
{
	struct cli_json *j = cli->j;
	size_t i, k, n = kh_msg_count(v, "nodes");
	char tb[40];

	if (cli->json) {
		cli_json_bool(j, "cluster_ok", kh_msg_get_bool(v, "cluster_ok"));
		cli_json_arr(j, "nodes");
	}
	for (i = 0; i < n; i++) {
		const kh_msg *o = cli_item(v, "nodes", i);
		size_t ng = kh_msg_count(o, "gaps");

		if (cli->json) {
			cli_json_obj(j, NULL);
			cli_json_str(j, "node", kh_msg_get_str(o, "node"));
			cli_json_bool(j, "ok", kh_msg_get_bool(o, "ok"));
			cli_json_u64(j, "checkpoints", kh_msg_get_uint(o, "checkpoints"));
			cli_json_u64(j, "first_seq", kh_msg_get_uint(o, "first_seq"));
			cli_json_u64(j, "last_seq", kh_msg_get_uint(o, "last_seq"));
			cli_json_u64(j, "bad_signatures", kh_msg_get_uint(o, "bad_signatures"));
			cli_json_arr(j, "gaps");
			for (k = 0; k < ng; k++)
				cli_json_str(j, NULL, kh_msg_get_str_at(o, "gaps", k));
			cli_json_end_arr(j);
			cli_json_str(j, "last_recorded", cli_time_str(kh_msg_get_int(o, "last_recorded"), tb, sizeof(tb)));
			if (kh_msg_get_str(o, "reason")[0] != '\0')
				cli_json_str(j, "reason", kh_msg_get_str(o, "reason"));
			cli_json_end_obj(j);
			continue;
		}
		printf("node %s: %s: %llu checkpoints recorded (%llu to %llu, the last at %s)\n", kh_msg_get_str(o, "node"),
		       kh_msg_get_bool(o, "ok") ? "intact" : "NOT INTACT", (unsigned long long)kh_msg_get_uint(o, "checkpoints"),
		       (unsigned long long)kh_msg_get_uint(o, "first_seq"), (unsigned long long)kh_msg_get_uint(o, "last_seq"),
		       cli_time_str(kh_msg_get_int(o, "last_recorded"), tb, sizeof(tb)));
		for (k = 0; k < ng; k++)
			printf("  gap: %s\n", kh_msg_get_str_at(o, "gaps", k));
		if (kh_msg_get_uint(o, "bad_signatures") > 0)
			printf("  %llu checkpoint(s) do not verify\n", (unsigned long long)kh_msg_get_uint(o, "bad_signatures"));
		if (kh_msg_get_str(o, "reason")[0] != '\0')
			printf("  %s\n", kh_msg_get_str(o, "reason"));
	}
	if (cli->json)
		cli_json_end_arr(j);
	else if (n == 0)
		printf("no node has recorded a checkpoint in the state database yet\n");
}

static int cli_audit_verify(struct cli *cli, struct cli_args *a)
{
	kh_msg *q = NULL, *v = NULL;
	struct cli_json *j = cli->j;
	uint64_t records, checkpoints, last, tail;
	const char *key_fp, *note;
	bool cluster = cli_flag(a, "--cluster");
	enum kh_err r = KH_OK;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0 ||
	    (rc = cli_request(cli, "AuditVerify", &q)) != 0)
		return rc;
	if (cluster)
		r = kh_msg_set_bool(q, "cluster", true);
	if ((rc = cli_call(cli, q, r, &v)) != 0)
		return rc;
	if (!kh_msg_get_bool(v, "ok")) {
		rc = cli_failf(cli, KH_E_DATA_LOSS, "the audit log is not intact: first bad record: %llu (line %llu): %s",
			       (unsigned long long)kh_msg_get_uint(v, "bad_seq"),
			       (unsigned long long)kh_msg_get_uint(v, "bad_line"), kh_msg_get_str(v, "reason"));
		kh_msg_free(v);
		return rc;
	}
	records = kh_msg_get_uint(v, "records");
	checkpoints = kh_msg_get_uint(v, "checkpoints");
	last = kh_msg_get_uint(v, "last_checkpoint_seq");
	tail = kh_msg_get_uint(v, "unsigned_tail");
	key_fp = kh_msg_get_str(v, "key_fingerprint");
	/* On success the reason says where verification started when
	 * retention deleted the oldest rotated files. */
	note = kh_msg_get_str(v, "reason");
	if (cli->json) {
		cli_json_obj(j, NULL);
		cli_json_bool(j, "ok", true);
		cli_json_u64(j, "records", records);
		cli_json_u64(j, "checkpoints", checkpoints);
		cli_json_u64(j, "last_checkpoint_seq", last);
		cli_json_u64(j, "unsigned_tail", tail);
		cli_json_str(j, "key_fingerprint", key_fp);
		if (note != NULL && note[0] != '\0')
			cli_json_str(j, "note", note);
		if (cluster)
			cli_audit_nodes(cli, v);
		cli_json_end_obj(j);
	} else {
		printf("audit log intact: %llu records, %llu signed checkpoints", (unsigned long long)records,
		       (unsigned long long)checkpoints);
		if (checkpoints > 0)
			printf(" (the last is record %llu)", (unsigned long long)last);
		printf("\n");
		if (tail > 0)
			printf("%llu records after the last checkpoint are chained but not yet signed\n",
			       (unsigned long long)tail);
		printf("checkpoint key SPKI SHA-256: %s\n", key_fp);
		if (note != NULL && note[0] != '\0')
			printf("%s\n", note);
		if (cluster)
			cli_audit_nodes(cli, v);
	}
	/* A node's recorded checkpoints that do not verify, or a gap: the
	 * same exit status as a broken log. */
	rc = cluster && !kh_msg_get_bool(v, "cluster_ok") ? cli_exit_code(KH_E_DATA_LOSS) : 0;
	kh_msg_free(v);
	return rc;
}

int cli_cmd_audit(struct cli *cli, struct cli_args *a)
{
	const char *verb = cli_pos(a);

	if (verb != NULL && strcmp(verb, "show") == 0)
		return cli_audit_show(cli, a);
	if (verb != NULL && strcmp(verb, "verify") == 0)
		return cli_audit_verify(cli, a);
	return cli_usage(cli, "audit takes show [--since RFC3339] [--limit N] or verify [--cluster]");
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

/* Indexed by the enum values of keyhold.proto's Digest and Padding. */
#define CLI_DIGEST_MAX 6
#define CLI_PAD_MAX 2
static const char *const cli_digests[] = { "", "sha256", "sha384", "sha512", "sha1", "md5", "sha224" };
static const char *const cli_digest_values[] = { "DIGEST_DEFAULT", "SHA256", "SHA384", "SHA512",
						 "SHA1",           "MD5",    "SHA224" };
static const char *const cli_paddings[] = { "", "pkcs1", "pss" };
static const char *const cli_padding_values[] = { "PADDING_DEFAULT", "PKCS1", "PSS" };

/* The set (bit per value) of the repeated enum field of g. */
static unsigned cli_enum_set(const kh_msg *g, const char *field, const char *const *values, unsigned max)
{
	size_t i, n = kh_msg_count(g, field);
	unsigned set = 0, k;

	for (i = 0; i < n; i++) {
		const char *v = kh_msg_get_enum_at(g, field, i);

		for (k = 0; k <= max; k++)
			if (strcmp(v, values[k]) == 0)
				set |= 1u << k;
	}
	return set;
}

/* Appends the values of set to the repeated enum field of g, lowest
 * first. */
static enum kh_err cli_add_set(kh_msg *g, const char *field, unsigned set, const char *const *values, unsigned max)
{
	enum kh_err r = KH_OK;
	unsigned i;

	for (i = 0; i <= max; i++)
		if (set & (1u << i))
			CLI_TRY(kh_msg_add_enum(g, field, values[i]));
out:
	return r;
}

/* key and principal checked as the service checks them; 0 or the error
 * printed. */
static int cli_grant_names(struct cli *cli, const char *key, const char *principal)
{
	if (!kh_name_valid(key))
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "key name must match [A-Za-z0-9._-]{1,64}");
	if (principal != NULL && !kh_principal_valid(principal))
		return cli_failf(cli, KH_E_INVALID_ARGUMENT,
				 "principal must be uid:N, gid:N, user:NAME, group:NAME or cert:NAME");
	return 0;
}

static enum kh_err cli_grant_fill(kh_msg *q, const char *key, const char *who, unsigned digests, unsigned paddings)
{
	kh_msg *g = NULL;
	enum kh_err r;

	CLI_TRY(kh_msg_sub(q, "grant", &g));
	CLI_TRY(kh_msg_set_str(g, "key", key));
	CLI_TRY(kh_msg_set_str(g, "principal", who));
	CLI_TRY(cli_add_set(g, "digests", digests, cli_digest_values, CLI_DIGEST_MAX));
	CLI_TRY(cli_add_set(g, "paddings", paddings, cli_padding_values, CLI_PAD_MAX));
out:
	return r;
}

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
	kh_msg *q = NULL, *resp = NULL;
	enum kh_err r;
	int rc;

	if (verb != NULL && strcmp(verb, "grant") == 0) {
		const char *key = cli_pos(a), *who = cli_pos(a);
		const char *d = cli_opt(a, "--digests"), *p = cli_opt(a, "--padding"), *bad = NULL;
		unsigned digests = 0, paddings = 0;

		if (key == NULL || who == NULL)
			return cli_usage(cli, "policy grant KEY PRINCIPAL [--digests sha256,...] [--padding pkcs1,pss]");
		if (strlen(key) > CLI_NAME_MAX || strlen(who) > CLI_PRINCIPAL_MAX)
			return cli_usage(cli, "key or principal too long");
		if (d != NULL && (digests = cli_name_set(d, cli_digests, CLI_DIGEST_MAX, &bad)) == 0)
			return cli_usage(cli, "--digests takes a list like sha256,sha384, not '%s'", bad ? bad : d);
		if (p != NULL && (paddings = cli_name_set(p, cli_paddings, CLI_PAD_MAX, &bad)) == 0)
			return cli_usage(cli, "--padding takes pkcs1, pss or pkcs1,pss, not '%s'", bad ? bad : p);
		if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0 ||
		    (rc = cli_grant_names(cli, key, who)) != 0 || (rc = cli_request(cli, "GrantKey", &q)) != 0)
			return rc;
		r = cli_grant_fill(q, key, who, digests, paddings);
		if ((rc = cli_call(cli, q, r, &resp)) != 0)
			return rc;
		kh_msg_free(resp);
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
		if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0 ||
		    (rc = cli_grant_names(cli, key, who)) != 0 || (rc = cli_request(cli, "RevokeKeyGrant", &q)) != 0)
			return rc;
		r = kh_msg_set_str(q, "key", key);
		if (r == KH_OK)
			r = kh_msg_set_str(q, "principal", who);
		if ((rc = cli_call(cli, q, r, &resp)) != 0)
			return rc;
		kh_msg_free(resp);
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
		size_t i, n;

		if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0)
			return rc;
		if (key != NULL && key[0] != '\0' && (rc = cli_grant_names(cli, key, NULL)) != 0)
			return rc;
		if ((rc = cli_request(cli, "ListKeyGrants", &q)) != 0)
			return rc;
		r = key != NULL ? kh_msg_set_str(q, "key", key) : KH_OK;
		if ((rc = cli_call(cli, q, r, &resp)) != 0)
			return rc;
		cli_json_obj(cli->j, NULL);
		cli_json_arr(cli->j, "grants");
		n = kh_msg_count(resp, "grants");
		for (i = 0; i < n; i++) {
			const kh_msg *g = cli_item(resp, "grants", i);
			const char *gkey = kh_msg_get_str(g, "key"), *gwho = kh_msg_get_str(g, "principal");
			const char *source = kh_msg_get_str(g, "source");
			char d[96], p[32];

			cli_set_text(d, sizeof(d), cli_enum_set(g, "digests", cli_digest_values, CLI_DIGEST_MAX),
				     cli_digests, CLI_DIGEST_MAX);
			cli_set_text(p, sizeof(p), cli_enum_set(g, "paddings", cli_padding_values, CLI_PAD_MAX),
				     cli_paddings, CLI_PAD_MAX);
			cli_json_obj(cli->j, NULL);
			cli_json_str(cli->j, "key", gkey);
			cli_json_str(cli->j, "principal", gwho);
			cli_json_str(cli->j, "digests", d);
			cli_json_str(cli->j, "padding", p);
			cli_json_str(cli->j, "source", source);
			cli_json_end_obj(cli->j);
			if (!cli->json)
				printf("%-24s %-32s digests %-20s padding %-10s (%s)\n", gkey, gwho, d, p, source);
		}
		cli_json_end_arr(cli->j);
		cli_json_end_obj(cli->j);
		kh_msg_free(resp);
		return 0;
	}
	return cli_usage(cli, "policy takes grant KEY PRINCIPAL [--digests L] [--padding L], revoke KEY PRINCIPAL or list [KEY]");
}
