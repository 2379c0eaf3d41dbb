/* tpedit.c: `trustpoint discard-csr` (issue 16). `trustpoint set`'s
 * enrollment options live with its other options in cert.c. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cli_tp_discard_csr(struct cli *cli, struct cli_args *a)
{
	const char *name = cli_pos(a);
	kh_msg *q = NULL, *r = NULL;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0)
		return rc;
	if (name == NULL)
		return cli_usage(cli, "usage: keyhold trustpoint discard-csr TP");
	if (!kh_name_valid(name))
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "trustpoint name must match [A-Za-z0-9._-]{1,64}");
	if ((rc = cli_connect(cli)) != 0 || (rc = cli_request(cli, "DiscardCsr", &q)) != 0 ||
	    (rc = cli_call(cli, q, kh_msg_set_str(q, "name", name), &r)) != 0)
		return rc;
	if (!cli->json)
		printf("trustpoint %s: pending CSR discarded\n", name);
	cli_tp_out(cli, cli_sub(r, "trustpoint"));
	kh_msg_free(r);
	return 0;
}
