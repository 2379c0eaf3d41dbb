/* pki.c: `keyhold csr`, `trustpoint ...`, `truststore ...` and `crl
 * import` (DESIGN §5). Human output on stdout, one JSON document with
 * --json, errors per the CLI contract. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "kh_util.h"

#define CLI_PKI_FILE_MAX KH_PKI_BLOB_MAX

static const char *cli_time(int64_t t, char *buf, size_t n)
{
	if (t == 0)
		return "-";
	kh_time_format_rfc3339(t, buf, n);
	return buf;
}

static void cert_json(struct cli_json *j, const char *key, const struct kh_cert_info *c)
{
	char t1[40], t2[40];

	cli_json_obj(j, key);
	cli_json_str(j, "subject", c->subject);
	cli_json_str(j, "issuer", c->issuer);
	cli_json_str(j, "serial", c->serial);
	cli_json_str(j, "not_before", cli_time(c->not_before, t1, sizeof(t1)));
	cli_json_str(j, "not_after", cli_time(c->not_after, t2, sizeof(t2)));
	cli_json_str(j, "fingerprint_sha256", c->fingerprint);
	cli_json_bool(j, "ca", c->ca);
	cli_json_bool(j, "self_signed", c->self_signed);
	cli_json_end_obj(j);
}

static void cert_print(const char *indent, const struct kh_cert_info *c)
{
	char t1[40], t2[40];

	printf("%ssubject:     %s\n%sissuer:      %s\n%sserial:      %s\n%svalid:       %s .. %s\n"
	       "%ssha256:      %s\n",
	       indent, c->subject, indent, c->issuer, indent, c->serial, indent, cli_time(c->not_before, t1, sizeof(t1)),
	       cli_time(c->not_after, t2, sizeof(t2)), indent, c->fingerprint);
}

static void crl_json(struct cli_json *j, const char *key, const struct kh_crl_info *c)
{
	char t1[40], t2[40];

	cli_json_obj(j, key);
	cli_json_str(j, "issuer", c->issuer);
	cli_json_str(j, "this_update", cli_time(c->this_update, t1, sizeof(t1)));
	cli_json_str(j, "next_update", cli_time(c->next_update, t2, sizeof(t2)));
	cli_json_u64(j, "revoked", c->revoked);
	cli_json_str(j, "number", c->number);
	cli_json_str(j, "fingerprint_sha256", c->fingerprint);
	cli_json_end_obj(j);
}

static int read_in(struct cli *cli, const char *path, struct kh_bytes *out)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	if (cli_read_file(cli, path, CLI_PKI_FILE_MAX, &buf, &len) != 0)
		return CLI_EXIT_ERR;
	if (len == 0) {
		free(buf);
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "%s is empty", path);
	}
	out->data = buf;
	out->len = len;
	return 0;
}

static int parse_digest(struct cli *cli, const char *name, enum kh_digest *out)
{
	*out = KH_DIGEST_DEFAULT;
	if (name == NULL)
		return 0;
	*out = kh_digest_from_name(name);
	if (*out == KH_DIGEST_DEFAULT)
		return cli_usage(cli, "unknown digest '%s'; use sha256, sha384 or sha512", name);
	return 0;
}

static int copy_opt(struct cli *cli, char *dst, size_t dstsz, const char *v, const char *what)
{
	if (v == NULL)
		return 0;
	if (strlen(v) >= dstsz)
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "%s is longer than %zu characters", what, dstsz - 1);
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

/* ---- csr ---- */

int cli_cmd_csr(struct cli *cli, struct cli_args *a)
{
	const char *subject = cli_opt(a, "--subject");
	const char *san = cli_opt(a, "--san");
	const char *eku = cli_opt(a, "--eku");
	const char *dname = cli_opt(a, "--digest");
	const char *outp = cli_opt(a, "--out");
	const char *cpw = cli_opt(a, "--challenge-password-file");
	const char *key = cli_pos(a);
	struct kh_csr_req req;
	struct kh_errbuf e = { 0 };
	char *pem = NULL;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (key == NULL || subject == NULL)
		return cli_usage(cli, "usage: keyhold csr NAME --subject DN [--san LIST] [--eku LIST] [--digest D] [--out FILE] "
				      "[--challenge-password-file FILE]");
	memset(&req, 0, sizeof(req));
	if (!kh_name_valid(key))
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "key name must match [A-Za-z0-9._-]{1,64}");
	memcpy(req.key, key, strlen(key) + 1);
	if ((rc = parse_digest(cli, dname, &req.digest)) != 0 ||
	    (rc = copy_opt(cli, req.subject, sizeof(req.subject), subject, "the subject")) != 0 ||
	    (rc = copy_opt(cli, req.san, sizeof(req.san), san, "the SAN list")) != 0 ||
	    (rc = copy_opt(cli, req.eku, sizeof(req.eku), eku, "the EKU list")) != 0)
		return rc;
	if (cpw != NULL) {
		/* From a file, never argv: the challenge is a secret (SCEP). */
		uint8_t *buf = NULL;
		size_t len = 0;

		if (cli_read_file(cli, cpw, KH_CHALLENGE_MAX + 2, &buf, &len) != 0)
			return CLI_EXIT_ERR;
		while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
			len--;
		if (len == 0 || len > KH_CHALLENGE_MAX || memchr(buf, '\0', len) != NULL) {
			free(buf);
			return cli_failf(cli, KH_E_INVALID_ARGUMENT, "the challenge password must be 1 to %d characters",
					 KH_CHALLENGE_MAX);
		}
		memcpy(req.challenge, buf, len);
		req.challenge[len] = '\0';
		OPENSSL_cleanse(buf, len);
		free(buf);
	}
	if ((rc = cli_connect(cli)) != 0)
		return rc;
	rc = kh_create_csr(cli->c, &req, &pem, &e);
	OPENSSL_cleanse(req.challenge, sizeof(req.challenge));
	if (rc != KH_OK)
		return cli_fail(cli, &e);
	rc = 0;
	if (outp != NULL)
		rc = cli_write_file(cli, outp, (const uint8_t *)pem, strlen(pem));
	if (rc == 0 && cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "key", key);
		cli_json_str(cli->j, "csr_pem", pem);
		if (outp != NULL)
			cli_json_str(cli->j, "out", outp);
		cli_json_end_obj(cli->j);
	} else if (rc == 0 && outp == NULL) {
		rc = cli_write_file(cli, NULL, (const uint8_t *)pem, strlen(pem));
	}
	free(pem);
	return rc;
}

/* ---- trustpoint ---- */

static void tp_json(struct cli_json *j, const char *key, const struct kh_trustpoint *t)
{
	char tb[40];
	size_t i;

	cli_json_obj(j, key);
	cli_json_str(j, "name", t->name);
	cli_json_str(j, "key", t->key);
	cli_json_str(j, "key_type", kh_key_type_name(t->key_type) ? kh_key_type_name(t->key_type) : "unknown");
	cli_json_bool(j, "key_generated", t->key_generated);
	cli_json_str(j, "subject", t->subject);
	cli_json_str(j, "fqdn", t->fqdn);
	cli_json_str(j, "san", t->san);
	cli_json_str(j, "eku", t->eku);
	cli_json_str(j, "enrollment", kh_enrollment_name(t->enrollment) ? kh_enrollment_name(t->enrollment) : "unknown");
	cli_json_str(j, "revocation", t->revocation);
	cli_json_str(j, "digest", t->digest == KH_DIGEST_DEFAULT ? "default" : kh_digest_name(t->digest));
	cli_json_u64(j, "validity_days", t->validity_days);
	cli_json_bool(j, "authenticated", t->ca.n > 0);
	cli_json_arr(j, "ca");
	for (i = 0; i < t->ca.n; i++)
		cert_json(j, NULL, &t->ca.certs[i]);
	cli_json_end_arr(j);
	if (t->has_cert)
		cert_json(j, "certificate", &t->cert);
	cli_json_arr(j, "chain");
	for (i = 0; i < t->chain.n; i++)
		cert_json(j, NULL, &t->chain.certs[i]);
	cli_json_end_arr(j);
	cli_json_bool(j, "csr_pending", t->pending_csr_key[0] != '\0');
	if (t->pending_csr_key[0] != '\0') {
		cli_json_str(j, "csr_key", t->pending_csr_key);
		cli_json_str(j, "csr_created", cli_time(t->pending_csr_created, tb, sizeof(tb)));
		if (t->pending_csr != NULL)
			cli_json_str(j, "csr_pem", t->pending_csr);
	}
	if (t->next_key[0] != '\0')
		cli_json_str(j, "next_key", t->next_key);
	cli_json_str(j, "created", cli_time(t->created, tb, sizeof(tb)));
	cli_json_str(j, "updated", cli_time(t->updated, tb, sizeof(tb)));
	cli_json_str(j, "ocsp_url", t->ocsp_url);
	cli_json_u64(j, "renew_at", t->renew_at);
	cli_json_bool(j, "renew_regenerate", t->renew_regenerate);
	cli_json_str(j, "renewal", t->renewal);
	cli_json_bool(j, "renewal_pending", strcmp(t->renewal, "pending") == 0);
	cli_json_str(j, "renew_after", cli_time(t->renew_after, tb, sizeof(tb)));
	cli_json_end_obj(j);
}

static void tp_print(const struct kh_trustpoint *t)
{
	char tb[40];
	size_t i;

	printf("trustpoint:  %s\n", t->name);
	printf("key:         %s (%s%s)\n", t->key, kh_key_type_name(t->key_type) ? kh_key_type_name(t->key_type) : "missing",
	       t->key_generated ? ", generated for this trustpoint" : "");
	printf("subject:     %s\n", t->subject);
	if (t->fqdn[0] != '\0')
		printf("fqdn:        %s\n", t->fqdn);
	if (t->san[0] != '\0')
		printf("san:         %s\n", t->san);
	printf("eku:         %s\n", t->eku);
	printf("enrollment:  %s\n", kh_enrollment_name(t->enrollment) ? kh_enrollment_name(t->enrollment) : "unknown");
	printf("revocation:  %s%s%s\n", t->revocation, t->ocsp_url[0] ? ", OCSP responder " : "", t->ocsp_url);
	if (t->renew_at > 0)
		printf("renewal:     at %u%% of the lifetime (%s)%s%s%s\n", t->renew_at,
		       t->renew_regenerate ? "new key" : "same key", t->renew_after ? ", from " : "",
		       t->renew_after ? cli_time(t->renew_after, tb, sizeof(tb)) : "",
		       strcmp(t->renewal, "pending") == 0 ? ": RENEWAL PENDING (import the new certificate)"
		       : strcmp(t->renewal, "due") == 0   ? ": due (the expiry monitor renews it)"
							  : "");
	if (t->ca.n == 0)
		printf("ca:          not authenticated\n");
	for (i = 0; i < t->ca.n; i++) {
		printf("ca:\n");
		cert_print("  ", &t->ca.certs[i]);
	}
	if (t->has_cert) {
		printf("certificate:\n");
		cert_print("  ", &t->cert);
	} else {
		printf("certificate: none\n");
	}
	for (i = 0; i < t->chain.n; i++)
		printf("chain[%zu]:    %s\n", i, t->chain.certs[i].subject);
	if (t->pending_csr_key[0] != '\0')
		printf("pending csr: for key %s, created %s (keyhold trustpoint show %s --csr prints it)\n",
		       t->pending_csr_key, cli_time(t->pending_csr_created, tb, sizeof(tb)), t->name);
	if (t->next_key[0] != '\0')
		printf("rollover:    new key %s awaits its certificate; %s stays in use until it is imported\n", t->next_key,
		       t->key);
}

void cli_tp_out(struct cli *cli, const struct kh_trustpoint *t)
{
	if (cli->json)
		tp_json(cli->j, NULL, t);
	else
		tp_print(t);
}

static int tp_create(struct cli *cli, struct cli_args *a)
{
	const char *key = cli_opt(a, "--key");
	const char *gen = cli_opt(a, "--generate");
	const char *subject = cli_opt(a, "--subject");
	const char *fqdn = cli_opt(a, "--fqdn");
	const char *san = cli_opt(a, "--san");
	const char *eku = cli_opt(a, "--eku");
	const char *enr = cli_opt(a, "--enrollment");
	const char *rev = cli_opt(a, "--revocation");
	const char *dname = cli_opt(a, "--digest");
	const char *days = cli_opt(a, "--days");
	const char *ocsp = cli_opt(a, "--ocsp-url");
	const char *name;
	struct kh_tp_create_req req;
	struct kh_trustpoint t;
	struct kh_errbuf e = { 0 };
	bool renew_set = false, mode_given = false;
	uint64_t d = 0;
	int rc;

	memset(&req, 0, sizeof(req));
	if ((rc = cli_renew_opts(cli, a, &renew_set, &req.renew_at, &req.renew_regenerate, &mode_given)) != 0)
		return rc;
	if (mode_given && req.renew_at == 0)
		return cli_usage(cli, "--renew-regenerate and --renew-same-key go with --renew-at PERCENT");
	name = cli_pos(a);
	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL || subject == NULL || (key == NULL) == (gen == NULL))
		return cli_usage(cli, "usage: keyhold trustpoint create TP (--key NAME | --generate TYPE) --subject DN [--fqdn F] "
				      "[--san LIST] [--eku LIST] [--enrollment self|terminal] [--revocation LIST] "
				      "[--digest D] [--days N] [--ocsp-url URL] [--renew-at PERCENT [--renew-regenerate]]");
	if (!kh_name_valid(name))
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "trustpoint name must match [A-Za-z0-9._-]{1,64}");
	memcpy(req.name, name, strlen(name) + 1);
	if (gen != NULL) {
		req.generate = kh_key_type_from_name(gen);
		if (req.generate == KH_KEY_UNSPECIFIED)
			return cli_usage(cli, "unknown key type '%s'; use rsa2048, rsa3072, rsa4096, p256, p384, p521 or ed25519",
					 gen);
	} else if (!kh_name_valid(key)) {
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "key name must match [A-Za-z0-9._-]{1,64}");
	} else {
		memcpy(req.key, key, strlen(key) + 1);
	}
	if (enr != NULL) {
		req.enrollment = kh_enrollment_from_name(enr);
		if (req.enrollment == KH_ENROLL_UNSPECIFIED)
			return cli_usage(cli, "unknown enrollment '%s'; use self or terminal", enr);
	}
	if (days != NULL && kh_parse_u64(days, 1, 36500, &d) != 0)
		return cli_usage(cli, "--days takes 1 to 36500");
	req.validity_days = (uint32_t)d;
	if ((rc = parse_digest(cli, dname, &req.digest)) != 0 ||
	    (rc = copy_opt(cli, req.subject, sizeof(req.subject), subject, "the subject")) != 0 ||
	    (rc = copy_opt(cli, req.fqdn, sizeof(req.fqdn), fqdn, "the FQDN")) != 0 ||
	    (rc = copy_opt(cli, req.san, sizeof(req.san), san, "the SAN list")) != 0 ||
	    (rc = copy_opt(cli, req.eku, sizeof(req.eku), eku, "the EKU list")) != 0 ||
	    (rc = copy_opt(cli, req.revocation, sizeof(req.revocation), rev, "the revocation list")) != 0 ||
	    (rc = copy_opt(cli, req.ocsp_url, sizeof(req.ocsp_url), ocsp, "the OCSP URL")) != 0)
		return rc;
	if ((rc = cli_connect(cli)) != 0)
		return rc;
	if (kh_trustpoint_create(cli->c, &req, &t, &e) != KH_OK)
		return cli_fail(cli, &e);
	if (cli->json)
		tp_json(cli->j, NULL, &t);
	else
		tp_print(&t);
	kh_trustpoint_clear(&t);
	return 0;
}

static int tp_list(struct cli *cli, struct cli_args *a)
{
	struct kh_trustpoint_list l;
	struct kh_errbuf e = { 0 };
	size_t i;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0)
		return rc;
	if (kh_trustpoint_list(cli->c, &l, &e) != KH_OK)
		return cli_fail(cli, &e);
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_arr(cli->j, "trustpoints");
		for (i = 0; i < l.n; i++)
			tp_json(cli->j, NULL, &l.tps[i]);
		cli_json_end_arr(cli->j);
		cli_json_end_obj(cli->j);
	} else {
		printf("%-24s %-24s %-9s %-4s %-20s %s\n", "NAME", "KEY", "ENROLL", "CA", "CERT EXPIRES", "PENDING");
		for (i = 0; i < l.n; i++) {
			const struct kh_trustpoint *t = &l.tps[i];
			char tb[40];

			printf("%-24s %-24s %-9s %-4s %-20s %s\n", t->name, t->key,
			       kh_enrollment_name(t->enrollment) ? kh_enrollment_name(t->enrollment) : "?",
			       t->ca.n > 0 ? "yes" : "no", t->has_cert ? cli_time(t->cert.not_after, tb, sizeof(tb)) : "-",
			       strcmp(t->renewal, "pending") == 0 ? "renewal pending"
			       : strcmp(t->renewal, "due") == 0 ? "renewal due"
			       : t->next_key[0]			? "rollover"
			       : t->pending_csr_key[0]		? "csr"
								: "-");
		}
	}
	kh_trustpoint_list_clear(&l);
	return 0;
}

static int tp_show(struct cli *cli, struct cli_args *a)
{
	bool csr = cli_flag(a, "--csr");
	const char *name = cli_pos(a);
	struct kh_trustpoint t;
	struct kh_errbuf e = { 0 };
	int rc = 0;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL)
		return cli_usage(cli, "usage: keyhold trustpoint show TP [--csr]");
	if ((rc = cli_connect(cli)) != 0)
		return rc;
	if (kh_trustpoint_get(cli->c, name, &t, &e) != KH_OK)
		return cli_fail(cli, &e);
	if (csr && !cli->json) {
		if (t.pending_csr == NULL)
			rc = cli_failf(cli, KH_E_NOT_FOUND, "trustpoint '%s' has no pending CSR; run keyhold trustpoint enroll %s",
				       name, name);
		else
			rc = cli_write_file(cli, NULL, (const uint8_t *)t.pending_csr, strlen(t.pending_csr));
	} else if (cli->json) {
		tp_json(cli->j, NULL, &t);
	} else {
		tp_print(&t);
	}
	kh_trustpoint_clear(&t);
	return rc;
}

static int tp_delete(struct cli *cli, struct cli_args *a)
{
	bool keep = cli_flag(a, "--keep-key");
	const char *name = cli_pos(a);
	struct kh_tp_delete_resp d;
	struct kh_errbuf e = { 0 };
	size_t i;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL)
		return cli_usage(cli, "usage: keyhold trustpoint delete TP [--keep-key]");
	if ((rc = cli_connect(cli)) != 0)
		return rc;
	if (kh_trustpoint_delete(cli->c, name, keep, &d, &e) != KH_OK)
		return cli_fail(cli, &e);
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "deleted", name);
		cli_json_arr(cli->j, "deleted_keys");
		for (i = 0; i < d.n_deleted; i++)
			cli_json_str(cli->j, NULL, d.deleted_keys[i]);
		cli_json_end_arr(cli->j);
		cli_json_end_obj(cli->j);
	} else {
		printf("deleted trustpoint %s\n", name);
		for (i = 0; i < d.n_deleted; i++)
			printf("deleted its key %s\n", d.deleted_keys[i]);
	}
	return 0;
}

static int tp_authenticate(struct cli *cli, struct cli_args *a)
{
	const char *ca = cli_opt(a, "--ca");
	const char *fp = cli_opt(a, "--fingerprint");
	bool yes = cli_flag(a, "--yes");
	const char *name = cli_pos(a);
	struct kh_cert_list l;
	struct kh_bytes in = { NULL, 0 };
	struct kh_errbuf e = { 0 };
	size_t i;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL || ca == NULL)
		return cli_usage(cli, "usage: keyhold trustpoint authenticate TP --ca FILE (--yes | --fingerprint SHA256HEX)");
	if ((rc = read_in(cli, ca, &in)) != 0)
		return rc;
	if ((rc = cli_connect(cli)) != 0) {
		kh_bytes_clear(&in);
		return rc;
	}
	/* Without --yes or --fingerprint the service answers with the
	 * fingerprint to check and accepts nothing. */
	rc = kh_trustpoint_authenticate(cli->c, name, in.data, in.len, yes, fp, &l, &e);
	kh_bytes_clear(&in);
	if (rc != KH_OK)
		return cli_fail(cli, &e);
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "trustpoint", name);
		cli_json_arr(cli->j, "ca");
		for (i = 0; i < l.n; i++)
			cert_json(cli->j, NULL, &l.certs[i]);
		cli_json_end_arr(cli->j);
		cli_json_end_obj(cli->j);
	} else {
		for (i = 0; i < l.n; i++) {
			printf("trustpoint %s: CA authenticated\n", name);
			cert_print("  ", &l.certs[i]);
		}
	}
	kh_cert_list_clear(&l);
	return 0;
}

/* The identity certificate of TP as PEM into path (after self enrollment). */
static int tp_write_cert(struct cli *cli, const char *name, const char *path)
{
	struct kh_bytes b = { NULL, 0 };
	struct kh_errbuf e = { 0 };
	int rc;

	if (kh_trustpoint_export(cli->c, name, false, KH_FMT_PEM, &b, &e) != KH_OK)
		return cli_fail(cli, &e);
	rc = cli_write_file(cli, path, b.data, b.len);
	kh_bytes_clear(&b);
	return rc;
}

static int tp_enroll_out(struct cli *cli, const char *name, const struct kh_enroll_resp *r, const char *outp)
{
	int rc = 0;

	if (r->csr_pem != NULL && outp != NULL)
		rc = cli_write_file(cli, outp, (const uint8_t *)r->csr_pem, strlen(r->csr_pem));
	else if (r->has_cert && outp != NULL)
		rc = tp_write_cert(cli, name, outp);
	if (rc != 0)
		return rc;
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "trustpoint", name);
		cli_json_str(cli->j, "enrollment", kh_enrollment_name(r->enrollment) ? kh_enrollment_name(r->enrollment) : "?");
		cli_json_str(cli->j, "key", r->key);
		if (r->csr_pem != NULL)
			cli_json_str(cli->j, "csr_pem", r->csr_pem);
		if (r->has_cert)
			cert_json(cli->j, "certificate", &r->cert);
		if (r->retired_key[0] != '\0')
			cli_json_str(cli->j, "deleted_key", r->retired_key);
		if (outp != NULL)
			cli_json_str(cli->j, "out", outp);
		cli_json_end_obj(cli->j);
		return 0;
	}
	if (r->csr_pem != NULL) {
		if (outp == NULL)
			rc = cli_write_file(cli, NULL, (const uint8_t *)r->csr_pem, strlen(r->csr_pem));
		else
			printf("trustpoint %s: CSR for key %s written to %s; have the CA sign it, then run keyhold trustpoint "
			       "import %s --cert FILE\n",
			       name, r->key, outp, name);
	} else if (r->has_cert) {
		printf("trustpoint %s: self-signed certificate issued for key %s\n", name, r->key);
		cert_print("  ", &r->cert);
	}
	if (r->retired_key[0] != '\0')
		fprintf(outp == NULL && r->csr_pem != NULL ? stderr : stdout, "deleted the old key %s\n", r->retired_key);
	return rc;
}

static int tp_enroll(struct cli *cli, struct cli_args *a)
{
	const char *outp = cli_opt(a, "--out");
	const char *name = cli_pos(a);
	struct kh_enroll_resp r;
	struct kh_errbuf e = { 0 };
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL)
		return cli_usage(cli, "usage: keyhold trustpoint enroll TP [--out FILE]");
	if ((rc = cli_connect(cli)) != 0)
		return rc;
	if (kh_trustpoint_enroll(cli->c, name, &r, &e) != KH_OK)
		return cli_fail(cli, &e);
	rc = tp_enroll_out(cli, name, &r, outp);
	kh_enroll_resp_clear(&r);
	return rc;
}

static int tp_regenerate(struct cli *cli, struct cli_args *a)
{
	const char *tname = cli_opt(a, "--type");
	const char *outp = cli_opt(a, "--out");
	const char *name = cli_pos(a);
	enum kh_key_type type = KH_KEY_UNSPECIFIED;
	struct kh_enroll_resp r;
	struct kh_errbuf e = { 0 };
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL)
		return cli_usage(cli, "usage: keyhold trustpoint regenerate TP [--type TYPE] [--out FILE]");
	if (tname != NULL && (type = kh_key_type_from_name(tname)) == KH_KEY_UNSPECIFIED)
		return cli_usage(cli, "unknown key type '%s'; use rsa2048, rsa3072, rsa4096, p256, p384, p521 or ed25519", tname);
	if ((rc = cli_connect(cli)) != 0)
		return rc;
	if (kh_trustpoint_regenerate(cli->c, name, type, &r, &e) != KH_OK)
		return cli_fail(cli, &e);
	rc = tp_enroll_out(cli, name, &r, outp);
	kh_enroll_resp_clear(&r);
	return rc;
}

static int tp_import(struct cli *cli, struct cli_args *a)
{
	const char *certp = cli_opt(a, "--cert");
	const char *name = cli_pos(a);
	struct kh_import_resp r;
	struct kh_bytes in = { NULL, 0 };
	struct kh_errbuf e = { 0 };
	size_t i;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL || certp == NULL)
		return cli_usage(cli, "usage: keyhold trustpoint import TP --cert FILE");
	if ((rc = read_in(cli, certp, &in)) != 0)
		return rc;
	if ((rc = cli_connect(cli)) != 0) {
		kh_bytes_clear(&in);
		return rc;
	}
	rc = kh_trustpoint_import(cli->c, name, in.data, in.len, &r, &e);
	kh_bytes_clear(&in);
	if (rc != KH_OK)
		return cli_fail(cli, &e);
	for (i = 0; i < r.n_warnings; i++)
		fprintf(stderr, "warning: %s\n", r.warnings[i]);
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "trustpoint", name);
		cli_json_str(cli->j, "key", r.key);
		cert_json(cli->j, "certificate", &r.cert);
		cli_json_u64(cli->j, "chain_length", r.chain_len);
		cli_json_arr(cli->j, "warnings");
		for (i = 0; i < r.n_warnings; i++)
			cli_json_str(cli->j, NULL, r.warnings[i]);
		cli_json_end_arr(cli->j);
		if (r.retired_key[0] != '\0')
			cli_json_str(cli->j, "deleted_key", r.retired_key);
		cli_json_end_obj(cli->j);
	} else {
		printf("trustpoint %s: certificate imported for key %s (chain of %u)\n", name, r.key, r.chain_len);
		cert_print("  ", &r.cert);
		if (r.retired_key[0] != '\0')
			printf("key rollover complete: deleted the old key %s\n", r.retired_key);
	}
	return 0;
}

static int tp_export(struct cli *cli, struct cli_args *a)
{
	bool chain = cli_flag(a, "--chain");
	const char *fmt = cli_opt(a, "--format");
	const char *outp = cli_opt(a, "--out");
	const char *name = cli_pos(a);
	enum kh_cert_format f = KH_FMT_PEM;
	struct kh_bytes b = { NULL, 0 };
	struct kh_errbuf e = { 0 };
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL)
		return cli_usage(cli, "usage: keyhold trustpoint export TP [--chain] [--format pem|der|pkcs7] [--out FILE]");
	if (fmt != NULL && !kh_cert_format_from_name(fmt, &f))
		return cli_usage(cli, "unknown format '%s'; use pem, der or pkcs7", fmt);
	if (f == KH_FMT_DER && outp == NULL && !cli->json && isatty(STDOUT_FILENO))
		return cli_usage(cli, "DER is binary: use --out FILE or redirect stdout");
	if ((rc = cli_connect(cli)) != 0)
		return rc;
	if (kh_trustpoint_export(cli->c, name, chain, f, &b, &e) != KH_OK)
		return cli_fail(cli, &e);
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "trustpoint", name);
		cli_json_str(cli->j, "format", kh_cert_format_name(f));
		if (f == KH_FMT_DER)
			cli_json_hex(cli->j, "der_hex", b.data, b.len);
		else
			cli_json_strn(cli->j, "pem", (const char *)b.data, b.len);
		if (outp != NULL)
			cli_json_str(cli->j, "out", outp);
		cli_json_end_obj(cli->j);
	}
	rc = 0;
	if (outp != NULL || !cli->json)
		rc = cli_write_file(cli, outp, b.data, b.len);
	kh_bytes_clear(&b);
	return rc;
}

int cli_cmd_trustpoint(struct cli *cli, struct cli_args *a)
{
	const char *verb = cli_pos(a);

	if (verb == NULL)
		return cli_usage(cli, "usage: keyhold trustpoint create|list|show|delete|authenticate|enroll|import|export|"
				      "regenerate ...");
	if (strcmp(verb, "create") == 0)
		return tp_create(cli, a);
	if (strcmp(verb, "list") == 0)
		return tp_list(cli, a);
	if (strcmp(verb, "show") == 0)
		return tp_show(cli, a);
	if (strcmp(verb, "delete") == 0)
		return tp_delete(cli, a);
	if (strcmp(verb, "authenticate") == 0)
		return tp_authenticate(cli, a);
	if (strcmp(verb, "enroll") == 0)
		return tp_enroll(cli, a);
	if (strcmp(verb, "import") == 0)
		return tp_import(cli, a);
	if (strcmp(verb, "export") == 0)
		return tp_export(cli, a);
	if (strcmp(verb, "regenerate") == 0)
		return tp_regenerate(cli, a);
	if (strcmp(verb, "set") == 0)
		return cli_tp_set(cli, a);
	return cli_usage(cli, "unknown verb 'trustpoint %s'; use create, list, show, delete, authenticate, enroll, import, "
			      "export, regenerate or set",
			 verb);
}

/* ---- truststore ---- */

static int ts_add(struct cli *cli, struct cli_args *a)
{
	const char *store = cli_pos(a);
	const char *paths[KH_PKI_FILES_MAX];
	struct kh_bytes files[KH_PKI_FILES_MAX];
	struct kh_ts_add_resp r;
	struct kh_errbuf e = { 0 };
	size_t n = 0, i;
	const char *p;
	int rc = 0;

	while ((p = cli_pos(a)) != NULL) {
		if (n == KH_PKI_FILES_MAX)
			return cli_usage(cli, "at most %d files at once", KH_PKI_FILES_MAX);
		paths[n++] = p;
	}
	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (store == NULL || n == 0)
		return cli_usage(cli, "usage: keyhold truststore add STORE FILE...");
	memset(files, 0, sizeof(files));
	for (i = 0; i < n && rc == 0; i++)
		rc = read_in(cli, paths[i], &files[i]);
	if (rc == 0)
		rc = cli_connect(cli);
	if (rc == 0 && kh_truststore_add(cli->c, store, files, n, &r, &e) != KH_OK)
		rc = cli_fail(cli, &e);
	for (i = 0; i < n; i++)
		kh_bytes_clear(&files[i]);
	if (rc != 0)
		return rc;
	for (i = 0; i < r.n_warnings; i++)
		fprintf(stderr, "warning: %s\n", r.warnings[i]);
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "store", store);
		cli_json_arr(cli->j, "added");
		for (i = 0; i < r.added.n; i++)
			cert_json(cli->j, NULL, &r.added.certs[i]);
		cli_json_end_arr(cli->j);
		cli_json_u64(cli->j, "already_present", r.already_present);
		cli_json_end_obj(cli->j);
	} else {
		for (i = 0; i < r.added.n; i++)
			printf("added %s  %s\n", r.added.certs[i].fingerprint, r.added.certs[i].subject);
		printf("trust store %s: %zu added, %u already present\n", store, r.added.n, r.already_present);
	}
	kh_ts_add_resp_clear(&r);
	return 0;
}

static int ts_list(struct cli *cli, struct cli_args *a)
{
	const char *store = cli_pos(a);
	struct kh_truststore_list l;
	struct kh_errbuf e = { 0 };
	size_t i, k;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0)
		return rc;
	if (kh_truststore_list(cli->c, store, &l, &e) != KH_OK)
		return cli_fail(cli, &e);
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_arr(cli->j, "stores");
		for (i = 0; i < l.n; i++) {
			const struct kh_truststore *t = &l.stores[i];

			cli_json_obj(cli->j, NULL);
			cli_json_str(cli->j, "name", t->name);
			cli_json_u64(cli->j, "certificates", t->n_certs);
			cli_json_str(cli->j, "revocation", t->revocation);
			cli_json_str(cli->j, "ocsp_url", t->ocsp_url);
			if (store != NULL) {
				cli_json_arr(cli->j, "certs");
				for (k = 0; k < t->certs.n; k++)
					cert_json(cli->j, NULL, &t->certs.certs[k]);
				cli_json_end_arr(cli->j);
			}
			cli_json_arr(cli->j, "crls");
			for (k = 0; k < t->n_crls; k++)
				crl_json(cli->j, NULL, &t->crls[k]);
			cli_json_end_arr(cli->j);
			cli_json_end_obj(cli->j);
		}
		cli_json_end_arr(cli->j);
		cli_json_end_obj(cli->j);
	} else if (store == NULL) {
		printf("%-32s %6s %5s  %s\n", "STORE", "CERTS", "CRLS", "REVOCATION");
		for (i = 0; i < l.n; i++)
			printf("%-32s %6u %5zu  %s\n", l.stores[i].name, l.stores[i].n_certs, l.stores[i].n_crls,
			       l.stores[i].revocation);
	} else {
		for (i = 0; i < l.n; i++) {
			const struct kh_truststore *t = &l.stores[i];

			printf("revocation: %s%s%s\n", t->revocation, t->ocsp_url[0] ? ", OCSP responder " : "", t->ocsp_url);
			printf("%-64s  %-20s  %s\n", "SHA256", "NOT AFTER", "SUBJECT");
			for (k = 0; k < t->certs.n; k++) {
				char tb[40];

				printf("%-64s  %-20s  %s%s\n", t->certs.certs[k].fingerprint,
				       cli_time(t->certs.certs[k].not_after, tb, sizeof(tb)), t->certs.certs[k].subject,
				       t->certs.certs[k].self_signed ? " (self-signed)" : "");
			}
			for (k = 0; k < t->n_crls; k++) {
				char t1[40], t2[40];

				printf("crl: %s, issued %s, next %s, %u revoked\n", t->crls[k].issuer,
				       cli_time(t->crls[k].this_update, t1, sizeof(t1)),
				       cli_time(t->crls[k].next_update, t2, sizeof(t2)), t->crls[k].revoked);
			}
		}
	}
	kh_truststore_list_clear(&l);
	return 0;
}

static int ts_remove(struct cli *cli, struct cli_args *a)
{
	const char *store = cli_pos(a);
	const char *fp = cli_pos(a);
	struct kh_ts_remove_resp r;
	struct kh_errbuf e = { 0 };
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (store == NULL || fp == NULL)
		return cli_usage(cli, "usage: keyhold truststore remove STORE FINGERPRINT");
	if ((rc = cli_connect(cli)) != 0)
		return rc;
	if (kh_truststore_remove(cli->c, store, fp, &r, &e) != KH_OK)
		return cli_fail(cli, &e);
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "store", store);
		cert_json(cli->j, "removed", &r.removed);
		cli_json_bool(cli->j, "store_deleted", r.store_deleted);
		cli_json_end_obj(cli->j);
	} else {
		printf("removed %s  %s from %s\n", r.removed.fingerprint, r.removed.subject, store);
		if (r.store_deleted)
			printf("trust store %s is empty and was deleted\n", store);
	}
	return 0;
}

static int ts_verify(struct cli *cli, struct cli_args *a)
{
	const char *untrusted = cli_opt(a, "--untrusted");
	const char *at = cli_opt(a, "--at");
	const char *host = cli_opt(a, "--host");
	const char *ip = cli_opt(a, "--ip");
	const char *purpose = cli_opt(a, "--purpose");
	const char *crlp[KH_PKI_FILES_MAX];
	struct kh_bytes crls[KH_PKI_FILES_MAX];
	const char *store, *certp, *p;
	struct kh_ts_verify_req req;
	struct kh_ts_verify_resp r;
	struct kh_errbuf e = { 0 };
	size_t ncrl = 0, i;
	int rc = 0;

	while ((p = cli_opt(a, "--crl")) != NULL) {
		if (ncrl == KH_PKI_FILES_MAX)
			return cli_usage(cli, "at most %d --crl files", KH_PKI_FILES_MAX);
		crlp[ncrl++] = p;
	}
	store = cli_pos(a);
	certp = cli_pos(a);
	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (store == NULL || certp == NULL)
		return cli_usage(cli, "usage: keyhold truststore verify STORE CERTFILE [--untrusted FILE] [--at RFC3339] "
				      "[--host NAME|--ip ADDR] [--purpose serverAuth|clientAuth] [--crl FILE]...");
	if (host != NULL && ip != NULL)
		return cli_usage(cli, "give --host or --ip, not both");
	memset(&req, 0, sizeof(req));
	if (!kh_name_valid(store))
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "trust store name must match [A-Za-z0-9._-]{1,64}");
	memcpy(req.store, store, strlen(store) + 1);
	if (at != NULL && kh_time_parse_rfc3339(at, &req.at) != 0)
		return cli_usage(cli, "--at takes an RFC 3339 time such as 2030-01-02T03:04:05Z");
	if (at != NULL && req.at <= 0)
		return cli_usage(cli, "--at must be after 1970");
	if (purpose != NULL && !kh_purpose_from_name(purpose, &req.purpose))
		return cli_usage(cli, "unknown purpose '%s'; use serverAuth or clientAuth", purpose);
	if ((rc = copy_opt(cli, req.host, sizeof(req.host), host, "the host name")) != 0 ||
	    (rc = copy_opt(cli, req.ip, sizeof(req.ip), ip, "the IP address")) != 0)
		return rc;
	memset(crls, 0, sizeof(crls));
	rc = read_in(cli, certp, &req.cert);
	if (rc == 0 && untrusted != NULL)
		rc = read_in(cli, untrusted, &req.untrusted);
	for (i = 0; i < ncrl && rc == 0; i++)
		rc = read_in(cli, crlp[i], &crls[i]);
	req.crls = crls;
	req.n_crls = ncrl;
	if (rc == 0)
		rc = cli_connect(cli);
	if (rc == 0 && kh_truststore_verify(cli->c, &req, &r, &e) != KH_OK)
		rc = cli_fail(cli, &e);
	kh_bytes_clear(&req.cert);
	kh_bytes_clear(&req.untrusted);
	for (i = 0; i < ncrl; i++)
		kh_bytes_clear(&crls[i]);
	if (rc != 0)
		return rc;
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "store", store);
		cli_json_bool(cli->j, "valid", r.valid);
		cli_json_str(cli->j, "result", r.reason);
		if (!r.valid) {
			cli_json_u64(cli->j, "x509_error", (uint64_t)r.error);
			cli_json_u64(cli->j, "depth", (uint64_t)r.error_depth);
		}
		cli_json_arr(cli->j, "chain");
		for (i = 0; i < r.chain.n; i++)
			cert_json(cli->j, NULL, &r.chain.certs[i]);
		cli_json_end_arr(cli->j);
		cli_json_str(cli->j, "revocation", kh_rev_status_name((enum kh_rev_status)r.revocation_status));
		cli_json_bool(cli->j, "revocation_soft_fail", r.revocation_soft_fail);
		cli_json_str(cli->j, "revocation_detail", r.revocation_detail);
		if (!r.valid) {
			/* The contract's error object, inside the one document. */
			cli_json_obj(cli->j, "error");
			cli_json_str(cli->j, "code", "FAILED_PRECONDITION");
			cli_json_str(cli->j, "message", r.reason);
			cli_json_end_obj(cli->j);
		}
		cli_json_end_obj(cli->j);
	} else {
		printf("%s: %s\n", certp, r.valid ? "OK" : "INVALID");
		for (i = 0; i < r.chain.n; i++)
			printf("  depth %zu: %s\n", i, r.chain.certs[i].subject);
		if (r.revocation_status != KH_REV_NOT_CHECKED)
			printf("  revocation: %s: %s\n", kh_rev_status_name((enum kh_rev_status)r.revocation_status),
			       r.revocation_detail);
		if (r.valid && r.revocation_soft_fail)
			fprintf(stderr, "warning: revocation not confirmed, accepted by the store's policy (soft-fail): %s\n",
				r.revocation_detail);
		if (!r.valid)
			fprintf(stderr, "error: FAILED_PRECONDITION: certificate chain is not valid: %s (depth %d)\n", r.reason,
				r.error_depth);
	}
	rc = r.valid ? 0 : CLI_EXIT_ERR;
	kh_ts_verify_resp_clear(&r);
	return rc;
}

int cli_cmd_truststore(struct cli *cli, struct cli_args *a)
{
	const char *verb = cli_pos(a);

	if (verb == NULL)
		return cli_usage(cli, "usage: keyhold truststore add|list|remove|verify ...");
	if (strcmp(verb, "add") == 0)
		return ts_add(cli, a);
	if (strcmp(verb, "list") == 0)
		return ts_list(cli, a);
	if (strcmp(verb, "remove") == 0)
		return ts_remove(cli, a);
	if (strcmp(verb, "verify") == 0)
		return ts_verify(cli, a);
	if (strcmp(verb, "set") == 0)
		return cli_ts_set(cli, a);
	return cli_usage(cli, "unknown verb 'truststore %s'; use add, list, remove, verify or set", verb);
}

/* ---- crl ---- */

int cli_cmd_crl(struct cli *cli, struct cli_args *a)
{
	const char *verb = cli_pos(a);
	const char *store = cli_pos(a);
	const char *path = cli_pos(a);
	struct kh_crl_info ci;
	struct kh_bytes in = { NULL, 0 };
	struct kh_errbuf e = { 0 };
	char t1[40], t2[40];
	int rc;

	if (verb == NULL || strcmp(verb, "import") != 0)
		return cli_usage(cli, "usage: keyhold crl import STORE FILE");
	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (store == NULL || path == NULL)
		return cli_usage(cli, "usage: keyhold crl import STORE FILE");
	if ((rc = read_in(cli, path, &in)) != 0)
		return rc;
	if ((rc = cli_connect(cli)) != 0) {
		kh_bytes_clear(&in);
		return rc;
	}
	rc = kh_crl_import(cli->c, store, in.data, in.len, &ci, &e);
	kh_bytes_clear(&in);
	if (rc != KH_OK)
		return cli_fail(cli, &e);
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "store", store);
		crl_json(cli->j, "crl", &ci);
		cli_json_end_obj(cli->j);
	} else {
		printf("trust store %s: CRL from %s imported (issued %s, next update %s, %u revoked)\n", store, ci.issuer,
		       cli_time(ci.this_update, t1, sizeof(t1)), cli_time(ci.next_update, t2, sizeof(t2)), ci.revoked);
	}
	return 0;
}
