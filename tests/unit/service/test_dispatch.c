/* test_dispatch.c: the refusals svc_dispatch decides before any handler
 * runs (rpc/dispatch.c): the deadline, the caller's roles, per-key grants
 * (decided before the token is asked), and the service state for methods
 * that produce cryptographic output. No token: a request that got past
 * these checks would reach the token and crash the test (s->hsm is NULL),
 * so each case also proves the handler was not called. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/svc.h"
#include "rpc/dispatch.h"
#include "config/config.h"
#include "keyhold.pb-c.h"
#include "proto.h"

/* A decoded request for method with body (a packed message). */
static void make_req(const char *method, const ProtobufCMessage *body, uint64_t id, struct proto_req *q)
{
	Keyhold__V1__Request env;
	struct kh_errbuf e = { 0 };
	uint8_t *bb = NULL, *eb = NULL;
	size_t bn = 0, en;

	keyhold__v1__request__init(&env);
	if (body != NULL) {
		bn = protobuf_c_message_get_packed_size(body);
		bb = malloc(bn + 1);
		assert_non_null(bb);
		assert_true(protobuf_c_message_pack(body, bb) == bn);
	}
	env.id = id;
	env.method = (char *)(uintptr_t)method;
	env.body.data = bb;
	env.body.len = bn;
	en = keyhold__v1__request__get_packed_size(&env);
	eb = malloc(en + 1);
	assert_non_null(eb);
	assert_true(keyhold__v1__request__pack(&env, eb) == en);
	assert_int_equal(proto_request_decode(eb, en, q, &e), KH_OK);
	free(bb);
	free(eb);
}

/* Dispatches q as who in state and returns the answer's code; the
 * message goes to msg. */
static enum kh_err dispatch(struct svc *s, unsigned roles, struct proto_req *q, uint64_t deadline_us, char *msg,
			    size_t msgsz, uint64_t want_id)
{
	struct svc_principal who;
	uint8_t *frame = NULL;
	size_t len = 0;
	Keyhold__V1__Response *r;
	enum kh_err code;

	memset(&who, 0, sizeof(who));
	who.is_unix = true;
	who.uid = 4242;
	snprintf(who.name, sizeof(who.name), "uid:4242");
	who.roles = roles;
	svc_dispatch(s, &who, q, deadline_us, &frame, &len);
	assert_non_null(frame);
	assert_true(len > PROTO_HDR_LEN);
	r = keyhold__v1__response__unpack(NULL, len - PROTO_HDR_LEN, frame + PROTO_HDR_LEN);
	assert_non_null(r);
	assert_non_null(r->status);
	assert_true(r->id == want_id);
	code = (enum kh_err)-r->status->code;
	snprintf(msg, msgsz, "%s", r->status->message);
	keyhold__v1__response__free_unpacked(r, NULL);
	free(frame);
	proto_req_clear(q);
	return code;
}

static void svc_init(struct svc *s, enum svc_state st)
{
	memset(s, 0, sizeof(*s));
	atomic_store(&s->state, st);
}

static void test_roles(void **state)
{
	struct svc s;
	struct proto_req q;
	char msg[256];
	Keyhold__V1__GenerateKeyRequest g;
	Keyhold__V1__SignRequest sg;
	uint8_t data[4] = { 1, 2, 3, 4 };

	(void)state;
	keyhold__v1__generate_key_request__init(&g);
	keyhold__v1__sign_request__init(&sg);
	svc_init(&s, SVC_STATE_OPERATIONAL);
	g.name = (char *)(uintptr_t)"web";
	g.type = KEYHOLD__V1__KEY_TYPE__P256;
	/* A signer may not generate keys. */
	make_req("GenerateKey", &g.base, 7, &q);
	assert_int_equal(dispatch(&s, SVC_ROLE_SIGNER, &q, 0, msg, sizeof(msg), 7), KH_E_PERMISSION_DENIED);
	assert_non_null(strstr(msg, "uid:4242 may not call GenerateKey"));
	assert_non_null(strstr(msg, "needs the admin role"));
	/* A peer with no role gets nothing, not even the status. */
	make_req("GetStatus", NULL, 8, &q);
	assert_int_equal(dispatch(&s, 0, &q, 0, msg, sizeof(msg), 8), KH_E_PERMISSION_DENIED);
	assert_non_null(strstr(msg, "may not call GetStatus"));
	/* An auditor does not sign. */
	sg.key = (char *)(uintptr_t)"web";
	sg.input_case = KEYHOLD__V1__SIGN_REQUEST__INPUT_MESSAGE;
	sg.message.data = data;
	sg.message.len = sizeof(data);
	make_req("Sign", &sg.base, 9, &q);
	assert_int_equal(dispatch(&s, SVC_ROLE_AUDITOR, &q, 0, msg, sizeof(msg), 9), KH_E_PERMISSION_DENIED);
	assert_non_null(strstr(msg, "needs the admin signer role"));
	/* Only admins may grant. */
	make_req("ListKeyGrants", NULL, 10, &q);
	assert_int_equal(dispatch(&s, SVC_ROLE_SIGNER, &q, 0, msg, sizeof(msg), 10), KH_E_PERMISSION_DENIED);
}

static void test_key_grants(void **state)
{
	struct svc s;
	struct proto_req q;
	char msg[256];
	Keyhold__V1__SignRequest sg;
	Keyhold__V1__GetPublicKeyRequest gp;
	uint8_t data[4] = { 1, 2, 3, 4 };

	(void)state;
	keyhold__v1__sign_request__init(&sg);
	keyhold__v1__get_public_key_request__init(&gp);
	svc_init(&s, SVC_STATE_OPERATIONAL);
	/* A signer without a grant for the key is refused before the token
	 * is asked, whether or not the key exists. */
	sg.key = (char *)(uintptr_t)"nosuchkey";
	sg.input_case = KEYHOLD__V1__SIGN_REQUEST__INPUT_MESSAGE;
	sg.message.data = data;
	sg.message.len = sizeof(data);
	make_req("Sign", &sg.base, 11, &q);
	assert_int_equal(dispatch(&s, SVC_ROLE_SIGNER, &q, 0, msg, sizeof(msg), 11), KH_E_PERMISSION_DENIED);
	assert_string_equal(msg, "uid:4242 has no grant for key 'nosuchkey'");
	gp.name = (char *)(uintptr_t)"web";
	make_req("GetPublicKey", &gp.base, 12, &q);
	assert_int_equal(dispatch(&s, SVC_ROLE_SIGNER, &q, 0, msg, sizeof(msg), 12), KH_E_PERMISSION_DENIED);
	assert_non_null(strstr(msg, "no grant for key 'web'"));
}

static void test_state_and_deadline(void **state)
{
	struct svc s;
	struct proto_req q;
	char msg[256];
	Keyhold__V1__SignRequest sg;
	Keyhold__V1__DeleteKeyRequest dk;
	uint8_t data[4] = { 1, 2, 3, 4 };

	(void)state;
	keyhold__v1__sign_request__init(&sg);
	keyhold__v1__delete_key_request__init(&dk);
	sg.key = (char *)(uintptr_t)"web";
	sg.input_case = KEYHOLD__V1__SIGN_REQUEST__INPUT_MESSAGE;
	sg.message.data = data;
	sg.message.len = sizeof(data);
	/* Cryptographic output waits for OPERATIONAL (FIPS: DESIGN §8). */
	svc_init(&s, SVC_STATE_SELF_TEST);
	make_req("Sign", &sg.base, 13, &q);
	assert_int_equal(dispatch(&s, SVC_ROLE_ADMIN, &q, 0, msg, sizeof(msg), 13), KH_E_UNAVAILABLE);
	assert_non_null(strstr(msg, "keyholdd is in state SELF_TEST; Sign is refused"));
	svc_init(&s, SVC_STATE_ERROR);
	dk.name = (char *)(uintptr_t)"web";
	make_req("DeleteKey", &dk.base, 14, &q);
	assert_int_equal(dispatch(&s, SVC_ROLE_ADMIN, &q, 0, msg, sizeof(msg), 14), KH_E_UNAVAILABLE);
	assert_non_null(strstr(msg, "state ERROR"));
	/* A deadline already passed: nothing runs, whatever the role. */
	svc_init(&s, SVC_STATE_OPERATIONAL);
	make_req("Sign", &sg.base, 15, &q);
	assert_int_equal(dispatch(&s, SVC_ROLE_ADMIN, &q, 1, msg, sizeof(msg), 15), KH_E_DEADLINE_EXCEEDED);
	assert_non_null(strstr(msg, "the deadline passed before Sign could start"));
	/* The deadline is checked before the role: a late request from a
	 * peer with no role is still only late. */
	make_req("GetStatus", NULL, 16, &q);
	assert_int_equal(dispatch(&s, 0, &q, 1, msg, sizeof(msg), 16), KH_E_DEADLINE_EXCEEDED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_key_grants),
		cmocka_unit_test(test_state_and_deadline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
