/* fuzz_acme_json.c: the ACME server's JSON documents (service/pki/
 * acme_json.c): byte 0 picks the parser (directory, order, authorization,
 * account, problem), the rest is the body. Whatever parses must hold only
 * what the flow relies on: https:// URLs, a base64url token, known
 * statuses, printable NUL-terminated text within its buffer. */
#include <stdlib.h>
#include <string.h>

#include "kh_err.h"
#include "pki/acme.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap), i;

	if (n >= cap)
		abort();
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			abort();
}

static void check_url(const char *u, bool required)
{
	check_text(u, ACME_URL_MAX + 1);
	if (u[0] == '\0' ? required : strncmp(u, "https://", 8) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kh_errbuf e = { 0 };
	struct acme_directory d;
	struct acme_order *o;
	struct acme_authz *a;
	struct acme_problem p;
	enum acme_status st;
	size_t i;

	if (size < 1)
		return 0;
	switch (data[0] % 5) {
	case 0:
		if (acme_parse_directory(data + 1, size - 1, &d, &e) == KH_OK) {
			check_url(d.new_nonce, true);
			check_url(d.new_account, true);
			check_url(d.new_order, true);
			check_url(d.key_change, false);
		}
		break;
	case 1:
		o = malloc(sizeof(*o));
		if (o != NULL && acme_parse_order(data + 1, size - 1, o, &e) == KH_OK) {
			if (o->status == ACME_ST_UNKNOWN || o->n_authz > ACME_AUTHZ_MAX)
				abort();
			check_url(o->finalize, true);
			check_url(o->certificate, false);
			for (i = 0; i < o->n_authz; i++)
				check_url(o->authz[i], true);
			check_text(o->error, sizeof(o->error));
		}
		free(o);
		break;
	case 2:
		a = malloc(sizeof(*a));
		if (a != NULL && acme_parse_authz(data + 1, size - 1, a, &e) == KH_OK) {
			if (a->status == ACME_ST_UNKNOWN)
				abort();
			check_text(a->ident, sizeof(a->ident));
			check_text(a->ident_type, sizeof(a->ident_type));
			if (a->has_http01) {
				check_url(a->chall_url, true);
				if (!acme_b64url_valid(a->token, ACME_TOKEN_MAX) || a->chall_status == ACME_ST_UNKNOWN)
					abort();
				check_text(a->error, sizeof(a->error));
			}
		}
		free(a);
		break;
	case 3:
		if (acme_parse_account(data + 1, size - 1, &st, &e) == KH_OK && st == ACME_ST_UNKNOWN)
			abort();
		break;
	default:
		if (acme_parse_problem(data + 1, size - 1, &p, &e) == KH_OK) {
			check_text(p.type, sizeof(p.type));
			check_text(p.detail, sizeof(p.detail));
		}
		break;
	}
	/* Every refusal says why. */
	if (e.code != KH_OK && e.msg[0] == '\0')
		abort();
	return 0;
}
