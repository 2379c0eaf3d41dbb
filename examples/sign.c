/* sign.c: the smallest libkeyhold program: connect to keyholdd, sign a
 * file's bytes (SHA-256) with a named key, print the signature in hex.
 *   sign KEY FILE [SOCKET]     (SOCKET: default $KEYHOLD_SOCKET) */
#include <stdio.h>
#include <stdlib.h>

#include <keyhold/keyhold.h>

#define SIGN_FILE_MAX (1u << 20)

int main(int argc, char **argv)
{
	kh_client_opts *opts = NULL;
	kh_client *c = NULL;
	uint8_t *data = NULL, *sig = NULL;
	size_t len, sig_len = 0, i;
	FILE *f;
	int rc = 1;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: sign KEY FILE [SOCKET]\n");
		return 2;
	}
	f = fopen(argv[2], "rb");
	data = malloc(SIGN_FILE_MAX + 1);
	if (f == NULL || data == NULL) {
		fprintf(stderr, "sign: cannot read %s\n", argv[2]);
		goto out;
	}
	len = fread(data, 1, SIGN_FILE_MAX + 1, f);
	fclose(f);
	if (len > SIGN_FILE_MAX) {
		fprintf(stderr, "sign: %s is larger than %u bytes\n", argv[2], SIGN_FILE_MAX);
		goto out;
	}
	if (kh_client_opts_new(&opts) != KH_OK ||
	    (argc == 4 && kh_client_opts_set_socket(opts, argv[3]) != KH_OK) || kh_client_new(opts, &c) != KH_OK) {
		fprintf(stderr, "sign: out of memory\n");
		goto out;
	}
	if (kh_client_connect(c) != KH_OK ||
	    kh_sign(c, argv[1], "SHA256", NULL, false, data, len, &sig, &sig_len) != KH_OK) {
		fprintf(stderr, "sign: %s: %s\n", kh_err_name(kh_client_error_code(c)), kh_client_error_message(c));
		goto out;
	}
	for (i = 0; i < sig_len; i++)
		printf("%02x", sig[i]);
	printf("\n");
	rc = 0;
out:
	kh_free(sig);
	kh_client_free(c);
	kh_client_opts_free(opts);
	free(data);
	return rc;
}
