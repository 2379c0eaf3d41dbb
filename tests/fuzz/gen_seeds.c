/* gen_seeds.c: writes the seed corpora of the fuzz targets from real
 * encoded requests and responses (run by hand; its output is committed
 * under tests/fuzz/corpus/<target>/):  gen_seeds CORPUS_DIR */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kh_util.h"
#include "proto.h"

static const char *root;

static void put(const char *target, const char *name, const uint8_t *a, size_t alen, const uint8_t *b,
		size_t blen)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
	f = fopen(path, "wb");
	if (f == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		exit(1);
	}
	if (alen)
		fwrite(a, 1, alen, f);
	if (blen)
		fwrite(b, 1, blen, f);
	fclose(f);
}

static void req_seed(enum proto_method m, const union proto_req_body *q, const char *tag)
{
	uint8_t *frame = NULL, sel = (uint8_t)m, ch = 6;
	size_t len = 0;
	char name[96];

	if (proto_request_encode(42, 5000, m, q, &frame, &len) != KH_OK)
		exit(1);
	snprintf(name, sizeof(name), "%s-%s", proto_method_name(m), tag);
	put("fuzz_request", name, frame + PROTO_HDR_LEN, len - PROTO_HDR_LEN, NULL, 0);
	put("fuzz_frame", name, &ch, 1, frame, len);
	/* The body alone, after the method byte: re-encode and strip the
	 * envelope by decoding its last field is not possible without
	 * protobuf-c here, so the body seed is the envelope's tail. */
	{
		/* Envelope: 08 2a 12 <n> name 18 <varint> 22 <len> body. */
		size_t off = PROTO_HDR_LEN;
		uint8_t *p = frame;

		while (off < len && p[off] != 0x22) {
			uint8_t tagb = p[off++];

			if ((tagb & 7) == 0) {
				while (off < len && (p[off] & 0x80))
					off++;
				off++;
			} else if ((tagb & 7) == 2) {
				size_t l = 0, sh = 0;

				while (off < len && (p[off] & 0x80))
					l |= (size_t)(p[off++] & 0x7f) << sh, sh += 7;
				l |= (size_t)p[off++] << sh;
				off += l;
			}
		}
		if (off < len) {
			off++;
			while (off < len && (p[off] & 0x80))
				off++;
			off++;
		}
		put("fuzz_body", name, &sel, 1, p + off, off <= len ? len - off : 0);
	}
	free(frame);
}

static void resp_seed(enum proto_method m, const union proto_resp_body *b, const char *tag)
{
	uint8_t *frame = NULL, sel = (uint8_t)m;
	size_t len = 0;
	char name[96];

	if (proto_response_encode(42, KH_OK, NULL, m, b, &frame, &len) != KH_OK)
		exit(1);
	snprintf(name, sizeof(name), "%s-%s", proto_method_name(m), tag);
	put("fuzz_response", name, &sel, 1, frame + PROTO_HDR_LEN, len - PROTO_HDR_LEN);
	free(frame);
}

/* Appends a whole request frame to a growing connection seed. */
static void conn_add(uint8_t **buf, size_t *len, uint64_t id, enum proto_method m, const union proto_req_body *q)
{
	uint8_t *frame = NULL, *nb;
	size_t flen = 0;

	if (proto_request_encode(id, 0, m, q, &frame, &flen) != KH_OK)
		exit(1);
	nb = realloc(*buf, *len + flen);
	if (nb == NULL)
		exit(1);
	memcpy(nb + *len, frame, flen);
	*buf = nb;
	*len += flen;
	free(frame);
}

static void conn_seeds(void)
{
	union proto_req_body q;
	uint8_t *buf = NULL;
	size_t len = 0;
	uint8_t msg[] = "fuzz me";
	uint8_t dig[48] = { 9 };
	static const uint8_t junk[] = { 0, 0, 0, 3, 0xff, 0xff, 0xff };

	memset(&q, 0, sizeof(q));
	conn_add(&buf, &len, 1, PROTO_M_GET_STATUS, &q);
	kh_strlcpy(q.sign.key, "fz-ec", sizeof(q.sign.key));
	q.sign.data = msg;
	q.sign.len = sizeof(msg) - 1;
	conn_add(&buf, &len, 2, PROTO_M_SIGN, &q);
	q.sign.digest = KH_DIGEST_SHA384;
	q.sign.prehashed = true;
	q.sign.data = dig;
	q.sign.len = 48;
	conn_add(&buf, &len, 3, PROTO_M_SIGN, &q);
	memset(&q, 0, sizeof(q));
	conn_add(&buf, &len, 4, PROTO_M_LIST_KEYS, &q);
	put("fuzz_conn", "status-sign-list", buf, len, NULL, 0);
	free(buf);
	buf = NULL;
	len = 0;
	memset(&q, 0, sizeof(q));
	kh_strlcpy(q.sign.key, "fz-rsa", sizeof(q.sign.key));
	q.sign.padding = KH_PAD_PSS;
	q.sign.data = msg;
	q.sign.len = sizeof(msg) - 1;
	conn_add(&buf, &len, 1, PROTO_M_SIGN, &q);
	q.sign.padding = KH_PAD_PKCS1;
	conn_add(&buf, &len, 2, PROTO_M_SIGN, &q);
	kh_strlcpy(q.sign.key, "other", sizeof(q.sign.key));
	conn_add(&buf, &len, 3, PROTO_M_SIGN, &q);
	memset(&q, 0, sizeof(q));
	kh_strlcpy(q.name.name, "fz-ec", sizeof(q.name.name));
	conn_add(&buf, &len, 4, PROTO_M_GET_PUBLIC_KEY, &q);
	conn_add(&buf, &len, 5, PROTO_M_DELETE_KEY, &q);
	put("fuzz_conn", "rsa-policy-denied", buf, len, NULL, 0);
	free(buf);
	buf = NULL;
	len = 0;
	memset(&q, 0, sizeof(q));
	q.audit_show.limit = 5;
	conn_add(&buf, &len, 1, PROTO_M_AUDIT_SHOW, &q);
	memset(&q, 0, sizeof(q));
	conn_add(&buf, &len, 2, PROTO_M_AUDIT_VERIFY, &q);
	conn_add(&buf, &len, 3, PROTO_M_LIST_KEY_GRANTS, &q);
	conn_add(&buf, &len, 4, PROTO_M_GET_CAPABILITIES, &q);
	put("fuzz_conn", "audit-grants", buf, len, junk, sizeof(junk));
	free(buf);
	put("fuzz_conn", "junk", junk, sizeof(junk), NULL, 0);
}

int main(int argc, char **argv)
{
	union proto_req_body q;
	union proto_resp_body a;
	uint8_t msg[] = "the quick brown fox";
	uint8_t dig[32] = { 1, 2, 3 };
	struct kh_key_info ki[2];
	struct kh_audit_record rec[2];
	struct kh_key_grant gr[2];
	uint8_t spki[91] = { 0x30, 0x59 };
	unsigned m;

	if (argc != 2)
		return 2;
	root = argv[1];
	mkdir(root, 0755);
	for (m = 0; m < PROTO_M_COUNT; m++) {
		memset(&q, 0, sizeof(q));
		req_seed((enum proto_method)m, &q, "empty");
	}
	memset(&q, 0, sizeof(q));
	kh_strlcpy(q.generate.name, "web-tls", sizeof(q.generate.name));
	q.generate.type = KH_KEY_P256;
	req_seed(PROTO_M_GENERATE_KEY, &q, "p256");
	memset(&q, 0, sizeof(q));
	kh_strlcpy(q.name.name, "web-tls", sizeof(q.name.name));
	req_seed(PROTO_M_GET_PUBLIC_KEY, &q, "name");
	req_seed(PROTO_M_DELETE_KEY, &q, "name");
	memset(&q, 0, sizeof(q));
	kh_strlcpy(q.sign.key, "web-tls", sizeof(q.sign.key));
	q.sign.digest = KH_DIGEST_SHA384;
	q.sign.padding = KH_PAD_PSS;
	q.sign.data = msg;
	q.sign.len = sizeof(msg) - 1;
	req_seed(PROTO_M_SIGN, &q, "message");
	q.sign.prehashed = true;
	q.sign.digest = KH_DIGEST_SHA256;
	q.sign.data = dig;
	q.sign.len = sizeof(dig);
	req_seed(PROTO_M_SIGN, &q, "prehashed");
	memset(&q, 0, sizeof(q));
	q.audit_show.since_s = 1700000000;
	q.audit_show.from_seq = 3;
	q.audit_show.limit = 10;
	req_seed(PROTO_M_AUDIT_SHOW, &q, "since");
	memset(&q, 0, sizeof(q));
	kh_strlcpy(q.grant.key, "web-tls", sizeof(q.grant.key));
	kh_strlcpy(q.grant.principal, "cert:spiffe://example.org/app", sizeof(q.grant.principal));
	q.grant.digests = 1u << KH_DIGEST_SHA256 | 1u << KH_DIGEST_SHA384;
	q.grant.paddings = 1u << KH_PAD_PSS;
	req_seed(PROTO_M_GRANT_KEY, &q, "grant");
	memset(&q, 0, sizeof(q));
	kh_strlcpy(q.grant_ref.key, "web-tls", sizeof(q.grant_ref.key));
	kh_strlcpy(q.grant_ref.principal, "uid:1001", sizeof(q.grant_ref.principal));
	req_seed(PROTO_M_REVOKE_KEY_GRANT, &q, "uid");
	memset(&q, 0, sizeof(q));
	kh_strlcpy(q.grant_filter.key, "web-tls", sizeof(q.grant_filter.key));
	req_seed(PROTO_M_LIST_KEY_GRANTS, &q, "key");

	/* Responses. */
	memset(ki, 0, sizeof(ki));
	kh_strlcpy(ki[0].name, "web-tls", sizeof(ki[0].name));
	ki[0].type = KH_KEY_P256;
	ki[0].bits = 256;
	ki[0].id_len = 16;
	ki[0].spki = spki;
	ki[0].spki_len = sizeof(spki);
	ki[1] = ki[0];
	kh_strlcpy(ki[1].name, "rsa", sizeof(ki[1].name));
	memset(&a, 0, sizeof(a));
	a.key = ki[0];
	resp_seed(PROTO_M_GET_PUBLIC_KEY, &a, "key");
	resp_seed(PROTO_M_GENERATE_KEY, &a, "key");
	memset(&a, 0, sizeof(a));
	a.keys.keys = ki;
	a.keys.n = 2;
	resp_seed(PROTO_M_LIST_KEYS, &a, "two");
	memset(&a, 0, sizeof(a));
	a.sign.sig = spki;
	a.sign.sig_len = 70;
	kh_strlcpy(a.sign.algorithm, "ecdsa-sha256", sizeof(a.sign.algorithm));
	resp_seed(PROTO_M_SIGN, &a, "sig");
	memset(&a, 0, sizeof(a));
	kh_strlcpy(a.status.version, "0.1.0", sizeof(a.status.version));
	kh_strlcpy(a.status.state, "OPERATIONAL", sizeof(a.status.state));
	resp_seed(PROTO_M_GET_STATUS, &a, "status");
	memset(&a, 0, sizeof(a));
	a.caps.n_types = 1;
	a.caps.types[0].type = KH_KEY_P256;
	a.caps.types[0].available = true;
	resp_seed(PROTO_M_GET_CAPABILITIES, &a, "caps");
	memset(rec, 0, sizeof(rec));
	rec[0].seq = 1;
	rec[0].time_us = 1700000000000000ull;
	kh_strlcpy(rec[0].principal, "uid:0", sizeof(rec[0].principal));
	kh_strlcpy(rec[0].method, "Sign", sizeof(rec[0].method));
	kh_strlcpy(rec[0].object, "web-tls", sizeof(rec[0].object));
	rec[0].code = KH_E_PERMISSION_DENIED;
	rec[1] = rec[0];
	rec[1].seq = 2;
	rec[1].checkpoint = true;
	memset(&a, 0, sizeof(a));
	a.audit.recs = rec;
	a.audit.n = 2;
	a.audit.next_seq = 3;
	a.audit.more = true;
	resp_seed(PROTO_M_AUDIT_SHOW, &a, "two");
	memset(&a, 0, sizeof(a));
	a.audit_verify.ok = false;
	a.audit_verify.records = 10;
	a.audit_verify.bad_seq = 4;
	kh_strlcpy(a.audit_verify.reason, "record 4 was altered", sizeof(a.audit_verify.reason));
	resp_seed(PROTO_M_AUDIT_VERIFY, &a, "bad");
	memset(gr, 0, sizeof(gr));
	kh_strlcpy(gr[0].key, "web-tls", sizeof(gr[0].key));
	kh_strlcpy(gr[0].principal, "uid:1001", sizeof(gr[0].principal));
	gr[0].digests = 1u << KH_DIGEST_SHA256;
	kh_strlcpy(gr[0].source, "config", sizeof(gr[0].source));
	gr[1] = gr[0];
	gr[1].paddings = 1u << KH_PAD_PSS;
	memset(&a, 0, sizeof(a));
	a.grants.grants = gr;
	a.grants.n = 2;
	resp_seed(PROTO_M_LIST_KEY_GRANTS, &a, "two");
	conn_seeds();
	return 0;
}
