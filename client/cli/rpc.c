/* rpc.c: one request of the CLI through libkeyhold's generic messages:
 * build, call, report a failure per the CLI contract. */
#include <stdio.h>

#include "cli.h"

int cli_request(struct cli *cli, const char *method, kh_msg **out)
{
	enum kh_err r = kh_request_new(method, out);

	if (r != KH_OK)
		return cli_failf(cli, r, "cannot make a %s request", method);
	return 0;
}

int cli_call(struct cli *cli, kh_msg *q, enum kh_err r, kh_msg **resp)
{
	int rc = 0;

	if (r != KH_OK) {
		/* A field the CLI filled wrongly: a bug here, not the user's. */
		rc = cli_fail(cli, r, kh_msg_error_message(q));
	} else {
		r = kh_call(cli->c, q, resp);
		if (r != KH_OK)
			rc = cli_fail(cli, r, kh_client_error_message(cli->c));
	}
	kh_msg_free(q);
	return rc;
}

kh_msg *cli_item(const kh_msg *m, const char *field, size_t i)
{
	kh_msg *c = NULL;

	if (m == NULL || kh_msg_item(m, field, i, &c) != KH_OK)
		return NULL;
	return c;
}

kh_msg *cli_sub(const kh_msg *m, const char *field)
{
	return cli_item(m, field, 0);
}
