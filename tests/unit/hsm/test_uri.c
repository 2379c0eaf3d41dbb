/* test_uri.c: RFC 7512 PKCS#11 URI parsing (hsm/uri.c): the attributes
 * keyhold selects a token or object by, percent-encoding, and everything
 * that must be refused (repeats, bad escapes, PINs, unknown attributes). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "hsm.h"

static void parse_ok(const char *s, struct hsm_uri *u)
{
	struct kh_errbuf e = { 0 };

	memset(u, 0x5a, sizeof(*u));
	if (hsm_uri_parse(s, u, &e) != KH_OK)
		fail_msg("'%s' refused: %s", s, e.msg);
	assert_int_equal(e.code, KH_OK);
}

/* Expects INVALID_ARGUMENT with a message containing want; *out is left
 * untouched (out-params are written only on success). */
static void parse_bad(const char *s, const char *want)
{
	struct kh_errbuf e = { 0 };
	struct hsm_uri u;

	memset(&u, 0x5a, sizeof(u));
	if (hsm_uri_parse(s, &u, &e) == KH_OK)
		fail_msg("'%s' was accepted", s);
	assert_int_equal(e.code, KH_E_INVALID_ARGUMENT);
	if (want != NULL && strstr(e.msg, want) == NULL)
		fail_msg("'%s': message '%s' does not mention '%s'", s, e.msg, want);
	assert_int_equal(u.token[0], 0x5a);
}

static void test_token(void **state)
{
	struct hsm_uri u;

	(void)state;
	parse_ok("pkcs11:token=keyhold", &u);
	assert_true(u.has_token);
	assert_string_equal(u.token, "keyhold");
	assert_false(u.has_serial);
	assert_false(u.has_object);
	assert_false(u.has_id);
	assert_false(u.has_slot_id);
	assert_false(u.has_manufacturer);
	assert_false(u.has_model);
	assert_string_equal(u.type, "");

	/* An empty value is a value (RFC 7512 allows "serial="). */
	parse_ok("pkcs11:token=", &u);
	assert_true(u.has_token);
	assert_string_equal(u.token, "");

	/* The bare scheme selects nothing in particular. */
	parse_ok("pkcs11:", &u);
	assert_false(u.has_token);
	assert_false(u.has_serial);
}

static void test_serial(void **state)
{
	struct hsm_uri u;

	(void)state;
	parse_ok("pkcs11:serial=0123456789abcdef", &u);
	assert_true(u.has_serial);
	assert_false(u.has_token);
	assert_string_equal(u.serial, "0123456789abcdef");

	parse_ok("pkcs11:token=keyhold;serial=ABC;manufacturer=SoftHSM%20project;model=SoftHSM%20v2", &u);
	assert_string_equal(u.token, "keyhold");
	assert_string_equal(u.serial, "ABC");
	assert_string_equal(u.manufacturer, "SoftHSM project");
	assert_string_equal(u.model, "SoftHSM v2");
	/* A trailing separator is harmless. */
	parse_ok("pkcs11:serial=7;", &u);
	assert_string_equal(u.serial, "7");
}

static void test_percent_encoding(void **state)
{
	struct hsm_uri u;

	(void)state;
	parse_ok("pkcs11:token=My%20Token", &u);
	assert_string_equal(u.token, "My Token");
	parse_ok("pkcs11:token=%4b%65%59", &u); /* lower- and upper-case hex */
	assert_string_equal(u.token, "KeY");
	parse_ok("pkcs11:token=%3b%3D%25%3f", &u); /* ; = % ? encoded */
	assert_string_equal(u.token, ";=%?");
	parse_ok("pkcs11:token=a%2Fb", &u);
	assert_string_equal(u.token, "a/b");
	/* pk11-path-res-avail: ":" "[" "]" "@" "!" "$" "'" "(" ")" "*" "+"
	 * "," "=" "&" stand unencoded (RFC 7512 §2.3). */
	parse_ok("pkcs11:token=a:[b]@!$'()*+,=&~._-", &u);
	assert_string_equal(u.token, "a:[b]@!$'()*+,=&~._-");
	/* UTF-8 labels are percent-encoded bytes. */
	parse_ok("pkcs11:token=%C3%A9t%C3%A9", &u);
	assert_string_equal(u.token, "\xc3\xa9t\xc3\xa9");
	/* The whole field: 64 bytes fit, 65 do not. */
	parse_ok("pkcs11:token=0123456789012345678901234567890123456789012345678901234567890123", &u);
	assert_int_equal(strlen(u.token), HSM_URI_FIELD_MAX);
	parse_bad("pkcs11:token=01234567890123456789012345678901234567890123456789012345678901234", "longer");
	/* Length counts decoded bytes: 64 escapes are 64 bytes. */
	{
		char s[16 + 3 * 64 + 1];
		size_t i, o = 0;

		memcpy(s, "pkcs11:token=", 13);
		o = 13;
		for (i = 0; i < 64; i++) {
			memcpy(s + o, "%41", 3);
			o += 3;
		}
		s[o] = '\0';
		parse_ok(s, &u);
		assert_int_equal(strlen(u.token), 64);
		assert_int_equal(u.token[63], 'A');
	}
}

static void test_bad_escapes(void **state)
{
	(void)state;
	parse_bad("pkcs11:token=a%", "malformed");
	parse_bad("pkcs11:token=a%4", "malformed");
	parse_bad("pkcs11:token=%zz", "malformed");
	parse_bad("pkcs11:token=%g0", "malformed");
	parse_bad("pkcs11:token=%-1", "malformed");
	parse_bad("pkcs11:token=%00", "NUL");
	parse_bad("pkcs11:token=a%00b", "NUL");
	parse_bad("pkcs11:token=a b", "malformed");      /* space must be %20 */
	parse_bad("pkcs11:token=a\tb", "malformed");
	parse_bad("pkcs11:token=\xc3\xa9", "malformed"); /* raw non-ASCII */
	parse_bad("pkcs11:token=a\"b", "malformed");
	parse_bad("pkcs11:token=a#b", "malformed");
	parse_bad("pkcs11:token=a|b", "malformed");
	parse_bad("pkcs11:token=a\\b", "malformed");
	parse_bad("pkcs11:id=%4", "id");
	parse_bad("pkcs11:id=%zz", "id");
}

static void test_repeated(void **state)
{
	(void)state;
	parse_bad("pkcs11:token=a;token=b", "repeats");
	parse_bad("pkcs11:token=a;token=a", "repeats");
	parse_bad("pkcs11:serial=1;token=a;serial=2", "repeats");
	parse_bad("pkcs11:object=k;object=k", "repeats");
	parse_bad("pkcs11:manufacturer=a;manufacturer=b", "repeats");
	parse_bad("pkcs11:model=a;model=b", "repeats");
	parse_bad("pkcs11:id=%01;id=%02", "repeats");
	parse_bad("pkcs11:type=private;type=public", "repeats");
	parse_bad("pkcs11:slot-id=1;slot-id=2", "repeats");
}

static void test_pin_refused(void **state)
{
	(void)state;
	parse_bad("pkcs11:token=keyhold?pin-value=1234", "PIN");
	parse_bad("pkcs11:token=keyhold?pin-source=file:/etc/pin", "PIN");
	parse_bad("pkcs11:token=keyhold?module-path=/x.so&pin-value=1234", "PIN");
	/* In the path (where RFC 7512 does not put them at all). */
	parse_bad("pkcs11:token=keyhold;pin-value=1234", "PIN");
	parse_bad("pkcs11:pin-source=file:/etc/pin;token=keyhold", "PIN");
}

static void test_query_ignored(void **state)
{
	struct hsm_uri u;

	(void)state;
	/* Query attributes other than the PIN do not change the selection. */
	parse_ok("pkcs11:token=keyhold?module-path=/usr/lib/softhsm/libsofthsm2.so", &u);
	assert_string_equal(u.token, "keyhold");
	parse_ok("pkcs11:token=keyhold?module-name=softhsm2", &u);
	assert_string_equal(u.token, "keyhold");
}

static void test_unknown_and_vendor(void **state)
{
	struct hsm_uri u;

	(void)state;
	parse_bad("pkcs11:label=keyhold", "unknown PKCS#11 URI attribute 'label'");
	parse_bad("pkcs11:Token=keyhold", "unknown"); /* names are case-sensitive */
	parse_bad("pkcs11:token=keyhold;bogus=1", "'bogus'");
	parse_bad("pkcs11:x-=1", "unknown");           /* "x-" alone names nothing */
	parse_bad("pkcs11:token", "has no '='");
	parse_bad("pkcs11:token=a;;serial=1", "has no '='");
	/* Vendor attributes (RFC 7512 §2.3, "x-" prefix) are allowed. */
	parse_ok("pkcs11:token=keyhold;x-vendor=whatever;x-a=%20", &u);
	assert_string_equal(u.token, "keyhold");
	/* Valid RFC 7512 attributes keyhold does not select on. */
	parse_ok("pkcs11:token=k;library-manufacturer=OpenSC;library-description=d;library-version=2.6;"
		 "slot-description=s;slot-manufacturer=m", &u);
	assert_string_equal(u.token, "k");
}

static void test_object_type_id(void **state)
{
	struct hsm_uri u;
	static const char *const types[] = { "private", "public", "cert", "secret-key", "data" };
	size_t i;

	(void)state;
	parse_ok("pkcs11:token=keyhold;object=web;type=private;id=%01%02%ff%00", &u);
	assert_true(u.has_object);
	assert_string_equal(u.object, "web");
	assert_string_equal(u.type, "private");
	assert_true(u.has_id);
	assert_int_equal(u.id_len, 4);
	assert_memory_equal(u.id, "\x01\x02\xff\x00", 4); /* ids are binary: NUL allowed */
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		char s[64];

		memcpy(s, "pkcs11:type=", 12);
		memcpy(s + 12, types[i], strlen(types[i]) + 1);
		parse_ok(s, &u);
		assert_string_equal(u.type, types[i]);
	}
	parse_bad("pkcs11:type=secret", "type");
	parse_bad("pkcs11:type=Private", "type");
	parse_bad("pkcs11:type=", "type");
}

static void test_slot_id(void **state)
{
	struct hsm_uri u;

	(void)state;
	parse_ok("pkcs11:slot-id=0", &u);
	assert_true(u.has_slot_id);
	assert_true(u.slot_id == 0);
	parse_ok("pkcs11:slot-id=1858286133;token=keyhold", &u);
	assert_true(u.slot_id == 1858286133u);
	parse_ok("pkcs11:slot-id=18446744073709551615", &u);
	assert_true(u.slot_id == UINT64_MAX);
	parse_bad("pkcs11:slot-id=18446744073709551616", "slot-id");
	parse_bad("pkcs11:slot-id=", "slot-id");
	parse_bad("pkcs11:slot-id=-1", "slot-id");
	parse_bad("pkcs11:slot-id=0x10", "slot-id");
	parse_bad("pkcs11:slot-id=1a", "slot-id");
	parse_bad("pkcs11:slot-id=%20", "slot-id");
	parse_bad("pkcs11:slot-id=123456789012345678901234567890", "slot-id");
}

static void test_not_a_uri(void **state)
{
	struct kh_errbuf e = { 0 };
	struct hsm_uri u;

	(void)state;
	parse_bad("", "pkcs11:");
	parse_bad("PKCS11:token=a", "pkcs11:");
	parse_bad("pkcs11", "pkcs11:");
	parse_bad("token=keyhold", "pkcs11:");
	parse_bad(" pkcs11:token=a", "pkcs11:");
	assert_int_equal(hsm_uri_parse(NULL, &u, &e), KH_E_INVALID_ARGUMENT);
	/* NULL errbuf is fine. */
	assert_int_equal(hsm_uri_parse("nope", &u, NULL), KH_E_INVALID_ARGUMENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token),
		cmocka_unit_test(test_serial),
		cmocka_unit_test(test_percent_encoding),
		cmocka_unit_test(test_bad_escapes),
		cmocka_unit_test(test_repeated),
		cmocka_unit_test(test_pin_refused),
		cmocka_unit_test(test_query_ignored),
		cmocka_unit_test(test_unknown_and_vendor),
		cmocka_unit_test(test_object_type_id),
		cmocka_unit_test(test_slot_id),
		cmocka_unit_test(test_not_a_uri),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
