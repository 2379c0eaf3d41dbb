/* pkits_kh: the keyhold side of the PKITS run on one libkeyhold connection
 * (one process for the whole suite: under ASan a CLI process per test
 * would dominate the run). For each line of LIST it sends the
 * TruststoreVerify request `keyhold truststore verify` would send and
 * prints "ID<TAB>valid|invalid|error<TAB>reason".
 *
 *   pkits_kh SOCKET STORE LIST
 *
 * LIST lines: ID<TAB>DIR<TAB>SETTINGS, DIR holding leaf.pem, untrusted.pem
 * (may be empty) and crl-0.pem..., SETTINGS space-separated policy=OID,
 * explicit, inhibit_map, inhibit_any (pkits_expected.tsv's column). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <keyhold/keyhold.h>

#define PK_FILE_MAX (1u << 20)
#define PK_CRLS_MAX 64

/* The whole file into *buf (caller frees); 0, or -1 when missing/unreadable. */
static int pk_read(const char *path, uint8_t **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b = NULL;
	size_t n = 0;
	int ok;

	if (f == NULL)
		return -1;
	b = malloc(PK_FILE_MAX);
	ok = b != NULL && (n = fread(b, 1, PK_FILE_MAX, f)) < PK_FILE_MAX && !ferror(f);
	fclose(f);
	if (!ok) {
		free(b);
		return -1;
	}
	*buf = b;
	*len = n;
	return 0;
}

/* Adds DIR/name as bytes field (set, or appended when repeated). */
static enum kh_err pk_file(kh_msg *q, const char *dir, const char *name, const char *field, bool repeated,
			   bool *found)
{
	char path[4096];
	uint8_t *b = NULL;
	size_t n = 0;
	enum kh_err r = KH_OK;

	*found = false;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (pk_read(path, &b, &n) != 0)
		return KH_OK;
	*found = true;
	if (n > 0)
		r = repeated ? kh_msg_add_bytes(q, field, b, n) : kh_msg_set_bytes(q, field, b, n);
	free(b);
	return r;
}

static enum kh_err pk_fill(kh_msg *q, const char *store, const char *dir, char *settings)
{
	char name[32], *s, *next;
	bool found = true;
	enum kh_err r;
	int i;

	if ((r = kh_msg_set_str(q, "store", store)) != KH_OK)
		return r;
	if ((r = pk_file(q, dir, "leaf.pem", "cert", false, &found)) != KH_OK || !found)
		return r != KH_OK ? r : KH_E_NOT_FOUND;
	if ((r = pk_file(q, dir, "untrusted.pem", "untrusted", false, &found)) != KH_OK)
		return r;
	for (i = 0; i < PK_CRLS_MAX; i++) {
		snprintf(name, sizeof(name), "crl-%d.pem", i);
		if ((r = pk_file(q, dir, name, "crls", true, &found)) != KH_OK)
			return r;
		if (!found)
			break;
	}
	for (s = settings; s != NULL && *s != '\0'; s = next) {
		next = strchr(s, ' ');
		if (next != NULL)
			*next++ = '\0';
		if (strncmp(s, "policy=", 7) == 0)
			r = kh_msg_add_str(q, "policies", s + 7);
		else if (strcmp(s, "explicit") == 0)
			r = kh_msg_set_bool(q, "require_explicit_policy", true);
		else if (strcmp(s, "inhibit_map") == 0)
			r = kh_msg_set_bool(q, "inhibit_policy_mapping", true);
		else if (strcmp(s, "inhibit_any") == 0)
			r = kh_msg_set_bool(q, "inhibit_any_policy", true);
		else if (*s != '\0')
			r = KH_E_INVALID_ARGUMENT;
		if (r != KH_OK)
			return r;
	}
	return KH_OK;
}

int main(int argc, char **argv)
{
	kh_client *c = NULL;
	FILE *list;
	char line[8192];
	int bad = 0;

	if (argc != 4) {
		fprintf(stderr, "usage: pkits_kh SOCKET STORE LIST\n");
		return 2;
	}
	if (kh_client_connect_unix(argv[1], &c) != KH_OK) {
		fprintf(stderr, "pkits_kh: cannot connect to %s\n", argv[1]);
		return 1;
	}
	list = fopen(argv[3], "r");
	if (list == NULL) {
		fprintf(stderr, "pkits_kh: cannot open %s\n", argv[3]);
		kh_client_free(c);
		return 1;
	}
	while (fgets(line, sizeof(line), list) != NULL) {
		char *id = line, *dir, *settings;
		kh_msg *q = NULL, *a = NULL;
		enum kh_err r;

		line[strcspn(line, "\n")] = '\0';
		dir = strchr(id, '\t');
		if (dir == NULL)
			continue;
		*dir++ = '\0';
		settings = strchr(dir, '\t');
		if (settings != NULL)
			*settings++ = '\0';
		r = kh_request_new("TruststoreVerify", &q);
		if (r == KH_OK)
			r = pk_fill(q, argv[2], dir, settings);
		if (r == KH_OK)
			r = kh_call(c, q, &a);
		if (r == KH_OK) {
			printf("%s\t%s\t%s\n", id, kh_msg_get_bool(a, "valid") ? "valid" : "invalid", kh_msg_get_str(a, "reason"));
		} else {
			printf("%s\terror\t%s\n", id, kh_client_error_message(c));
			bad++;
		}
		kh_msg_free(q);
		kh_msg_free(a);
	}
	fclose(list);
	kh_client_free(c);
	return bad != 0;
}
