/* test_acme_eab.c: the pieces of ACME that need no server: the external
 * account binding MAC key as a CA hands it out (base64url, RFC 8555
 * §7.3.4; pkg/acme/pebble's example key), with truncation and bit-flip
 * loops, and the renewal back-off (5 minutes doubling to a day). The
 * exchanges are tests/integration/test_acme*.sh against pebble. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pki/acme.h"
#include "revocation/revocation.h"
#include "store/store.h"

static const char eab_key[] = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";

static void test_eab_key(void **state)
{
	struct store_tp_acme a;
	struct kh_errbuf e = { 0 };
	char buf[sizeof(eab_key) + 4];

	(void)state;
	memset(&a, 0, sizeof(a));
	assert_int_equal(svc_acme_eab_key((const uint8_t *)eab_key, strlen(eab_key), &a, &e), KH_OK);
	assert_int_equal(a.eab_key_len, 48);
	assert_int_equal(a.eab_key[0], 0xcd);  /* 'zWND' -> cd 63 43 */
	assert_int_equal(a.eab_key[1], 0x63);
	assert_int_equal(a.eab_key[47], 0x96); /* "...Q12W" */
	/* A newline and blanks around it, as a file has it. */
	snprintf(buf, sizeof(buf), " %s\n", eab_key);
	memset(&a, 0, sizeof(a));
	assert_int_equal(svc_acme_eab_key((const uint8_t *)buf, strlen(buf), &a, &e), KH_OK);
	assert_int_equal(a.eab_key_len, 48);
	/* Standard base64, padding, junk: refused in words (the first reason
	 * stays in e: cleared before each). */
	kh_err_clear(&e);
	assert_int_equal(svc_acme_eab_key((const uint8_t *)"zWND+M6e/GHWpSRTPal5eIUY", 24, &a, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "not base64url"));
	assert_int_equal(svc_acme_eab_key((const uint8_t *)"zWNDZM6eQGHWpSRTPal5eIU=", 24, &a, &e), KH_E_INVALID_ARGUMENT);
	assert_int_equal(svc_acme_eab_key((const uint8_t *)"", 0, &a, &e), KH_E_INVALID_ARGUMENT);
	/* Too short a key (12 bytes). */
	kh_err_clear(&e);
	assert_int_equal(svc_acme_eab_key((const uint8_t *)"zWNDZM6eQGHWpSRT", 16, &a, &e), KH_E_INVALID_ARGUMENT);
	assert_non_null(strstr(e.msg, "16 to"));
	store_tp_acme_clear(&a);
}

static void test_eab_key_truncated_and_flipped(void **state)
{
	struct store_tp_acme a;
	struct kh_errbuf e = { 0 };
	uint8_t buf[sizeof(eab_key)];
	size_t n = strlen(eab_key), i;
	int bit, r;

	(void)state;
	for (i = 0; i <= n; i++) {
		memset(&a, 0, sizeof(a));
		r = svc_acme_eab_key((const uint8_t *)eab_key, i, &a, &e);
		/* 22 characters (16 bytes) and up decode, except a length of
		 * 4k+1, which no base64 has. */
		assert_int_equal(r, i >= 22 && i % 4 != 1 ? KH_OK : KH_E_INVALID_ARGUMENT);
		if (r == KH_OK)
			assert_int_equal(a.eab_key_len, i * 3 / 4);
	}
	for (i = 0; i < n; i++)
		for (bit = 0; bit < 8; bit++) {
			memcpy(buf, eab_key, n);
			buf[i] ^= (uint8_t)(1u << bit);
			memset(&a, 0, sizeof(a));
			r = svc_acme_eab_key(buf, n, &a, &e);
			assert_true(r == KH_OK || r == KH_E_INVALID_ARGUMENT);
			if (r == KH_OK)
				assert_int_equal(a.eab_key_len, 48);
		}
	store_tp_acme_clear(&a);
}

static void test_backoff(void **state)
{
	(void)state;
	assert_int_equal(svc_renew_acme_backoff(1), 300);
	assert_int_equal(svc_renew_acme_backoff(2), 600);
	assert_int_equal(svc_renew_acme_backoff(3), 1200);
	assert_int_equal(svc_renew_acme_backoff(9), 76800);
	assert_int_equal(svc_renew_acme_backoff(10), 86400);
	assert_int_equal(svc_renew_acme_backoff(4000000000u), 86400);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eab_key),
		cmocka_unit_test(test_eab_key_truncated_and_flipped),
		cmocka_unit_test(test_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
