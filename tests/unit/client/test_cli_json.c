/* test_cli_json.c: the CLI's JSON writer (client/cli/json.c) always makes
 * valid JSON: control characters escaped, invalid UTF-8 replaced by
 * U+FFFD, valid UTF-8 kept as it is. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The escaped form of s[0..n) in a static buffer. */
static const char *esc(const char *s, size_t n)
{
	static char out[512];
	FILE *f = fmemopen(out, sizeof(out), "w");

	assert_non_null(f);
	cli_json_escape(f, s, n);
	fclose(f);
	return out;
}

static void test_escape(void **state)
{
	(void)state;
	assert_string_equal(esc("abc", 3), "\"abc\"");
	assert_string_equal(esc("a\"b\\c", 5), "\"a\\\"b\\\\c\"");
	assert_string_equal(esc("\n\r\t\x01\x1f\x7f", 6), "\"\\n\\r\\t\\u0001\\u001f\\u007f\"");
	/* A NUL inside a counted string is escaped, not an end. */
	assert_string_equal(esc("a\0b", 3), "\"a\\u0000b\"");
	/* Valid UTF-8 stays as it is. */
	assert_string_equal(esc("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91", 14),
			    "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91\"");
	/* Invalid bytes become U+FFFD, one each. */
	assert_string_equal(esc("a\xff" "b", 3), "\"a\\ufffdb\"");
	assert_string_equal(esc("\xc3", 1), "\"\\ufffd\"");        /* cut character */
	assert_string_equal(esc("\xe2\x82", 2), "\"\\ufffd\\ufffd\"");
	assert_string_equal(esc("\xc0\xaf", 2), "\"\\ufffd\\ufffd\""); /* overlong '/' */
	assert_string_equal(esc("\xed\xa0\x80", 3), "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
	assert_string_equal(esc("\x80x", 2), "\"\\ufffdx\"");
}

static void test_document(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct cli_json *j;

	(void)state;
	assert_non_null(f);
	j = cli_json_new(f);
	cli_json_obj(j, NULL);
	cli_json_str(j, "label\xff", "x\xfe\x01");
	cli_json_arr(j, "a");
	cli_json_u64(j, NULL, 1);
	cli_json_bool(j, NULL, true);
	cli_json_end_arr(j);
	cli_json_end_obj(j);
	cli_json_free(j);
	fclose(f);
	assert_string_equal(buf, "{\"label\\ufffd\":\"x\\ufffd\\u0001\",\"a\":[1,true]}\n");
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_document),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
