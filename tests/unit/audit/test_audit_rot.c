/* test_audit_rot.c: the pure parts of audit rotation (service/audit/audit.c):
 * rotated file names (made, parsed, refused) and their listing in order,
 * and the [audit] rotate_size parser (svc_config_bytes). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "config/config.h"

static void test_name_roundtrip(void **state)
{
	char name[64];
	uint64_t f = 0, l = 0;

	(void)state;
	assert_true(audit_rot_name("audit.log", 1, 517, name, sizeof(name)));
	assert_string_equal(name, "audit.log.000000000001-000000000517");
	assert_true(audit_rot_parse("audit.log", name, &f, &l));
	assert_int_equal(f, 1);
	assert_int_equal(l, 517);
	/* Wider numbers than the padding still parse. */
	assert_true(audit_rot_parse("audit.log", "audit.log.1234567890123-1234567890124", &f, &l));
	assert_int_equal(f, 1234567890123ULL);
	assert_false(audit_rot_name("audit.log", 1, 2, name, 20)); /* does not fit */
}

static void test_name_refused(void **state)
{
	static const char *const bad[] = {
		"audit.log", "audit.log.", "audit.log.1", "audit.log.1-", "audit.log.-2", "audit.log.5-4",
		"audit.log.0-4", "audit.log.1-2.tmp", "audit.log.+1-2", "audit.log. 1-2", "audit.logx1-2",
		"other.log.1-2", "audit.log.1-2-3", "audit.log.123456789012345678901-123456789012345678902",
	};
	uint64_t f, l;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(audit_rot_parse("audit.log", bad[i], &f, &l));
}

static void test_list_order(void **state)
{
	char dir[] = "/tmp/kh-audit-rot.XXXXXX", path[256];
	static const char *const files[] = { "a.log.000000000100-000000000199", "a.log.000000000001-000000000099",
					     "a.log.1000-1099", "a.log", "a.log.junk", "b.log.000000000200-000000000299" };
	struct audit_rotfile *rf = NULL;
	size_t n = 9, i;

	(void)state;
	assert_non_null(mkdtemp(dir));
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		f = fopen(path, "w");
		assert_non_null(f);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/a.log", dir);
	assert_int_equal(audit_rot_list(path, &rf, &n), KH_OK);
	assert_int_equal(n, 3);
	assert_int_equal(rf[0].first, 1);
	assert_int_equal(rf[1].first, 100);
	assert_int_equal(rf[2].first, 1000); /* numeric, not by the name's text */
	assert_string_equal(rf[2].name, "a.log.1000-1099");
	free(rf);
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

static void test_bytes(void **state)
{
	uint64_t v = 0;

	(void)state;
	assert_int_equal(svc_config_bytes("4096", &v), KH_OK);
	assert_int_equal(v, 4096);
	assert_int_equal(svc_config_bytes("512K", &v), KH_OK);
	assert_int_equal(v, 512u * 1024);
	assert_int_equal(svc_config_bytes("64M", &v), KH_OK);
	assert_int_equal(v, 64u << 20);
	assert_int_equal(svc_config_bytes("2G", &v), KH_OK);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(svc_config_bytes("0", &v), KH_OK);
	assert_int_equal(v, 0);
	assert_int_not_equal(svc_config_bytes("", &v), KH_OK);
	assert_int_not_equal(svc_config_bytes("M", &v), KH_OK);
	assert_int_not_equal(svc_config_bytes("-1", &v), KH_OK);
	assert_int_not_equal(svc_config_bytes("1T", &v), KH_OK);
	assert_int_not_equal(svc_config_bytes("1.5M", &v), KH_OK);
	assert_int_not_equal(svc_config_bytes("99999999999999999999G", &v), KH_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_roundtrip),
		cmocka_unit_test(test_name_refused),
		cmocka_unit_test(test_list_order),
		cmocka_unit_test(test_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
