/* pki.c: `keyhold csr`, `trustpoint ...`, `truststore ...` and `crl
 * import` (DESIGN §5). Human output on stdout, one JSON document with
 * --json, errors per the CLI contract. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"

#define CLI_PKI_FILE_MAX CLI_PKI_BLOB_MAX

/* c: a CertInfo (NULL reads as an empty one). */
static void cert_json(struct cli_json *j, const char *key, const kh_msg *c)
{
	char t1[40], t2[40];

	cli_json_obj(j, key);
	cli_json_str(j, "subject", kh_msg_get_str(c, "subject"));
	cli_json_str(j, "issuer", kh_msg_get_str(c, "issuer"));
	cli_json_str(j, "serial", kh_msg_get_str(c, "serial"));
	cli_json_str(j, "not_before", cli_time_str(kh_msg_get_int(c, "not_before"), t1, sizeof(t1)));
	cli_json_str(j, "not_after", cli_time_str(kh_msg_get_int(c, "not_after"), t2, sizeof(t2)));
	cli_json_str(j, "fingerprint_sha256", kh_msg_get_str(c, "fingerprint"));
	cli_json_bool(j, "ca", kh_msg_get_bool(c, "ca"));
	cli_json_bool(j, "self_signed", kh_msg_get_bool(c, "self_signed"));
	cli_json_end_obj(j);
}

static void cert_print(const char *indent, const kh_msg *c)
{
	char t1[40], t2[40];

	printf("%ssubject:     %s\n%sissuer:      %s\n%sserial:      %s\n%svalid:       %s .. %s\n"
	       "%ssha256:      %s\n",
	       indent, kh_msg_get_str(c, "subject"), indent, kh_msg_get_str(c, "issuer"), indent,
	       kh_msg_get_str(c, "serial"), indent, cli_time_str(kh_msg_get_int(c, "not_before"), t1, sizeof(t1)),
	       cli_time_str(kh_msg_get_int(c, "not_after"), t2, sizeof(t2)), indent, kh_msg_get_str(c, "fingerprint"));
}

/* c: a CrlInfo. */
static void crl_json(struct cli_json *j, const char *key, const kh_msg *c)
{
	char t1[40], t2[40];

	cli_json_obj(j, key);
	cli_json_str(j, "issuer", kh_msg_get_str(c, "issuer"));
	cli_json_str(j, "this_update", cli_time_str(kh_msg_get_int(c, "this_update"), t1, sizeof(t1)));
	cli_json_str(j, "next_update", cli_time_str(kh_msg_get_int(c, "next_update"), t2, sizeof(t2)));
	cli_json_u64(j, "revoked", kh_msg_get_uint(c, "revoked"));
	cli_json_str(j, "number", kh_msg_get_str(c, "number"));
	cli_json_str(j, "number_decimal", kh_msg_get_str(c, "number_decimal"));
	cli_json_str(j, "fingerprint_sha256", kh_msg_get_str(c, "fingerprint"));
	cli_json_end_obj(j);
}

static int read_in(struct cli *cli, const char *path, struct cli_bytes *out)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	int rc = cli_read_file(cli, path, CLI_PKI_FILE_MAX, &buf, &len);

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

static void bytes_clear(struct cli_bytes *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

/* *out: the Digest value name of name, NULL (the default) when none. */
static int parse_digest(struct cli *cli, const char *name, const char **out)
{
	*out = NULL;
	if (name == NULL)
		return 0;
	*out = cli_digest_value(name);
	if (*out == NULL)
		return cli_usage(cli, "unknown digest '%s'; use sha256, sha384 or sha512", name);
	return 0;
}

/* v (NULL: not given) must be at most max characters. */
static int check_len(struct cli *cli, const char *v, size_t max, const char *what)
{
	if (v != NULL && strlen(v) > max)
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "%s is longer than %zu characters", what, max);
	return 0;
}

/* A name the service takes: 0 or the error printed. */
static int check_name(struct cli *cli, const char *name, const char *what)
{
	if (!kh_name_valid(name))
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "%s name must match [A-Za-z0-9._-]{1,64}", what);
	return 0;
}

/* One request must fit one frame (DESIGN §4: 1 MiB by default). */
static int check_size(struct cli *cli, size_t total, const char *what)
{
	if (total > CLI_PKI_BLOB_MAX)
		return cli_failf(cli, KH_E_INVALID_ARGUMENT,
				 "%s is %zu bytes; one request carries at most %u (the service's frame cap is 1 MiB)", what,
				 total, CLI_PKI_BLOB_MAX);
	return 0;
}

/* Sets the string field of q when v is given and not empty. */
static enum kh_err set_opt_str(kh_msg *q, const char *field, const char *v)
{
	return v != NULL && v[0] != '\0' ? kh_msg_set_str(q, field, v) : KH_OK;
}

/* A request of method whose only field is "name". */
static int tp_call_name(struct cli *cli, const char *method, const char *name, kh_msg **resp)
{
	kh_msg *q = NULL;
	int rc;

	if ((rc = check_name(cli, name, "trustpoint")) != 0 || (rc = cli_request(cli, method, &q)) != 0)
		return rc;
	return cli_call(cli, q, kh_msg_set_str(q, "name", name), resp);
}

/* ---- csr ---- */

/* A challenge password from a file, never argv: it is a secret (SCEP).
 * One trailing newline dropped. */
int cli_read_secret(struct cli *cli, const char *path, char challenge[CLI_CHALLENGE_MAX + 1], const char *what)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	if ((rc = cli_read_file(cli, path, CLI_CHALLENGE_MAX + 2, &buf, &len)) != 0)
		return rc;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (len == 0 || len > CLI_CHALLENGE_MAX || memchr(buf, '\0', len) != NULL) {
		OPENSSL_cleanse(buf, len);
		free(buf);
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "%s must be 1 to %d characters", what, CLI_CHALLENGE_MAX);
	}
	memcpy(challenge, buf, len);
	challenge[len] = '\0';
	OPENSSL_cleanse(buf, len);
	free(buf);
	return 0;
}

static int read_challenge(struct cli *cli, const char *path, char challenge[CLI_CHALLENGE_MAX + 1])
{
	return cli_read_secret(cli, path, challenge, "the challenge password");
}

static enum kh_err csr_fill(kh_msg *q, const char *key, const char *subject, const char *san, const char *eku,
			    const char *digest, const char *challenge)
{
	enum kh_err r;

	CLI_TRY(kh_msg_set_str(q, "key", key));
	CLI_TRY(set_opt_str(q, "subject", subject));
	CLI_TRY(set_opt_str(q, "san", san));
	CLI_TRY(set_opt_str(q, "eku", eku));
	if (digest != NULL)
		CLI_TRY(kh_msg_set_enum(q, "digest", digest));
	CLI_TRY(set_opt_str(q, "challenge_password", challenge));
out:
	return r;
}

int cli_cmd_csr(struct cli *cli, struct cli_args *a)
{
	const char *subject = cli_opt(a, "--subject");
	const char *san = cli_opt(a, "--san");
	const char *eku = cli_opt(a, "--eku");
	const char *dname = cli_opt(a, "--digest");
	const char *outp = cli_opt(a, "--out");
	const char *cpw = cli_opt(a, "--challenge-password-file");
	const char *key = cli_pos(a);
	const char *digest = NULL, *pem;
	char challenge[CLI_CHALLENGE_MAX + 1] = "";
	kh_msg *q = NULL, *resp = NULL;
	enum kh_err r;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (key == NULL || subject == NULL)
		return cli_usage(cli, "usage: keyhold csr NAME --subject DN [--san LIST] [--eku LIST] [--digest D] [--out FILE] "
				      "[--challenge-password-file FILE]");
	if (!kh_name_valid(key))
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "key name must match [A-Za-z0-9._-]{1,64}");
	if ((rc = parse_digest(cli, dname, &digest)) != 0 ||
	    (rc = check_len(cli, subject, CLI_DN_MAX, "the subject")) != 0 ||
	    (rc = check_len(cli, san, CLI_SAN_MAX, "the SAN list")) != 0 ||
	    (rc = check_len(cli, eku, CLI_EKU_MAX, "the EKU list")) != 0)
		return rc;
	if (cpw != NULL && (rc = read_challenge(cli, cpw, challenge)) != 0)
		return rc;
	if ((rc = cli_connect(cli)) != 0 || (rc = cli_request(cli, "CreateCsr", &q)) != 0) {
		OPENSSL_cleanse(challenge, sizeof(challenge));
		return rc;
	}
	r = csr_fill(q, key, subject, san, eku, digest, challenge);
	OPENSSL_cleanse(challenge, sizeof(challenge));
	if ((rc = cli_call(cli, q, r, &resp)) != 0)
		return rc;
	pem = kh_msg_get_str(resp, "pem");
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
	kh_msg_free(resp);
	return rc;
}

/* ---- trustpoint ---- */

static const char *or_else(const char *s, const char *dflt)
{
	return s != NULL ? s : dflt;
}

/* t: a Trustpoint. */
/* The keyUsage keyhold's CSRs and self-signed certificates carry for the
 * trustpoint's key type (pki_build.c, RFC 5280 §4.2.1.3). */
static const char *tp_key_usage(const kh_msg *t)
{
	const char *kt = or_else(cli_key_type_name(kh_msg_get_enum(t, "key_type")), "");

	return strncmp(kt, "rsa", 3) == 0 ? "digitalSignature,keyEncipherment" : "digitalSignature";
}

static void tp_json(struct cli_json *j, const char *key, const kh_msg *t)
{
	const char *pending_key = kh_msg_get_str(t, "pending_csr_key");
	const char *pending_csr = kh_msg_get_str(t, "pending_csr");
	const char *next_key = kh_msg_get_str(t, "next_key");
	const char *renewal = kh_msg_get_str(t, "renewal");
	size_t i, n;
	char tb[40];

	cli_json_obj(j, key);
	cli_json_str(j, "name", kh_msg_get_str(t, "name"));
	cli_json_str(j, "key", kh_msg_get_str(t, "key"));
	cli_json_str(j, "key_type", or_else(cli_key_type_name(kh_msg_get_enum(t, "key_type")), "unknown"));
	cli_json_bool(j, "key_generated", kh_msg_get_bool(t, "key_generated"));
	cli_json_str(j, "subject", kh_msg_get_str(t, "subject"));
	cli_json_str(j, "fqdn", kh_msg_get_str(t, "fqdn"));
	cli_json_str(j, "san", kh_msg_get_str(t, "san"));
	cli_json_str(j, "eku", kh_msg_get_str(t, "eku"));
	cli_json_str(j, "enrollment", or_else(cli_enrollment_name(kh_msg_get_enum(t, "enrollment")), "unknown"));
	cli_json_str(j, "revocation", kh_msg_get_str(t, "revocation"));
	if (kh_msg_get_str(t, "url")[0] != '\0') {
		cli_json_str(j, "url", kh_msg_get_str(t, "url"));
		cli_json_str(j, "scep_status", kh_msg_get_str(t, "scep_status"));
		cli_json_bool(j, "challenge_password_set", kh_msg_get_bool(t, "challenge_password_set"));
		if (kh_msg_get_str(t, "scep_transaction")[0] != '\0') {
			cli_json_str(j, "scep_transaction", kh_msg_get_str(t, "scep_transaction"));
			cli_json_i64(j, "scep_next_poll", kh_msg_get_int(t, "scep_next_poll"));
			cli_json_u64(j, "scep_polls", kh_msg_get_uint(t, "scep_polls"));
			cli_json_i64(j, "scep_pending_since", kh_msg_get_int(t, "scep_pending_since"));
		}
	}
	cli_json_str(j, "digest", cli_digest_name(kh_msg_get_enum(t, "digest")));
	cli_json_u64(j, "validity_days", kh_msg_get_uint(t, "validity_days"));
	cli_json_str(j, "key_usage", tp_key_usage(t));
	n = kh_msg_count(t, "ca");
	cli_json_bool(j, "authenticated", n > 0);
	cli_json_arr(j, "ca");
	for (i = 0; i < n; i++)
		cert_json(j, NULL, cli_item(t, "ca", i));
	cli_json_end_arr(j);
	if (kh_msg_has(t, "cert"))
		cert_json(j, "certificate", cli_sub(t, "cert"));
	cli_json_arr(j, "chain");
	n = kh_msg_count(t, "chain");
	for (i = 0; i < n; i++)
		cert_json(j, NULL, cli_item(t, "chain", i));
	cli_json_end_arr(j);
	cli_json_bool(j, "csr_pending", pending_key[0] != '\0');
	if (pending_key[0] != '\0') {
		cli_json_str(j, "csr_key", pending_key);
		cli_json_str(j, "csr_created", cli_time_str(kh_msg_get_int(t, "pending_csr_created"), tb, sizeof(tb)));
		if (pending_csr[0] != '\0')
			cli_json_str(j, "csr_pem", pending_csr);
	}
	if (next_key[0] != '\0')
		cli_json_str(j, "next_key", next_key);
	cli_json_str(j, "created", cli_time_str(kh_msg_get_int(t, "created"), tb, sizeof(tb)));
	cli_json_str(j, "updated", cli_time_str(kh_msg_get_int(t, "updated"), tb, sizeof(tb)));
	cli_json_str(j, "ocsp_url", kh_msg_get_str(t, "ocsp_url"));
	cli_json_str(j, "acme_directory", kh_msg_get_str(t, "acme_directory"));
	cli_json_str(j, "acme_contact", kh_msg_get_str(t, "acme_contact"));
	cli_json_str(j, "acme_account_key", kh_msg_get_str(t, "acme_account_key"));
	cli_json_str(j, "acme_account", kh_msg_get_str(t, "acme_account"));
	cli_json_str(j, "acme_webroot", kh_msg_get_str(t, "acme_webroot"));
	cli_json_str(j, "acme_eab_kid", kh_msg_get_str(t, "acme_eab_kid"));
	cli_json_u64(j, "renew_failures", kh_msg_get_uint(t, "acme_renew_failures"));
	cli_json_str(j, "renew_error", kh_msg_get_str(t, "acme_renew_error"));
	cli_json_str(j, "renew_next_attempt", cli_time_str(kh_msg_get_int(t, "acme_renew_next"), tb, sizeof(tb)));
	cli_json_u64(j, "renew_at", kh_msg_get_uint(t, "renew_at"));
	cli_json_bool(j, "renew_regenerate", kh_msg_get_bool(t, "renew_regenerate"));
	cli_json_str(j, "renewal", renewal);
	cli_json_bool(j, "renewal_pending", strcmp(renewal, "pending") == 0);
	cli_json_str(j, "renew_after", cli_time_str(kh_msg_get_int(t, "renew_after"), tb, sizeof(tb)));
	if (kh_msg_has(t, "pending_ca"))
		cert_json(j, "pending_ca", cli_sub(t, "pending_ca"));
	cli_json_str(j, "revocation_state", kh_msg_get_str(t, "revocation_state"));
	cli_json_str(j, "revocation_detail", kh_msg_get_str(t, "revocation_detail"));
	cli_json_str(j, "revocation_checked", cli_time_str(kh_msg_get_int(t, "revocation_checked"), tb, sizeof(tb)));
	cli_json_str(j, "revocation_changed", cli_time_str(kh_msg_get_int(t, "revocation_changed"), tb, sizeof(tb)));
	cli_json_end_obj(j);
}

static void tp_print(const kh_msg *t)
{
	const char *name = kh_msg_get_str(t, "name"), *key = kh_msg_get_str(t, "key");
	const char *fqdn = kh_msg_get_str(t, "fqdn"), *san = kh_msg_get_str(t, "san");
	const char *ocsp = kh_msg_get_str(t, "ocsp_url"), *renewal = kh_msg_get_str(t, "renewal");
	const char *pending_key = kh_msg_get_str(t, "pending_csr_key"), *next_key = kh_msg_get_str(t, "next_key");
	uint32_t renew_at = (uint32_t)kh_msg_get_uint(t, "renew_at");
	int64_t renew_after = kh_msg_get_int(t, "renew_after");
	size_t i, n;
	char tb[40];

	printf("trustpoint:  %s\n", name);
	printf("key:         %s (%s%s)\n", key, or_else(cli_key_type_name(kh_msg_get_enum(t, "key_type")), "missing"),
	       kh_msg_get_bool(t, "key_generated") ? ", generated for this trustpoint" : "");
	printf("subject:     %s\n", kh_msg_get_str(t, "subject"));
	if (fqdn[0] != '\0')
		printf("fqdn:        %s\n", fqdn);
	if (san[0] != '\0')
		printf("san:         %s\n", san);
	printf("eku:         %s\n", kh_msg_get_str(t, "eku"));
	printf("key usage:   %s\n", tp_key_usage(t));
	printf("digest:      %s\n", strcmp(cli_digest_name(kh_msg_get_enum(t, "digest")), "default") == 0
					     ? "default (chosen for the key type)"
					     : cli_digest_name(kh_msg_get_enum(t, "digest")));
	printf("enrollment:  %s\n", or_else(cli_enrollment_name(kh_msg_get_enum(t, "enrollment")), "unknown"));
	if (kh_msg_get_str(t, "url")[0] != '\0')
		printf("url:         %s (SCEP%s): %s\n", kh_msg_get_str(t, "url"),
		       kh_msg_get_bool(t, "challenge_password_set") ? ", challenge password set" : "",
		       kh_msg_get_str(t, "scep_status")[0] != '\0' ? kh_msg_get_str(t, "scep_status") : "not enrolled");
	if (kh_msg_get_str(t, "scep_transaction")[0] != '\0') {
		char since[40];

		printf("pending:     SCEP transaction %s held by the CA since %s; %u poll(s), next poll %s\n",
		       kh_msg_get_str(t, "scep_transaction"),
		       cli_time_str(kh_msg_get_int(t, "scep_pending_since"), since, sizeof(since)),
		       (uint32_t)kh_msg_get_uint(t, "scep_polls"), cli_time_str(kh_msg_get_int(t, "scep_next_poll"), tb, sizeof(tb)));
	}
	printf("validity:    %u days (of a self-signed certificate)\n", (uint32_t)kh_msg_get_uint(t, "validity_days"));
	if (kh_msg_get_str(t, "acme_directory")[0] != '\0')
		printf("acme:        %s, account key %s, account %s\n", kh_msg_get_str(t, "acme_directory"),
		       kh_msg_get_str(t, "acme_account_key"),
		       kh_msg_get_str(t, "acme_account")[0] ? kh_msg_get_str(t, "acme_account") : "not yet created");
	if (kh_msg_get_str(t, "acme_webroot")[0] != '\0')
		printf("http-01:     written into %s/.well-known/acme-challenge/\n", kh_msg_get_str(t, "acme_webroot"));
	if (kh_msg_get_str(t, "acme_eab_kid")[0] != '\0')
		printf("acme eab:    kid %s (used when the account is created)\n", kh_msg_get_str(t, "acme_eab_kid"));
	printf("revocation:  %s%s%s\n", kh_msg_get_str(t, "revocation"), ocsp[0] ? ", OCSP responder " : "", ocsp);
	if (kh_msg_get_str(t, "revocation_state")[0] != '\0')
		printf("rev. state:  %s%s (checked %s): %s\n", kh_msg_get_str(t, "revocation_state"),
		       strcmp(kh_msg_get_str(t, "revocation_state"), "revoked") == 0 ? " - THE CERTIFICATE IS REVOKED" : "",
		       cli_time_str(kh_msg_get_int(t, "revocation_checked"), tb, sizeof(tb)),
		       kh_msg_get_str(t, "revocation_detail"));
	if (renew_at > 0)
		printf("renewal:     at %u%% of the lifetime (%s)%s%s%s\n", renew_at,
		       kh_msg_get_bool(t, "renew_regenerate") ? "new key" : "same key", renew_after ? ", from " : "",
		       renew_after ? cli_time_str(renew_after, tb, sizeof(tb)) : "",
		       strcmp(renewal, "pending") == 0
			       ? (kh_msg_get_str(t, "url")[0] != '\0'
					  ? ": RENEWAL PENDING (the new key's RenewalReq goes with the next SCEP pass)"
				  : kh_msg_get_str(t, "acme_directory")[0] != '\0'
					  ? ": RENEWAL PENDING (the next ACME order is for the new key)"
					  : ": RENEWAL PENDING (import the new certificate)")
		       : strcmp(renewal, "due") == 0
			       ? (kh_msg_get_str(t, "url")[0] != '\0' ? ": due (keyholdd's SCEP poller renews it)"
								       : ": due (the expiry monitor renews it)")
			       : "");
	if (kh_msg_get_uint(t, "acme_renew_failures") > 0)
		printf("renewal:     FAILED %u time(s) in a row; next attempt %s; last error: %s\n",
		       (unsigned)kh_msg_get_uint(t, "acme_renew_failures"),
		       cli_time_str(kh_msg_get_int(t, "acme_renew_next"), tb, sizeof(tb)), kh_msg_get_str(t, "acme_renew_error"));
	n = kh_msg_count(t, "ca");
	if (kh_msg_has(t, "pending_ca")) {
		printf("pending ca:  CA rollover: becomes the CA when a certificate it issued is imported\n");
		cert_print("  ", cli_sub(t, "pending_ca"));
	}
	if (n == 0)
		printf("ca:          not authenticated\n");
	for (i = 0; i < n; i++) {
		printf("ca:\n");
		cert_print("  ", cli_item(t, "ca", i));
	}
	if (kh_msg_has(t, "cert")) {
		printf("certificate:\n");
		cert_print("  ", cli_sub(t, "cert"));
	} else {
		printf("certificate: none\n");
	}
	n = kh_msg_count(t, "chain");
	for (i = 0; i < n; i++)
		printf("chain[%zu]:    %s\n", i, kh_msg_get_str(cli_item(t, "chain", i), "subject"));
	if (pending_key[0] != '\0')
		printf("pending csr: for key %s, created %s (keyhold trustpoint show %s --csr prints it)\n", pending_key,
		       cli_time_str(kh_msg_get_int(t, "pending_csr_created"), tb, sizeof(tb)), name);
	if (next_key[0] != '\0')
		printf("rollover:    new key %s awaits its certificate; %s stays in use until it is imported\n", next_key,
		       key);
}

void cli_tp_json(struct cli_json *j, const char *key, const kh_msg *t)
{
	tp_json(j, key, t);
}

void cli_tp_out(struct cli *cli, const kh_msg *t)
{
	if (cli->json)
		tp_json(cli->j, NULL, t);
	else
		tp_print(t);
}

struct tp_create_req {
	const char *name, *key, *generate, *subject, *fqdn, *san, *eku, *enrollment, *revocation, *digest, *ocsp;
	const char *url;
	char challenge[CLI_CHALLENGE_MAX + 1];
	const char *acme_dir, *acme_contact, *eab_kid, *acme_webroot;
	char eab_key[CLI_CHALLENGE_MAX + 1];
	uint8_t *acme_ca;
	size_t acme_ca_len;
	uint32_t days, renew_at;
	bool renew_regenerate, ip_san;
};

static enum kh_err tp_create_fill(kh_msg *q, const struct tp_create_req *c)
{
	enum kh_err r;

	CLI_TRY(kh_msg_set_str(q, "name", c->name));
	if (c->generate != NULL)
		CLI_TRY(kh_msg_set_enum(q, "generate", c->generate));
	else
		CLI_TRY(kh_msg_set_str(q, "key", c->key));
	CLI_TRY(set_opt_str(q, "subject", c->subject));
	CLI_TRY(set_opt_str(q, "fqdn", c->fqdn));
	CLI_TRY(set_opt_str(q, "san", c->san));
	CLI_TRY(set_opt_str(q, "eku", c->eku));
	if (c->enrollment != NULL)
		CLI_TRY(kh_msg_set_enum(q, "enrollment", c->enrollment));
	CLI_TRY(set_opt_str(q, "revocation", c->revocation));
	if (c->digest != NULL)
		CLI_TRY(kh_msg_set_enum(q, "digest", c->digest));
	CLI_TRY(kh_msg_set_uint(q, "validity_days", c->days));
	CLI_TRY(kh_msg_set_uint(q, "renew_at", c->renew_at));
	CLI_TRY(kh_msg_set_bool(q, "renew_regenerate", c->renew_regenerate));
	CLI_TRY(set_opt_str(q, "ocsp_url", c->ocsp));
	CLI_TRY(set_opt_str(q, "url", c->url));
	if (c->challenge[0] != '\0')
		CLI_TRY(kh_msg_set_str(q, "challenge_password", c->challenge));
	CLI_TRY(kh_msg_set_bool(q, "ip_san", c->ip_san));
	CLI_TRY(set_opt_str(q, "acme_directory", c->acme_dir));
	CLI_TRY(set_opt_str(q, "acme_contact", c->acme_contact));
	if (c->acme_ca != NULL)
		CLI_TRY(kh_msg_set_bytes(q, "acme_ca_pem", c->acme_ca, c->acme_ca_len));
	CLI_TRY(set_opt_str(q, "acme_webroot", c->acme_webroot));
	if (c->eab_kid != NULL) {
		CLI_TRY(kh_msg_set_str(q, "eab_kid", c->eab_kid));
		CLI_TRY(kh_msg_set_bytes(q, "eab_hmac_key", (const uint8_t *)c->eab_key, strlen(c->eab_key)));
	}
out:
	return r;
}

static int tp_create(struct cli *cli, struct cli_args *a)
{
	const char *enr = cli_opt(a, "--enrollment");
	const char *dname = cli_opt(a, "--digest");
	const char *days = cli_opt(a, "--days");
	const char *cpw = cli_opt(a, "--challenge-password-file");
	const char *acme_ca = cli_opt(a, "--acme-ca-bundle");
	const char *eab_file = cli_opt(a, "--eab-hmac-file");
	struct tp_create_req c;
	kh_msg *q = NULL, *resp = NULL;
	bool renew_set = false, mode_given = false;
	uint64_t d = 0;
	int rc;

	memset(&c, 0, sizeof(c));
	c.key = cli_opt(a, "--key");
	c.generate = cli_opt(a, "--generate");
	c.subject = cli_opt(a, "--subject");
	c.fqdn = cli_opt(a, "--fqdn");
	c.ip_san = cli_flag(a, "--ip-san");
	c.san = cli_opt(a, "--san");
	c.eku = cli_opt(a, "--eku");
	c.revocation = cli_opt(a, "--revocation");
	c.ocsp = cli_opt(a, "--ocsp-url");
	c.url = cli_opt(a, "--url");
	c.acme_dir = cli_opt(a, "--acme-directory");
	c.acme_contact = cli_opt(a, "--acme-contact");
	c.eab_kid = cli_opt(a, "--eab-kid");
	c.acme_webroot = cli_opt(a, "--acme-webroot");
	if ((rc = cli_renew_opts(cli, a, &renew_set, &c.renew_at, &c.renew_regenerate, &mode_given)) != 0)
		return rc;
	if (mode_given && c.renew_at == 0)
		return cli_usage(cli, "--renew-regenerate and --renew-same-key go with --renew-at PERCENT");
	c.name = cli_pos(a);
	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (c.name == NULL || c.subject == NULL || (c.key == NULL) == (c.generate == NULL))
		return cli_usage(cli, "usage: keyhold trustpoint create TP (--key NAME | --generate TYPE) --subject DN [--fqdn F] "
				      "[--san LIST] [--eku LIST] [--enrollment self|terminal|url|acme [--url URL] "
				      "[--challenge-password-file F]] [--revocation LIST] "
				      "[--digest D] [--days N] [--ocsp-url URL] [--renew-at PERCENT [--renew-regenerate]]");
	if (!kh_name_valid(c.name))
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "trustpoint name must match [A-Za-z0-9._-]{1,64}");
	if (c.generate != NULL) {
		const char *gen = c.generate;

		c.generate = cli_key_type_value(gen);
		if (c.generate == NULL)
			return cli_usage(cli, "unknown key type '%s'; use rsa2048, rsa3072, rsa4096, p256, p384, p521 or ed25519",
					 gen);
	} else if (!kh_name_valid(c.key)) {
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "key name must match [A-Za-z0-9._-]{1,64}");
	}
	if (enr != NULL) {
		c.enrollment = strcmp(enr, "self") == 0 ? "ENROLLMENT_SELF"
			       : strcmp(enr, "terminal") == 0 ? "ENROLLMENT_TERMINAL"
			       : strcmp(enr, "url") == 0      ? "ENROLLMENT_URL"
			       : strcmp(enr, "acme") == 0     ? "ENROLLMENT_ACME"
							      : NULL;
		if (c.enrollment == NULL)
			return cli_usage(cli, "unknown enrollment '%s'; use self, terminal, url or acme", enr);
	}
	if ((c.eab_kid == NULL) != (eab_file == NULL))
		return cli_usage(cli, "external account binding needs both --eab-kid K and --eab-hmac-file F");
	if ((c.acme_dir != NULL || c.acme_contact != NULL || acme_ca != NULL || c.eab_kid != NULL ||
	     c.acme_webroot != NULL) &&
	    (enr == NULL || strcmp(enr, "acme") != 0))
		return cli_usage(cli, "the --acme-* options go with --enrollment acme");
	if (enr != NULL && strcmp(enr, "acme") == 0 && c.acme_dir == NULL)
		return cli_usage(cli, "--enrollment acme needs --acme-directory https://HOST/PATH");
	if (days != NULL && kh_parse_u64(days, 1, 36500, &d) != 0)
		return cli_usage(cli, "--days takes 1 to 36500");
	c.days = (uint32_t)d;
	if ((rc = parse_digest(cli, dname, &c.digest)) != 0 ||
	    (rc = check_len(cli, c.subject, CLI_DN_MAX, "the subject")) != 0 ||
	    (rc = check_len(cli, c.fqdn, CLI_FQDN_MAX, "the FQDN")) != 0 ||
	    (rc = check_len(cli, c.san, CLI_SAN_MAX, "the SAN list")) != 0 ||
	    (rc = check_len(cli, c.eku, CLI_EKU_MAX, "the EKU list")) != 0 ||
	    (rc = check_len(cli, c.revocation, CLI_REVOCATION_MAX, "the revocation list")) != 0 ||
	    (rc = check_len(cli, c.ocsp, CLI_URL_MAX, "the OCSP URL")) != 0 ||
	    (rc = check_len(cli, c.url, CLI_URL_MAX, "the URL")) != 0 ||
	    (rc = check_len(cli, c.acme_dir, CLI_URL_MAX, "the ACME directory URL")) != 0 ||
	    (rc = check_len(cli, c.acme_contact, CLI_URL_MAX, "the ACME contact")) != 0 ||
	    (rc = check_len(cli, c.eab_kid, 256, "the external account binding kid")) != 0 ||
	    (rc = check_len(cli, c.acme_webroot, 1024, "the ACME webroot")) != 0)
		return rc;
	if (eab_file != NULL && (rc = cli_read_secret(cli, eab_file, c.eab_key, "the external account binding MAC key")) != 0)
		return rc;
	if (acme_ca != NULL && (rc = cli_read_file(cli, acme_ca, CLI_PKI_FILE_MAX, &c.acme_ca, &c.acme_ca_len)) != 0)
		return rc;
	if (cpw != NULL && (rc = read_challenge(cli, cpw, c.challenge)) != 0) {
		free(c.acme_ca);
		return rc;
	}
	if ((rc = cli_connect(cli)) == 0 && (rc = cli_request(cli, "CreateTrustpoint", &q)) == 0 &&
	    (rc = cli_call(cli, q, tp_create_fill(q, &c), &resp)) == 0) {
		cli_tp_out(cli, cli_sub(resp, "trustpoint"));
		kh_msg_free(resp);
	}
	OPENSSL_cleanse(c.challenge, sizeof(c.challenge));
	OPENSSL_cleanse(c.eab_key, sizeof(c.eab_key));
	free(c.acme_ca);
	return rc;
}

static int tp_list(struct cli *cli, struct cli_args *a)
{
	kh_msg *q = NULL, *l = NULL;
	size_t i, n;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0 ||
	    (rc = cli_request(cli, "ListTrustpoints", &q)) != 0 || (rc = cli_call(cli, q, KH_OK, &l)) != 0)
		return rc;
	n = kh_msg_count(l, "trustpoints");
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_arr(cli->j, "trustpoints");
		for (i = 0; i < n; i++)
			tp_json(cli->j, NULL, cli_item(l, "trustpoints", i));
		cli_json_end_arr(cli->j);
		cli_json_end_obj(cli->j);
	} else {
		printf("%-24s %-24s %-9s %-4s %-20s %-16s %s\n", "NAME", "KEY", "ENROLL", "CA", "CERT EXPIRES", "PENDING",
		       "REVOCATION");
		for (i = 0; i < n; i++) {
			const kh_msg *t = cli_item(l, "trustpoints", i);
			const char *renewal = kh_msg_get_str(t, "renewal");
			char tb[40];

			printf("%-24s %-24s %-9s %-4s %-20s %-16s %s\n", kh_msg_get_str(t, "name"), kh_msg_get_str(t, "key"),
			       or_else(cli_enrollment_name(kh_msg_get_enum(t, "enrollment")), "?"),
			       kh_msg_count(t, "ca") > 0 ? "yes" : "no",
			       kh_msg_has(t, "cert") ? cli_time_str(kh_msg_get_int(cli_sub(t, "cert"), "not_after"), tb, sizeof(tb))
						     : "-",
			       kh_msg_has(t, "pending_ca")			? "ca rollover"
			       : strcmp(renewal, "pending") == 0		? "renewal pending"
			       : strcmp(renewal, "due") == 0			? "renewal due"
			       : kh_msg_get_str(t, "next_key")[0]		? "rollover"
			       : kh_msg_get_str(t, "pending_csr_key")[0]	? "csr"
										: "-",
			       kh_msg_get_str(t, "revocation_state")[0] ? kh_msg_get_str(t, "revocation_state") : "-");
		}
	}
	kh_msg_free(l);
	return 0;
}

static int tp_show(struct cli *cli, struct cli_args *a)
{
	bool csr = cli_flag(a, "--csr");
	const char *name = cli_pos(a);
	kh_msg *resp = NULL;
	const kh_msg *t;
	int rc = 0;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL)
		return cli_usage(cli, "usage: keyhold trustpoint show TP [--csr]");
	if ((rc = cli_connect(cli)) != 0 || (rc = tp_call_name(cli, "GetTrustpoint", name, &resp)) != 0)
		return rc;
	t = cli_sub(resp, "trustpoint");
	if (csr && !cli->json) {
		const char *pem = kh_msg_get_str(t, "pending_csr");

		if (pem[0] == '\0')
			rc = cli_failf(cli, KH_E_NOT_FOUND, "trustpoint '%s' has no pending CSR; run keyhold trustpoint enroll %s",
				       name, name);
		else
			rc = cli_write_file(cli, NULL, (const uint8_t *)pem, strlen(pem));
	} else if (cli->json) {
		tp_json(cli->j, NULL, t);
	} else {
		tp_print(t);
	}
	kh_msg_free(resp);
	return rc;
}

static int tp_delete(struct cli *cli, struct cli_args *a)
{
	bool keep = cli_flag(a, "--keep-key"), force = cli_flag(a, "--force");
	const char *name = cli_pos(a);
	kh_msg *q = NULL, *d = NULL;
	enum kh_err r;
	size_t i, n;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL)
		return cli_usage(cli, "usage: keyhold trustpoint delete TP [--keep-key | --force]");
	if ((rc = cli_connect(cli)) != 0 || (rc = check_name(cli, name, "trustpoint")) != 0 ||
	    (rc = cli_request(cli, "DeleteTrustpoint", &q)) != 0)
		return rc;
	r = kh_msg_set_str(q, "name", name);
	if (r == KH_OK)
		r = kh_msg_set_bool(q, "keep_key", keep);
	if (r == KH_OK)
		r = kh_msg_set_bool(q, "force", force);
	if ((rc = cli_call(cli, q, r, &d)) != 0)
		return rc;
	/* A trustpoint has at most two keys of its own (current, next). */
	n = kh_msg_count(d, "deleted_keys");
	if (n > 2)
		n = 2;
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "deleted", name);
		cli_json_arr(cli->j, "deleted_keys");
		for (i = 0; i < n; i++)
			cli_json_str(cli->j, NULL, kh_msg_get_str_at(d, "deleted_keys", i));
		cli_json_end_arr(cli->j);
		cli_json_end_obj(cli->j);
	} else {
		printf("deleted trustpoint %s\n", name);
		for (i = 0; i < n; i++)
			printf("deleted its key %s\n", kh_msg_get_str_at(d, "deleted_keys", i));
	}
	kh_msg_free(d);
	return 0;
}

static enum kh_err tp_auth_fill(kh_msg *q, const char *name, const struct cli_bytes *ca, bool confirm, const char *fp)
{
	enum kh_err r;

	CLI_TRY(kh_msg_set_str(q, "name", name));
	CLI_TRY(kh_msg_set_bytes(q, "ca", ca->data, ca->len));
	CLI_TRY(kh_msg_set_bool(q, "confirm", confirm));
	CLI_TRY(set_opt_str(q, "fingerprint", fp));
out:
	return r;
}

static int tp_authenticate(struct cli *cli, struct cli_args *a)
{
	const char *ca = cli_opt(a, "--ca");
	const char *fp = cli_opt(a, "--fingerprint");
	bool yes = cli_flag(a, "--yes");
	const char *name = cli_pos(a);
	struct cli_bytes in = { NULL, 0 };
	kh_msg *q = NULL, *l = NULL;
	size_t i, n;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL)
		return cli_usage(cli, "usage: keyhold trustpoint authenticate TP [--ca FILE] (--yes | --fingerprint SHA256HEX)");
	/* No --ca: an enrollment url trustpoint fetches its CA (SCEP GetCACert). */
	if (ca != NULL && (rc = read_in(cli, ca, &in)) != 0)
		return rc;
	/* Without --yes or --fingerprint the service answers with the
	 * fingerprint to check and accepts nothing. */
	if ((rc = cli_connect(cli)) == 0 && (rc = check_name(cli, name, "trustpoint")) == 0 &&
	    (rc = check_len(cli, fp, CLI_FP_IN_MAX, "fingerprint")) == 0 &&
	    (rc = check_size(cli, in.len, "the CA certificate")) == 0 &&
	    (rc = cli_request(cli, "AuthenticateTrustpoint", &q)) == 0)
		rc = cli_call(cli, q, tp_auth_fill(q, name, &in, yes, fp), &l);
	bytes_clear(&in);
	if (rc != 0)
		return rc;
	n = kh_msg_count(l, "ca");
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "trustpoint", name);
		cli_json_arr(cli->j, "ca");
		for (i = 0; i < n; i++)
			cert_json(cli->j, NULL, cli_item(l, "ca", i));
		cli_json_end_arr(cli->j);
		cli_json_bool(cli->j, "pending", kh_msg_get_bool(l, "pending"));
		cli_json_end_obj(cli->j);
	} else {
		for (i = 0; i < n; i++) {
			if (kh_msg_get_bool(l, "pending"))
				printf("trustpoint %s: CA rollover: the new CA is pending; the current CA and certificate stay in "
				       "use until a certificate the new CA issued is imported\n",
				       name);
			else
				printf("trustpoint %s: CA authenticated\n", name);
			cert_print("  ", cli_item(l, "ca", i));
		}
	}
	kh_msg_free(l);
	return 0;
}

/* The ExportTrustpoint answer for name (*resp; its "data"). */
static int tp_export_call(struct cli *cli, const char *name, bool chain, const char *format, kh_msg **resp)
{
	kh_msg *q = NULL;
	enum kh_err r;
	int rc;

	if ((rc = check_name(cli, name, "trustpoint")) != 0 || (rc = cli_request(cli, "ExportTrustpoint", &q)) != 0)
		return rc;
	r = kh_msg_set_str(q, "name", name);
	if (r == KH_OK)
		r = kh_msg_set_bool(q, "chain", chain);
	if (r == KH_OK)
		r = kh_msg_set_enum(q, "format", format);
	return cli_call(cli, q, r, resp);
}

static const uint8_t *resp_data(const kh_msg *m, size_t *len)
{
	const uint8_t *v = NULL;

	if (kh_msg_get_bytes(m, "data", &v, len) != KH_OK) {
		*len = 0;
		return NULL;
	}
	return v;
}

/* The identity certificate of TP as PEM into path (after self enrollment). */
static int tp_write_cert(struct cli *cli, const char *name, const char *path)
{
	kh_msg *b = NULL;
	const uint8_t *data;
	size_t len;
	int rc;

	if ((rc = tp_export_call(cli, name, false, "CERT_FORMAT_PEM", &b)) != 0)
		return rc;
	data = resp_data(b, &len);
	rc = cli_write_file(cli, path, data, len);
	kh_msg_free(b);
	return rc;
}

/* r: an EnrollTrustpointResponse. */
static int tp_enroll_out(struct cli *cli, const char *name, const kh_msg *r, const char *outp)
{
	const char *csr = kh_msg_get_str(r, "csr_pem");
	const char *key = kh_msg_get_str(r, "key");
	const char *retired = kh_msg_get_str(r, "retired_key");
	bool has_csr = csr[0] != '\0', has_cert = kh_msg_has(r, "cert");
	int rc = 0;

	if (has_csr && outp != NULL)
		rc = cli_write_file(cli, outp, (const uint8_t *)csr, strlen(csr));
	else if (has_cert && outp != NULL)
		rc = tp_write_cert(cli, name, outp);
	if (rc != 0)
		return rc;
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "trustpoint", name);
		cli_json_str(cli->j, "enrollment", or_else(cli_enrollment_name(kh_msg_get_enum(r, "enrollment")), "?"));
		cli_json_str(cli->j, "key", key);
		if (has_csr)
			cli_json_str(cli->j, "csr_pem", csr);
		if (has_cert)
			cert_json(cli->j, "certificate", cli_sub(r, "cert"));
		if (retired[0] != '\0')
			cli_json_str(cli->j, "deleted_key", retired);
		if (outp != NULL)
			cli_json_str(cli->j, "out", outp);
		cli_json_end_obj(cli->j);
		return 0;
	}
	if (has_csr) {
		if (outp == NULL)
			rc = cli_write_file(cli, NULL, (const uint8_t *)csr, strlen(csr));
		else
			printf("trustpoint %s: CSR for key %s written to %s; have the CA sign it, then run keyhold trustpoint "
			       "import %s --cert FILE\n",
			       name, key, outp, name);
	} else if (has_cert) {
		if (strcmp(kh_msg_get_enum(r, "enrollment"), "ENROLLMENT_URL") == 0)
			printf("trustpoint %s: certificate issued by the CA (SCEP) for key %s\n", name, key);
		else if (strcmp(kh_msg_get_enum(r, "enrollment"), "ENROLLMENT_ACME") == 0)
			printf("trustpoint %s: ACME certificate issued for key %s\n", name, key);
		else
			printf("trustpoint %s: self-signed certificate issued for key %s\n", name, key);
		cert_print("  ", cli_sub(r, "cert"));
	}
	if (retired[0] != '\0')
		fprintf(outp == NULL && has_csr ? stderr : stdout, "deleted the old key %s\n", retired);
	return rc;
}

static int tp_enroll(struct cli *cli, struct cli_args *a)
{
	const char *outp = cli_opt(a, "--out");
	const char *name = cli_pos(a);
	kh_msg *r = NULL;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL)
		return cli_usage(cli, "usage: keyhold trustpoint enroll TP [--out FILE]");
	if ((rc = cli_connect(cli)) != 0 || (rc = tp_call_name(cli, "EnrollTrustpoint", name, &r)) != 0)
		return rc;
	rc = tp_enroll_out(cli, name, r, outp);
	kh_msg_free(r);
	return rc;
}

static int tp_regenerate(struct cli *cli, struct cli_args *a)
{
	const char *tname = cli_opt(a, "--type");
	const char *outp = cli_opt(a, "--out");
	const char *name = cli_pos(a);
	const char *type = NULL;
	bool force = cli_flag(a, "--force");
	kh_msg *q = NULL, *r = NULL;
	enum kh_err e;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL)
		return cli_usage(cli, "usage: keyhold trustpoint regenerate TP [--type TYPE] [--out FILE] [--force]");
	if (tname != NULL && (type = cli_key_type_value(tname)) == NULL)
		return cli_usage(cli, "unknown key type '%s'; use rsa2048, rsa3072, rsa4096, p256, p384, p521 or ed25519", tname);
	if ((rc = cli_connect(cli)) != 0 || (rc = check_name(cli, name, "trustpoint")) != 0 ||
	    (rc = cli_request(cli, "RegenerateTrustpoint", &q)) != 0)
		return rc;
	e = kh_msg_set_str(q, "name", name);
	if (e == KH_OK && type != NULL)
		e = kh_msg_set_enum(q, "type", type);
	if (e == KH_OK)
		e = kh_msg_set_bool(q, "force", force);
	if ((rc = cli_call(cli, q, e, &r)) != 0)
		return rc;
	rc = tp_enroll_out(cli, name, r, outp);
	kh_msg_free(r);
	return rc;
}

/* The warnings of an answer (the service sends at most four). */
#define CLI_WARN_MAX 4

static size_t warnings_count(const kh_msg *m)
{
	size_t n = kh_msg_count(m, "warnings");

	return n < CLI_WARN_MAX ? n : CLI_WARN_MAX;
}

static int tp_import(struct cli *cli, struct cli_args *a)
{
	const char *certp = cli_opt(a, "--cert");
	const char *name = cli_pos(a);
	struct cli_bytes in = { NULL, 0 };
	kh_msg *q = NULL, *r = NULL;
	const char *key, *retired;
	size_t i, nw;
	enum kh_err e;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL || certp == NULL)
		return cli_usage(cli, "usage: keyhold trustpoint import TP --cert FILE");
	if ((rc = read_in(cli, certp, &in)) != 0)
		return rc;
	if ((rc = cli_connect(cli)) == 0 && (rc = check_name(cli, name, "trustpoint")) == 0 &&
	    (rc = check_size(cli, in.len, "the certificate file")) == 0 &&
	    (rc = cli_request(cli, "ImportCertificate", &q)) == 0) {
		e = kh_msg_set_str(q, "name", name);
		if (e == KH_OK)
			e = kh_msg_set_bytes(q, "data", in.data, in.len);
		rc = cli_call(cli, q, e, &r);
	}
	bytes_clear(&in);
	if (rc != 0)
		return rc;
	nw = warnings_count(r);
	key = kh_msg_get_str(r, "key");
	retired = kh_msg_get_str(r, "retired_key");
	for (i = 0; i < nw; i++)
		fprintf(stderr, "warning: %s\n", kh_msg_get_str_at(r, "warnings", i));
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "trustpoint", name);
		cli_json_str(cli->j, "key", key);
		cert_json(cli->j, "certificate", cli_sub(r, "cert"));
		cli_json_u64(cli->j, "chain_length", kh_msg_get_uint(r, "chain_len"));
		cli_json_arr(cli->j, "warnings");
		for (i = 0; i < nw; i++)
			cli_json_str(cli->j, NULL, kh_msg_get_str_at(r, "warnings", i));
		cli_json_end_arr(cli->j);
		if (retired[0] != '\0')
			cli_json_str(cli->j, "deleted_key", retired);
		cli_json_bool(cli->j, "ca_rollover", kh_msg_get_bool(r, "ca_rollover"));
		cli_json_end_obj(cli->j);
	} else {
		printf("trustpoint %s: certificate imported for key %s (chain of %u)\n", name, key,
		       (uint32_t)kh_msg_get_uint(r, "chain_len"));
		cert_print("  ", cli_sub(r, "cert"));
		if (retired[0] != '\0')
			printf("key rollover complete: deleted the old key %s\n", retired);
		if (kh_msg_get_bool(r, "ca_rollover"))
			printf("CA rollover complete: the pending CA is now the trustpoint's CA\n");
	}
	kh_msg_free(r);
	return 0;
}

/* --format: "pem", "der", "pkcs7" (or "p7b"), any case. */
static bool export_format(const char *s, const char **name, const char **value)
{
	if (strcasecmp(s, "pem") == 0) {
		*name = "pem";
		*value = "CERT_FORMAT_PEM";
	} else if (strcasecmp(s, "der") == 0) {
		*name = "der";
		*value = "CERT_FORMAT_DER";
	} else if (strcasecmp(s, "pkcs7") == 0 || strcasecmp(s, "p7b") == 0) {
		*name = "pkcs7";
		*value = "CERT_FORMAT_PKCS7";
	} else {
		return false;
	}
	return true;
}

static int tp_export(struct cli *cli, struct cli_args *a)
{
	bool chain = cli_flag(a, "--chain");
	const char *fmt = cli_opt(a, "--format");
	const char *outp = cli_opt(a, "--out");
	const char *name = cli_pos(a);
	const char *fname = "pem", *fvalue = "CERT_FORMAT_PEM";
	bool der;
	kh_msg *b = NULL;
	const uint8_t *data;
	size_t len;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL)
		return cli_usage(cli, "usage: keyhold trustpoint export TP [--chain] [--format pem|der|pkcs7] [--out FILE]");
	if (fmt != NULL && !export_format(fmt, &fname, &fvalue))
		return cli_usage(cli, "unknown format '%s'; use pem, der or pkcs7", fmt);
	der = strcmp(fname, "der") == 0;
	if (der && outp == NULL && !cli->json && isatty(STDOUT_FILENO))
		return cli_usage(cli, "DER is binary: use --out FILE or redirect stdout");
	if ((rc = cli_connect(cli)) != 0 || (rc = tp_export_call(cli, name, chain, fvalue, &b)) != 0)
		return rc;
	data = resp_data(b, &len);
	rc = cli_export_out(cli, "trustpoint", name, fname, NULL, data, len, outp);
	kh_msg_free(b);
	return rc;
}

int cli_export_out(struct cli *cli, const char *what, const char *name, const char *fname, const kh_msg *counted,
		   const uint8_t *data, size_t len, const char *outp)
{
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, what, name);
		cli_json_str(cli->j, "format", fname);
		if (counted != NULL)
			cli_json_u64(cli->j, "count", kh_msg_get_uint(counted, "count"));
		if (strcmp(fname, "der") == 0)
			cli_json_hex(cli->j, "der_hex", data, len);
		else
			cli_json_strn(cli->j, "pem", (const char *)data, len);
		if (outp != NULL)
			cli_json_str(cli->j, "out", outp);
		cli_json_end_obj(cli->j);
	}
	if (outp != NULL || !cli->json)
		return cli_write_file(cli, outp, data, len);
	return 0;
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
	if (strcmp(verb, "discard-csr") == 0)
		return cli_tp_discard_csr(cli, a);
	if (strcmp(verb, "acme-rollover") == 0 || strcmp(verb, "acme-deactivate") == 0)
		return cli_tp_acme_account(cli, a, strcmp(verb, "acme-deactivate") == 0);
	if (strcmp(verb, "acme-eab") == 0)
		return cli_tp_acme_eab(cli, a);
	return cli_usage(cli, "unknown verb 'trustpoint %s'; use create, list, show, delete, authenticate, enroll, import, "
			      "export, regenerate, set, discard-csr, acme-rollover, acme-deactivate or acme-eab",
			 verb);
}

/* ---- truststore ---- */

static int ts_add(struct cli *cli, struct cli_args *a)
{
	const char *store = cli_pos(a);
	const char **paths = NULL;
	struct cli_bytes *files = NULL;
	kh_msg *q = NULL, *r = NULL;
	size_t n = 0, i, total = 0, nw, nadd;
	enum kh_err e = KH_OK;
	const char *p;
	int rc = 0;

	paths = calloc(CLI_TS_FILES_MAX, sizeof(*paths));
	files = calloc(CLI_TS_FILES_MAX, sizeof(*files));
	if (paths == NULL || files == NULL)
		rc = cli_failf(cli, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	while (rc == 0 && (p = cli_pos(a)) != NULL) {
		if (n == CLI_TS_FILES_MAX)
			rc = cli_usage(cli, "at most %d files at once", CLI_TS_FILES_MAX);
		else
			paths[n++] = p;
	}
	if (rc == 0)
		rc = cli_args_done(cli, a);
	if (rc == 0 && (store == NULL || n == 0))
		rc = cli_usage(cli, "usage: keyhold truststore add STORE FILE...");
	for (i = 0; i < n && rc == 0; i++)
		rc = read_in(cli, paths[i], &files[i]);
	for (i = 0; i < n; i++)
		total += files[i].len;
	if (rc == 0 && (rc = cli_connect(cli)) == 0 && (rc = check_name(cli, store, "trust store")) == 0 &&
	    (rc = check_size(cli, total, "the certificate files")) == 0 &&
	    (rc = cli_request(cli, "TruststoreAdd", &q)) == 0) {
		e = kh_msg_set_str(q, "store", store);
		for (i = 0; i < n && e == KH_OK; i++)
			e = kh_msg_add_bytes(q, "files", files[i].data, files[i].len);
		rc = cli_call(cli, q, e, &r);
	}
	for (i = 0; i < n; i++)
		bytes_clear(&files[i]);
	free(files);
	free(paths);
	if (rc != 0)
		return rc;
	nw = warnings_count(r);
	nadd = kh_msg_count(r, "added");
	for (i = 0; i < nw; i++)
		fprintf(stderr, "warning: %s\n", kh_msg_get_str_at(r, "warnings", i));
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "store", store);
		cli_json_arr(cli->j, "added");
		for (i = 0; i < nadd; i++)
			cert_json(cli->j, NULL, cli_item(r, "added", i));
		cli_json_end_arr(cli->j);
		cli_json_u64(cli->j, "already_present", kh_msg_get_uint(r, "already_present"));
		cli_json_end_obj(cli->j);
	} else {
		for (i = 0; i < nadd; i++) {
			const kh_msg *c = cli_item(r, "added", i);

			printf("added %s  %s\n", kh_msg_get_str(c, "fingerprint"), kh_msg_get_str(c, "subject"));
		}
		printf("trust store %s: %zu added, %u already present\n", store, nadd,
		       (uint32_t)kh_msg_get_uint(r, "already_present"));
	}
	kh_msg_free(r);
	return 0;
}

static int ts_list(struct cli *cli, struct cli_args *a)
{
	const char *store = cli_pos(a);
	kh_msg *q = NULL, *l = NULL;
	size_t i, k, n;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0)
		return rc;
	if (store != NULL && store[0] != '\0' && (rc = check_name(cli, store, "trust store")) != 0)
		return rc;
	if ((rc = cli_request(cli, "TruststoreList", &q)) != 0 ||
	    (rc = cli_call(cli, q, set_opt_str(q, "store", store), &l)) != 0)
		return rc;
	n = kh_msg_count(l, "stores");
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_arr(cli->j, "stores");
		for (i = 0; i < n; i++) {
			const kh_msg *t = cli_item(l, "stores", i);
			size_t ncrl = kh_msg_count(t, "crls");

			cli_json_obj(cli->j, NULL);
			cli_json_str(cli->j, "name", kh_msg_get_str(t, "name"));
			cli_json_u64(cli->j, "certificates", kh_msg_get_uint(t, "cert_count"));
			cli_json_str(cli->j, "revocation", kh_msg_get_str(t, "revocation"));
			cli_json_str(cli->j, "ocsp_url", kh_msg_get_str(t, "ocsp_url"));
			cli_json_str(cli->j, "crl_url", kh_msg_get_str(t, "crl_url"));
			if (kh_msg_has(t, "ocsp_responder"))
				cert_json(cli->j, "ocsp_responder", cli_sub(t, "ocsp_responder"));
			cli_validation_json(cli->j, "validation", cli_sub(t, "validation"));
			if (store != NULL) {
				size_t nc = kh_msg_count(t, "certs");

				cli_json_arr(cli->j, "certs");
				for (k = 0; k < nc; k++)
					cert_json(cli->j, NULL, cli_item(t, "certs", k));
				cli_json_end_arr(cli->j);
			}
			cli_json_arr(cli->j, "crls");
			for (k = 0; k < ncrl; k++)
				crl_json(cli->j, NULL, cli_item(t, "crls", k));
			cli_json_end_arr(cli->j);
			cli_json_end_obj(cli->j);
		}
		cli_json_end_arr(cli->j);
		cli_json_end_obj(cli->j);
	} else if (store == NULL) {
		printf("%-32s %6s %5s  %s\n", "STORE", "CERTS", "CRLS", "REVOCATION");
		for (i = 0; i < n; i++) {
			const kh_msg *t = cli_item(l, "stores", i);

			printf("%-32s %6u %5zu  %s\n", kh_msg_get_str(t, "name"), (uint32_t)kh_msg_get_uint(t, "cert_count"),
			       kh_msg_count(t, "crls"), kh_msg_get_str(t, "revocation"));
		}
	} else {
		for (i = 0; i < n; i++) {
			const kh_msg *t = cli_item(l, "stores", i);
			const char *ocsp = kh_msg_get_str(t, "ocsp_url");
			size_t nc = kh_msg_count(t, "certs"), ncrl = kh_msg_count(t, "crls");

			printf("revocation: %s%s%s\n", kh_msg_get_str(t, "revocation"), ocsp[0] ? ", OCSP responder " : "",
			       ocsp);
			if (kh_msg_get_str(t, "crl_url")[0] != '\0')
				printf("crl url:    %s\n", kh_msg_get_str(t, "crl_url"));
			if (kh_msg_has(t, "ocsp_responder"))
				printf("trusted OCSP responder: %s (SHA-256 %s)\n",
				       kh_msg_get_str(cli_sub(t, "ocsp_responder"), "subject"),
				       kh_msg_get_str(cli_sub(t, "ocsp_responder"), "fingerprint"));
			cli_validation_text("validation: ", cli_sub(t, "validation"));
			printf("%-64s  %-20s  %s\n", "SHA256", "NOT AFTER", "SUBJECT");
			for (k = 0; k < nc; k++) {
				const kh_msg *c = cli_item(t, "certs", k);
				char tb[40];

				printf("%-64s  %-20s  %s%s\n", kh_msg_get_str(c, "fingerprint"),
				       cli_time_str(kh_msg_get_int(c, "not_after"), tb, sizeof(tb)), kh_msg_get_str(c, "subject"),
				       kh_msg_get_bool(c, "self_signed") ? " (self-signed)" : "");
			}
			for (k = 0; k < ncrl; k++) {
				const kh_msg *c = cli_item(t, "crls", k);
				char t1[40], t2[40];

				printf("crl: %s, issued %s, next %s, %u revoked\n", kh_msg_get_str(c, "issuer"),
				       cli_time_str(kh_msg_get_int(c, "this_update"), t1, sizeof(t1)),
				       cli_time_str(kh_msg_get_int(c, "next_update"), t2, sizeof(t2)),
				       (uint32_t)kh_msg_get_uint(c, "revoked"));
			}
		}
	}
	kh_msg_free(l);
	return 0;
}

static int ts_remove(struct cli *cli, struct cli_args *a)
{
	const char *store = cli_pos(a);
	const char *fp = cli_pos(a);
	kh_msg *q = NULL, *r = NULL;
	const kh_msg *removed;
	enum kh_err e;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (store == NULL || fp == NULL)
		return cli_usage(cli, "usage: keyhold truststore remove STORE FINGERPRINT");
	if ((rc = cli_connect(cli)) != 0 || (rc = check_name(cli, store, "trust store")) != 0 ||
	    (rc = check_len(cli, fp, CLI_FP_IN_MAX, "fingerprint")) != 0 ||
	    (rc = cli_request(cli, "TruststoreRemove", &q)) != 0)
		return rc;
	e = kh_msg_set_str(q, "store", store);
	if (e == KH_OK)
		e = set_opt_str(q, "fingerprint", fp);
	if ((rc = cli_call(cli, q, e, &r)) != 0)
		return rc;
	removed = cli_sub(r, "removed");
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "store", store);
		cert_json(cli->j, "removed", removed);
		cli_json_end_obj(cli->j);
	} else {
		printf("removed %s  %s from %s\n", kh_msg_get_str(removed, "fingerprint"), kh_msg_get_str(removed, "subject"),
		       store);
	}
	kh_msg_free(r);
	return 0;
}

struct ts_verify_req {
	const char *store, *host, *ip, *purpose;
	int64_t at;
	struct cli_bytes cert, untrusted;
	struct cli_bytes *crls;
	size_t n_crls;
	const char *policies[KH_POLICIES_MAX];
	size_t n_policies;
	bool explicit_policy, inhibit_map, inhibit_any;
};

static enum kh_err ts_verify_fill(kh_msg *q, const struct ts_verify_req *v)
{
	enum kh_err r;
	size_t i;

	CLI_TRY(kh_msg_set_str(q, "store", v->store));
	CLI_TRY(kh_msg_set_bytes(q, "cert", v->cert.data, v->cert.len));
	if (v->untrusted.len > 0)
		CLI_TRY(kh_msg_set_bytes(q, "untrusted", v->untrusted.data, v->untrusted.len));
	CLI_TRY(kh_msg_set_int(q, "at", v->at));
	CLI_TRY(set_opt_str(q, "host", v->host));
	CLI_TRY(set_opt_str(q, "ip", v->ip));
	if (v->purpose != NULL)
		CLI_TRY(kh_msg_set_enum(q, "purpose", v->purpose));
	for (i = 0; i < v->n_crls; i++)
		CLI_TRY(kh_msg_add_bytes(q, "crls", v->crls[i].data, v->crls[i].len));
	for (i = 0; i < v->n_policies; i++)
		CLI_TRY(kh_msg_add_str(q, "policies", v->policies[i]));
	CLI_TRY(kh_msg_set_bool(q, "require_explicit_policy", v->explicit_policy));
	CLI_TRY(kh_msg_set_bool(q, "inhibit_policy_mapping", v->inhibit_map));
	CLI_TRY(kh_msg_set_bool(q, "inhibit_any_policy", v->inhibit_any));
out:
	return r;
}

/* --purpose: serverAuth, clientAuth or any, any case. */
static const char *ts_purpose(const char *s)
{
	if (strcasecmp(s, "serverAuth") == 0)
		return "PURPOSE_SERVER_AUTH";
	if (strcasecmp(s, "clientAuth") == 0)
		return "PURPOSE_CLIENT_AUTH";
	if (strcasecmp(s, "any") == 0)
		return "PURPOSE_ANY";
	return NULL;
}

static int ts_verify(struct cli *cli, struct cli_args *a)
{
	const char *untrusted = cli_opt(a, "--untrusted");
	const char *at = cli_opt(a, "--at");
	const char *purpose = cli_opt(a, "--purpose");
	const char *crlp[CLI_PKI_FILES_MAX];
	struct cli_bytes crls[CLI_PKI_FILES_MAX];
	const char *certp, *p, *reason, *detail, *rev;
	struct ts_verify_req req;
	kh_msg *q = NULL, *r = NULL;
	size_t ncrl = 0, i, n, npol, total;
	bool valid, soft_fail;
	int32_t error_depth;
	int rc = 0;

	memset(&req, 0, sizeof(req));
	req.host = cli_opt(a, "--host");
	req.ip = cli_opt(a, "--ip");
	while ((p = cli_opt(a, "--policy")) != NULL) {
		if (req.n_policies == KH_POLICIES_MAX)
			return cli_usage(cli, "at most %d --policy options", KH_POLICIES_MAX);
		if (!kh_oid_valid(p))
			return cli_failf(cli, KH_E_INVALID_ARGUMENT,
					 "'%s' is not a policy: give a dotted OID (such as 2.16.840.1.101.3.2.1.48.1) or "
					 "anyPolicy",
					 p);
		req.policies[req.n_policies++] = p;
	}
	req.explicit_policy = cli_flag(a, "--require-explicit-policy");
	req.inhibit_map = cli_flag(a, "--inhibit-policy-mapping");
	req.inhibit_any = cli_flag(a, "--inhibit-any-policy");
	while ((p = cli_opt(a, "--crl")) != NULL) {
		if (ncrl == CLI_PKI_FILES_MAX)
			return cli_usage(cli, "at most %d --crl files", CLI_PKI_FILES_MAX);
		crlp[ncrl++] = p;
	}
	req.store = cli_pos(a);
	certp = cli_pos(a);
	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (req.store == NULL || certp == NULL)
		return cli_usage(cli, "usage: keyhold truststore verify STORE CERTFILE [--untrusted FILE] [--at RFC3339] "
				      "[--host NAME|--ip ADDR] [--purpose serverAuth|clientAuth] [--crl FILE]... "
				      "[--policy OID]... [--require-explicit-policy] [--inhibit-policy-mapping] "
				      "[--inhibit-any-policy]");
	if (req.host != NULL && req.ip != NULL)
		return cli_usage(cli, "give --host or --ip, not both");
	if (!kh_name_valid(req.store))
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "trust store name must match [A-Za-z0-9._-]{1,64}");
	if (at != NULL && kh_time_parse_rfc3339(at, &req.at) != 0)
		return cli_usage(cli, "--at takes an RFC 3339 time such as 2030-01-02T03:04:05Z");
	if (at != NULL && req.at <= 0)
		return cli_usage(cli, "--at must be after 1970");
	if (purpose != NULL && (req.purpose = ts_purpose(purpose)) == NULL)
		return cli_usage(cli, "unknown purpose '%s'; use serverAuth or clientAuth", purpose);
	if ((rc = check_len(cli, req.host, CLI_HOST_MAX, "the host name")) != 0 ||
	    (rc = check_len(cli, req.ip, CLI_IP_MAX, "the IP address")) != 0)
		return rc;
	memset(crls, 0, sizeof(crls));
	rc = read_in(cli, certp, &req.cert);
	if (rc == 0 && untrusted != NULL)
		rc = read_in(cli, untrusted, &req.untrusted);
	for (i = 0; i < ncrl && rc == 0; i++)
		rc = read_in(cli, crlp[i], &crls[i]);
	req.crls = crls;
	req.n_crls = ncrl;
	total = req.cert.len + req.untrusted.len;
	for (i = 0; i < ncrl; i++)
		total += crls[i].len;
	if (rc == 0 && (rc = cli_connect(cli)) == 0 &&
	    (rc = check_size(cli, total, "the certificate, intermediates and CRLs")) == 0 &&
	    (rc = cli_request(cli, "TruststoreVerify", &q)) == 0)
		rc = cli_call(cli, q, ts_verify_fill(q, &req), &r);
	bytes_clear(&req.cert);
	bytes_clear(&req.untrusted);
	for (i = 0; i < ncrl; i++)
		bytes_clear(&crls[i]);
	if (rc != 0)
		return rc;
	valid = kh_msg_get_bool(r, "valid");
	reason = kh_msg_get_str(r, "reason");
	detail = kh_msg_get_str(r, "revocation_detail");
	rev = kh_msg_get_enum(r, "revocation_status");
	soft_fail = kh_msg_get_bool(r, "revocation_soft_fail");
	error_depth = (int32_t)kh_msg_get_int(r, "error_depth");
	n = kh_msg_count(r, "chain");
	npol = kh_msg_count(r, "valid_policies");
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "store", req.store);
		cli_json_bool(cli->j, "valid", valid);
		cli_json_str(cli->j, "result", reason);
		if (!valid) {
			cli_json_u64(cli->j, "x509_error", (uint64_t)(int32_t)kh_msg_get_int(r, "error"));
			cli_json_u64(cli->j, "depth", (uint64_t)error_depth);
		}
		cli_json_arr(cli->j, "chain");
		for (i = 0; i < n; i++)
			cert_json(cli->j, NULL, cli_item(r, "chain", i));
		cli_json_end_arr(cli->j);
		cli_json_arr(cli->j, "valid_policies");
		for (i = 0; i < npol; i++)
			cli_json_str(cli->j, NULL, kh_msg_get_str_at(r, "valid_policies", i));
		cli_json_end_arr(cli->j);
		cli_validation_json(cli->j, "validation", cli_sub(r, "validation"));
		cli_json_str(cli->j, "revocation", cli_rev_status_name(rev));
		cli_json_bool(cli->j, "revocation_soft_fail", soft_fail);
		cli_json_str(cli->j, "revocation_detail", detail);
		if (!valid) {
			/* The contract's error object, inside the one document. */
			cli_json_obj(cli->j, "error");
			cli_json_str(cli->j, "code", "FAILED_PRECONDITION");
			cli_json_str(cli->j, "message", reason);
			cli_json_i64(cli->j, "exit_status", CLI_EXIT_INVALID);
			cli_json_end_obj(cli->j);
		}
		cli_json_end_obj(cli->j);
	} else {
		printf("%s: %s\n", certp, valid ? "OK" : "INVALID");
		for (i = 0; i < n; i++)
			printf("  depth %zu: %s\n", i, kh_msg_get_str(cli_item(r, "chain", i), "subject"));
		if (valid) {
			printf("  valid policies: ");
			for (i = 0; i < npol; i++)
				printf("%s%s", i ? ", " : "", kh_msg_get_str_at(r, "valid_policies", i));
			printf("%s\n", npol == 0 ? "none" : "");
		}
		cli_validation_text("  checked with: ", cli_sub(r, "validation"));
		if (strcmp(rev, "REVOCATION_NOT_CHECKED") != 0)
			printf("  revocation: %s: %s\n", cli_rev_status_name(rev), detail);
		if (valid && soft_fail)
			fprintf(stderr, "warning: revocation not confirmed, accepted by the store's policy (soft-fail): %s\n",
				detail);
		if (!valid)
			fprintf(stderr, "error: FAILED_PRECONDITION: certificate chain is not valid: %s (depth %d)\n", reason,
				error_depth);
	}
	rc = valid ? 0 : CLI_EXIT_INVALID; /* FAILED_PRECONDITION */
	kh_msg_free(r);
	return rc;
}

int cli_cmd_truststore(struct cli *cli, struct cli_args *a)
{
	const char *verb = cli_pos(a);

	if (verb == NULL)
		return cli_usage(cli, "usage: keyhold truststore create|add|list|show|export|remove|delete|verify|set ...");
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
	if (strcmp(verb, "create") == 0)
		return cli_ts_create(cli, a);
	if (strcmp(verb, "delete") == 0)
		return cli_ts_delete(cli, a);
	if (strcmp(verb, "export") == 0)
		return cli_ts_export(cli, a);
	if (strcmp(verb, "show") == 0)
		return cli_ts_show(cli, a);
	return cli_usage(cli, "unknown verb 'truststore %s'; use create, add, list, show, export, remove, delete, verify or "
			      "set",
			 verb);
}

/* ---- crl ---- */

static int crl_import(struct cli *cli, struct cli_args *a)
{
	const char *store = cli_pos(a);
	const char *path = cli_pos(a);
	struct cli_bytes in = { NULL, 0 };
	kh_msg *q = NULL, *r = NULL;
	const kh_msg *ci;
	char t1[40], t2[40];
	size_t i, nw;
	enum kh_err e;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (store == NULL || path == NULL)
		return cli_usage(cli, "usage: keyhold crl import STORE FILE");
	if ((rc = read_in(cli, path, &in)) != 0)
		return rc;
	if ((rc = cli_connect(cli)) == 0 && (rc = check_name(cli, store, "trust store")) == 0 &&
	    (rc = check_size(cli, in.len, "the CRL")) == 0 && (rc = cli_request(cli, "ImportCrl", &q)) == 0) {
		e = kh_msg_set_str(q, "store", store);
		if (e == KH_OK)
			e = kh_msg_set_bytes(q, "crl", in.data, in.len);
		rc = cli_call(cli, q, e, &r);
	}
	bytes_clear(&in);
	if (rc != 0)
		return rc;
	ci = cli_sub(r, "crl");
	nw = kh_msg_count(r, "warnings");
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "store", store);
		crl_json(cli->j, "crl", ci);
		cli_json_arr(cli->j, "warnings");
		for (i = 0; i < nw; i++)
			cli_json_str(cli->j, NULL, kh_msg_get_str_at(r, "warnings", i));
		cli_json_end_arr(cli->j);
		cli_json_end_obj(cli->j);
	} else {
		printf("trust store %s: CRL from %s imported (issued %s, next update %s, %u revoked)\n", store,
		       kh_msg_get_str(ci, "issuer"), cli_time_str(kh_msg_get_int(ci, "this_update"), t1, sizeof(t1)),
		       cli_time_str(kh_msg_get_int(ci, "next_update"), t2, sizeof(t2)),
		       (uint32_t)kh_msg_get_uint(ci, "revoked"));
		for (i = 0; i < nw; i++)
			fprintf(stderr, "warning: %s\n", kh_msg_get_str_at(r, "warnings", i));
	}
	kh_msg_free(r);
	return 0;
}

/* A StoredCrl as JSON (key NULL inside arrays). */
static void stored_crl_json(struct cli_json *j, const char *key, const kh_msg *c)
{
	char t[40];

	cli_json_obj(j, key);
	cli_json_str(j, "store", kh_msg_get_str(c, "store"));
	crl_json(j, "crl", cli_sub(c, "crl"));
	cli_json_str(j, "source", kh_msg_get_str(c, "source"));
	cli_json_str(j, "imported", cli_time_str(kh_msg_get_int(c, "imported"), t, sizeof(t)));
	cli_json_str(j, "url", kh_msg_get_str(c, "url"));
	cli_json_str(j, "last_fetch", kh_msg_get_str(c, "last_fetch"));
	cli_json_bool(j, "last_fetch_ok", kh_msg_get_bool(c, "last_fetch_ok"));
	cli_json_str(j, "last_fetched", cli_time_str(kh_msg_get_int(c, "last_fetched"), t, sizeof(t)));
	cli_json_end_obj(j);
}

static int crl_list(struct cli *cli, struct cli_args *a)
{
	const char *store = cli_pos(a);
	kh_msg *q = NULL, *r = NULL;
	size_t i, n;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0)
		return rc;
	if (store != NULL && (rc = check_name(cli, store, "trust store")) != 0)
		return rc;
	if ((rc = cli_request(cli, "ListCrls", &q)) != 0 || (rc = cli_call(cli, q, set_opt_str(q, "store", store), &r)) != 0)
		return rc;
	n = kh_msg_count(r, "crls");
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_arr(cli->j, "crls");
		for (i = 0; i < n; i++)
			stored_crl_json(cli->j, NULL, cli_item(r, "crls", i));
		cli_json_end_arr(cli->j);
		cli_json_end_obj(cli->j);
	} else {
		printf("%-20s %-8s %-20s %-20s %7s  %-8s %-20s  %s\n", "STORE", "NUMBER", "THIS UPDATE", "NEXT UPDATE",
		       "ENTRIES", "SOURCE", "IMPORTED", "ISSUER");
		for (i = 0; i < n; i++) {
			const kh_msg *sc = cli_item(r, "crls", i), *c = cli_sub(sc, "crl");
			const char *num = kh_msg_get_str(c, "number_decimal");
			char t1[40], t2[40], t3[40];

			printf("%-20s %-8s %-20s %-20s %7u  %-8s %-20s  %s\n", kh_msg_get_str(sc, "store"), num[0] ? num : "-",
			       cli_time_str(kh_msg_get_int(c, "this_update"), t1, sizeof(t1)),
			       cli_time_str(kh_msg_get_int(c, "next_update"), t2, sizeof(t2)),
			       (uint32_t)kh_msg_get_uint(c, "revoked"), kh_msg_get_str(sc, "source"),
			       cli_time_str(kh_msg_get_int(sc, "imported"), t3, sizeof(t3)), kh_msg_get_str(c, "issuer"));
			if (kh_msg_get_str(sc, "last_fetch")[0] != '\0')
				printf("%-20s last fetch of %s at %s: %s%s\n", "", kh_msg_get_str(sc, "url"),
				       cli_time_str(kh_msg_get_int(sc, "last_fetched"), t3, sizeof(t3)),
				       kh_msg_get_bool(sc, "last_fetch_ok") ? "" : "FAILED: ", kh_msg_get_str(sc, "last_fetch"));
		}
	}
	kh_msg_free(r);
	return 0;
}

static enum kh_err crl_remove_fill(kh_msg *q, const char *store, const char *which, bool force)
{
	enum kh_err r;

	CLI_TRY(kh_msg_set_str(q, "store", store));
	CLI_TRY(kh_msg_set_str(q, "crl", which));
	CLI_TRY(kh_msg_set_bool(q, "force", force));
out:
	return r;
}

static int crl_remove(struct cli *cli, struct cli_args *a)
{
	bool force = cli_flag(a, "--force");
	const char *store = cli_pos(a);
	const char *which = cli_pos(a);
	kh_msg *q = NULL, *r = NULL;
	const kh_msg *rm;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (store == NULL || which == NULL)
		return cli_usage(cli, "usage: keyhold crl remove STORE ISSUER|FINGERPRINT --force");
	if ((rc = cli_connect(cli)) != 0 || (rc = check_name(cli, store, "trust store")) != 0 ||
	    (rc = cli_request(cli, "RemoveCrl", &q)) != 0 || (rc = cli_call(cli, q, crl_remove_fill(q, store, which, force), &r)) != 0)
		return rc;
	rm = cli_sub(r, "removed");
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		stored_crl_json(cli->j, "removed", rm);
		cli_json_end_obj(cli->j);
	} else {
		printf("trust store %s: CRL from %s removed (SHA-256 %s)\n", store,
		       kh_msg_get_str(cli_sub(rm, "crl"), "issuer"), kh_msg_get_str(cli_sub(rm, "crl"), "fingerprint"));
	}
	kh_msg_free(r);
	return 0;
}

int cli_cmd_crl(struct cli *cli, struct cli_args *a)
{
	const char *verb = cli_pos(a);

	if (verb != NULL && strcmp(verb, "import") == 0)
		return crl_import(cli, a);
	if (verb != NULL && strcmp(verb, "list") == 0)
		return crl_list(cli, a);
	if (verb != NULL && strcmp(verb, "remove") == 0)
		return crl_remove(cli, a);
	return cli_usage(cli, "usage: keyhold crl import STORE FILE | list [STORE] | remove STORE ISSUER|FINGERPRINT");
}
