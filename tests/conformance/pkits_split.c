/* pkits_split.c: turns each PKITS S/MIME message (smime/Signed<Test>.eml)
 * into the inputs of a path validation: the signer's certificate (the
 * leaf), the other certificates the message carries (intermediates; the
 * trust anchor left out) and its CRLs, one PEM file each, so that keyhold
 * and `openssl verify` are fed exactly the same material. One process for
 * the whole suite keeps the conformance run fast.
 *
 * usage: pkits_split SMIME_DIR TRUST_ANCHOR OUT_DIR NAME...
 * writes OUT_DIR/NAME/leaf.pem, untrusted.pem (may be empty), crl-N.pem. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

static int write_certs(const char *path, STACK_OF(X509) *certs, X509 *skip1, X509 *skip2)
{
	FILE *f = fopen(path, "w");
	int i, ok = 1;

	if (f == NULL)
		return 0;
	for (i = 0; i < sk_X509_num(certs) && ok; i++) {
		X509 *x = sk_X509_value(certs, i);

		if ((skip1 != NULL && X509_cmp(x, skip1) == 0) || (skip2 != NULL && X509_cmp(x, skip2) == 0))
			continue;
		ok = PEM_write_X509(f, x) == 1;
	}
	return fclose(f) == 0 && ok;
}

static int split_one(const char *smime_dir, X509 *ta, const char *out_dir, const char *name)
{
	char path[4096], file[512];
	size_t n = 0, i;
	STACK_OF(X509) *signers = NULL;
	STACK_OF(X509) *certs;
	STACK_OF(X509_CRL) *crls;
	PKCS7 *p7 = NULL;
	BIO *in = NULL, *content = NULL;
	X509 *leaf;
	FILE *f;
	int ok = 0, k;

	/* The file name is the test name without blanks and dashes. */
	for (i = 0; name[i] != '\0' && n + 1 < sizeof(file); i++)
		if (name[i] != ' ' && name[i] != '-')
			file[n++] = name[i];
	file[n] = '\0';
	snprintf(path, sizeof(path), "%s/Signed%s.eml", smime_dir, file);
	in = BIO_new_file(path, "r");
	if (in == NULL || (p7 = SMIME_read_PKCS7(in, &content)) == NULL || !PKCS7_type_is_signed(p7)) {
		fprintf(stderr, "pkits_split: %s: not a signed S/MIME message\n", path);
		goto out;
	}
	certs = p7->d.sign->cert;
	crls = p7->d.sign->crl;
	/* The signer is found by issuer and serial among the message's
	 * certificates; nothing is verified here. */
	signers = PKCS7_get0_signers(p7, NULL, 0);
	if (sk_X509_num(signers) != 1) {
		fprintf(stderr, "pkits_split: %s: %d signers\n", path, sk_X509_num(signers));
		goto out;
	}
	leaf = sk_X509_value(signers, 0);
	snprintf(path, sizeof(path), "%s/%s", out_dir, file);
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		goto out;
	snprintf(path, sizeof(path), "%s/%s/leaf.pem", out_dir, file);
	f = fopen(path, "w");
	if (f == NULL || PEM_write_X509(f, leaf) != 1 || fclose(f) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/%s/untrusted.pem", out_dir, file);
	if (!write_certs(path, certs, leaf, ta))
		goto out;
	for (k = 0; k < sk_X509_CRL_num(crls); k++) {
		snprintf(path, sizeof(path), "%s/%s/crl-%d.pem", out_dir, file, k);
		f = fopen(path, "w");
		if (f == NULL || PEM_write_X509_CRL(f, sk_X509_CRL_value(crls, k)) != 1 || fclose(f) != 0)
			goto out;
	}
	ok = 1;
out:
	sk_X509_free(signers);
	PKCS7_free(p7);
	BIO_free(content);
	BIO_free(in);
	return ok;
}

int main(int argc, char **argv)
{
	X509 *ta = NULL;
	FILE *f;
	int i, bad = 0;

	if (argc < 4) {
		fprintf(stderr, "usage: pkits_split SMIME_DIR TRUST_ANCHOR OUT_DIR NAME...\n");
		return 2;
	}
	f = fopen(argv[2], "rb");
	if (f != NULL) {
		ta = d2i_X509_fp(f, NULL);
		fclose(f);
	}
	if (ta == NULL) {
		fprintf(stderr, "pkits_split: %s: not a DER certificate\n", argv[2]);
		return 1;
	}
	for (i = 4; i < argc; i++)
		if (!split_one(argv[1], ta, argv[3], argv[i]))
			bad++;
	X509_free(ta);
	if (bad != 0)
		ERR_print_errors_fp(stderr);
	return bad != 0;
}
