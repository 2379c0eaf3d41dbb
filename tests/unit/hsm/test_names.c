/* test_names: the CKR_/CKM_ name tables are sorted (they are searched with
 * bsearch) and cover the low values a generator once skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>
#include <p11-kit/pkcs11.h>

#include "hsm.h"

static void test_rv_names(void **state)
{
	(void)state;
	assert_string_equal(hsm_rv_name(CKR_OK), "CKR_OK");
	assert_string_equal(hsm_rv_name(CKR_HOST_MEMORY), "CKR_HOST_MEMORY");
	assert_string_equal(hsm_rv_name(CKR_GENERAL_ERROR), "CKR_GENERAL_ERROR");
	assert_string_equal(hsm_rv_name(CKR_FUNCTION_FAILED), "CKR_FUNCTION_FAILED");
	assert_string_equal(hsm_rv_name(CKR_CANT_LOCK), "CKR_CANT_LOCK");
	assert_string_equal(hsm_rv_name(CKR_DEVICE_ERROR), "CKR_DEVICE_ERROR");
	assert_string_equal(hsm_rv_name(0x140UL), "CKR_CURVE_NOT_SUPPORTED");
	assert_string_equal(hsm_rv_name(0x1B6UL), "CKR_FIPS_SELF_TEST_FAILED");
	/* Not a CKR_ value: the fallback, not a neighbour's name. */
	assert_string_equal(hsm_rv_name(0x4UL), "CKR_VENDOR_OR_UNKNOWN");
	assert_string_equal(hsm_rv_name(0x7fffffffUL), "CKR_VENDOR_OR_UNKNOWN");
}

static void test_mech_names(void **state)
{
	char buf[24];

	(void)state;
	assert_string_equal(hsm_mech_name(CKM_RSA_PKCS_KEY_PAIR_GEN, buf, sizeof(buf)),
			    "CKM_RSA_PKCS_KEY_PAIR_GEN");
	assert_string_equal(hsm_mech_name(CKM_RSA_PKCS, buf, sizeof(buf)), "CKM_RSA_PKCS");
	assert_string_equal(hsm_mech_name(CKM_RSA_X_509, buf, sizeof(buf)), "CKM_RSA_X_509");
	assert_string_equal(hsm_mech_name(CKM_RSA_PKCS_OAEP, buf, sizeof(buf)), "CKM_RSA_PKCS_OAEP");
	assert_string_equal(hsm_mech_name(CKM_RSA_PKCS_PSS, buf, sizeof(buf)), "CKM_RSA_PKCS_PSS");
	assert_string_equal(hsm_mech_name(CKM_EC_KEY_PAIR_GEN, buf, sizeof(buf)), "CKM_EC_KEY_PAIR_GEN");
	assert_string_equal(hsm_mech_name(CKM_ECDSA, buf, sizeof(buf)), "CKM_ECDSA");
	assert_string_equal(hsm_mech_name(0x80001234UL, buf, sizeof(buf)), "0x80001234");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rv_names),
		cmocka_unit_test(test_mech_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
