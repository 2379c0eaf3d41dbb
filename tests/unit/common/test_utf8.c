/* test_utf8.c: kh_utf8_char, kh_utf8_cut and kh_utf8_sanitize (kh_text.h):
 * RFC 3629's well-formed sequences, cuts at character boundaries and
 * the replacement of everything else, as Status.message relies on. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "kh_err.h"
#include "kh_text.h"

/* Whether s[0..n) is well-formed UTF-8, by kh_utf8_char. */
static int valid(const char *s, size_t n)
{
	size_t off = 0, k;

	while (off < n) {
		k = kh_utf8_char((const unsigned char *)s + off, n - off);
		if (k == 0)
			return 0;
		off += k;
	}
	return 1;
}

static void test_char(void **state)
{
	static const struct {
		const char *s;
		size_t want;
	} cases[] = {
		{ "a", 1 }, { "\x7f", 1 }, { "\xc3\xa9", 2 }, { "\xe2\x82\xac", 3 }, { "\xf0\x9f\x94\x91", 4 },
		{ "\xef\xbf\xbd", 3 }, { "\xf4\x8f\xbf\xbf", 4 }, /* U+10FFFF */
		{ "\x80", 0 }, { "\xbf", 0 },                  /* lone continuation */
		{ "\xc0\xaf", 0 }, { "\xc1\xbf", 0 },          /* overlong 2 */
		{ "\xe0\x80\xaf", 0 }, { "\xf0\x80\x80\xaf", 0 }, /* overlong 3, 4 */
		{ "\xed\xa0\x80", 0 },                         /* surrogate U+D800 */
		{ "\xf4\x90\x80\x80", 0 },                     /* past U+10FFFF */
		{ "\xf5\x80\x80\x80", 0 }, { "\xff", 0 }, { "\xfe", 0 },
		{ "\xc3", 0 }, { "\xe2\x82", 0 }, { "\xf0\x9f\x94", 0 }, /* truncated */
		{ "\xc3\x28", 0 },                             /* bad continuation */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(kh_utf8_char((const unsigned char *)cases[i].s, strlen(cases[i].s)), cases[i].want);
	assert_int_equal(kh_utf8_char((const unsigned char *)"", 0), 0);
}

static void test_cut(void **state)
{
	const char *euro = "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"; /* three 3-byte characters */
	size_t max;

	(void)state;
	assert_int_equal(kh_utf8_cut("abc", 3, 10), 3);
	assert_int_equal(kh_utf8_cut("abc", 3, 2), 2);
	assert_int_equal(kh_utf8_cut(euro, 9, 9), 9);
	/* Every max lands on a boundary, never inside a character. */
	for (max = 0; max < 9; max++)
		assert_int_equal(kh_utf8_cut(euro, 9, max), max / 3 * 3);
	/* An invalid byte counts as one, so a cut still makes progress. */
	assert_int_equal(kh_utf8_cut("\xff\xff\xff", 3, 2), 2);
}

static void test_sanitize(void **state)
{
	char out[64], small[8];
	char big[600], cut[KH_ERR_MSG_MAX];
	struct kh_errbuf e = { 0 };
	size_t i, n;

	(void)state;
	assert_int_equal(kh_utf8_sanitize(out, sizeof(out), "plain"), 5);
	assert_string_equal(out, "plain");
	kh_utf8_sanitize(out, sizeof(out), "caf\xc3\xa9");
	assert_string_equal(out, "caf\xc3\xa9");
	/* Each invalid byte becomes U+FFFD. */
	kh_utf8_sanitize(out, sizeof(out), "a\xff" "b\xc3(\xed\xa0\x80");
	assert_string_equal(out, "a\xef\xbf\xbd" "b\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	/* Too long: cut where a character ends (7 bytes of room: two euros). */
	n = kh_utf8_sanitize(small, sizeof(small), "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac");
	assert_int_equal(n, 6);
	assert_true(valid(small, n));
	/* A replacement that does not fit is left out whole. */
	n = kh_utf8_sanitize(small, 3, "a\xff");
	assert_string_equal(small, "a");
	(void)n;

	/* kh_err_set: a message that quotes non-ASCII text at a "%.Ns" or
	 * past the buffer's end stays valid UTF-8. */
	for (i = 0; i + 3 <= sizeof(big) - 1; i += 3)
		memcpy(big + i, "\xe2\x82\xac", 3);
	big[i] = '\0';
	for (i = 0; i < 3; i++) {
		kh_err_clear(&e);
		kh_ignore(kh_err_set(&e, KH_E_INVALID_ARGUMENT, "%.*sx '%.64s'", (int)i, "ab", big));
		assert_true(valid(e.msg, strlen(e.msg)));
		kh_err_clear(&e);
		kh_ignore(kh_err_set(&e, KH_E_INVALID_ARGUMENT, "%.*s%s", (int)i, "ab", big));
		assert_true(strlen(e.msg) > KH_ERR_MSG_MAX - 4);
		assert_true(valid(e.msg, strlen(e.msg)));
	}
	/* KH_UTF8_PREC: "%.*s" cut at a boundary. */
	snprintf(cut, sizeof(cut), "'%.*s'", KH_UTF8_PREC(big, 64));
	assert_int_equal(strlen(cut), 2 + 63);
	assert_true(valid(cut, strlen(cut)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_char),
		cmocka_unit_test(test_cut),
		cmocka_unit_test(test_sanitize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
