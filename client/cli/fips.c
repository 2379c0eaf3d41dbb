/* fips.c: `keyhold selftest`: reruns keyholdd's FIPS power-up self-tests
 * and prints each with its result and duration. */
#include <stdio.h>

#include "cli.h"

int cli_cmd_selftest(struct cli *cli, struct cli_args *a)
{
	struct kh_selftest_report rep;
	struct kh_errbuf e = { 0 };
	struct cli_json *j = cli->j;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0)
		return rc;
	if (kh_run_selftest(cli->c, &rep, &e) != KH_OK)
		return cli_fail(cli, &e);
	if (cli->json) {
		cli_json_obj(j, NULL);
		cli_json_str(j, "state", rep.state);
		cli_selftests_json(j, rep.results, rep.n);
		cli_json_end_obj(j);
	} else {
		cli_selftests_print(rep.results, rep.n);
		printf("state: %s\n", rep.state);
	}
	kh_selftest_report_clear(&rep);
	return 0;
}
