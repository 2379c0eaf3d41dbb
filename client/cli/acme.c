/* acme.c: `trustpoint acme-rollover`, `trustpoint acme-deactivate` and
 * `trustpoint acme-eab`, the ACME account of an enrollment acme trustpoint
 * (RFC 8555 §7.3.5, §7.3.6, §7.3.4). */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli.h"

/* An AcmeAccount answer: its detail and the trustpoint; frees r. */
static int acme_account_out(struct cli *cli, const char *name, kh_msg *r)
{
	if (cli->json) {
		cli_json_obj(cli->j, NULL);
		cli_json_str(cli->j, "detail", kh_msg_get_str(r, "detail"));
		cli_tp_json(cli->j, "trustpoint", cli_sub(r, "trustpoint"));
		cli_json_end_obj(cli->j);
	} else {
		printf("trustpoint %s: %s\n", name, kh_msg_get_str(r, "detail"));
	}
	kh_msg_free(r);
	return 0;
}

int cli_tp_acme_account(struct cli *cli, struct cli_args *a, bool deactivate)
{
	bool yes = deactivate && cli_flag(a, "--yes");
	const char *name = cli_pos(a);
	kh_msg *q = NULL, *r = NULL;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL)
		return cli_usage(cli, deactivate ? "usage: keyhold trustpoint acme-deactivate TP --yes"
						 : "usage: keyhold trustpoint acme-rollover TP");
	if (!kh_name_valid(name))
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "trustpoint name must match [A-Za-z0-9._-]{1,64}");
	/* Deactivation cannot be undone (RFC 8555 §7.3.6): asked for twice. */
	if (deactivate && !yes)
		return cli_failf(cli, KH_E_FAILED_PRECONDITION,
				 "deactivating the ACME account of '%s' cannot be undone; run again with --yes", name);
	if ((rc = cli_connect(cli)) != 0 || (rc = cli_request(cli, "AcmeAccount", &q)) != 0 ||
	    (rc = cli_call(cli, q,
			   kh_msg_set_str(q, "name", name) != KH_OK
				   ? KH_E_INTERNAL
				   : kh_msg_set_enum(q, "action", deactivate ? "ACME_ACCOUNT_DEACTIVATE" : "ACME_ACCOUNT_KEY_ROLLOVER"),
			   &r)) != 0)
		return rc;
	return acme_account_out(cli, name, r);
}

int cli_tp_acme_eab(struct cli *cli, struct cli_args *a)
{
	const char *kid = cli_opt(a, "--eab-kid"), *file = cli_opt(a, "--eab-hmac-file");
	const char *name = cli_pos(a);
	char key[CLI_CHALLENGE_MAX + 1];
	kh_msg *q = NULL, *r = NULL;
	enum kh_err fr;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL || kid == NULL || file == NULL)
		return cli_usage(cli, "usage: keyhold trustpoint acme-eab TP --eab-kid K --eab-hmac-file F");
	if (!kh_name_valid(name))
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "trustpoint name must match [A-Za-z0-9._-]{1,64}");
	if (strlen(kid) > 256)
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "the external account binding kid is longer than 256 bytes");
	if ((rc = cli_read_secret(cli, file, key, "the external account binding MAC key")) != 0)
		return rc;
	if ((rc = cli_connect(cli)) == 0 && (rc = cli_request(cli, "AcmeAccount", &q)) == 0) {
		fr = kh_msg_set_str(q, "name", name);
		if (fr == KH_OK)
			fr = kh_msg_set_enum(q, "action", "ACME_ACCOUNT_SET_EAB");
		if (fr == KH_OK)
			fr = kh_msg_set_str(q, "eab_kid", kid);
		if (fr == KH_OK)
			fr = kh_msg_set_bytes(q, "eab_hmac_key", (const uint8_t *)key, strlen(key));
		rc = cli_call(cli, q, fr, &r);
	}
	OPENSSL_cleanse(key, sizeof(key));
	if (rc != 0)
		return rc;
	return acme_account_out(cli, name, r);
}
