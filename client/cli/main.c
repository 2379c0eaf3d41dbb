/* main.c: `keyhold [global options] NOUN VERB ...`: global options, the
 * command table, error reporting per the CLI contract (DESIGN §5). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void cli_help(FILE *f)
{
	fprintf(f,
		"usage: keyhold [--socket PATH] [--json] NOUN VERB ...\n"
		"       keyhold --connect HOST:PORT --tls-cert F --tls-key F --tls-ca F ...\n"
		"\n"
		"  status                               service, token, FIPS, self-tests\n"
		"  selftest                             rerun the FIPS power-up self-tests now (admin)\n"
		"  capabilities                         key types and mechanisms of the token\n"
		"  key generate NAME --type TYPE        rsa2048|rsa3072|rsa4096|p256|p384|p521|ed25519\n"
		"  key list\n"
		"  key show NAME [--pem|--reference]    --pem: SubjectPublicKeyInfo PEM;\n"
		"                                       --reference: KEYHOLD KEY file for the OpenSSL provider\n"
		"  key delete NAME --force\n"
		"  sign NAME --in FILE [--digest sha256|sha384|sha512] [--pss] [--prehashed] [--out FILE]\n"
		"  csr NAME --subject DN [--san LIST] [--eku LIST] [--digest D] [--out FILE]\n"
		"      [--challenge-password-file FILE]\n"
		"  trustpoint create TP (--key NAME | --generate TYPE) --subject DN [--fqdn F] [--san LIST]\n"
		"      [--eku LIST] [--enrollment self|terminal] [--revocation LIST] [--digest D] [--days N]\n"
		"  trustpoint list | show TP [--csr] | delete TP [--keep-key]\n"
		"  trustpoint authenticate TP --ca FILE (--yes | --fingerprint SHA256HEX)\n"
		"  trustpoint enroll TP [--out FILE]     self: self-signed certificate; terminal: PEM CSR\n"
		"  trustpoint import TP --cert FILE      PEM, DER or PKCS#7 (with chain)\n"
		"  trustpoint export TP [--chain] [--format pem|der|pkcs7] [--out FILE]\n"
		"  trustpoint regenerate TP [--type TYPE] [--out FILE]   new key; old one kept until import\n"
		"  truststore add STORE FILE...          PEM bundle, DER or PKCS#7\n"
		"  truststore list [STORE] | remove STORE FINGERPRINT\n"
		"  truststore verify STORE CERTFILE [--untrusted FILE] [--at RFC3339] [--host NAME|--ip ADDR]\n"
		"      [--purpose serverAuth|clientAuth] [--crl FILE]... [--policy OID]...\n"
		"      [--require-explicit-policy] [--inhibit-policy-mapping] [--inhibit-any-policy]\n"
		"  crl import STORE FILE                 PEM or DER CRL for a trust store (warns when stale)\n"
		"  crl list [STORE] | remove STORE ISSUER|FINGERPRINT   the CRLs trust stores keep\n"
		"  audit show [--since RFC3339] [--limit N]   the audit log (auditor, admin)\n"
		"  audit verify                         check the hash chain and checkpoint signatures\n"
		"  policy grant KEY PRINCIPAL [--digests sha256,...] [--padding pkcs1,pss]\n"
		"  policy revoke KEY PRINCIPAL | policy list [KEY]   per-key grants (admin)\n"
		"  truststore set STORE [--revocation crl,ocsp,none] [--ocsp-url URL] [--policy OID]...\n"
		"      [--require-explicit-policy|--inhibit-policy-mapping|--inhibit-any-policy on|off]\n"
		"      [--min-rsa-bits N] [--min-ec-bits N] [--allow-sha1 on|off]   validation (docs/PKI.md)\n"
		"  trustpoint set TP [--revocation LIST] [--ocsp-url URL] [--renew-at PERCENT|off]\n"
		"      [--renew-regenerate|--renew-same-key]   (also on trustpoint create)\n"
		"  cert check FILE --store STORE [--untrusted FILE]   good | revoked (reason) | unknown\n"
		"  cert expiring [--within DAYS | --all]  certificates keyhold holds, soonest first\n"
		"  cert monitor                          run the expiry monitor and renewal now (admin)\n"
		"\n"
		"The socket defaults to $KEYHOLD_SOCKET, then %s.\n"
		"Errors: exit status 1 and 'error: CODE: message' on stderr (JSON with --json).\n",
		KH_DEFAULT_SOCKET);
}

int cli_fail(struct cli *cli, enum kh_err code, const char *msg)
{
	const char *name = kh_err_name(code != KH_OK ? code : KH_E_UNKNOWN);

	if (msg == NULL || msg[0] == '\0')
		msg = name;
	if (cli->json) {
		struct cli_json *j;
		FILE *outs[2] = { stdout, stderr };
		int i;

		/* The error document replaces whatever was being written. */
		cli_json_discard(cli->j);
		cli->j = NULL;
		for (i = 0; i < 2; i++) {
			j = cli_json_new(outs[i]);
			cli_json_obj(j, NULL);
			cli_json_obj(j, "error");
			cli_json_str(j, "code", name);
			cli_json_str(j, "message", msg);
			cli_json_end_obj(j);
			cli_json_end_obj(j);
			cli_json_free(j);
		}
	} else {
		fprintf(stderr, "error: %s: %s\n", name, msg);
	}
	return CLI_EXIT_ERR;
}

/* Messages are cut where the library cuts its own. */
#define CLI_MSG_MAX 512

int cli_failf(struct cli *cli, enum kh_err code, const char *fmt, ...)
{
	char msg[CLI_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return cli_fail(cli, code, msg);
}

int cli_usage(struct cli *cli, const char *fmt, ...)
{
	char msg[CLI_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cli_fail(cli, KH_E_INVALID_ARGUMENT, msg);
	if (!cli->json)
		fprintf(stderr, "run 'keyhold --help' for usage\n");
	return CLI_EXIT_USAGE;
}

/* The options of the global flags; KH_OK or the setter's error. */
static enum kh_err cli_conn_opts(const struct cli_conn *g, kh_client_opts **out)
{
	kh_client_opts *o = NULL;
	enum kh_err r;

	CLI_TRY(kh_client_opts_new(&o));
	/* --connect wins over the socket, as the library does. */
	if (g->connect != NULL)
		CLI_TRY(kh_client_opts_set_tls(o, g->connect, g->tls_ca, g->tls_cert, g->tls_key));
	else if (g->socket != NULL)
		CLI_TRY(kh_client_opts_set_socket(o, g->socket));
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
	kh_client_opts *o = NULL;
	kh_client *c = NULL;
	enum kh_err r;
	int rc = 0;

	if (cli->c != NULL)
		return 0;
	r = cli_conn_opts(&cli->opts, &o);
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

/* ---- arguments ---- */

int cli_args_init(struct cli_args *a, int argc, char **argv)
{
	a->argc = argc;
	a->argv = argv;
	a->used = calloc((size_t)argc + 1, sizeof(*a->used));
	return a->used != NULL ? 0 : -1;
}

void cli_args_free(struct cli_args *a)
{
	free(a->used);
	a->used = NULL;
}

const char *cli_opt(struct cli_args *a, const char *name)
{
	size_t nl = strlen(name);
	int i;

	for (i = 0; i < a->argc; i++) {
		if (a->used[i])
			continue;
		if (strcmp(a->argv[i], name) == 0 && i + 1 < a->argc && !a->used[i + 1]) {
			a->used[i] = a->used[i + 1] = true;
			return a->argv[i + 1];
		}
		if (strncmp(a->argv[i], name, nl) == 0 && a->argv[i][nl] == '=') {
			a->used[i] = true;
			return a->argv[i] + nl + 1;
		}
	}
	return NULL;
}

bool cli_opt_missing_value(struct cli_args *a, const char *name)
{
	int i;

	for (i = 0; i < a->argc; i++)
		if (!a->used[i] && strcmp(a->argv[i], name) == 0)
			return true;
	return false;
}

bool cli_flag(struct cli_args *a, const char *name)
{
	int i;

	for (i = 0; i < a->argc; i++) {
		if (!a->used[i] && strcmp(a->argv[i], name) == 0) {
			a->used[i] = true;
			return true;
		}
	}
	return false;
}

const char *cli_pos(struct cli_args *a)
{
	int i;

	for (i = 0; i < a->argc; i++) {
		if (a->used[i])
			continue;
		if (strncmp(a->argv[i], "--", 2) == 0 && a->argv[i][2] != '\0')
			return NULL; /* options come after positionals are taken */
		a->used[i] = true;
		return a->argv[i];
	}
	return NULL;
}

int cli_args_done(struct cli *cli, struct cli_args *a)
{
	int i;

	for (i = 0; i < a->argc; i++) {
		if (a->used[i])
			continue;
		if (strncmp(a->argv[i], "--", 2) == 0)
			return cli_usage(cli, "unknown option or missing value: %s", a->argv[i]);
		return cli_usage(cli, "unexpected argument: %s", a->argv[i]);
	}
	return 0;
}

/* ---- main ---- */

struct cli_cmd {
	const char *noun;
	int (*fn)(struct cli *cli, struct cli_args *a);
};

static const struct cli_cmd cli_cmds[] = {
	{ "status", cli_cmd_status },
	{ "capabilities", cli_cmd_capabilities },
	{ "key", cli_cmd_key },
	{ "sign", cli_cmd_sign },
	{ "selftest", cli_cmd_selftest },
	{ "csr", cli_cmd_csr },
	{ "trustpoint", cli_cmd_trustpoint },
	{ "truststore", cli_cmd_truststore },
	{ "crl", cli_cmd_crl },
	{ "audit", cli_cmd_audit },
	{ "policy", cli_cmd_policy },
	{ "cert", cli_cmd_cert },
};

int main(int argc, char **argv)
{
	struct cli cli;
	struct cli_args a;
	const char *env;
	int i, rc;
	size_t k;

	memset(&cli, 0, sizeof(cli));
	env = getenv("KEYHOLD_SOCKET");
	cli.opts.socket = env != NULL && env[0] != '\0' ? env : KH_DEFAULT_SOCKET;
	/* Global options come before the noun. */
	for (i = 1; i < argc; i++) {
		const char *o = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(o, "--json") == 0) {
			cli.json = true;
		} else if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
			cli_help(stdout);
			return 0;
		} else if (strcmp(o, "--version") == 0) {
			printf("keyhold %s\n", KEYHOLD_VERSION);
			return 0;
		} else if (strcmp(o, "--socket") == 0 && v != NULL) {
			cli.opts.socket = v;
			i++;
		} else if (strcmp(o, "--connect") == 0 && v != NULL) {
			cli.opts.connect = v;
			i++;
		} else if (strcmp(o, "--tls-cert") == 0 && v != NULL) {
			cli.opts.tls_cert = v;
			i++;
		} else if (strcmp(o, "--tls-key") == 0 && v != NULL) {
			cli.opts.tls_key = v;
			i++;
		} else if (strcmp(o, "--tls-ca") == 0 && v != NULL) {
			cli.opts.tls_ca = v;
			i++;
		} else if (strcmp(o, "--tls-server-name") == 0 && v != NULL) {
			cli.opts.tls_server_name = v;
			i++;
		} else if (strcmp(o, "--timeout") == 0 && v != NULL) {
			char *end = NULL;
			unsigned long s = strtoul(v, &end, 10);

			if (*v == '\0' || *end != '\0' || s == 0 || s > 86400)
				return cli_usage(&cli, "--timeout takes seconds from 1 to 86400");
			/* Both the deadline sent and the client's wait. */
			cli.opts.timeout_ms = (uint32_t)(s * 1000);
			i++;
		} else if (strncmp(o, "--", 2) == 0) {
			return cli_usage(&cli, "unknown global option %s", o);
		} else {
			break;
		}
	}
	if (i >= argc) {
		cli_help(stderr);
		return CLI_EXIT_USAGE;
	}
	for (k = 0; k < sizeof(cli_cmds) / sizeof(cli_cmds[0]); k++)
		if (strcmp(argv[i], cli_cmds[k].noun) == 0)
			break;
	if (k == sizeof(cli_cmds) / sizeof(cli_cmds[0]))
		return cli_usage(&cli, "unknown command '%s'", argv[i]);
	if (cli_args_init(&a, argc - i - 1, argv + i + 1) != 0)
		return cli_failf(&cli, KH_E_RESOURCE_EXHAUSTED, "out of memory");
	if (cli.json)
		cli.j = cli_json_new(stdout);
	rc = cli_cmds[k].fn(&cli, &a);
	cli_args_free(&a);
	cli_json_free(cli.j);
	kh_client_free(cli.c);
	return rc;
}
