/* args.c: the command line of one verb through getopt_long: the global
 * options and the verb's own (verbs.c) in one table, accepted anywhere,
 * as --opt VALUE or --opt=VALUE, "--" ending options. The verbs then
 * take the values by name (cli_opt, cli_flag) and the rest in order
 * (cli_pos); what a verb leaves unused is a usage error. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Long options of a verb plus the globals. */
#define CLI_LONGOPTS_MAX 48
/* getopt_long's return value for table entry i. */
#define CLI_OPT_BASE 1000

enum cli_global { CLI_G_SOCKET, CLI_G_CONNECT, CLI_G_ENDPOINTS, CLI_G_TLS_CERT, CLI_G_TLS_KEY, CLI_G_TLS_CA, CLI_G_TLS_SNI,
		  CLI_G_TIMEOUT, CLI_G_JSON, CLI_G_HELP, CLI_G_VERSION, CLI_G_COUNT };

static const struct option cli_global_opts[CLI_G_COUNT] = {
	{ "socket", required_argument, NULL, 0 },  { "connect", required_argument, NULL, 0 },
	{ "endpoints", required_argument, NULL, 0 },
	{ "tls-cert", required_argument, NULL, 0 }, { "tls-key", required_argument, NULL, 0 },
	{ "tls-ca", required_argument, NULL, 0 },   { "tls-server-name", required_argument, NULL, 0 },
	{ "timeout", required_argument, NULL, 0 },  { "json", no_argument, NULL, 0 },
	{ "help", no_argument, NULL, 0 },           { "version", no_argument, NULL, 0 },
};

bool cli_global_takes_value(const char *arg)
{
	size_t i;

	if (strncmp(arg, "--", 2) != 0 || strchr(arg, '=') != NULL)
		return false;
	for (i = 0; i < CLI_G_COUNT; i++)
		if (strcmp(arg + 2, cli_global_opts[i].name) == 0)
			return cli_global_opts[i].has_arg == required_argument;
	return false;
}

/* Splits v->opts into a->defs; false when the table is too small. */
static bool cli_args_defs(struct cli_args *a, const struct cli_verb *v)
{
	const char *p = v != NULL ? v->opts : "";

	a->ndefs = 0;
	while (*p != '\0') {
		size_t n = strcspn(p, ",");
		struct cli_optdef *d;
		size_t namelen = n;

		if (a->ndefs == CLI_OPTDEFS_MAX)
			return false;
		d = &a->defs[a->ndefs++];
		memset(d, 0, sizeof(*d));
		if (n >= 2 && p[n - 2] == '=' && p[n - 1] == '*') {
			d->value = d->repeat = true;
			namelen = n - 2;
		} else if (n >= 1 && p[n - 1] == '=') {
			d->value = true;
			namelen = n - 1;
		}
		if (namelen >= sizeof(d->name))
			return false;
		memcpy(d->name, p, namelen);
		d->name[namelen] = '\0';
		p += n;
		if (*p == ',')
			p++;
	}
	return true;
}

/* The option name of argv[idx] for a message: "--foo" of "--foo=bar". */
static void cli_opt_text(const char *arg, char *buf, size_t n)
{
	size_t len = strcspn(arg, "=");

	if (len >= n)
		len = n - 1;
	memcpy(buf, arg, len);
	buf[len] = '\0';
}

static int cli_set_global(struct cli *cli, int g, const char *val)
{
	switch (g) {
	case CLI_G_SOCKET: cli->opts.socket = val; cli->opts.socket_given = true; break;
	case CLI_G_ENDPOINTS: cli->opts.endpoints = val; break;
	case CLI_G_CONNECT: cli->opts.connect = val; break;
	case CLI_G_TLS_CERT: cli->opts.tls_cert = val; break;
	case CLI_G_TLS_KEY: cli->opts.tls_key = val; break;
	case CLI_G_TLS_CA: cli->opts.tls_ca = val; break;
	case CLI_G_TLS_SNI: cli->opts.tls_server_name = val; break;
	case CLI_G_TIMEOUT: {
		char *end = NULL;
		unsigned long s = strtoul(val, &end, 10);

		if (*val == '\0' || *val == '-' || *end != '\0' || s == 0 || s > 86400)
			return cli_usage(cli, "--timeout takes seconds from 1 to 86400, not '%s'", val);
		/* Both the deadline sent and the client's wait. */
		cli->opts.timeout_ms = (uint32_t)(s * 1000);
		break;
	}
	case CLI_G_JSON: cli->json = true; break;
	case CLI_G_HELP: cli->help = true; break;
	case CLI_G_VERSION: cli->version = true; break;
	default: break;
	}
	return 0;
}

int cli_args_parse(struct cli *cli, const struct cli_verb *v, int argc, char **argv, struct cli_args *a)
{
	struct option longopts[CLI_LONGOPTS_MAX + 1];
	size_t nl = 0, i;
	int c, idx, rc;
	char bad[64];

	memset(a, 0, sizeof(*a));
	a->verb = v;
	if (!cli_args_defs(a, v) || a->ndefs + CLI_G_COUNT > CLI_LONGOPTS_MAX)
		return cli_failf(cli, KH_E_INTERNAL, "the option table of '%s' is too large", v->synopsis);
	for (i = 0; i < CLI_G_COUNT; i++) {
		longopts[nl] = cli_global_opts[i];
		longopts[nl].val = CLI_OPT_BASE + (int)nl;
		nl++;
	}
	for (i = 0; i < a->ndefs; i++) {
		longopts[nl].name = a->defs[i].name;
		longopts[nl].has_arg = a->defs[i].value ? required_argument : no_argument;
		longopts[nl].flag = NULL;
		longopts[nl].val = CLI_OPT_BASE + (int)nl;
		nl++;
	}
	memset(&longopts[nl], 0, sizeof(longopts[nl]));

	/* ':' first: a missing value is reported as ':', not '?'. */
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", longopts, &idx)) != -1) {
		if (c == 'h') {
			cli->help = true;
			continue;
		}
		if (c == ':') {
			cli_opt_text(argv[optind - 1], bad, sizeof(bad));
			return cli_usage(cli, "option %s needs a value", bad);
		}
		if (c == '?') {
			if (optopt != 0 && optopt < CLI_OPT_BASE) {
				snprintf(bad, sizeof(bad), "-%c", optopt);
			} else if (optopt >= CLI_OPT_BASE) {
				/* A flag given a value: --force=yes. */
				cli_opt_text(argv[optind - 1], bad, sizeof(bad));
				return cli_usage(cli, "option %s takes no value", bad);
			} else {
				cli_opt_text(argv[optind - 1], bad, sizeof(bad));
			}
			if (v == NULL)
				return cli_usage(cli, "unknown option %s", bad);
			return cli_usage(cli, "unknown option %s for 'keyhold %s%s%s' (see 'keyhold help %s%s%s')", bad, v->noun,
					 v->verb ? " " : "", v->verb ? v->verb : "", v->noun, v->verb ? " " : "",
					 v->verb ? v->verb : "");
		}
		c -= CLI_OPT_BASE;
		if (c < 0 || (size_t)c >= nl)
			return cli_usage(cli, "unknown option");
		if (c < CLI_G_COUNT) {
			if ((rc = cli_set_global(cli, c, optarg)) != 0)
				return rc;
			continue;
		}
		if (a->nvals == CLI_OPTVALS_MAX)
			return cli_usage(cli, "too many options");
		a->vals[a->nvals].def = (size_t)c - CLI_G_COUNT;
		a->vals[a->nvals].val = optarg != NULL ? optarg : "";
		a->vals[a->nvals].used = false;
		a->nvals++;
	}
	a->pos = argv + optind;
	a->npos = argc - optind;
	return 0;
}

static size_t cli_def_index(const struct cli_args *a, const char *name)
{
	size_t i;

	if (strncmp(name, "--", 2) == 0)
		name += 2;
	for (i = 0; i < a->ndefs; i++)
		if (strcmp(a->defs[i].name, name) == 0)
			return i;
	/* A verb reading an option its table does not declare: a bug here,
	 * made loud so the tests find it. */
	fprintf(stderr, "keyhold: internal error: option --%s is not declared for '%s'\n", name,
		a->verb != NULL ? a->verb->synopsis : "?");
	abort();
}

const char *cli_opt(struct cli_args *a, const char *name)
{
	size_t d = cli_def_index(a, name), i;

	for (i = 0; i < a->nvals; i++) {
		if (a->vals[i].def == d && !a->vals[i].used) {
			a->vals[i].used = true;
			return a->vals[i].val;
		}
	}
	return NULL;
}

bool cli_flag(struct cli_args *a, const char *name)
{
	size_t d = cli_def_index(a, name), i;
	bool seen = false;

	for (i = 0; i < a->nvals; i++) {
		if (a->vals[i].def == d) {
			a->vals[i].used = true;
			seen = true;
		}
	}
	return seen;
}

const char *cli_pos(struct cli_args *a)
{
	if (a->next >= a->npos)
		return NULL;
	return a->pos[a->next++];
}

int cli_args_done(struct cli *cli, struct cli_args *a)
{
	size_t i;

	if (a->next < a->npos)
		return cli_usage(cli, "unexpected argument: %s", a->pos[a->next]);
	for (i = 0; i < a->nvals; i++)
		if (!a->vals[i].used)
			return cli_usage(cli, "option --%s given more than once", a->defs[a->vals[i].def].name);
	return 0;
}
