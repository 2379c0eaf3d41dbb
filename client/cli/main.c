/* main.c: `keyhold [global options] NOUN VERB ...`: global options, the
 * command table, error reporting per the CLI contract (DESIGN §5). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Every status the service (or the library) can return, by class: one
 * table, printed by `keyhold --help` and docs/CLI.md. */
static const struct {
	enum kh_err code;
	int exit;
} cli_exit_codes[] = {
	{ KH_E_NOT_FOUND, CLI_EXIT_NOT_FOUND },
	{ KH_E_PERMISSION_DENIED, CLI_EXIT_DENIED },
	{ KH_E_UNAUTHENTICATED, CLI_EXIT_DENIED },
	{ KH_E_UNAVAILABLE, CLI_EXIT_UNAVAILABLE },
	{ KH_E_DEADLINE_EXCEEDED, CLI_EXIT_UNAVAILABLE },
	{ KH_E_RESOURCE_EXHAUSTED, CLI_EXIT_UNAVAILABLE },
	{ KH_E_INVALID_ARGUMENT, CLI_EXIT_INVALID },
	{ KH_E_FAILED_PRECONDITION, CLI_EXIT_INVALID },
	{ KH_E_OUT_OF_RANGE, CLI_EXIT_INVALID },
	{ KH_E_ALREADY_EXISTS, CLI_EXIT_EXISTS },
	{ KH_E_UNKNOWN, CLI_EXIT_ERR },
	{ KH_E_INTERNAL, CLI_EXIT_ERR },
	{ KH_E_DATA_LOSS, CLI_EXIT_ERR },
	{ KH_E_ABORTED, CLI_EXIT_ERR },
	{ KH_E_CANCELLED, CLI_EXIT_ERR },
	{ KH_E_UNIMPLEMENTED, CLI_EXIT_ERR },
};

#define CLI_NEXITS (sizeof(cli_exit_codes) / sizeof(cli_exit_codes[0]))

int cli_exit_code(enum kh_err code)
{
	size_t i;

	for (i = 0; i < CLI_NEXITS; i++)
		if (cli_exit_codes[i].code == code)
			return cli_exit_codes[i].exit;
	return CLI_EXIT_ERR;
}

void cli_exit_table(FILE *f)
{
	static const struct {
		int exit;
		const char *what;
	} classes[] = {
		{ CLI_EXIT_OK, "success (status, health: OPERATIONAL with the token present)" },
		{ CLI_EXIT_ERR, "other failure" },
		{ CLI_EXIT_USAGE, "usage: unknown command or option, missing argument" },
		{ CLI_EXIT_NOT_FOUND, "not found (a key, trustpoint, store, certificate or file)" },
		{ CLI_EXIT_DENIED, "permission denied or unauthenticated" },
		{ CLI_EXIT_UNAVAILABLE, "unavailable: service unreachable, token absent, not OPERATIONAL, deadline, rate limit" },
		{ CLI_EXIT_INVALID, "rejected: invalid argument, failed precondition, out of range" },
		{ CLI_EXIT_EXISTS, "already exists" },
	};
	size_t i, k;

	for (i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		const char *sep = " (";

		fprintf(f, "  %d  %s", classes[i].exit, classes[i].what);
		for (k = 0; k < CLI_NEXITS; k++) {
			if (cli_exit_codes[k].exit != classes[i].exit)
				continue;
			fprintf(f, "%s%s", sep, kh_err_name(cli_exit_codes[k].code));
			sep = ", ";
		}
		fprintf(f, "%s\n", sep[0] == ',' ? ")" : "");
	}
}

/* The error document of --json: on stdout (it replaces whatever was being
 * written) and on stderr. */
static void cli_error_json(struct cli *cli, const char *name, const char *msg, int status)
{
	FILE *outs[2] = { stdout, stderr };
	int i;

	cli_json_discard(cli->j);
	cli->j = NULL;
	for (i = 0; i < 2; i++) {
		struct cli_json *j = cli_json_new(outs[i]);

		cli_json_obj(j, NULL);
		cli_json_obj(j, "error");
		cli_json_str(j, "code", name);
		cli_json_str(j, "message", msg);
		cli_json_i64(j, "exit_status", status);
		cli_json_end_obj(j);
		cli_json_end_obj(j);
		cli_json_free(j);
	}
}

int cli_fail(struct cli *cli, enum kh_err code, const char *msg)
{
	const char *name;
	int status;

	if (code == KH_OK)
		code = KH_E_UNKNOWN;
	name = kh_err_name(code);
	status = cli_exit_code(code);
	if (msg == NULL || msg[0] == '\0')
		msg = name;
	if (cli->json)
		cli_error_json(cli, name, msg, status);
	else
		fprintf(stderr, "error: %s: %s\n", name, msg);
	return status;
}

/* Messages are cut where the library cuts its own. */
#define CLI_MSG_MAX 512

/* vsnprintf, then cut at a character boundary (file names and values
 * the user typed may be any bytes). */
static void cli_vformat(char *msg, size_t n, const char *fmt, va_list ap) CLI_PRINTF(3, 0);
static void cli_vformat(char *msg, size_t n, const char *fmt, va_list ap)
{
	char tmp[2 * CLI_MSG_MAX];

	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	kh_utf8_sanitize(msg, n, tmp);
}

int cli_failf(struct cli *cli, enum kh_err code, const char *fmt, ...)
{
	char msg[CLI_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	cli_vformat(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return cli_fail(cli, code, msg);
}

int cli_usage(struct cli *cli, const char *fmt, ...)
{
	char msg[CLI_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	cli_vformat(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (cli->json) {
		cli_error_json(cli, "USAGE", msg, CLI_EXIT_USAGE);
	} else {
		fprintf(stderr, "error: USAGE: %s\nrun 'keyhold --help' for usage\n", msg);
	}
	return CLI_EXIT_USAGE;
}

bool cli_uses_endpoints(const struct cli_conn *g)
{
	const char *env = getenv("KEYHOLD_ENDPOINTS");

	return g->connect == NULL &&
	       (g->endpoints != NULL || (!g->socket_given && env != NULL && env[0] != '\0'));
}

/* The options of the global flags; KH_OK or the setter's error (a bad
 * --endpoints list: why in kh_client_opts_error_message(*bad)). Order:
 * --connect, --endpoints, --socket, then libkeyhold's defaults
 * ($KEYHOLD_ENDPOINTS, $KEYHOLD_SOCKET, the build's path). */
static enum kh_err cli_conn_opts(const struct cli_conn *g, kh_client_opts **out, char *bad, size_t bad_cap)
{
	kh_client_opts *o = NULL;
	enum kh_err r;

	CLI_TRY(kh_client_opts_new(&o));
	if (g->connect != NULL) {
		CLI_TRY(kh_client_opts_set_tls(o, g->connect, g->tls_ca, g->tls_cert, g->tls_key));
	} else if (g->endpoints != NULL) {
		r = kh_client_opts_set_endpoints(o, g->endpoints);
		if (r != KH_OK) {
			snprintf(bad, bad_cap, "--endpoints: %s", kh_client_opts_error_message(o));
			goto out;
		}
	} else if (g->socket_given || !cli_uses_endpoints(g)) {
		CLI_TRY(kh_client_opts_set_socket(o, g->socket));
	}
	/* TLS entries of a list take the --tls-* files. */
	if (g->connect == NULL)
		CLI_TRY(kh_client_opts_set_tls_files(o, g->tls_ca, g->tls_cert, g->tls_key));
	if (g->tls_server_name != NULL)
		CLI_TRY(kh_client_opts_set_tls_server_name(o, g->tls_server_name));
	kh_client_opts_set_timeout(o, g->timeout_ms);
	*out = o;
	o = NULL;
out:
	kh_client_opts_free(o);
	return r;
}

int cli_connect(struct cli *cli)
{
	char bad[600];
	kh_client_opts *o = NULL;
	kh_client *c = NULL;
	enum kh_err r;
	int rc = 0;

	if (cli->c != NULL)
		return 0;
	bad[0] = '\0';
	r = cli_conn_opts(&cli->opts, &o, bad, sizeof(bad));
	if (bad[0] != '\0')
		return cli_failf(cli, r, "%s", bad);
	if (r == KH_E_INVALID_ARGUMENT && cli->opts.connect == NULL)
		return cli_failf(cli, r, "socket path %s is too long", cli->opts.socket);
	if (r != KH_OK)
		return cli_failf(cli, r, r == KH_E_RESOURCE_EXHAUSTED ? "out of memory"
					 : "an address or file name is longer than 4096 bytes");
	r = kh_client_new(o, &c);
	kh_client_opts_free(o);
	if (r != KH_OK)
		return cli_failf(cli, r, "out of memory");
	r = kh_client_connect(c);
	if (r != KH_OK) {
		rc = cli_fail(cli, r, kh_client_error_message(c));
		kh_client_free(c);
		return rc;
	}
	cli->c = c;
	return 0;
}

int cli_read_file(struct cli *cli, const char *path, size_t max, uint8_t **out, size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	uint8_t *buf;
	size_t n;

	if (f == NULL)
		return cli_failf(cli, KH_E_NOT_FOUND, "cannot open %s: %s", path, strerror(errno));
	buf = malloc(max + 1);
	if (buf == NULL) {
		if (f != stdin)
			fclose(f);
		return cli_failf(cli, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f)) {
		if (f != stdin)
			fclose(f);
		free(buf);
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "cannot read %s", path);
	}
	if (f != stdin)
		fclose(f);
	if (n > max) {
		free(buf);
		return cli_failf(cli, KH_E_INVALID_ARGUMENT, "%s is larger than %zu bytes", path, max);
	}
	*out = buf;
	*len = n;
	return 0;
}

int cli_write_file(struct cli *cli, const char *path, const uint8_t *data, size_t len)
{
	FILE *f = path == NULL || strcmp(path, "-") == 0 ? stdout : fopen(path, "wb");
	bool ok;

	if (f == NULL)
		return cli_failf(cli, KH_E_FAILED_PRECONDITION, "cannot write %s: %s", path, strerror(errno));
	ok = fwrite(data, 1, len, f) == len;
	if (f != stdout)
		ok = (fclose(f) == 0) && ok;
	else
		ok = (fflush(f) == 0) && ok;
	if (!ok)
		return cli_failf(cli, KH_E_FAILED_PRECONDITION, "writing %s failed", path ? path : "stdout");
	return 0;
}

/* ---- main ---- */

/* Index of the first argument at or after i that is not an option (nor
 * the value of a global option), or argc; stops at "--". */
static int cli_next_word(int argc, char **argv, int i)
{
	for (; i < argc; i++) {
		const char *o = argv[i];

		if (strcmp(o, "--") == 0)
			return argc;
		if (o[0] != '-' || o[1] == '\0')
			return i;
		if (cli_global_takes_value(o))
			i++;
	}
	return argc;
}

/* `keyhold help [NOUN [VERB]]`. */
static int cli_cmd_help(struct cli *cli, int argc, char **argv)
{
	const char *noun = NULL, *verb = NULL;
	const struct cli_verb *v;
	int i, words = 0;

	for (i = 0; i < argc; i++) {
		if (argv[i][0] == '-')
			continue; /* --json etc. */
		if (words == 0)
			noun = argv[i];
		else if (words == 1)
			verb = argv[i];
		words++;
	}

	if (noun == NULL) {
		cli_help(stdout);
		return 0;
	}
	if (!cli_noun_known(noun) || words > 2)
		return cli_usage(cli, "no command '%s%s%s' to explain", noun, verb ? " " : "", verb ? verb : "");
	if (cli_noun_has_verbs(noun) && verb == NULL) {
		cli_noun_usage(stdout, noun);
		return 0;
	}
	v = cli_verb_find(noun, verb);
	if (v == NULL || (v->verb == NULL && verb != NULL))
		return cli_usage(cli, "no command '%s %s' to explain", noun, verb);
	cli_verb_usage(stdout, v);
	return 0;
}

int main(int argc, char **argv)
{
	struct cli cli;
	struct cli_args *a = NULL;
	const struct cli_verb *v = NULL;
	const char *env;
	char **rest = NULL;
	char verbs[256];
	int ni, vi = -1, i, n = 0, rc;

	memset(&cli, 0, sizeof(cli));
	env = getenv("KEYHOLD_SOCKET");
	cli.opts.socket = env != NULL && env[0] != '\0' ? env : KH_DEFAULT_SOCKET;
	/* --json anywhere shapes even the usage errors found before parsing. */
	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--json") == 0)
			cli.json = true;
	ni = cli_next_word(argc, argv, 1);
	if (ni < argc && strcmp(argv[ni], "help") == 0)
		return cli_cmd_help(&cli, argc - ni - 1, argv + ni + 1);
	if (ni < argc) {
		if (!cli_noun_known(argv[ni]))
			return cli_usage(&cli, "unknown command '%s'", argv[ni]);
		if (cli_noun_has_verbs(argv[ni])) {
			vi = cli_next_word(argc, argv, ni + 1);
			if (vi < argc) {
				v = cli_verb_find(argv[ni], argv[vi]);
				if (v == NULL)
					return cli_usage(&cli, "unknown verb '%s %s'; use %s", argv[ni], argv[vi],
							 cli_noun_verbs(argv[ni], verbs, sizeof(verbs)));
			}
		} else {
			v = cli_verb_find(argv[ni], NULL);
		}
	}
	/* argv without the noun; the verb stays: getopt_long keeps the order of
	 * the words, so it is the first positional. */
	rest = calloc((size_t)argc + 1, sizeof(*rest));
	a = calloc(1, sizeof(*a));
	if (rest == NULL || a == NULL) {
		free(rest);
		free(a);
		return cli_failf(&cli, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	}
	for (i = 0; i < argc; i++)
		if (i != ni)
			rest[n++] = argv[i];
	rc = cli_args_parse(&cli, v, n, rest, a);
	if (rc != 0)
		goto out;
	if (cli.version) {
		printf("keyhold %s\n", KEYHOLD_VERSION);
		goto out;
	}
	if (cli.help) {
		if (v != NULL)
			cli_verb_usage(stdout, v);
		else if (ni < argc)
			cli_noun_usage(stdout, argv[ni]);
		else
			cli_help(stdout);
		goto out;
	}
	if (ni >= argc) {
		cli_help(stderr);
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	if (v == NULL) {
		rc = cli_usage(&cli, "'%s' needs a verb: %s", argv[ni], cli_noun_verbs(argv[ni], verbs, sizeof(verbs)));
		goto out;
	}
	if (cli.json)
		cli.j = cli_json_new(stdout);
	rc = v->fn(&cli, a);
out:
	free(a);
	free(rest);
	cli_json_free(cli.j);
	kh_client_free(cli.c);
	return rc;
}
