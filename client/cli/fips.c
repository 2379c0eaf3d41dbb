/* fips.c: `keyhold selftest`: reruns keyholdd's FIPS power-up self-tests
 * and prints each with its result and duration. */
#include <stdio.h>

#include "cli.h"

int cli_cmd_selftest(struct cli *cli, struct cli_args *a)
{
	kh_msg *q = NULL, *rep = NULL;
	struct cli_json *j = cli->j;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0 ||
	    (rc = cli_request(cli, "RunSelfTest", &q)) != 0 || (rc = cli_call(cli, q, KH_OK, &rep)) != 0)
		return rc;
	if (cli->json) {
		cli_json_obj(j, NULL);
		cli_json_str(j, "state", kh_msg_get_str(rep, "state"));
		cli_selftests_json(j, rep, "self_tests");
		cli_json_end_obj(j);
	} else {
		cli_selftests_print(rep, "self_tests");
		printf("state: %s\n", kh_msg_get_str(rep, "state"));
	}
	kh_msg_free(rep);
	return 0;
}
