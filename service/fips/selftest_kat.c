/* selftest_kat.c: the software known-answer tests of the power-up registry: HMAC,
 * SHA-2, signature verification (each with a must-fail twin) and the
 * CTR_DRBG, all run in keyholdd's own OSSL_LIB_CTX. Every vector is
 * published; its source is cited beside it. */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "kh_log.h"
#include "fips/fips_int.h"

/* ---- HMAC-SHA-256: RFC 4231 §4.2 (test case 1) and §4.3 (test case 2) ---- */

struct kat_hmac {
	const char *key, *data, *mac;
};

static const struct kat_hmac kat_hmac[] = {
	/* RFC 4231 §4.2, Test Case 1: Key = 0x0b * 20, Data = "Hi There". */
	{ "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
	  "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
	/* RFC 4231 §4.3, Test Case 2: Key = "Jefe",
	 * Data = "what do ya want for nothing?". */
	{ "4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
	  "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
};

enum kh_err selftest_hmac_kat(struct selftest_run *r, struct kh_errbuf *e)
{
	size_t i;

	for (i = 0; i < sizeof(kat_hmac) / sizeof(kat_hmac[0]); i++) {
		uint8_t key[64], data[64], want[32], got[EVP_MAX_MD_SIZE];
		size_t kl, dl, wl, gl = 0;
		char err[128];
		int rr = KH_OK;

		if ((rr = selftest_unhex(kat_hmac[i].key, key, sizeof(key), &kl, e)) != KH_OK ||
		    (rr = selftest_unhex(kat_hmac[i].data, data, sizeof(data), &dl, e)) != KH_OK ||
		    (rr = selftest_unhex(kat_hmac[i].mac, want, sizeof(want), &wl, e)) != KH_OK)
			return rr;
		selftest_corrupt(r, (int)i, want, wl);
		if (EVP_Q_mac(r->s->libctx, "HMAC", NULL, "SHA256", NULL, key, kl, data, dl, got, sizeof(got), &gl) ==
		    NULL)
			return kh_err_set(e, KH_E_INTERNAL, "HMAC-SHA-256 failed: %s", selftest_ossl_err(err, sizeof(err)));
		if (gl != wl || CRYPTO_memcmp(got, want, wl) != 0)
			return kh_err_set(e, KH_E_INTERNAL, "HMAC-SHA-256 of RFC 4231 test case %zu does not match", i + 1);
	}
	snprintf(r->summary, sizeof(r->summary), "RFC 4231 test cases 1 and 2 match");
	return KH_OK;
}

/* ---- SHA-2: FIPS 180-4 example messages ---- */

/* "abc" (one block) and the 448-bit message (two blocks for SHA-256): the
 * NIST CSRC "Examples with Intermediate Values" for FIPS 180-4
 * (SHA256.pdf, SHA384.pdf, SHA512.pdf). SHA-384/512 also get their own
 * two-block 896-bit example message from SHA384.pdf/SHA512.pdf. */
static const char kat_msg_abc[] = "abc";
static const char kat_msg_448[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
static const char kat_msg_896[] = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
				  "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";

struct kat_sha {
	const char *alg;
	const char *msg;
	const char *digest;
};

static const struct kat_sha kat_sha[] = {
	/* SHA256.pdf: "abc" and the 448-bit two-block message. */
	{ "SHA256", kat_msg_abc, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
	{ "SHA256", kat_msg_448, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	/* SHA384.pdf: "abc" and the 896-bit message; the 448-bit message's
	 * digest is the one NIST's example messages give in the SHA-2 test
	 * vector tables (e.g. di-mgt.com.au "SHA test vectors"). */
	{ "SHA384", kat_msg_abc,
	  "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7" },
	{ "SHA384", kat_msg_448,
	  "3391fdddfc8dc7393707a65b1b4709397cf8b1d162af05abfe8f450de5f36bc6b0455a8520bc4e6f5fe95b1fe3c8452b" },
	{ "SHA384", kat_msg_896,
	  "09330c33f71147e83d192fc782cd1b4753111b173b3b05d22fa08086e3b0f712fcc7c71a557e2db966c3e9fa91746039" },
	/* SHA512.pdf: "abc" and the 896-bit message; the 448-bit as above. */
	{ "SHA512", kat_msg_abc,
	  "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
	  "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f" },
	{ "SHA512", kat_msg_448,
	  "204a8fc6dda82f0a0ced7beb8e08a41657c16ef468b228a8279be331a703c335"
	  "96fd15c13b1b07f9aa1d3bea57789ca031ad85c7a71dd70354ec631238ca3445" },
	{ "SHA512", kat_msg_896,
	  "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
	  "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909" },
};

enum kh_err selftest_sha2_kat(struct selftest_run *r, struct kh_errbuf *e)
{
	size_t i;

	for (i = 0; i < sizeof(kat_sha) / sizeof(kat_sha[0]); i++) {
		uint8_t want[64], got[EVP_MAX_MD_SIZE];
		size_t wl;
		unsigned gl = 0;
		EVP_MD *md;
		char err[128];
		int ok, rr;

		if ((rr = selftest_unhex(kat_sha[i].digest, want, sizeof(want), &wl, e)) != KH_OK)
			return rr;
		selftest_corrupt(r, (int)i, want, wl);
		md = EVP_MD_fetch(r->s->libctx, kat_sha[i].alg, NULL);
		if (md == NULL)
			return kh_err_set(e, KH_E_INTERNAL, "%s is not available: %s", kat_sha[i].alg,
					  selftest_ossl_err(err, sizeof(err)));
		ok = EVP_Digest(kat_sha[i].msg, strlen(kat_sha[i].msg), got, &gl, md, NULL);
		EVP_MD_free(md);
		if (ok != 1)
			return kh_err_set(e, KH_E_INTERNAL, "%s failed: %s", kat_sha[i].alg,
					  selftest_ossl_err(err, sizeof(err)));
		if (gl != wl || CRYPTO_memcmp(got, want, wl) != 0)
			return kh_err_set(e, KH_E_INTERNAL, "%s of the %zu-bit FIPS 180-4 example message does not match",
					  kat_sha[i].alg, 8 * strlen(kat_sha[i].msg));
	}
	snprintf(r->summary, sizeof(r->summary), "%zu FIPS 180-4 example digests match",
		 sizeof(kat_sha) / sizeof(kat_sha[0]));
	return KH_OK;
}

/* ---- signature verification ---- */

/* CAVP FIPS 186-3 RSA PKCS#1 v1.5 "SigGen15_186-3.txt"
 * (186-3rsatestvectors.zip): the [mod = 2048] key (n, e = 0x260445) and one
 * of its SHAAlg = SHA256 Msg/S pairs. */
static const char kat_rsa_n[] =
	"cea80475324c1dc8347827818da58bac069d3419c614a6ea1ac6a3b510dcd72cc516954905e9fef908d45e13006adf27"
	"d467a7d83c111d1a5df15ef293771aefb920032a5bb989f8e4f5e1b05093d3f130f984c07a772a3683f4dc6fb28a9681"
	"5b32123ccdd13954f19d5b8b24a103e771a34c328755c65ed64e1924ffd04d30b2142cc262f6e0048fef6dbc652f2147"
	"9ea1c4b1d66d28f4d46ef7185e390cbfa2e02380582f3188bb94ebbf05d31487a09aff01fcbb4cd4bfd1f0a833b38c11"
	"813c84360bb53c7d4481031c40bad8713bb6b835cb08098ed15ba31ee4ba728a8c8e10f7294e1b4163b7aee57277bfd8"
	"81a6f9d43e02c6925aa3a043fb7fb78d";
static const char kat_rsa_e[] = "260445";
static const char kat_rsa_msg[] =
	"c43011f3ee88c9c9adcac8bf37221afa31769d347dec705e53aca98993e74606591867ccd289ba1b4f19365f983e0c57"
	"8346da76c5e2228a07e4fc9b3d4807163371a52b68b66873201dc7d6b56616ac2e4cb522120787df7f15a5e8763a54c1"
	"79c635d65816bc19485de3eb35a52040591094fe0e6485a7e0c60e38e7c61551";
static const char kat_rsa_s[] =
	"aa3a4e12eb87596c711c9a22bcabcb9dadffcabcecbd16228889e9bb457d5d22571a72f034be4783384f43ce6fffc605"
	"34b8331cdd5d7c77f49180bfd194b5fd43a508c66d786c558876735894e6a9300952de792f747045e74d87fd50980230"
	"707a34a4df013ce050bbff0d6f570885c9c7bf8dc499132caee071b41d81ff91b8ce21aa2f282cbf52389f239afe1490"
	"890be21f9d808b3d70b97efd59c0b60e466088bb42714f212bc90db7e942ebcee60e7b107fff44fb3564ff07d6d02850"
	"215fd357d897c4d32bef8661689f2d84ff897637fb6d5568a7270e783426b74b7037493e5155fd7cb3ddddfd36bd8a9c"
	"877d71d2a966057c08263d2939c84987";

/* RFC 6979 Appendix A.2.5 (ECDSA, 256 bits, prime field): public key U and
 * the signature with SHA-256 over the message "sample". */
static const char kat_p256_ux[] = "60fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6";
static const char kat_p256_uy[] = "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299";
static const char kat_p256_r[] = "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716";
static const char kat_p256_s[] = "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8";

/* RFC 6979 Appendix A.2.6 (ECDSA, 384 bits, prime field): public key U and
 * the signature with SHA-384 over the message "sample". */
static const char kat_p384_ux[] =
	"ec3a4e415b4e19a4568618029f427fa5da9a8bc4ae92e02e06aae5286b300c64def8f0ea9055866064a254515480bc13";
static const char kat_p384_uy[] =
	"8015d9b72d7d57244ea8ef9ac0c621896708a59367f9dfb9f54ca84b3f1c9db1288b231c3ae0d4fe7344fd2533264720";
static const char kat_p384_r[] =
	"94edbb92a5ecb8aad4736e56c691916b3f88140666ce9fa73d64c4ea95ad133c81a648152e44acf96e36dd1e80fabe46";
static const char kat_p384_s[] =
	"99ef4aeb15f178cea1fe40db2603138f130e740a19624526203b6351d0a3a94fa329c145786e679e7b82c71a38628ac8";

static const char kat_ecdsa_msg[] = "73616d706c65"; /* "sample" */

struct kat_sig {
	const char *name;
	const char *key_type;  /* "RSA" or the EC group */
	const char *a, *b;     /* RSA: n, e; EC: Ux, Uy */
	const char *md;
	const char *msg;
	const char *sig1, *sig2; /* RSA: S, NULL; EC: r, s */
};

static const struct kat_sig kat_sig[] = {
	{ "RSA-2048 PKCS#1 v1.5 SHA-256 (CAVP SigGen15)", "RSA", kat_rsa_n, kat_rsa_e, "SHA256", kat_rsa_msg, kat_rsa_s,
	  NULL },
	{ "ECDSA P-256 SHA-256 (RFC 6979 A.2.5)", "P-256", kat_p256_ux, kat_p256_uy, "SHA256", kat_ecdsa_msg, kat_p256_r,
	  kat_p256_s },
	{ "ECDSA P-384 SHA-384 (RFC 6979 A.2.6)", "P-384", kat_p384_ux, kat_p384_uy, "SHA384", kat_ecdsa_msg, kat_p384_r,
	  kat_p384_s },
};
#define KAT_SIG_N (sizeof(kat_sig) / sizeof(kat_sig[0]))

static enum kh_err kat_pubkey(OSSL_LIB_CTX *libctx, const struct kat_sig *k, EVP_PKEY **out, struct kh_errbuf *e)
{
	int r = KH_OK;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *pctx = NULL;
	BIGNUM *n = NULL, *ex = NULL;
	uint8_t a[512], b[512], point[1 + 2 * 66];
	size_t al, bl;
	char err[128];

	KH_TRY(selftest_unhex(k->a, a, sizeof(a), &al, e));
	KH_TRY(selftest_unhex(k->b, b, sizeof(b), &bl, e));
	bld = OSSL_PARAM_BLD_new();
	KH_ENSURE(bld != NULL, KH_E_RESOURCE_EXHAUSTED);
	if (strcmp(k->key_type, "RSA") == 0) {
		n = BN_bin2bn(a, (int)al, NULL);
		ex = BN_bin2bn(b, (int)bl, NULL);
		KH_ENSURE(n != NULL && ex != NULL, KH_E_RESOURCE_EXHAUSTED);
		KH_ENSURE(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) == 1 &&
				  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, ex) == 1,
			  KH_E_INTERNAL);
		pctx = EVP_PKEY_CTX_new_from_name(libctx, "RSA", NULL);
	} else {
		/* SEC 1 §2.3.3 uncompressed point: 04 || X || Y. */
		KH_ENSURE(al == bl && 1 + al + bl <= sizeof(point), KH_E_INTERNAL);
		point[0] = 0x04;
		memcpy(point + 1, a, al);
		memcpy(point + 1 + al, b, bl);
		KH_ENSURE(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, k->key_type, 0) == 1 &&
				  OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + al + bl) == 1,
			  KH_E_INTERNAL);
		pctx = EVP_PKEY_CTX_new_from_name(libctx, "EC", NULL);
	}
	params = OSSL_PARAM_BLD_to_param(bld);
	KH_ENSURE(pctx != NULL && params != NULL && EVP_PKEY_fromdata_init(pctx) == 1 &&
			  EVP_PKEY_fromdata(pctx, out, EVP_PKEY_PUBLIC_KEY, params) == 1,
		  kh_err_set(e, KH_E_INTERNAL, "%s: cannot load the public key: %s", k->name,
			     selftest_ossl_err(err, sizeof(err))));
out:
	BN_free(n);
	BN_free(ex);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(pctx);
	return r;
}

/* r || s -> ECDSA-Sig-Value DER (X9.62). */
static enum kh_err kat_ecdsa_der(const uint8_t *rb, size_t rl, const uint8_t *sb, size_t sl, uint8_t **der,
				 size_t *der_len)
{
	int r = KH_OK;
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *br = BN_bin2bn(rb, (int)rl, NULL), *bs = BN_bin2bn(sb, (int)sl, NULL);
	unsigned char *buf = NULL;
	int n;

	KH_ENSURE(sig != NULL && br != NULL && bs != NULL && ECDSA_SIG_set0(sig, br, bs) == 1, KH_E_INTERNAL);
	br = bs = NULL;
	n = i2d_ECDSA_SIG(sig, &buf);
	KH_ENSURE(n > 0, KH_E_INTERNAL);
	*der = buf;
	*der_len = (size_t)n;
	buf = NULL;
out:
	OPENSSL_free(buf);
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(sig);
	return r;
}

/* KH_OK with *verified (whether sig verifies), or KH_E_INTERNAL when the
 * check could not run. */
static enum kh_err kat_verify(OSSL_LIB_CTX *libctx, EVP_PKEY *pkey, const char *md, const uint8_t *msg,
			      size_t msg_len, const uint8_t *sig, size_t sig_len, bool *verified)
{
	EVP_MD_CTX *mctx = NULL;
	enum kh_err r = KH_OK;

	mctx = EVP_MD_CTX_new();
	KH_ENSURE(mctx != NULL && EVP_DigestVerifyInit_ex(mctx, NULL, md, libctx, NULL, pkey, NULL) == 1,
		  KH_E_INTERNAL);
	*verified = EVP_DigestVerify(mctx, sig, sig_len, msg, msg_len) == 1;
out:
	EVP_MD_CTX_free(mctx);
	ERR_clear_error();
	return r;
}

/* Vector i (0..2) is corrupted by flipping a bit of its signature; i + 3
 * by not tampering the twin's message, so the must-fail twin verifies. */
enum kh_err selftest_sigver_kat(struct selftest_run *r, struct kh_errbuf *e)
{
	size_t i;

	for (i = 0; i < KAT_SIG_N; i++) {
		const struct kat_sig *k = &kat_sig[i];
		EVP_PKEY *pkey = NULL;
		uint8_t msg[256], s1[512], s2[80];
		uint8_t *der = NULL;
		const uint8_t *sig;
		size_t ml, l1, l2 = 0, sl;
		int rr = KH_OK;
		bool v = false;

		if ((rr = selftest_unhex(k->msg, msg, sizeof(msg), &ml, e)) != KH_OK ||
		    (rr = selftest_unhex(k->sig1, s1, sizeof(s1), &l1, e)) != KH_OK ||
		    (k->sig2 != NULL && (rr = selftest_unhex(k->sig2, s2, sizeof(s2), &l2, e)) != KH_OK) ||
		    (rr = kat_pubkey(r->s->libctx, k, &pkey, e)) != KH_OK)
			return rr;
		selftest_corrupt(r, (int)i, s1, l1);
		if (k->sig2 != NULL) {
			rr = kat_ecdsa_der(s1, l1, s2, l2, &der, &sl);
			if (rr != KH_OK) {
				EVP_PKEY_free(pkey);
				return kh_err_set(e, rr, "%s: cannot encode the signature", k->name);
			}
			sig = der;
		} else {
			sig = s1;
			sl = l1;
		}
		rr = kat_verify(r->s->libctx, pkey, k->md, msg, ml, sig, sl, &v);
		if (rr != KH_OK || !v) {
			rr = kh_err_set(e, KH_E_INTERNAL, "%s: the published signature does not verify", k->name);
		} else {
			/* The must-fail twin: one bit of the message flipped. */
			if (!selftest_corrupting(r, (int)(i + KAT_SIG_N)))
				msg[ml - 1] ^= 0x01;
			rr = kat_verify(r->s->libctx, pkey, k->md, msg, ml, sig, sl, &v);
			if (rr != KH_OK || v)
				rr = kh_err_set(e, KH_E_INTERNAL,
						"%s: the must-fail twin (message with one bit flipped) %s", k->name,
						rr == KH_OK ? "verified" : "could not be checked");
		}
		OPENSSL_free(der);
		EVP_PKEY_free(pkey);
		if (rr != KH_OK)
			return rr;
	}
	snprintf(r->summary, sizeof(r->summary),
		 "RSA-2048 (SigGen15), P-256 and P-384 (RFC 6979) verify; their twins fail");
	return KH_OK;
}

/* ---- CTR_DRBG ---- */

/* CAVP DRBG test vectors (drbgtestvectors.zip), folder drbgvectors_pr_true,
 * CTR_DRBG.rsp: [AES-128 use df] [PredictionResistance = True]
 * [EntropyInputLen = 128] [NonceLen = 64] [PersonalizationStringLen = 128]
 * [AdditionalInputLen = 128] [ReturnedBitsLen = 512], COUNT = 0 -- the
 * vector OpenSSL's own FIPS provider self-test uses
 * (providers/fips/self_test_data.inc, drbg_ctr_aes128_pr_df_*). */
static const char kat_drbg_entropy[] = "92898f31fa1cff6d182f260643dff818";
static const char kat_drbg_nonce[] = "c2a4d972c3b9b697";
static const char kat_drbg_pers[] = "ea65ee60264e7eb60e8268c4373c5c0b";
static const char kat_drbg_addin0[] = "1a40fae3cc6c7ca0f8daba59236dad1d";
static const char kat_drbg_entropy_pr0[] = "20728a06f86f8dd441e272b7c42ce810";
static const char kat_drbg_addin1[] = "9f72766cc746e5ed2e532012bc59318c";
static const char kat_drbg_entropy_pr1[] = "3db0f094f305503317863e2208f7a501";
static const char kat_drbg_returned[] =
	"5a3539870f4d22a40924ee71c96fac720ad6f08882d0832873ec3f93d8ab4523"
	"f07eac45145e939fb1d676433db6e80888f6da89087742fe1af43fc423c51f68";

/* The message of a failed OpenSSL call of the DRBG test, with OpenSSL's
 * reason. */
static enum kh_err kat_drbg_fail(struct kh_errbuf *e)
{
	char err[128];

	return kh_err_set(e, KH_E_INTERNAL, "CTR_DRBG test failed: %s", selftest_ossl_err(err, sizeof(err)));
}

/* Hands the next entropy input to the test source (OpenSSL's TEST-RAND). */
static enum kh_err kat_drbg_feed(EVP_RAND_CTX *test, const uint8_t *entropy, size_t elen, const uint8_t *nonce,
				 size_t nlen, struct kh_errbuf *e)
{
	OSSL_PARAM p[3];
	size_t i = 0;

	p[i++] = OSSL_PARAM_construct_octet_string(OSSL_RAND_PARAM_TEST_ENTROPY, (void *)(uintptr_t)entropy, elen);
	if (nonce != NULL)
		p[i++] = OSSL_PARAM_construct_octet_string(OSSL_RAND_PARAM_TEST_NONCE, (void *)(uintptr_t)nonce, nlen);
	p[i] = OSSL_PARAM_construct_end();
	if (EVP_RAND_CTX_set_params(test, p) != 1)
		return kat_drbg_fail(e);
	return KH_OK;
}

enum kh_err selftest_drbg_kat(struct selftest_run *run, struct kh_errbuf *e)
{
	enum kh_err r = KH_OK;
	OSSL_LIB_CTX *scratch = NULL, *ctx;
	OSSL_PROVIDER *prov = NULL;
	EVP_RAND *trand = NULL, *drand = NULL;
	EVP_RAND_CTX *test = NULL, *drbg = NULL;
	uint8_t ent[16], nonce[8], pers[16], a0[16], pr0[16], a1[16], pr1[16], want[64], got[64];
	size_t el, nl, pl, a0l, p0l, a1l, p1l, wl;
	unsigned strength = 256;
	int use_df = 1;
	OSSL_PARAM p[3];
	char err[128];

	KH_TRY(selftest_unhex(kat_drbg_entropy, ent, sizeof(ent), &el, e));
	KH_TRY(selftest_unhex(kat_drbg_nonce, nonce, sizeof(nonce), &nl, e));
	KH_TRY(selftest_unhex(kat_drbg_pers, pers, sizeof(pers), &pl, e));
	KH_TRY(selftest_unhex(kat_drbg_addin0, a0, sizeof(a0), &a0l, e));
	KH_TRY(selftest_unhex(kat_drbg_entropy_pr0, pr0, sizeof(pr0), &p0l, e));
	KH_TRY(selftest_unhex(kat_drbg_addin1, a1, sizeof(a1), &a1l, e));
	KH_TRY(selftest_unhex(kat_drbg_entropy_pr1, pr1, sizeof(pr1), &p1l, e));
	KH_TRY(selftest_unhex(kat_drbg_returned, want, sizeof(want), &wl, e));
	selftest_corrupt(run, 0, want, wl);

	/* A scratch DRBG, never the one OpenSSL serves keyholdd from: in a
	 * scratch library context on the default provider; in validated mode
	 * the FIPS provider's own CTR-DRBG in keyholdd's context (its
	 * TEST-RAND is a non-approved algorithm, hence "-fips"). */
	if (run->f->mode == SVC_FIPS_VALIDATED) {
		ctx = run->s->libctx;
	} else {
		scratch = OSSL_LIB_CTX_new();
		prov = scratch != NULL ? OSSL_PROVIDER_load(scratch, "default") : NULL;
		KH_ENSURE(prov != NULL, kh_err_set(e, KH_E_INTERNAL, "cannot make a scratch library context: %s",
						   selftest_ossl_err(err, sizeof(err))));
		ctx = scratch;
	}
	trand = EVP_RAND_fetch(ctx, "TEST-RAND", run->f->mode == SVC_FIPS_VALIDATED ? "-fips" : NULL);
	drand = EVP_RAND_fetch(ctx, "CTR-DRBG", NULL);
	KH_ENSURE(trand != NULL && drand != NULL, kh_err_set(e, KH_E_INTERNAL, "TEST-RAND or CTR-DRBG is not available: %s",
							     selftest_ossl_err(err, sizeof(err))));
	test = EVP_RAND_CTX_new(trand, NULL);
	p[0] = OSSL_PARAM_construct_uint(OSSL_RAND_PARAM_STRENGTH, &strength);
	p[1] = OSSL_PARAM_construct_end();
	KH_ENSURE(test != NULL && EVP_RAND_CTX_set_params(test, p) == 1 &&
			  EVP_RAND_instantiate(test, strength, 0, NULL, 0, NULL) == 1,
		  kat_drbg_fail(e));
	drbg = EVP_RAND_CTX_new(drand, test);
	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_DRBG_PARAM_CIPHER, (char *)(uintptr_t)"AES-128-CTR", 0);
	p[1] = OSSL_PARAM_construct_int(OSSL_DRBG_PARAM_USE_DF, &use_df);
	p[2] = OSSL_PARAM_construct_end();
	KH_ENSURE(drbg != NULL && EVP_RAND_CTX_set_params(drbg, p) == 1, kat_drbg_fail(e));
	/* SP 800-90A §10.2.1.3.2 instantiate with EntropyInput, Nonce and the
	 * personalization string; then two generate calls with prediction
	 * resistance, each reseeding from EntropyInputPR with its
	 * AdditionalInput; ReturnedBits is the second output. */
	KH_TRY(kat_drbg_feed(test, ent, el, nonce, nl, e));
	KH_ENSURE(EVP_RAND_instantiate(drbg, 128, 0, pers, pl, NULL) == 1, kat_drbg_fail(e));
	KH_TRY(kat_drbg_feed(test, pr0, p0l, NULL, 0, e));
	KH_ENSURE(EVP_RAND_generate(drbg, got, sizeof(got), 128, 1, a0, a0l) == 1, kat_drbg_fail(e));
	KH_TRY(kat_drbg_feed(test, pr1, p1l, NULL, 0, e));
	KH_ENSURE(EVP_RAND_generate(drbg, got, sizeof(got), 128, 1, a1, a1l) == 1, kat_drbg_fail(e));
	KH_ENSURE(wl == sizeof(got) && CRYPTO_memcmp(got, want, wl) == 0,
		  kh_err_set(e, KH_E_INTERNAL, "CTR_DRBG AES-128 output does not match the CAVP ReturnedBits"));
	KH_ENSURE(EVP_RAND_uninstantiate(drbg) == 1 && EVP_RAND_get_state(drbg) == EVP_RAND_STATE_UNINITIALISED,
		  kh_err_set(e, KH_E_INTERNAL, "the scratch CTR_DRBG did not uninstantiate"));
	snprintf(run->summary, sizeof(run->summary), "CTR_DRBG AES-128 use df, PR: CAVP COUNT 0 ReturnedBits match");
out:
	OPENSSL_cleanse(got, sizeof(got));
	EVP_RAND_CTX_free(drbg);
	EVP_RAND_CTX_free(test);
	EVP_RAND_free(drand);
	EVP_RAND_free(trand);
	OSSL_PROVIDER_unload(prov);
	OSSL_LIB_CTX_free(scratch);
	return r;
}
