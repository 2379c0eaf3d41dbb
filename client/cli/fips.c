/* fips.c: `keyhold selftest`: reruns keyholdd's FIPS power-up self-tests
 * and prints each with its result and duration. */
#include <stdio.h>

#include "cli.h"

int cli_cmd_selftest(struct cli *cli, struct cli_args *a)
{
	struct kh_selftest_report rep;
	struct kh_errbuf e = { 0 };
	struct cli_json *j = cli->j;
	size_t i;
	int rc;

	if ((rc = cli_args_done(cli, a)) != 0 || (rc = cli_connect(cli)) != 0)
		return rc;
	if (kh_run_selftest(cli->c, &rep, &e) != KH_OK)
		return cli_fail(cli, &e);
	if (cli->json) {
		cli_json_obj(j, NULL);
		cli_json_str(j, "state", rep.state);
		cli_json_arr(j, "self_tests");
		for (i = 0; i < rep.n; i++) {
			const struct kh_selftest_result *t = &rep.results[i];

			cli_json_obj(j, NULL);
			cli_json_str(j, "id", t->id);
			cli_json_str(j, "type", t->type);
			cli_json_str(j, "description", t->description);
			cli_json_str(j, "source", t->source);
			cli_json_str(j, "result", t->passed ? "pass" : "fail");
			cli_json_u64(j, "duration_us", t->duration_us);
			if (t->detail[0] != '\0')
				cli_json_str(j, "detail", t->detail);
			cli_json_end_obj(j);
		}
		cli_json_end_arr(j);
		cli_json_end_obj(j);
	} else {
		for (i = 0; i < rep.n; i++)
			printf("%-20s %-4s %8llu us  %s\n", rep.results[i].id, rep.results[i].passed ? "pass" : "FAIL",
			       (unsigned long long)rep.results[i].duration_us, rep.results[i].detail);
		printf("state: %s\n", rep.state);
	}
	kh_selftest_report_clear(&rep);
	return 0;
}
