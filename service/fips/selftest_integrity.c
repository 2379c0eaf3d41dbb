/* selftest_integrity.c: the software integrity test: HMAC-SHA-256 of the running
 * keyholdd executable (/proc/self/exe) against a sidecar written at install
 * time (keyholdd --fips-install), as OpenSSL's FIPS module checks itself
 * against fipsmodule.cnf. The sidecar is DIR/.keyholdd.hmac next to the
 * executable (the fipscheck / hmaccalc convention), one line of hex. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "kh_log.h"
#include "kh_util.h"
#include "fips/fips_int.h"

/* The fixed, published integrity key (docs/FIPS.md). Like the key of
 * `openssl fipsinstall`, it is not a secret: the test detects corruption of
 * the executable, not an attacker who can rewrite both files. */
static const char integrity_key[] = "keyhold software integrity key v1";

#define INTEGRITY_MAC_LEN 32

/* The executable's path and its sidecar's. */
static enum kh_err integrity_paths(char *exe, size_t exesz, char *sidecar, size_t sidesz, struct kh_errbuf *e)
{
	char dir[PATH_MAX], base[PATH_MAX];
	ssize_t n;
	int w;

	n = readlink("/proc/self/exe", exe, exesz - 1);
	if (n <= 0 || (size_t)n >= exesz - 1)
		return kh_err_set(e, KH_E_INTERNAL, "cannot read /proc/self/exe: %s", strerror(errno));
	exe[n] = '\0';
	kh_strlcpy(dir, exe, sizeof(dir));
	kh_strlcpy(base, exe, sizeof(base));
	w = snprintf(sidecar, sidesz, "%s/.%s.hmac", dirname(dir), basename(base));
	if (w < 0 || (size_t)w >= sidesz)
		return kh_err_set(e, KH_E_INTERNAL, "the sidecar path for %s is too long", exe);
	return KH_OK;
}

/* HMAC-SHA-256 under the integrity key of everything /proc/self/exe holds
 * (the running image, even if the file was replaced since). */
static enum kh_err integrity_mac(OSSL_LIB_CTX *libctx, uint8_t mac[INTEGRITY_MAC_LEN], struct kh_errbuf *e)
{
	int r = KH_OK;
	EVP_MAC *m = NULL;
	EVP_MAC_CTX *c = NULL;
	OSSL_PARAM p[2];
	uint8_t buf[65536];
	size_t ml = 0;
	int fd;
	char err[128];

	fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kh_err_set(e, KH_E_INTERNAL, "cannot open /proc/self/exe: %s", strerror(errno));
	m = EVP_MAC_fetch(libctx, "HMAC", NULL);
	c = m != NULL ? EVP_MAC_CTX_new(m) : NULL;
	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)(uintptr_t)"SHA256", 0);
	p[1] = OSSL_PARAM_construct_end();
	KH_ENSURE(c != NULL && EVP_MAC_init(c, (const uint8_t *)integrity_key, sizeof(integrity_key) - 1, p) == 1,
		  kh_err_set(e, KH_E_INTERNAL, "HMAC-SHA-256 is not available: %s", selftest_ossl_err(err, sizeof(err))));
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		KH_ENSURE(n >= 0, kh_err_set(e, KH_E_INTERNAL, "reading /proc/self/exe: %s", strerror(errno)));
		if (n == 0)
			break;
		KH_ENSURE(EVP_MAC_update(c, buf, (size_t)n) == 1, kh_err_set(e, KH_E_INTERNAL, "HMAC update failed"));
	}
	KH_ENSURE(EVP_MAC_final(c, mac, &ml, INTEGRITY_MAC_LEN) == 1 && ml == INTEGRITY_MAC_LEN,
		  kh_err_set(e, KH_E_INTERNAL, "HMAC final failed"));
out:
	close(fd);
	EVP_MAC_CTX_free(c);
	EVP_MAC_free(m);
	return r;
}

/* Reads the sidecar's hex MAC. */
static enum kh_err integrity_read_sidecar(const char *path, uint8_t mac[INTEGRITY_MAC_LEN], struct kh_errbuf *e)
{
	char text[2 * INTEGRITY_MAC_LEN + 8];
	size_t n, ml = 0;
	FILE *fp;

	fp = fopen(path, "re");
	if (fp == NULL)
		return kh_err_set(e, KH_E_FAILED_PRECONDITION,
				  "the integrity sidecar %s is missing (%s); run 'keyholdd --fips-install' after installing keyholdd",
				  path, strerror(errno));
	n = fread(text, 1, sizeof(text) - 1, fp);
	fclose(fp);
	text[n] = '\0';
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
		text[--n] = '\0';
	if (n != 2 * INTEGRITY_MAC_LEN || kh_unhex(text, mac, INTEGRITY_MAC_LEN, &ml) != 0 || ml != INTEGRITY_MAC_LEN)
		return kh_err_set(e, KH_E_FAILED_PRECONDITION,
				  "the integrity sidecar %s does not hold one HMAC-SHA-256 in hex; rerun 'keyholdd --fips-install'",
				  path);
	return KH_OK;
}

/* Compares the running executable with its sidecar. r (NULL for --check)
 * lets the self-test corruption hook flip the expected MAC and receives the
 * summary. */
static enum kh_err integrity_compare(OSSL_LIB_CTX *libctx, struct selftest_run *r, char *exe, size_t exesz,
				     struct kh_errbuf *e)
{
	char sidecar[PATH_MAX + 16];
	uint8_t want[INTEGRITY_MAC_LEN], got[INTEGRITY_MAC_LEN];
	int rr;

	if ((rr = integrity_paths(exe, exesz, sidecar, sizeof(sidecar), e)) != KH_OK ||
	    (rr = integrity_read_sidecar(sidecar, want, e)) != KH_OK)
		return rr;
	if (r != NULL)
		selftest_corrupt(r, 0, want, sizeof(want));
	if ((rr = integrity_mac(libctx, got, e)) != KH_OK)
		return rr;
	if (CRYPTO_memcmp(got, want, sizeof(got)) != 0)
		return kh_err_set(e, KH_E_INTERNAL,
				  "the HMAC-SHA-256 of %s does not match %s: the executable (or the sidecar) changed since 'keyholdd --fips-install'",
				  exe, sidecar);
	return KH_OK;
}

enum kh_err selftest_integrity(struct selftest_run *r, struct kh_errbuf *e)
{
	char exe[PATH_MAX];
	int rr;

	if ((rr = integrity_compare(r->s->libctx, r, exe, sizeof(exe), e)) != KH_OK)
		return rr;
	snprintf(r->summary, sizeof(r->summary), "HMAC-SHA-256 of %.100s matches its sidecar", exe);
	return KH_OK;
}

enum kh_err selftest_integrity_check(OSSL_LIB_CTX *libctx, struct kh_errbuf *e)
{
	char exe[PATH_MAX];

	return integrity_compare(libctx, NULL, exe, sizeof(exe), e);
}

enum kh_err selftest_integrity_install(FILE *out, struct kh_errbuf *e)
{
	char exe[PATH_MAX], sidecar[PATH_MAX + 16], tmp[PATH_MAX + 32], hex[2 * INTEGRITY_MAC_LEN + 1];
	uint8_t mac[INTEGRITY_MAC_LEN];
	FILE *fp;
	int rr, fd, ok;

	if ((rr = integrity_paths(exe, sizeof(exe), sidecar, sizeof(sidecar), e)) != KH_OK ||
	    (rr = integrity_mac(NULL, mac, e)) != KH_OK)
		return rr;
	kh_hex(mac, sizeof(mac), hex, sizeof(hex));
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", sidecar) >= (int)sizeof(tmp))
		return kh_err_set(e, KH_E_INTERNAL, "path too long");
	/* Written whole, then renamed over the old one. */
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return kh_err_set(e, KH_E_FAILED_PRECONDITION, "cannot write %s: %s", tmp, strerror(errno));
	fp = fdopen(fd, "w");
	if (fp == NULL) {
		close(fd);
		unlink(tmp);
		return kh_err_set(e, KH_E_INTERNAL, "fdopen: %s", strerror(errno));
	}
	ok = fprintf(fp, "%s\n", hex) > 0;
	ok = fflush(fp) == 0 && ok;
	ok = fsync(fileno(fp)) == 0 && ok;
	ok = fclose(fp) == 0 && ok;
	if (!ok || rename(tmp, sidecar) != 0) {
		unlink(tmp);
		return kh_err_set(e, KH_E_FAILED_PRECONDITION, "cannot write %s: %s", sidecar, strerror(errno));
	}
	fprintf(out, "keyholdd: wrote %s (HMAC-SHA-256 of %s)\n", sidecar, exe);
	return KH_OK;
}
