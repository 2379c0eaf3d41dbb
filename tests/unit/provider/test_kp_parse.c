/* test_kp_parse.c: the OpenSSL provider's keyhold: URI and KEYHOLD KEY
 * reference-body parsers (client/provider/kp_parse.c): good and bad
 * URIs, an encode/parse round trip, every truncation and every bit flip
 * of a reference body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kp_parse.h"

/* A stand-in SubjectPublicKeyInfo: one SEQUENCE TLV (the parser checks
 * no more; the provider hands it to d2i_PUBKEY). */
static const uint8_t spki[] = { 0x30, 0x05, 0x30, 0x03, 0x06, 0x01, 0x00 };

static void test_uri_good(void **state)
{
	struct kp_ref r;

	(void)state;
	assert_int_equal(kp_uri_parse("keyhold:key=web", &r), 0);
	assert_string_equal(r.name, "web");
	assert_string_equal(r.socket, "");
	assert_int_equal(kp_uri_parse("keyhold:socket=/run/k%3Bs.sock;key=a.b_c-1", &r), 0);
	assert_string_equal(r.name, "a.b_c-1");
	assert_string_equal(r.socket, "/run/k;s.sock");
	assert_int_equal(kp_uri_parse("keyhold:key=%77eb", &r), 0);
	assert_string_equal(r.name, "web");
}

static void test_uri_bad(void **state)
{
	static const char *const bad[] = {
		"", "keyhold:", "pkcs11:key=web", "keyhold:key=", "keyhold:key=a b", "keyhold:key=a;",
		"keyhold:key=a;key=b", "keyhold:key=a;socket=", "keyhold:key=a;other=1", "keyhold:key=%", "keyhold:key=%4",
		"keyhold:key=%zz", "keyhold:key=a;socket=%00", "keyhold:socket=/x", "keyhold:key",
		"keyhold:key=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	struct kp_ref r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(kp_uri_parse(bad[i], &r), -1);
	assert_int_equal(kp_uri_parse(NULL, &r), -1);
}

static size_t make_ref(uint8_t *buf, size_t cap)
{
	struct kp_ref r;
	size_t len = 0;

	memset(&r, 0, sizeof(r));
	memcpy(r.name, "web-tls", 8);
	memcpy(r.socket, "/run/keyhold/keyhold.sock", 26);
	r.spki = spki;
	r.spki_len = sizeof(spki);
	assert_int_equal(kp_ref_encode(&r, buf, cap, &len), 0);
	return len;
}

static void test_ref_round_trip(void **state)
{
	uint8_t buf[256];
	size_t len = make_ref(buf, sizeof(buf));
	struct kp_ref r;

	(void)state;
	assert_int_equal(kp_ref_parse(buf, len, &r), 0);
	assert_string_equal(r.name, "web-tls");
	assert_string_equal(r.socket, "/run/keyhold/keyhold.sock");
	assert_int_equal(r.spki_len, sizeof(spki));
	assert_memory_equal(r.spki, spki, sizeof(spki));
	/* A buffer too small for the encoding is refused. */
	assert_int_equal(kp_ref_encode(&r, buf, 10, &len), -1);
}

static void test_ref_truncated(void **state)
{
	uint8_t buf[256];
	size_t len = make_ref(buf, sizeof(buf)), n;
	struct kp_ref r;

	(void)state;
	for (n = 0; n < len; n++)
		assert_int_equal(kp_ref_parse(buf, n, &r), -1);
	/* Trailing bytes are refused too. */
	buf[len] = 0;
	assert_int_equal(kp_ref_parse(buf, len + 1, &r), -1);
}

static void test_ref_bitflips(void **state)
{
	uint8_t buf[256];
	size_t len = make_ref(buf, sizeof(buf)), i;
	int bit;
	struct kp_ref r;

	(void)state;
	for (i = 0; i < len; i++) {
		for (bit = 0; bit < 8; bit++) {
			buf[i] ^= (uint8_t)(1u << bit);
			/* Any outcome but a crash; a success keeps its fields in bounds. */
			if (kp_ref_parse(buf, len, &r) == 0) {
				assert_true(kp_name_ok(r.name, strlen(r.name)));
				assert_true(r.spki >= buf && r.spki + r.spki_len <= buf + len);
			}
			buf[i] ^= (uint8_t)(1u << bit);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uri_good),	 cmocka_unit_test(test_uri_bad),
		cmocka_unit_test(test_ref_round_trip), cmocka_unit_test(test_ref_truncated),
		cmocka_unit_test(test_ref_bitflips),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
