/* cli.h: the `keyhold` command's shared pieces: global options, output
 * (human or one JSON document), errors, file helpers. Uses only keyhold.h. */
#ifndef CLI_H
#define CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "keyhold.h"

struct cli {
	bool json;
	struct kh_client_opts opts;
	kh_client *c;
	struct cli_json *j;     /* the JSON document being written (--json) */
};

/* Exit codes: 0 ok; 1 an error the service reported or a local failure;
 * 2 usage. */
#define CLI_EXIT_ERR 1
#define CLI_EXIT_USAGE 2

/* Connects on first use. */
int cli_connect(struct cli *cli);
/* Prints the error per the CLI contract and returns CLI_EXIT_ERR. */
int cli_fail(struct cli *cli, const struct kh_errbuf *e);
int cli_failf(struct cli *cli, enum kh_err code, const char *fmt, ...) KH_PRINTF(3, 4);
int cli_usage(struct cli *cli, const char *fmt, ...) KH_PRINTF(2, 3);

/* Reads a whole file (or "-" for stdin) of at most max bytes. */
int cli_read_file(struct cli *cli, const char *path, size_t max, uint8_t **out, size_t *len);
/* Writes data to path ("-" or NULL: stdout). */
int cli_write_file(struct cli *cli, const char *path, const uint8_t *data, size_t len);

/* ---- JSON output ---- */
struct cli_json;
struct cli_json *cli_json_new(FILE *f);
void cli_json_free(struct cli_json *j);  /* writes the document and a newline */
void cli_json_discard(struct cli_json *j); /* drops it unwritten */
void cli_json_obj(struct cli_json *j, const char *key);   /* key NULL inside arrays/top */
void cli_json_end_obj(struct cli_json *j);
void cli_json_arr(struct cli_json *j, const char *key);
void cli_json_end_arr(struct cli_json *j);
void cli_json_str(struct cli_json *j, const char *key, const char *v);
void cli_json_strn(struct cli_json *j, const char *key, const char *v, size_t n);
void cli_json_u64(struct cli_json *j, const char *key, uint64_t v);
void cli_json_i64(struct cli_json *j, const char *key, int64_t v);
void cli_json_bool(struct cli_json *j, const char *key, bool v);
void cli_json_hex(struct cli_json *j, const char *key, const uint8_t *v, size_t n);

/* Argument helper: finds "--name VALUE" / "--flag" among argv[from..]. */
struct cli_args {
	int argc;
	char **argv;
	bool *used;
};
int cli_args_init(struct cli_args *a, int argc, char **argv);
void cli_args_free(struct cli_args *a);
const char *cli_opt(struct cli_args *a, const char *name);   /* value or NULL */
bool cli_flag(struct cli_args *a, const char *name);
/* The next unused positional argument, or NULL. */
const char *cli_pos(struct cli_args *a);
/* Non-zero (after printing usage) when anything was left unused. */
int cli_args_done(struct cli *cli, struct cli_args *a);
/* Whether "--name" was given without a value. */
bool cli_opt_missing_value(struct cli_args *a, const char *name);

/* keys.c: the self-test results of status and selftest. */
void cli_selftests_json(struct cli_json *j, const struct kh_selftest_result *v, size_t n);
void cli_selftests_print(const struct kh_selftest_result *v, size_t n);

/* Commands. */
int cli_cmd_status(struct cli *cli, struct cli_args *a);
int cli_cmd_key(struct cli *cli, struct cli_args *a);
int cli_cmd_sign(struct cli *cli, struct cli_args *a);
int cli_cmd_capabilities(struct cli *cli, struct cli_args *a);
int cli_cmd_selftest(struct cli *cli, struct cli_args *a);
/* pki.c */
int cli_cmd_csr(struct cli *cli, struct cli_args *a);
int cli_cmd_trustpoint(struct cli *cli, struct cli_args *a);
int cli_cmd_truststore(struct cli *cli, struct cli_args *a);
int cli_cmd_crl(struct cli *cli, struct cli_args *a);
int cli_cmd_audit(struct cli *cli, struct cli_args *a);
int cli_cmd_policy(struct cli *cli, struct cli_args *a);
/* pki.c: a trustpoint as `trustpoint show` prints it (or its JSON). */
void cli_tp_out(struct cli *cli, const struct kh_trustpoint *t);
/* cert.c: revocation, expiry, renewal (docs/REVOCATION.md) */
int cli_cmd_cert(struct cli *cli, struct cli_args *a);
int cli_tp_set(struct cli *cli, struct cli_args *a);
int cli_ts_set(struct cli *cli, struct cli_args *a);
/* --renew-at PERCENT|off, --renew-regenerate, --renew-same-key. */
int cli_renew_opts(struct cli *cli, struct cli_args *a, bool *set, uint32_t *renew_at, bool *regenerate,
		   bool *mode_given);

#endif
