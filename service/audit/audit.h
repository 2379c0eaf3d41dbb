/* audit: the tamper-evident audit log (DESIGN §9). Every request is one
 * line in an append-only file; each line carries the SHA-256 of the line
 * before it (a hash chain), and checkpoint lines are signed in the token by
 * a dedicated key, so any change, removal or reordering is found by
 * audit_verify. Thread-safe. */
#ifndef AUDIT_H
#define AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include "hsm.h"
#include "store/store.h"
#include "kh_err.h"
#include "kh_types.h"

struct audit;

struct audit_config {
	const char *path;             /* the log file (borrowed) */
	const char *key;              /* checkpoint key name, created if missing */
	unsigned checkpoint_records;  /* a checkpoint after this many records */
	unsigned checkpoint_interval_s; /* and at least this often while records come */
	unsigned anchor_interval_s;   /* the checkpoint thread's checkpoints move the anchor at most
				       * this often (the latest one once the interval is over);
				       * 0: every checkpoint */
	bool sync_always;             /* fdatasync every record before the answer */
	struct store *store;          /* the state database keeping the anchor's copy; audit_open
				       * takes it (also on failure); NULL: the token's copy only */
	bool tamper_refuse;           /* on_tamper = refuse: a log that fails the anchor check stops the start */
	uint64_t rotate_size;         /* rotate when the file reaches this many bytes; 0: never */
	unsigned rotate_age_s;        /* rotate when its first record is this old; 0: never */
	unsigned rotate_keep;         /* rotated files kept; 0: all */
	int64_t (*now_s)(void);       /* wall clock for rotate_age (a test build may move it); NULL: time() */
	bool journal;                 /* a copy of every record to keyholdd's log (the journal under systemd) */
	const char *node;             /* this node's name ([cluster] node): every checkpoint is also
				       * recorded in the state database under it; NULL: not recorded */
	bool anchor_per_node;         /* the anchor kept under node's name (nodes sharing a token and a
				       * database: PostgreSQL); false: one anchor (SQLite: one node,
				       * whatever its host name is today) */
	bool checkpoint_inline;       /* checkpoints signed by the record's own thread, under the log's
				       * lock, over their own line (at fixed places: unit tests); false:
				       * by the checkpoint thread, off the request path */
};

/* Rotation (docs/SECURITY.md): the full file ends with a signed RotateEnd
 * checkpoint and is renamed PATH.<first seq>-<last seq> (12 digits each,
 * zero-padded); the new PATH starts with a signed RotateStart checkpoint
 * whose prev is the hash of the last line of the rotated file. */
struct audit_rotfile {
	uint64_t first, last;         /* the records the file holds, from its name */
	char name[256];               /* its file name (without the directory) */
};
/* The name of a rotated file of `base` (the log's file name) holding
 * first..last; false when it does not fit. */
bool audit_rot_name(const char *base, uint64_t first, uint64_t last, char *out, size_t outsz);
/* Whether `name` is a rotated file of `base`; its range on true. */
bool audit_rot_parse(const char *base, const char *name, uint64_t *first, uint64_t *last);
/* The rotated files of the log `path`, oldest first (by first seq); *out
 * is malloc'ed (free it), *n may be 0. */
enum kh_err audit_rot_list(const char *path, struct audit_rotfile **out, size_t *n) KH_WUR;

/* Opens (creating) the log, checks it against the anchor (the last
 * checkpoint's sequence number, offset and hash, kept in the token as the
 * data object "keyhold-audit-anchor" and in the state database): a log cut
 * back, rewritten, deleted or extended while keyholdd was stopped is
 * refused (DATA_LOSS, tamper_refuse) or recorded as an AuditTamper record
 * that every later verify reports. Finds the chain head (a torn last
 * record is cut off and noted), creates the checkpoint key (P-256, via
 * hsm_key_generate) when the token lacks it, and appends a Start record
 * (and, after a finding, a checkpoint that anchors the log as it is). */
enum kh_err audit_open(const struct audit_config *cfg, struct hsm *h, struct audit **out,
		       struct kh_errbuf *e) KH_WUR;
/* Appends a Stop record and a checkpoint, syncs and closes. NULL is fine. */
void audit_close(struct audit *a);

struct audit_event {
	const char *principal;        /* "uid:0", "cert:...", "keyholdd" */
	const char *method;           /* RPC name; "-" when unknown */
	const char *object;           /* key or trustpoint; NULL or "" for none */
	enum kh_err code;
	uint64_t duration_us;
	uint64_t count;               /* 0 or 1: one request; more: aggregated */
};

/* Appends one record (and a checkpoint when one is due). A write failure
 * makes the log unhealthy: UNAVAILABLE, and audit_healthy turns false
 * until the log can be written again (retried at most every 200 ms: a torn
 * record is cut off, and an AuditRepair record and a checkpoint written).
 * Refusals (PERMISSION_DENIED, UNAUTHENTICATED) are counted per principal:
 * the first of a second is written at once, the rest as one record with
 * their count when the second is over. The result of a state-changing
 * method is synced before this returns. */
enum kh_err audit_append(struct audit *a, const struct audit_event *ev, struct kh_errbuf *e) KH_WUR;
/* Before a request runs: for a method that changes state (keys, grants,
 * trustpoints, trust stores, CRLs, policies, renewal) it reserves room for
 * the records, writes a "begin:METHOD" record and syncs it; UNAVAILABLE
 * when it cannot, and the request must then not run. Other methods: OK. */
enum kh_err audit_begin(struct audit *a, const struct audit_event *ev, struct kh_errbuf *e) KH_WUR;
bool audit_healthy(struct audit *a);

/* Group commit for sync = always (DESIGN §9: no answer before its record
 * is durable). A thread that can hold its answer back calls
 * audit_defer_begin before the request's records are written and
 * audit_defer_end after: the records are written but not synced, and the
 * number returned (0: nothing to wait for) goes to audit_when_durable,
 * which returns false when that record is durable already (answer now),
 * or true after queueing w: the commit thread then syncs every record
 * written so far with one fdatasync and calls w->fn(w) (on its thread).
 * A state change's records are still synced before audit_append returns.
 * With sync = interval nothing is deferred. */
struct audit_waiter {
	struct audit_waiter *next;
	uint64_t seq;
	void (*fn)(struct audit_waiter *w);
};
void audit_defer_begin(void);
uint64_t audit_defer_end(void);
bool audit_when_durable(struct audit *a, uint64_t seq, struct audit_waiter *w);
/* Waits until every queued waiter has been called (before the workers'
 * completions are torn down). */
void audit_commit_drain(struct audit *a);
/* One line of the log (len bytes, without its newline) as verify reads it
 * (the file, or a checkpoint row of the state database): whether it
 * parses, its sequence number, whether it is a signed checkpoint and the
 * record it signs (at: 0 for one signed over its own line). The lines come
 * from files and a database others can write: tests/fuzz/fuzz_audit_line.c. */
bool audit_line_parse(const char *line, size_t len, uint64_t *seq, bool *checkpoint, uint64_t *at);
/* Waits until a checkpoint the thread was asked for is written (or given
 * up): verify and tests see the checkpoints due before they started. */
void audit_checkpoint_wait(struct audit *a);
/* Housekeeping, from a worker about once a second: a checkpoint when the
 * interval passed with unsigned records, and fdatasync of pending writes. */
void audit_tick(struct audit *a);
/* Lines this process wrote to the log: records (refusal summaries
 * included) and signed checkpoints. Lock-free: the loop may call it. */
void audit_counts(struct audit *a, uint64_t *records, uint64_t *checkpoints);
/* The name of the checkpoint key (reserved: no RPC may sign with it). */
const char *audit_key_name(const struct audit *a);

/* One record as audit_show reads it back; its strings are borrowed for
 * the call. */
struct audit_shown {
	uint64_t seq;
	uint64_t time_us;             /* Unix time, microseconds */
	struct audit_event ev;
	bool checkpoint;              /* a signed checkpoint record */
};

typedef enum kh_err (*audit_show_fn)(void *arg, const struct audit_shown *rec, struct kh_errbuf *e);

/* Calls fn for the records with time >= since_s (Unix seconds) and
 * seq >= from_seq, at most limit (0: a page; capped at 4096), in order; a
 * non-OK result from fn stops and is returned. *more: the page was cut,
 * and *next_seq is where the next one starts (0 otherwise). Written only
 * on success. */
enum kh_err audit_show(struct audit *a, uint64_t since_s, uint64_t from_seq, uint32_t limit, audit_show_fn fn,
		       void *arg, uint64_t *next_seq, bool *more, struct kh_errbuf *e) KH_WUR;
/* What audit_verify found. */
struct audit_verdict {
	bool ok;
	uint64_t records;
	uint64_t checkpoints;
	uint64_t bad_seq;             /* the first bad record (when !ok) */
	uint64_t bad_line;
	char reason[1024];            /* the first break, then a summary of the others */
	uint64_t unsigned_tail;       /* records after the last checkpoint */
	uint64_t last_checkpoint_seq;
	char key_fp[65];              /* the checkpoint key's SPKI SHA-256, hex */
	uint64_t first_seq;           /* where verification started (1, or the first record of the
				       * oldest file retention kept) */
	uint64_t files;               /* files verified (rotated ones and the log) */
};

/* Checks the rotated files, oldest first, and the whole log to its end
 * (when ok and the oldest files were deleted by retention, reason says
 * where verification starts): sequence, chain, checkpoint
 * signatures, AuditTamper records, and the head this process wrote.
 * out->ok false names the first bad record, and the reason goes on to
 * name the later breaks. Incremental: when the bytes up to the last
 * checkpoint a verify passed still hash the same, only what follows is
 * parsed. One at a time: UNAVAILABLE while another runs. */
enum kh_err audit_verify(struct audit *a, struct audit_verdict *out, struct kh_errbuf *e) KH_WUR;

/* One node's checkpoints as the state database holds them (verify
 * --cluster, docs/CLUSTER.md). */
#define AUDIT_GAPS_MAX 16
struct audit_node_verdict {
	char node[KH_NAME_MAX + 1];
	bool ok;
	uint64_t checkpoints, first_seq, last_seq, bad_signatures;
	char gaps[AUDIT_GAPS_MAX][80]; /* the first gaps: "after checkpoint A, before B" */
	size_t n_gaps;                /* all gaps (may be more than kept) */
	char reason[512];             /* the first problem; "" when ok */
	int64_t last_recorded;
};
/* Verifies every node's checkpoints recorded in the state database: each
 * signature with the audit key's public key (every node signs with the
 * same token key), each row's chain hash against its line, its sequence
 * number against the line's, and that each checkpoint names the node's
 * previous one (a missing row is a gap). *out (free) by node name;
 * FAILED_PRECONDITION without a state database. */
enum kh_err audit_verify_cluster(struct audit *a, struct audit_node_verdict **out, size_t *n,
				 struct kh_errbuf *e) KH_WUR;

#endif
