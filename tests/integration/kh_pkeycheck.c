/* kh_pkeycheck: loads a private key the way applications do (a FILE with
 * PEM_read_bio_PrivateKey, as SSL_CTX_use_PrivateKey_file does, or a URI
 * through OSSL_STORE) under the process's openssl.cnf, and a certificate;
 * exits 0 when X509_check_private_key matches them, 3 when it does not,
 * 1 when the key or certificate does not load. With -s KEY OUT instead,
 * signs "kh_pkeycheck" (SHA-256 unless Ed25519) into OUT: 0, or 1 with
 * OpenSSL's errors on stderr. For test_provider.sh. */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/store.h>
#include <openssl/x509.h>

static EVP_PKEY *load_key(const char *what)
{
	EVP_PKEY *pk = NULL;

	if (strncmp(what, "keyhold:", 8) == 0) {
		OSSL_STORE_CTX *s = OSSL_STORE_open(what, NULL, NULL, NULL, NULL);
		OSSL_STORE_INFO *i;

		while (s != NULL && pk == NULL && !OSSL_STORE_eof(s) && (i = OSSL_STORE_load(s)) != NULL) {
			if (OSSL_STORE_INFO_get_type(i) == OSSL_STORE_INFO_PKEY)
				pk = OSSL_STORE_INFO_get1_PKEY(i);
			OSSL_STORE_INFO_free(i);
		}
		OSSL_STORE_close(s);
	} else {
		BIO *b = BIO_new_file(what, "r");

		if (b != NULL)
			pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
		BIO_free(b);
	}
	return pk;
}

static int sign(const char *key, const char *out)
{
	static const unsigned char msg[] = "kh_pkeycheck";
	unsigned char sig[1024];
	size_t len = sizeof(sig);
	EVP_PKEY *pk = load_key(key);
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	FILE *f;
	int rc = 1;

	if (pk != NULL && m != NULL &&
	    EVP_DigestSignInit(m, NULL, EVP_PKEY_is_a(pk, "ED25519") ? NULL : EVP_sha256(), NULL, pk) == 1 &&
	    EVP_DigestSign(m, sig, &len, msg, sizeof(msg) - 1) == 1 && (f = fopen(out, "wb")) != NULL) {
		if (fwrite(sig, 1, len, f) == len)
			rc = 0;
		if (fclose(f) != 0)
			rc = 1;
	}
	ERR_print_errors_fp(stderr);
	EVP_MD_CTX_free(m);
	EVP_PKEY_free(pk);
	return rc;
}

int main(int argc, char **argv)
{
	EVP_PKEY *pk;
	X509 *x = NULL;
	BIO *b;
	int rc = 1;

	if (argc == 4 && strcmp(argv[1], "-s") == 0)
		return sign(argv[2], argv[3]);
	if (argc != 3) {
		fprintf(stderr, "usage: kh_pkeycheck KEYFILE|keyhold:URI CERT.pem | -s KEY OUT\n");
		return 2;
	}
	pk = load_key(argv[1]);
	if ((b = BIO_new_file(argv[2], "r")) != NULL)
		x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	if (pk == NULL || x == NULL) {
		fprintf(stderr, "kh_pkeycheck: cannot load %s\n", pk == NULL ? argv[1] : argv[2]);
	} else if (X509_check_private_key(x, pk) == 1) {
		printf("match\n");
		rc = 0;
	} else {
		printf("mismatch\n");
		rc = 3;
	}
	ERR_print_errors_fp(stderr);
	EVP_PKEY_free(pk);
	X509_free(x);
	return rc;
}
