/* acme.c: `trustpoint acme-rollover` and `trustpoint acme-deactivate`, the
 * ACME account of an enrollment acme trustpoint (RFC 8555 §7.3.5, §7.3.6). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

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
