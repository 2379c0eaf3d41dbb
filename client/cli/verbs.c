/* verbs.c: every command of `keyhold` in one table: its synopsis, what it
 * does and the options getopt_long accepts for it. Help, `keyhold help
 * VERB`, `VERB --help` and the option parser (args.c) all read it. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* opts: the verb's long options, comma separated; "name=" takes a value,
 * "name=*" takes one and may be repeated. */
static const struct cli_verb cli_verbs[] = {
	{ "status", NULL, cli_cmd_status, "status",
	  "Service version and state, token, FIPS mode, self-tests and counters. Exits 0 only when the\n"
	  "service is OPERATIONAL and its token is present (5 otherwise).",
	  "" },
	{ "health", NULL, cli_cmd_health, "health",
	  "For probes: one line, exit 0 when the service is OPERATIONAL and its token is present, 5 when\n"
	  "it is not or cannot be reached.",
	  "" },
	{ "selftest", NULL, cli_cmd_selftest, "selftest", "Rerun the FIPS power-up self-tests now (admin).", "" },
	{ "capabilities", NULL, cli_cmd_capabilities, "capabilities", "Key types and mechanisms of the token.", "" },
	{ "key", "generate", cli_cmd_key, "key generate NAME --type TYPE",
	  "Generate a key in the token. TYPE: rsa2048|rsa3072|rsa4096|p256|p384|p521|ed25519.", "type=" },
	{ "key", "list", cli_cmd_key, "key list", "The keys this caller may see.", "" },
	{ "key", "show", cli_cmd_key, "key show NAME [--pem|--reference]",
	  "A key's details; --pem: its SubjectPublicKeyInfo as PEM; --reference: a KEYHOLD KEY file for\n"
	  "the OpenSSL provider.",
	  "pem,reference" },
	{ "key", "delete", cli_cmd_key, "key delete NAME --force", "Delete a key from the token.", "force" },
	{ "sign", NULL, cli_cmd_sign,
	  "sign NAME --in FILE [--digest sha256|sha384|sha512] [--pss] [--prehashed] [--out FILE]",
	  "Sign FILE (\"-\": stdin) with key NAME; --prehashed: FILE is the digest.", "in=,out=,digest=,pss,prehashed" },
	{ "csr", NULL, cli_cmd_csr,
	  "csr NAME --subject DN [--san LIST] [--eku LIST] [--digest D] [--out FILE] [--challenge-password-file FILE]",
	  "A PKCS#10 certificate request signed by key NAME.",
	  "subject=,san=,eku=,digest=,out=,challenge-password-file=" },
	{ "trustpoint", "create", cli_cmd_trustpoint,
	  "trustpoint create TP (--key NAME | --generate TYPE) --subject DN [--fqdn F|none] [--ip-san] [--san LIST]\n"
	  "      [--eku LIST] [--enrollment self|terminal|url|acme] [--url URL] [--challenge-password-file F]\n"
	  "      [--acme-directory URL [--acme-contact mailto:ADDR] [--acme-ca-bundle FILE]\n"
	  "       [--eab-kid K --eab-hmac-file F] [--acme-webroot DIR]]\n"
	  "      [--revocation LIST] [--ocsp-url URL] [--digest D] [--days N]\n"
	  "      [--renew-at PERCENT|off] [--renew-regenerate|--renew-same-key]",
	  "A trustpoint: a key, the subject to enroll it with and how to check revocation. LIST for\n"
	  "--revocation: crl, ocsp, none in the order to try, separated by commas or spaces (\"crl ocsp none\").\n"
	  "--san types: DNS, IP, email, URI, xmppAddr, otherName:OID;UTF8:value. --fqdn none: no FQDN SAN;\n"
	  "--ip-san: a CN that is an IP address also becomes an IP SAN.\n"
	  "--enrollment url: SCEP against --url (an RSA key generated for it; challenge from a file).\n"
	  "--enrollment acme: `enroll` gets the certificate from the ACME (RFC 8555) server at the https://\n"
	  "--acme-directory, its TLS verified with the PEM CAs of --acme-ca-bundle (default: the system's);\n"
	  "--eab-kid/--eab-hmac-file: the external account binding the CA gave (MAC key base64url in F);\n"
	  "--acme-webroot: http-01 answered by a web server serving DIR (keyholdd writes the file there).",
	  "key=,generate=,subject=,fqdn=,ip-san,san=,eku=,enrollment=,revocation=,ocsp-url=,digest=,days=,renew-at=,url=,"
	  "challenge-password-file=,renew-regenerate,renew-same-key,acme-directory=,acme-contact=,acme-ca-bundle=,eab-kid=,"
	  "eab-hmac-file=,acme-webroot=" },
	{ "trustpoint", "list", cli_cmd_trustpoint, "trustpoint list", "All trustpoints.", "" },
	{ "trustpoint", "show", cli_cmd_trustpoint, "trustpoint show TP [--csr]",
	  "A trustpoint; --csr: its pending request as PEM.", "csr" },
	{ "trustpoint", "delete", cli_cmd_trustpoint, "trustpoint delete TP [--keep-key | --force]",
	  "Delete a trustpoint and, unless --keep-key, the keys keyhold generated for it (that takes --force).",
	  "keep-key,force" },
	{ "trustpoint", "authenticate", cli_cmd_trustpoint,
	  "trustpoint authenticate TP [--ca FILE] (--yes | --fingerprint SHA256HEX)",
	  "Install the issuing CA of a trustpoint after checking its fingerprint; without --ca an\n"
	  "enrollment url trustpoint fetches it from its SCEP server (GetCACert).", "ca=,fingerprint=,yes" },
	{ "trustpoint", "enroll", cli_cmd_trustpoint, "trustpoint enroll TP [--out FILE]",
	  "self enrollment: a self-signed certificate; terminal: the PEM CSR to take to the CA;\n"
	  "url: the certificate from the SCEP server (PKCSReq).", "out=" },
	{ "trustpoint", "import", cli_cmd_trustpoint, "trustpoint import TP --cert FILE",
	  "Import the certificate issued for TP (PEM, DER or PKCS#7 with chain).", "cert=" },
	{ "trustpoint", "export", cli_cmd_trustpoint,
	  "trustpoint export TP [--chain] [--format pem|der|pkcs7] [--out FILE]", "The certificate of TP.",
	  "chain,format=,out=" },
	{ "trustpoint", "regenerate", cli_cmd_trustpoint, "trustpoint regenerate TP [--type TYPE] [--out FILE] [--force]",
	  "A new key and CSR for TP; the old key stays in use until the new certificate is imported.\n"
	  "--force: a self-enrolled trustpoint whose CA-signed certificate would be replaced at once.",
	  "type=,out=,force" },
	{ "trustpoint", "set", cli_cmd_trustpoint,
	  "trustpoint set TP [--revocation LIST] [--ocsp-url URL] [--renew-at PERCENT|off]\n"
	  "      [--renew-regenerate|--renew-same-key] [--subject DN] [--san LIST] [--eku LIST]\n"
	  "      [--fqdn F|none] [--ip-san] [--digest D] [--enrollment self|terminal] [--days N]",
	  "Change revocation checking or automatic renewal of TP, or what its next enrollment asks for\n"
	  "(the current certificate and a pending CSR stay as they are).",
	  "revocation=,ocsp-url=,renew-at=,renew-regenerate,renew-same-key,subject=,san=,eku=,fqdn=,ip-san,digest=,"
	  "enrollment=,days=" },
	{ "trustpoint", "discard-csr", cli_cmd_trustpoint, "trustpoint discard-csr TP",
	  "Drop TP's pending CSR (a rollover key stays; the next enroll makes a new CSR).", "" },
	{ "trustpoint", "acme-rollover", cli_cmd_trustpoint, "trustpoint acme-rollover TP",
	  "ACME account key rollover (RFC 8555 keyChange): a new token key TP.acme.N signs the account's\n"
	  "requests from now on; the old key is deleted.", "" },
	{ "trustpoint", "acme-deactivate", cli_cmd_trustpoint, "trustpoint acme-deactivate TP --yes",
	  "Deactivate TP's ACME account on the server (cannot be undone); delete the account key to let\n"
	  "the next enroll register a new one.", "yes" },
	{ "trustpoint", "acme-eab", cli_cmd_trustpoint, "trustpoint acme-eab TP --eab-kid K --eab-hmac-file F",
	  "The external account binding (kid, MAC key base64url in F) TP's next ACME account registration\n"
	  "sends (after a refused one, or for a server that forgot the account).", "eab-kid=,eab-hmac-file=" },
	{ "truststore", "create", cli_cmd_truststore, "truststore create STORE",
	  "An empty trust store, to be given its settings before its first certificate.", "" },
	{ "truststore", "add", cli_cmd_truststore, "truststore add STORE FILE...",
	  "Add CA certificates (PEM bundles of any size, DER or PKCS#7; up to 4096 per store) to a trust\n"
	  "store, all or nothing; creates the store.",
	  "" },
	{ "truststore", "list", cli_cmd_truststore, "truststore list [STORE]", "Trust stores or one store's certificates.",
	  "" },
	{ "truststore", "show", cli_cmd_truststore, "truststore show STORE FINGERPRINT [--pem]",
	  "One certificate of a trust store decoded: subject, issuer, serial, validity, SANs, key usage, EKU,\n"
	  "basic constraints, policies, fingerprints.",
	  "pem" },
	{ "truststore", "export", cli_cmd_truststore,
	  "truststore export STORE [--format pem|pkcs7|der] [--fingerprint FP] [--out FILE]",
	  "A trust store's certificates in the order they were added (der: one certificate, by --fingerprint).",
	  "format=,fingerprint=,out=" },
	{ "truststore", "remove", cli_cmd_truststore, "truststore remove STORE FINGERPRINT",
	  "Remove a certificate from a trust store (the store and its settings stay).", "" },
	{ "truststore", "delete", cli_cmd_truststore, "truststore delete STORE [--force]",
	  "Delete a trust store; --force when it still holds certificates or CRLs.", "force" },
	{ "truststore", "verify", cli_cmd_truststore,
	  "truststore verify STORE CERTFILE [--untrusted FILE] [--at RFC3339] [--host NAME|--ip ADDR]\n"
	  "      [--purpose serverAuth|clientAuth] [--crl FILE]... [--policy OID]...\n"
	  "      [--require-explicit-policy] [--inhibit-policy-mapping] [--inhibit-any-policy]",
	  "Verify a certificate against a trust store (RFC 5280 path validation with certificate policies,\n"
	  "name constraints, indirect and delta CRLs and the store's key strength floor); prints the valid\n"
	  "policy set. --policy replaces the store's initial policy set; the three flags add to its settings.",
	  "untrusted=,at=,host=,ip=,purpose=,crl=*,policy=*,require-explicit-policy,inhibit-policy-mapping,"
	  "inhibit-any-policy" },
	{ "truststore", "set", cli_cmd_truststore,
	  "truststore set STORE [--revocation LIST] [--ocsp-url URL] [--crl-url URL|none]\n"
	  "      [--ocsp-responder-cert FILE|none] [--policy OID]...\n"
	  "      [--require-explicit-policy on|off] [--inhibit-policy-mapping on|off] [--inhibit-any-policy on|off]\n"
	  "      [--min-rsa-bits N] [--min-ec-bits N] [--allow-sha1 on|off]",
	  "Revocation checking (LIST: crl, ocsp, none; commas or spaces) and validation settings of a trust\n"
	  "store: initial policy set, policy flags, key strength floor (docs/PKI.md). --crl-url: a CRL the\n"
	  "revocation scheduler fetches into the store every [revocation] recheck_interval. --ocsp-responder-cert:\n"
	  "a trusted third-party OCSP responder (its responses are accepted though the CA did not issue it).",
	  "revocation=,ocsp-url=,crl-url=,ocsp-responder-cert=,policy=*,require-explicit-policy=,inhibit-policy-mapping=,inhibit-any-policy=,"
	  "min-rsa-bits=,min-ec-bits=,allow-sha1=" },
	{ "crl", "import", cli_cmd_crl, "crl import STORE FILE",
	  "A PEM or DER CRL (full or delta) for a trust store; warns when it is past its nextUpdate.", "" },
	{ "crl", "list", cli_cmd_crl, "crl list [STORE]",
	  "The CRLs trust stores keep: issuer, number, this and next update, entries, source, last fetch.", "" },
	{ "crl", "remove", cli_cmd_crl, "crl remove STORE ISSUER|FINGERPRINT --force",
	  "Remove a CRL from a trust store (--force: the store then accepts what it revoked).", "force" },
	{ "audit", "show", cli_cmd_audit, "audit show [--since RFC3339] [--limit N]", "The audit log (auditor, admin).",
	  "since=,limit=" },
	{ "audit", "verify", cli_cmd_audit, "audit verify [--cluster]",
	  "Check the audit log's hash chain and checkpoint signatures (--cluster: also every node's checkpoints "
	  "recorded in the state database).",
	  "cluster" },
	{ "policy", "grant", cli_cmd_policy, "policy grant KEY PRINCIPAL [--digests sha256,...] [--padding pkcs1,pss]",
	  "Let PRINCIPAL sign with KEY (admin).", "digests=,padding=" },
	{ "policy", "revoke", cli_cmd_policy, "policy revoke KEY PRINCIPAL", "Withdraw a grant (admin).", "" },
	{ "policy", "list", cli_cmd_policy, "policy list [KEY]", "Per-key grants (admin).", "" },
	{ "cert", "check", cli_cmd_cert, "cert check FILE --store STORE [--untrusted FILE]",
	  "Revocation status of a certificate: good | revoked (reason) | unknown.", "store=,untrusted=" },
	{ "cert", "expiring", cli_cmd_cert, "cert expiring [--within DAYS | --all]",
	  "Certificates keyhold holds, soonest expiry first.", "within=,all" },
	{ "cert", "monitor", cli_cmd_cert, "cert monitor", "Run the expiry monitor and renewal now (admin).", "" },
};

#define CLI_NVERBS (sizeof(cli_verbs) / sizeof(cli_verbs[0]))

const struct cli_verb *cli_verb_at(size_t i)
{
	return i < CLI_NVERBS ? &cli_verbs[i] : NULL;
}

bool cli_noun_known(const char *noun)
{
	size_t i;

	for (i = 0; i < CLI_NVERBS; i++)
		if (strcmp(cli_verbs[i].noun, noun) == 0)
			return true;
	return false;
}

bool cli_noun_has_verbs(const char *noun)
{
	size_t i;

	for (i = 0; i < CLI_NVERBS; i++)
		if (strcmp(cli_verbs[i].noun, noun) == 0)
			return cli_verbs[i].verb != NULL;
	return false;
}

const struct cli_verb *cli_verb_find(const char *noun, const char *verb)
{
	size_t i;

	for (i = 0; i < CLI_NVERBS; i++) {
		const struct cli_verb *v = &cli_verbs[i];

		if (strcmp(v->noun, noun) != 0)
			continue;
		if (v->verb == NULL || (verb != NULL && strcmp(v->verb, verb) == 0))
			return v;
	}
	return NULL;
}

/* "generate, list, show or delete" into buf. */
const char *cli_noun_verbs(const char *noun, char *buf, size_t n)
{
	size_t i, k = 0, total = 0, len = 0;

	for (i = 0; i < CLI_NVERBS; i++)
		if (strcmp(cli_verbs[i].noun, noun) == 0 && cli_verbs[i].verb != NULL)
			total++;
	buf[0] = '\0';
	for (i = 0; i < CLI_NVERBS && len < n; i++) {
		const struct cli_verb *v = &cli_verbs[i];
		int w;

		if (strcmp(v->noun, noun) != 0 || v->verb == NULL)
			continue;
		k++;
		w = snprintf(buf + len, n - len, "%s%s", k == 1 ? "" : k == total ? " or " : ", ", v->verb);
		if (w < 0)
			break;
		len += (size_t)w;
	}
	return buf;
}

void cli_verb_usage(FILE *f, const struct cli_verb *v)
{
	fprintf(f, "usage: keyhold [GLOBAL OPTIONS] %s\n\n%s\n\n", v->synopsis, v->help);
	fprintf(f, "GLOBAL OPTIONS (anywhere on the line): --socket PATH, --endpoints LIST, --connect HOST:PORT,\n"
		   "--tls-cert FILE, --tls-key FILE, --tls-ca FILE, --tls-server-name NAME, --timeout SECONDS,\n"
		   "--json, --help.\n"
		   "Exit status: see 'keyhold --help'.\n");
}

void cli_noun_usage(FILE *f, const char *noun)
{
	size_t i;

	fprintf(f, "usage:\n");
	for (i = 0; i < CLI_NVERBS; i++)
		if (strcmp(cli_verbs[i].noun, noun) == 0)
			fprintf(f, "  keyhold %s\n", cli_verbs[i].synopsis);
	fprintf(f, "\n'keyhold help %s VERB' explains one.\n", noun);
}

void cli_help(FILE *f)
{
	size_t i;

	fprintf(f, "usage: keyhold [GLOBAL OPTIONS] COMMAND [ARGUMENTS] [OPTIONS]\n"
		   "       keyhold help [COMMAND]    keyhold COMMAND --help    keyhold --version\n"
		   "\n"
		   "GLOBAL OPTIONS (accepted anywhere on the line; --opt=value works too; -- ends options):\n"
		   "  --socket PATH            the service's socket (default $KEYHOLD_SOCKET, then %s)\n"
		   "  --endpoints LIST         several nodes: unix:PATH,tls:HOST:PORT,... (default $KEYHOLD_ENDPOINTS\n"
		   "                           when --socket is not given; docs/CLUSTER.md); reads and signing move\n"
		   "                           to the next node when one is down\n"
		   "  --connect HOST:PORT      a TLS listener instead, with --tls-cert F --tls-key F --tls-ca F\n"
		   "                           [--tls-server-name NAME]\n"
		   "  --timeout SECONDS        deadline of each request (1 to 86400)\n"
		   "  --json                   one JSON document on stdout (errors: {\"error\":{...}} on both)\n"
		   "  -h, --help               this text, or a command's usage after the command\n"
		   "\n"
		   "COMMANDS:\n",
		KH_DEFAULT_SOCKET);
	for (i = 0; i < CLI_NVERBS; i++)
		fprintf(f, "  keyhold %s\n", cli_verbs[i].synopsis);
	fprintf(f, "\nEXIT STATUS (errors print 'error: CODE: message' on stderr):\n");
	cli_exit_table(f);
}
