/* kh_security: the validated structs of the security RPCs: per-key grants
 * (who may sign with which key, and how) and the audit log (DESIGN §9). */
#ifndef KH_SECURITY_H
#define KH_SECURITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "uid:1001", "gid:50", "user:app", "group:app", "cert:spiffe://x/y". */
#define KH_PRINCIPAL_MAX 255

/* One grant. digests and paddings are bit sets (1u << enum kh_digest,
 * 1u << enum kh_padding); 0 means any. */
struct kh_key_grant {
	char key[64 + 1];
	char principal[KH_PRINCIPAL_MAX + 1];
	unsigned digests;
	unsigned paddings;
	char source[16];            /* answers: "config" or "runtime" */
};

struct kh_grant_ref {
	char key[64 + 1];
	char principal[KH_PRINCIPAL_MAX + 1];
};

struct kh_grant_filter {
	char key[64 + 1];           /* "" = every key */
};

struct kh_grant_list {
	struct kh_key_grant *grants; /* owned */
	size_t n;
};

struct kh_audit_record {
	uint64_t seq;
	uint64_t time_us;           /* Unix time, microseconds */
	char principal[KH_PRINCIPAL_MAX + 1];
	char method[48];
	char object[64 + 1];
	int code;                   /* enum kh_err of the answer */
	uint64_t duration_us;
	uint64_t count;             /* > 1: aggregated like requests */
	bool checkpoint;
};

struct kh_audit_show_req {
	uint64_t since_s;
	uint64_t from_seq;
	uint32_t limit;
};

struct kh_audit_records {
	struct kh_audit_record *recs; /* owned */
	size_t n;
	uint64_t next_seq;
	bool more;
};

struct kh_audit_verify {
	bool ok;
	uint64_t records;
	uint64_t checkpoints;
	uint64_t bad_seq;
	uint64_t bad_line;
	char reason[1024];            /* the first break, then a summary of the others */
	uint64_t unsigned_tail;
	uint64_t last_checkpoint_seq;
	char key_fp[65];
};

/* True for a principal string the service can parse: kind:value with a
 * known kind and a value of printable ASCII without ',' or blanks. */
bool kh_principal_valid(const char *s);
void kh_grant_list_clear(struct kh_grant_list *l);
void kh_audit_records_clear(struct kh_audit_records *r);

#ifdef __cplusplus
}
#endif
#endif
