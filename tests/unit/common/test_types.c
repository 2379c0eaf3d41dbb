/* test_types.c: object-name validation, the key-type and digest name
 * tables, error-code names, and the small parsers of common/. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "kh_err.h"
#include "kh_types.h"
#include "kh_util.h"

static void test_name_valid(void **state)
{
	static const char *const good[] = {
		"a", "Z", "0", "web", "web.example.com", "k_1", "a-b", "...", "-", "_", "A.b-C_9",
		"0123456789012345678901234567890123456789012345678901234567890123", /* 64 */
	};
	static const char *const bad[] = {
		"", " ", "a b", "a/b", "../x", "a\\b", "a:b", "a;b", "a\tb", "a\nb", "\xc3\xa9", "a*", "a%20",
		"a=b", "a,b", "a'b", "a\"b", "a@b", "~",
		"01234567890123456789012345678901234567890123456789012345678901234", /* 65 */
	};
	char big[1000];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!kh_name_valid(good[i]))
			fail_msg("'%s' refused", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (kh_name_valid(bad[i]))
			fail_msg("'%s' accepted", bad[i]);
	assert_false(kh_name_valid(NULL));
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_false(kh_name_valid(big));
	/* Every single byte: exactly [A-Za-z0-9._-] pass. */
	for (i = 1; i < 256; i++) {
		char s[2] = { (char)i, '\0' };
		bool want = (i >= 'A' && i <= 'Z') || (i >= 'a' && i <= 'z') || (i >= '0' && i <= '9') || i == '.' ||
			    i == '_' || i == '-';

		assert_int_equal(kh_name_valid(s), want);
	}
}

static void test_key_types(void **state)
{
	static const struct {
		enum kh_key_type t;
		const char *name;
	} tab[] = {
		{ KH_KEY_RSA2048, "rsa2048" }, { KH_KEY_RSA3072, "rsa3072" }, { KH_KEY_RSA4096, "rsa4096" },
		{ KH_KEY_P256, "p256" },       { KH_KEY_P384, "p384" },       { KH_KEY_P521, "p521" },
		{ KH_KEY_ED25519, "ed25519" }, { KH_KEY_RSA1024, "rsa1024" }, { KH_KEY_SECP256K1, "secp256k1" },
	};
	size_t i;
	int t;

	(void)state;
	assert_int_equal(sizeof(tab) / sizeof(tab[0]), KH_KEY_TYPE_MAX);
	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		assert_string_equal(kh_key_type_name(tab[i].t), tab[i].name);
		assert_int_equal(kh_key_type_from_name(tab[i].name), tab[i].t);
	}
	/* Every value in range has a name that maps back to it. */
	for (t = 1; t <= KH_KEY_TYPE_MAX; t++) {
		const char *n = kh_key_type_name((enum kh_key_type)t);

		assert_non_null(n);
		assert_int_equal(kh_key_type_from_name(n), t);
	}
	assert_null(kh_key_type_name(KH_KEY_UNSPECIFIED));
	assert_null(kh_key_type_name((enum kh_key_type)(KH_KEY_TYPE_MAX + 1)));
	assert_null(kh_key_type_name((enum kh_key_type)-1));
	assert_int_equal(kh_key_type_from_name("RSA2048"), KH_KEY_UNSPECIFIED);
	assert_int_equal(kh_key_type_from_name("rsa512"), KH_KEY_UNSPECIFIED);
	assert_int_equal(kh_key_type_from_name("p256 "), KH_KEY_UNSPECIFIED);
	assert_int_equal(kh_key_type_from_name(""), KH_KEY_UNSPECIFIED);
	assert_int_equal(kh_key_type_from_name(NULL), KH_KEY_UNSPECIFIED);
}

static void test_digests(void **state)
{
	static const struct {
		enum kh_digest d;
		const char *name;
		size_t len;
	} tab[] = {
		{ KH_DIGEST_SHA256, "sha256", 32 }, { KH_DIGEST_SHA384, "sha384", 48 }, { KH_DIGEST_SHA512, "sha512", 64 },
		{ KH_DIGEST_SHA1, "sha1", 20 },     { KH_DIGEST_MD5, "md5", 16 },       { KH_DIGEST_SHA224, "sha224", 28 },
	};
	size_t i;

	(void)state;
	assert_int_equal(sizeof(tab) / sizeof(tab[0]), KH_DIGEST_MAX);
	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		assert_string_equal(kh_digest_name(tab[i].d), tab[i].name);
		assert_int_equal(kh_digest_from_name(tab[i].name), tab[i].d);
		assert_int_equal(kh_digest_len(tab[i].d), tab[i].len);
	}
	assert_string_equal(kh_digest_name(KH_DIGEST_DEFAULT), "default");
	assert_int_equal(kh_digest_len(KH_DIGEST_DEFAULT), 0);
	/* "default" is not something a user names: it parses as unknown. */
	assert_int_equal(kh_digest_from_name("default"), KH_DIGEST_DEFAULT);
	assert_int_equal(kh_digest_from_name("SHA256"), KH_DIGEST_DEFAULT);
	assert_int_equal(kh_digest_from_name("sha-256"), KH_DIGEST_DEFAULT);
	assert_int_equal(kh_digest_from_name(NULL), KH_DIGEST_DEFAULT);
	assert_null(kh_digest_name((enum kh_digest)(KH_DIGEST_MAX + 1)));
	assert_null(kh_digest_name((enum kh_digest)-1));
	assert_int_equal(kh_digest_len((enum kh_digest)(KH_DIGEST_MAX + 1)), 0);
	assert_int_equal(kh_digest_len((enum kh_digest)-1), 0);
}

static void test_err_names(void **state)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
		"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
		"OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
	};
	struct kh_errbuf e = { 0 };
	int i;

	(void)state;
	/* The gRPC canonical codes, in order: the wire code is -err. */
	for (i = 0; i <= 16; i++) {
		assert_string_equal(kh_err_name(-i), names[i]);
		assert_int_equal(kh_err_from_name(names[i]), -i);
	}
	assert_int_equal(KH_E_NOT_FOUND, -5);
	assert_int_equal(KH_E_UNIMPLEMENTED, -12);
	assert_string_equal(kh_err_name(-17), "UNKNOWN");
	assert_string_equal(kh_err_name(1), "UNKNOWN");
	assert_int_equal(kh_err_from_name("not_found"), KH_E_UNKNOWN);
	assert_int_equal(kh_err_from_name(NULL), KH_E_UNKNOWN);

	/* The first message set wins; OK sets nothing; NULL is fine. */
	assert_int_equal(kh_err_set(&e, KH_OK, "x"), KH_OK);
	assert_int_equal(e.code, KH_OK);
	assert_int_equal(kh_err_set(&e, KH_E_NOT_FOUND, "no key named '%s'", "web"), KH_E_NOT_FOUND);
	assert_int_equal(kh_err_set(&e, KH_E_INTERNAL, "Sign failed"), KH_E_INTERNAL);
	assert_int_equal(e.code, KH_E_NOT_FOUND);
	assert_string_equal(e.msg, "no key named 'web'");
	kh_err_clear(&e);
	assert_int_equal(e.code, KH_OK);
	assert_string_equal(e.msg, "");
	assert_int_equal(kh_err_set(NULL, KH_E_INTERNAL, "x"), KH_E_INTERNAL);
	kh_err_clear(NULL);
	/* A long message is truncated, never overflows. */
	{
		char big[2 * KH_ERR_MSG_MAX];

		memset(big, 'm', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		assert_int_equal(kh_err_set(&e, KH_E_INTERNAL, "%s", big), KH_E_INTERNAL);
		assert_int_equal(strlen(e.msg), KH_ERR_MSG_MAX - 1);
	}
}

static void test_split_hostport(void **state)
{
	char host[16], port[6];

	(void)state;
	assert_int_equal(kh_split_hostport("127.0.0.1:7443", host, sizeof(host), port, sizeof(port)), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_string_equal(port, "7443");
	assert_int_equal(kh_split_hostport("[::1]:0", host, sizeof(host), port, sizeof(port)), 0);
	assert_string_equal(host, "::1");
	assert_string_equal(port, "0");
	assert_int_equal(kh_split_hostport("[]:1", host, sizeof(host), port, sizeof(port)), 0);
	assert_string_equal(host, "");
	assert_int_equal(kh_split_hostport(":1", host, sizeof(host), port, sizeof(port)), 0);
	assert_string_equal(host, "");
	assert_int_equal(kh_split_hostport("[:1", host, sizeof(host), port, sizeof(port)), 0);
	assert_string_equal(host, "[");
	assert_int_equal(kh_split_hostport("localhost", host, sizeof(host), port, sizeof(port)), -1);
	assert_int_equal(kh_split_hostport("h:123456", host, sizeof(host), port, sizeof(port)), -1);
	assert_int_equal(kh_split_hostport("0123456789abcdef:1", host, sizeof(host), port, sizeof(port)), -1);
}

static void test_util(void **state)
{
	uint64_t v = 99;
	uint8_t b[4];
	size_t n = 0;
	char s[16];

	(void)state;
	assert_int_equal(kh_parse_u64("0", 0, 10, &v), 0);
	assert_true(v == 0);
	assert_int_equal(kh_parse_u64("10", 0, 10, &v), 0);
	assert_true(v == 10);
	assert_int_equal(kh_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_true(v == UINT64_MAX);
	v = 99;
	assert_int_equal(kh_parse_u64("11", 0, 10, &v), -1);
	assert_int_equal(kh_parse_u64("4", 5, 10, &v), -1);
	assert_int_equal(kh_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -1);
	assert_int_equal(kh_parse_u64("", 0, 10, &v), -1);
	assert_int_equal(kh_parse_u64(" 1", 0, 10, &v), -1);
	assert_int_equal(kh_parse_u64("+1", 0, 10, &v), -1);
	assert_int_equal(kh_parse_u64("-1", 0, 10, &v), -1);
	assert_int_equal(kh_parse_u64("1 ", 0, 10, &v), -1);
	assert_int_equal(kh_parse_u64("0x1", 0, 10, &v), -1);
	assert_int_equal(kh_parse_u64(NULL, 0, 10, &v), -1);
	assert_true(v == 99); /* untouched on error */

	assert_int_equal(kh_unhex("00ff:A0", b, sizeof(b), &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(b, "\x00\xff\xa0", 3);
	assert_int_equal(kh_unhex("abc", b, sizeof(b), &n), -1);
	assert_int_equal(kh_unhex("zz", b, sizeof(b), &n), -1);
	assert_int_equal(kh_unhex("0102030405", b, sizeof(b), &n), -1);
	kh_hex((const uint8_t *)"\x01\xab", 2, s, sizeof(s));
	assert_string_equal(s, "01ab");
	kh_hex((const uint8_t *)"\x01\xab\xcd", 3, s, 5); /* truncated safely */
	assert_string_equal(s, "01ab");

	assert_true(kh_strlcpy(s, "short", sizeof(s)));
	assert_string_equal(s, "short");
	assert_false(kh_strlcpy(s, "0123456789abcdefXYZ", sizeof(s)));
	assert_string_equal(s, "0123456789abcde");
	kh_copy_padded(s, sizeof(s), (const unsigned char *)"SoftHSM   ", 10);
	assert_string_equal(s, "SoftHSM");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_key_types),
		cmocka_unit_test(test_digests),
		cmocka_unit_test(test_err_names),
		cmocka_unit_test(test_util),
		cmocka_unit_test(test_split_hostport),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
