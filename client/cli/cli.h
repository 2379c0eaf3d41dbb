/* cli.h: the `keyhold` command's shared pieces: global options, output
 * (human or one JSON document), errors, file helpers. Uses only keyhold.h. */
#ifndef CLI_H
#define CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <keyhold/keyhold.h>

#include "kh_text.h"

#if defined(__GNUC__) || defined(__clang__)
#define CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CLI_PRINTF(f, a)
#endif

/* The `goto out` idiom of the tree (STYLE.md), for the CLI's own
 * fallible helpers: both assume `enum kh_err r` and a label `out:`. */
#define CLI_TRY(expr) do { if ((r = (expr)) != KH_OK) goto out; } while (0)
#define CLI_ENSURE(cond, err) do { if (!(cond)) { r = (err); goto out; } } while (0)

/* Limits the service holds requests to, checked here first so that the
 * CLI explains them before anything is sent. */
#define CLI_NAME_MAX KH_NAME_MAX /* key, trustpoint and trust store names */
#define CLI_DN_MAX 1024          /* a distinguished name as text */
#define CLI_SAN_MAX 2048
#define CLI_EKU_MAX 512
#define CLI_FQDN_MAX 253         /* RFC 1035 */
#define CLI_REVOCATION_MAX 64
#define CLI_CHALLENGE_MAX 255    /* PKCS#9 challengePassword */
#define CLI_FP_IN_MAX 128        /* a fingerprint as typed: hex with colons */
#define CLI_HOST_MAX 253
#define CLI_IP_MAX 64
#define CLI_URL_MAX KH_PKI_URL_MAX
#define CLI_PRINCIPAL_MAX KH_PRINCIPAL_MAX
#define CLI_PKI_FILES_MAX 64     /* CRLs in one verify (KH_PKI_FILES_MAX) */
#define CLI_TS_FILES_MAX 1024    /* files in one TruststoreAdd (KH_TS_FILES_MAX) */
/* Certificate and CRL inputs: one request must fit the service's 1 MiB
 * frame cap with room for the envelope. */
#define CLI_PKI_BLOB_MAX ((1u << 20) - 8192)

/* A file's contents (owned). */
struct cli_bytes {
	uint8_t *data;
	size_t len;
};

/* Where to connect (global options; borrowed from argv). */
struct cli_conn {
	const char *socket;     /* --socket, else $KEYHOLD_SOCKET or the default */
	bool socket_given;      /* --socket was on the line */
	const char *endpoints;  /* --endpoints LIST */
	const char *connect;
	const char *tls_cert;
	const char *tls_key;
	const char *tls_ca;
	const char *tls_server_name;
	uint32_t timeout_ms;
};

/* True when the connection options name several nodes (--endpoints, or
 * $KEYHOLD_ENDPOINTS without --socket or --connect). */
bool cli_uses_endpoints(const struct cli_conn *g);

struct cli {
	bool json;
	bool help;              /* --help / -h given */
	bool version;
	struct cli_conn opts;
	kh_client *c;
	struct cli_json *j;     /* the JSON document being written (--json) */
};

/* Exit status by class of error (one table: cli_exit_codes in main.c;
 * docs/CLI.md). */
#define CLI_EXIT_OK 0
#define CLI_EXIT_ERR 1          /* UNKNOWN, INTERNAL, DATA_LOSS, ABORTED, CANCELLED, UNIMPLEMENTED */
#define CLI_EXIT_USAGE 2        /* the command line itself */
#define CLI_EXIT_NOT_FOUND 3    /* NOT_FOUND */
#define CLI_EXIT_DENIED 4       /* PERMISSION_DENIED, UNAUTHENTICATED */
#define CLI_EXIT_UNAVAILABLE 5  /* UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED; status/health unhealthy */
#define CLI_EXIT_INVALID 6      /* INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE */
#define CLI_EXIT_EXISTS 7       /* ALREADY_EXISTS */
/* The exit status of an error code. */
int cli_exit_code(enum kh_err code);

/* Connects on first use. */
int cli_connect(struct cli *cli);
/* Prints the error per the CLI contract and returns its exit status
 * (cli_exit_code; code KH_OK reads as UNKNOWN; an empty msg as the
 * code's name). */
int cli_fail(struct cli *cli, enum kh_err code, const char *msg);
int cli_failf(struct cli *cli, enum kh_err code, const char *fmt, ...) CLI_PRINTF(3, 4);
int cli_usage(struct cli *cli, const char *fmt, ...) CLI_PRINTF(2, 3);

/* ---- requests (rpc.c) ---- */
/* A new request of RPC method in *out; 0, or the error printed. */
int cli_request(struct cli *cli, const char *method, kh_msg **out);
/* Sends q (taken: freed here) unless r, the result of filling it, is an
 * error; waits for the answer. 0 with *resp the response (the caller
 * frees it), or the error printed and CLI_EXIT_ERR. */
int cli_call(struct cli *cli, kh_msg *q, enum kh_err r, kh_msg **resp);
/* The nested message field of m (borrowed), or NULL when it is unset;
 * the getters read NULL as an empty message. */
kh_msg *cli_sub(const kh_msg *m, const char *field);
kh_msg *cli_item(const kh_msg *m, const char *field, size_t i);

/* ---- names and values (util.c) ---- */
/* "rsa2048" etc. from a KeyType value name; NULL for unspecified and
 * unknown values. */
const char *cli_key_type_name(const char *enum_name);
/* The KeyType value name of "rsa2048" etc.; NULL if none. */
const char *cli_key_type_value(const char *name);
/* "sha256" etc. from a Digest value name ("default" for DIGEST_DEFAULT);
 * NULL when unknown. */
const char *cli_digest_name(const char *enum_name);
/* The Digest value name of "sha256" etc.; NULL if none. */
const char *cli_digest_value(const char *name);
/* "self" / "terminal"; NULL for anything else. */
const char *cli_enrollment_name(const char *enum_name);
/* "not-checked", "good", "revoked", "unknown". */
const char *cli_rev_status_name(const char *enum_name);
/* Unix seconds as "2030-01-02T03:04:05Z" ("-" for 0). */
const char *cli_time_str(int64_t t, char *buf, size_t n);

/* Reads a whole file (or "-" for stdin) of at most max bytes. */
int cli_read_file(struct cli *cli, const char *path, size_t max, uint8_t **out, size_t *len);
/* Writes data to path ("-" or NULL: stdout). */
int cli_write_file(struct cli *cli, const char *path, const uint8_t *data, size_t len);
/* The result of an export (trustpoint or trust store): with --json one
 * document {what: name, format, [count from counted], pem|der_hex, [out]};
 * the bytes go to outp, or to stdout without --json. */
int cli_export_out(struct cli *cli, const char *what, const char *name, const char *fname, const kh_msg *counted,
		   const uint8_t *data, size_t len, const char *outp);

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
/* s[0..n) as a JSON string (quotes included); invalid UTF-8 bytes become
 * U+FFFD. */
void cli_json_escape(FILE *f, const char *s, size_t n);

/* ---- the command line (verbs.c, args.c) ---- */
struct cli_args;
/* One command: `keyhold NOUN [VERB] ...`. */
struct cli_verb {
	const char *noun;
	const char *verb;      /* NULL: the noun is the whole command */
	int (*fn)(struct cli *cli, struct cli_args *a);
	const char *synopsis;  /* after "keyhold " */
	const char *help;      /* what it does */
	const char *opts;      /* "type=,pem,crl=*": "=" takes a value, "=*" repeats */
};
const struct cli_verb *cli_verb_at(size_t i); /* NULL past the end */
bool cli_noun_known(const char *noun);
bool cli_noun_has_verbs(const char *noun);
/* The command of noun (and verb, for nouns that have verbs); NULL if none. */
const struct cli_verb *cli_verb_find(const char *noun, const char *verb);
/* "generate, list, show or delete" in buf. */
const char *cli_noun_verbs(const char *noun, char *buf, size_t n);
void cli_help(FILE *f);
void cli_verb_usage(FILE *f, const struct cli_verb *v);
void cli_noun_usage(FILE *f, const char *noun);
/* The exit status table as `keyhold --help` prints it. */
void cli_exit_table(FILE *f);
/* Whether arg is a global option whose value is the next argument. */
bool cli_global_takes_value(const char *arg);

#define CLI_OPTDEFS_MAX 32
#define CLI_OPTVALS_MAX 128
struct cli_optdef {
	char name[32];
	bool value;
	bool repeat;
};
/* A verb's parsed line: option values by name, positionals in order
 * (for nouns with verbs, the verb is the first positional). */
struct cli_args {
	const struct cli_verb *verb;
	struct cli_optdef defs[CLI_OPTDEFS_MAX];
	size_t ndefs;
	struct {
		size_t def;
		const char *val; /* "" for a flag */
		bool used;
	} vals[CLI_OPTVALS_MAX];
	size_t nvals;
	char **pos;
	int npos, next;
};
/* Parses argv (argv[0] a program name; noun and verb removed) with
 * getopt_long over the global options and v's. 0, or the usage error
 * printed and its exit status. Sets cli->help for --help / -h. */
int cli_args_parse(struct cli *cli, const struct cli_verb *v, int argc, char **argv, struct cli_args *a);
/* The next value of --name (the verb must declare it), or NULL. */
const char *cli_opt(struct cli_args *a, const char *name);
bool cli_flag(struct cli_args *a, const char *name);
/* The next positional argument, or NULL. */
const char *cli_pos(struct cli_args *a);
/* Non-zero (after printing usage) when anything was left unused. */
int cli_args_done(struct cli *cli, struct cli_args *a);

/* keys.c: the self-test results (field of m: SelfTestResult) of status
 * and selftest. */
void cli_selftests_json(struct cli_json *j, const kh_msg *m, const char *field);
void cli_selftests_print(const kh_msg *m, const char *field);

/* Commands. */
int cli_cmd_status(struct cli *cli, struct cli_args *a);
int cli_cmd_health(struct cli *cli, struct cli_args *a);
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
void cli_tp_out(struct cli *cli, const kh_msg *t);
/* One trustpoint as a JSON object (member key, or an element when NULL). */
void cli_tp_json(struct cli_json *j, const char *key, const kh_msg *t);
/* cert.c: revocation, expiry, renewal (docs/REVOCATION.md) */
int cli_cmd_cert(struct cli *cli, struct cli_args *a);
int cli_tp_set(struct cli *cli, struct cli_args *a);
int cli_ts_set(struct cli *cli, struct cli_args *a);
/* tpedit.c */
int cli_tp_discard_csr(struct cli *cli, struct cli_args *a);
/* acme.c: trustpoint acme-rollover (deactivate false), acme-deactivate;
 * acme-eab. */
int cli_tp_acme_account(struct cli *cli, struct cli_args *a, bool deactivate);
int cli_tp_acme_eab(struct cli *cli, struct cli_args *a);
/* pki.c: a secret of 1..CLI_CHALLENGE_MAX characters from a file (never
 * argv), one trailing newline dropped; what names it in errors. */
int cli_read_secret(struct cli *cli, const char *path, char out[CLI_CHALLENGE_MAX + 1], const char *what);
/* tspool.c: a trust store as a trustpool */
int cli_ts_create(struct cli *cli, struct cli_args *a);
int cli_ts_delete(struct cli *cli, struct cli_args *a);
int cli_ts_export(struct cli *cli, struct cli_args *a);
int cli_ts_show(struct cli *cli, struct cli_args *a);
/* A ValidationSettings message (may be NULL: nothing printed) as a JSON
 * object under key, and as one line of text after prefix. */
void cli_validation_json(struct cli_json *j, const char *key, const kh_msg *v);
void cli_validation_text(const char *prefix, const kh_msg *v);
/* --renew-at PERCENT|off, --renew-regenerate, --renew-same-key. */
int cli_renew_opts(struct cli *cli, struct cli_args *a, bool *set, uint32_t *renew_at, bool *regenerate,
		   bool *mode_given);

#endif
